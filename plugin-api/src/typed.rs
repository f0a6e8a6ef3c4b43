//! Typed methods (since 1.3): each method a backend answers is declared once,
//! with its name and its request and response types; the SDK parses the
//! request, calls the backend, serialises the answer, and derives the
//! plugin's [`PluginInfo::methods`](crate::PluginInfo::methods) list from the
//! same declarations, so the list cannot drift from the code.
//!
//! ```no_run
//! use skyhost_plugin_api::{
//!     CheckReport, CheckRequest, Description, GpuQuery, GpuQueryResponse, PluginError, method,
//!     sdk::{Router, TypedBackend},
//! };
//!
//! struct Mine;
//! impl Mine {
//!     fn query(&self, _q: GpuQuery) -> Result<GpuQueryResponse, PluginError> {
//!         Ok(GpuQueryResponse::default())
//!     }
//!     fn check(&self, _r: CheckRequest) -> Result<CheckReport, PluginError> {
//!         Ok(CheckReport::default())
//!     }
//! }
//! impl TypedBackend for Mine {
//!     fn describe(&self) -> Description {
//!         Description { name: "mine".into(), ..Default::default() }
//!     }
//!     fn router() -> Router<Self> {
//!         Router::new().method::<method::GpuQueryCall>(Self::query).method::<method::CheckCall>(Self::check)
//!     }
//! }
//! fn new() -> Result<Mine, String> { Ok(Mine) }
//! skyhost_plugin_api::export_typed_backend!(Mine, new);
//! ```
//!
//! A method of your own is a type that implements [`Method`]. Nothing of
//! this travels differently: a typed plugin's `describe` and `call` carry the
//! same JSON as a hand-written one, so it loads in any 1.x host.

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Backend, BackendInfo, Description, PluginError,
    sdk::{json_call, unknown_method},
};

/// A method: the name the host calls, and the JSON types it carries.
///
/// The standard methods are declared in [`method`](crate::method)
/// ([`GpuQueryCall`](crate::method::GpuQueryCall) and the others).
pub trait Method: 'static {
    /// The name the host calls it by, as listed in `PluginInfo::methods`.
    const NAME: &'static str;
    /// What the host sends.
    type Request: DeserializeOwned;
    /// What the backend answers.
    type Response: Serialize;
}

type Handler<B> = Box<dyn Fn(&B, &str) -> Result<String, PluginError> + Send + Sync>;

/// The methods of backend `B`, each declared once with [`Router::method`].
pub struct Router<B> {
    routes: Vec<(&'static str, Handler<B>)>,
}

impl<B: 'static> fmt::Debug for Router<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router").field("methods", &self.names()).finish()
    }
}

impl<B: 'static> Default for Router<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: 'static> Router<B> {
    /// A router that answers nothing yet.
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Declares method `M`, answered by `answer`.
    ///
    /// # Panics
    ///
    /// When `M`'s name is already declared: a mistake in the plugin that its
    /// first load reports (the constructor's panic becomes the plugin's error).
    pub fn method<M: Method>(
        mut self,
        answer: impl Fn(&B, M::Request) -> Result<M::Response, PluginError> + Send + Sync + 'static,
    ) -> Self {
        assert!(!self.answers(M::NAME), "method '{}' is declared twice", M::NAME);
        self.routes
            .push((M::NAME, Box::new(move |backend: &B, request: &str| json_call(request, |r| answer(backend, r)))));
        self
    }

    /// Whether `method` is declared.
    pub fn answers(&self, method: &str) -> bool {
        self.routes.iter().any(|(name, _)| *name == method)
    }

    /// The declared names, in declaration order: the plugin's `methods` list.
    pub fn names(&self) -> Vec<String> {
        self.routes.iter().map(|(name, _)| (*name).to_string()).collect()
    }

    /// Parses `request` for `method`, calls its handler and serialises the
    /// answer; an undeclared method is [`ErrorKind::UnknownMethod`](crate::ErrorKind::UnknownMethod).
    pub fn call(&self, backend: &B, method: &str, request: &str) -> Result<String, PluginError> {
        match self.routes.iter().find(|(name, _)| *name == method) {
            Some((_, handler)) => handler(backend, request),
            None => Err(unknown_method(method)),
        }
    }
}

/// A backend whose methods are declared in a [`Router`]. Export it with
/// [`export_typed_backend!`](crate::export_typed_backend).
pub trait TypedBackend: Send + Sync + Sized + 'static {
    /// Names the backend. Leave `methods` empty: the SDK fills it from
    /// [`TypedBackend::router`] (whatever is there is replaced).
    fn describe(&self) -> Description;

    /// The methods the backend answers. Called once, when the plugin loads.
    fn router() -> Router<Self>;
}

/// A [`TypedBackend`] with its router: the [`Backend`] the SDK exports.
pub struct Typed<B> {
    backend: B,
    router: Router<B>,
}

impl<B: TypedBackend> fmt::Debug for Typed<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed").field("router", &self.router).finish_non_exhaustive()
    }
}

impl<B: TypedBackend> Typed<B> {
    /// `backend` with the router it declares.
    pub fn new(backend: B) -> Self {
        Self { backend, router: B::router() }
    }

    /// The backend itself.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend as one member of a plugin that serves several (see
    /// [`Description::backends`]), its methods taken from the router.
    pub fn info(&self) -> BackendInfo {
        let d = self.describe();
        BackendInfo {
            name: d.name,
            display_name: d.display_name,
            description: d.description,
            capabilities: d.capabilities,
            methods: d.methods,
            catalog: d.catalog,
        }
    }
}

impl<B: TypedBackend> Backend for Typed<B> {
    fn describe(&self) -> Description {
        Description { methods: self.router.names(), ..self.backend.describe() }
    }

    fn call(&self, method: &str, request: &str) -> Result<String, PluginError> {
        self.router.call(&self.backend, method, request)
    }
}

/// Exports a [`TypedBackend`] as a skyhost plugin: `export_typed_backend!(Mine, new)`,
/// where `new` returns `Result<Mine, String>`. Everything
/// [`export_backend!`](crate::export_backend) says holds: the constructor runs
/// once at load, and a panic anywhere is caught and reported.
#[macro_export]
macro_rules! export_typed_backend {
    ($backend:ty, $constructor:path) => {
        fn __skyhost_typed_constructor() -> ::core::result::Result<$crate::sdk::Typed<$backend>, ::std::string::String>
        {
            $constructor().map($crate::sdk::Typed::new)
        }

        $crate::export_backend!($crate::sdk::Typed<$backend>, __skyhost_typed_constructor);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        CheckReport, CheckRequest, ClusterQuery, ClusterReport, ErrorKind, GpuQuery, GpuQueryResponse, method,
    };

    struct Echo;
    impl Method for Echo {
        const NAME: &'static str = "echo";
        type Request = serde_json::Value;
        type Response = serde_json::Value;
    }

    #[derive(Default)]
    struct Counter {
        seen: std::sync::atomic::AtomicU64,
    }

    impl Counter {
        fn query(&self, q: GpuQuery) -> Result<GpuQueryResponse, PluginError> {
            self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match q.name.as_deref() {
                Some("fail") => Err(PluginError::new(ErrorKind::Config, "asked to fail")),
                _ => Ok(GpuQueryResponse { warnings: vec![format!("name {:?}", q.name)], ..Default::default() }),
            }
        }
    }

    impl TypedBackend for Counter {
        fn describe(&self) -> Description {
            Description { name: "counter".into(), methods: vec!["stale-by-hand".into()], ..Default::default() }
        }

        fn router() -> Router<Self> {
            Router::new()
                .method::<method::GpuQueryCall>(Self::query)
                .method::<method::CheckCall>(|_, _r: CheckRequest| Ok(CheckReport::default()))
                .method::<Echo>(|_, v| Ok(v))
        }
    }

    #[test]
    fn the_methods_list_is_the_declarations_in_order() {
        let typed = Typed::new(Counter::default());
        let d = Backend::describe(&typed);
        assert_eq!(d.methods, ["gpus.query", "check", "echo"]);
        assert_eq!(d.name, "counter");
        assert_eq!(typed.info().methods, d.methods);
    }

    #[test]
    fn requests_are_parsed_answers_serialised_and_errors_kept() {
        let typed = Typed::new(Counter::default());
        let answer = typed.call(method::GPU_QUERY, r#"{"name":"A100"}"#).unwrap();
        let parsed: GpuQueryResponse = serde_json::from_str(&answer).unwrap();
        assert_eq!(parsed.warnings, ["name Some(\"A100\")"]);
        let e = typed.call(method::GPU_QUERY, r#"{"name":"fail"}"#).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Config, "asked to fail"));
        assert_eq!(typed.call("echo", "[1,2]").unwrap(), "[1,2]");
        assert_eq!(typed.backend().seen.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn bad_requests_and_undeclared_methods_are_errors_not_panics() {
        let typed = Typed::new(Counter::default());
        let e = typed.call(method::GPU_QUERY, "{not json").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.starts_with("request does not parse"), "{}", e.message);
        let e = typed.call(method::CLUSTER_GPUS, "{}").unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::UnknownMethod, "unknown method 'clusters.gpus'"));
        assert_eq!(typed.backend().seen.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    #[should_panic(expected = "method 'clusters.gpus' is declared twice")]
    fn a_method_declared_twice_is_refused() {
        let _ = Router::<Counter>::new()
            .method::<method::ClusterGpusCall>(|_, _q: ClusterQuery| Ok(ClusterReport::default()))
            .method::<method::ClusterGpusCall>(|_, _q: ClusterQuery| Ok(ClusterReport::default()));
    }
}
