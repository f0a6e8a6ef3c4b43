//! What a plugin author uses: implement [`Backend`] and call [`export_backend!`](crate::export_backend),
//! or (since 1.3) declare typed methods: implement [`TypedBackend`] and call
//! [`export_typed_backend!`](crate::export_typed_backend) (see [`crate::typed`]).
//!
//! The macro writes the abi_stable export and wraps every entry point in a
//! panic guard, so a bug in a backend becomes an error value in the host
//! instead of a process abort. The guard needs the plugin to be built with
//! `panic = "unwind"` (the default; never set `panic = "abort"` for plugins).

use std::{
    any::Any,
    cell::RefCell,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Once, OnceLock},
};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RBoxError, RResult, RStr, RString},
};
use serde::{Serialize, de::DeserializeOwned};

pub use crate::typed::{Method, Router, Typed, TypedBackend};
use crate::{BackendModule, BackendModuleRef, BuildInfo, ErrorKind, INTERFACE_VERSION, PluginError, PluginInfo};

/// A backend, as its author writes it.
pub trait Backend: Send + Sync + 'static {
    /// Names the backend and lists what it can do. The SDK adds the versions
    /// and build information.
    fn describe(&self) -> Description;

    /// Answers one call. `request` is JSON; so is the returned response.
    /// Use [`json_call`] to work with typed requests and responses.
    fn call(&self, method: &str, request: &str) -> Result<String, PluginError>;
}

/// The author-supplied part of [`PluginInfo`].
#[derive(Debug, Clone, Default)]
pub struct Description {
    /// Backend name; must equal the `<name>` of `libskyhost_<name>.so`.
    pub name: String,
    /// Name for people.
    pub display_name: String,
    /// One line on what the backend does.
    pub description: String,
    /// See [`capability`](crate::capability).
    pub capabilities: Vec<String>,
    /// See [`method`](crate::method).
    pub methods: Vec<String>,
    /// The catalog file the backend reads, if any.
    pub catalog: Option<crate::CatalogSpec>,
    /// For a plugin that serves several backends: each of them. `call` then
    /// receives methods as `<backend>/<method>` (see [`split_method`]).
    pub backends: Vec<crate::BackendInfo>,
}

impl From<crate::BackendInfo> for Description {
    /// A plugin that serves one backend, described as a bundle describes its members.
    fn from(b: crate::BackendInfo) -> Self {
        Self {
            name: b.name,
            display_name: b.display_name,
            description: b.description,
            capabilities: b.capabilities,
            methods: b.methods,
            catalog: b.catalog,
            backends: Vec::new(),
        }
    }
}

/// Splits `<backend>/<method>` (a call to one backend of a plugin that serves
/// several) into its parts; a plain method has no backend.
pub fn split_method(method: &str) -> (Option<&str>, &str) {
    match method.split_once('/') {
        Some((backend, m)) => (Some(backend), m),
        None => (None, method),
    }
}

/// Parses `request` as `Req`, runs `f`, and serialises its answer.
pub fn json_call<Req, Resp>(
    request: &str,
    f: impl FnOnce(Req) -> Result<Resp, PluginError>,
) -> Result<String, PluginError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
{
    let req = serde_json::from_str(request)
        .map_err(|e| PluginError::new(ErrorKind::BadRequest, format!("request does not parse: {e}")))?;
    let resp = f(req)?;
    serde_json::to_string(&resp)
        .map_err(|e| PluginError::new(ErrorKind::Other, format!("response does not serialise: {e}")))
}

/// The most bytes of any one value (a catalog field, a helper's output) that a
/// message quotes: input can be megabytes long, a message is one line.
pub const QUOTE_LIMIT: usize = 200;

/// `text` cut to at most [`QUOTE_LIMIT`] bytes, on a character boundary, with
/// `…` after a cut: how a message quotes a value of any size.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= QUOTE_LIMIT {
        return text.into();
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// The error for a method this backend does not implement.
pub fn unknown_method(method: &str) -> PluginError {
    PluginError::new(ErrorKind::UnknownMethod, format!("unknown method '{}'", clip(method)))
}

/// Runs `f`, turning a panic into a [`PluginError`] of kind `panic`.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(PluginError::new(ErrorKind::Panic, panic_message(payload.as_ref()))),
    }
}

/// The build information of this plugin (captured by `build.rs`).
pub fn build_info() -> BuildInfo {
    BuildInfo {
        rustc: env!("SKYHOST_BUILD_RUSTC").to_string(),
        target: env!("SKYHOST_BUILD_TARGET").to_string(),
        profile: env!("SKYHOST_BUILD_PROFILE").to_string(),
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps panic messages off the user's terminal: the guard reports them as
/// errors instead. `SKYHOST_PLUGIN_PANICS=1` restores the default printing.
fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let loud = std::env::var_os("SKYHOST_PLUGIN_PANICS").is_some();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let text = format!("{}{location}", panic_payload_text(info.payload()));
            LAST_PANIC.with(|slot| *slot.borrow_mut() = Some(text));
            if loud {
                default_hook(info);
            }
        }));
    });
}

fn panic_payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let recorded = LAST_PANIC.with(|slot| slot.borrow_mut().take());
    format!("plugin panicked: {}", recorded.unwrap_or_else(|| panic_payload_text(payload)))
}

fn to_json_error(error: &PluginError) -> RString {
    serde_json::to_string(error)
        .unwrap_or_else(|_| format!("{{\"kind\":\"other\",\"message\":{:?}}}", error.message))
        .into()
}

#[doc(hidden)]
pub fn __construct<B: Backend>(
    slot: &'static OnceLock<B>,
    constructor: fn() -> Result<B, String>,
    describe: extern "C" fn() -> RString,
    call: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<RString, RString>,
) -> Result<BackendModuleRef, RBoxError> {
    install_quiet_panic_hook();
    let error = match catch_unwind(constructor) {
        Ok(Ok(backend)) => {
            let _ = slot.set(backend);
            return Ok(BackendModule { describe, call }.leak_into_prefix());
        }
        Ok(Err(message)) => PluginError::new(ErrorKind::Config, message),
        Err(payload) => PluginError::new(ErrorKind::Panic, panic_message(payload.as_ref())),
    };
    Err(RBoxError::from_fmt(&to_json_error(&error)))
}

#[doc(hidden)]
pub fn __describe<B: Backend>(slot: &OnceLock<B>, plugin_version: &str) -> RString {
    let result = guard(|| {
        let backend = slot.get().ok_or_else(|| PluginError::new(ErrorKind::Other, "backend not constructed"))?;
        let d = backend.describe();
        Ok(PluginInfo {
            name: d.name,
            display_name: d.display_name,
            version: plugin_version.to_string(),
            interface_version: INTERFACE_VERSION.to_string(),
            description: d.description,
            capabilities: d.capabilities,
            methods: d.methods,
            build: build_info(),
            catalog: d.catalog,
            backends: d.backends,
        })
    });
    match result {
        Ok(info) => serde_json::to_string(&info).unwrap_or_default().into(),
        Err(error) => format!("{{\"error\":{}}}", to_json_error(&error)).into(),
    }
}

#[doc(hidden)]
pub fn __call<B: Backend>(slot: &OnceLock<B>, method: RStr<'_>, request: RStr<'_>) -> RResult<RString, RString> {
    let result = guard(|| {
        let backend = slot.get().ok_or_else(|| PluginError::new(ErrorKind::Other, "backend not constructed"))?;
        backend.call(method.as_str(), request.as_str())
    });
    match result {
        Ok(response) => RResult::ROk(response.into()),
        Err(error) => RResult::RErr(to_json_error(&error)),
    }
}

/// Exports a [`Backend`] as a skyhost plugin.
///
/// ```no_run
/// use skyhost_plugin_api::{Backend, Description, PluginError, sdk};
/// struct Mine;
/// impl Backend for Mine {
///     fn describe(&self) -> Description { Description { name: "mine".into(), ..Default::default() } }
///     fn call(&self, method: &str, _request: &str) -> Result<String, PluginError> {
///         Err(sdk::unknown_method(method))
///     }
/// }
/// fn new() -> Result<Mine, String> { Ok(Mine) }
/// skyhost_plugin_api::export_backend!(Mine, new);
/// ```
///
/// The constructor runs once, when the host loads the file. Return `Err` for a
/// problem the user must fix; a panic is caught and reported as well. Build the
/// crate as a `cdylib` named `skyhost_<name>` so it becomes `libskyhost_<name>.so`.
#[macro_export]
macro_rules! export_backend {
    ($backend:ty, $constructor:path) => {
        static __SKYHOST_BACKEND: ::std::sync::OnceLock<$backend> = ::std::sync::OnceLock::new();

        extern "C" fn __skyhost_describe() -> $crate::__private::RString {
            $crate::sdk::__describe(&__SKYHOST_BACKEND, ::core::env!("CARGO_PKG_VERSION"))
        }

        extern "C" fn __skyhost_call(
            method: $crate::__private::RStr<'_>,
            request: $crate::__private::RStr<'_>,
        ) -> $crate::__private::RResult<$crate::__private::RString, $crate::__private::RString> {
            $crate::sdk::__call(&__SKYHOST_BACKEND, method, request)
        }

        fn __skyhost_root_module() -> ::core::result::Result<$crate::BackendModuleRef, $crate::__private::RBoxError> {
            $crate::sdk::__construct(&__SKYHOST_BACKEND, $constructor, __skyhost_describe, __skyhost_call)
        }

        extern "C" fn __skyhost_root_module_loader() -> $crate::__private::RootModuleResult {
            $crate::__private::__call_root_module_loader(__skyhost_root_module)
        }

        /// The abi_stable library header: the only symbol a plugin exports.
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = unsafe {
            $crate::__private::LibHeader::from_constructor::<$crate::BackendModuleRef>(
                __skyhost_root_module_loader,
                $crate::__private::CheckTypeLayout::Yes,
            )
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_long_values_on_a_char_boundary() {
        assert_eq!(clip("short"), "short");
        let exact = "x".repeat(QUOTE_LIMIT);
        assert_eq!(clip(&exact), exact);
        let long = "y".repeat(10 << 20);
        assert_eq!(clip(&long), format!("{}…", "y".repeat(QUOTE_LIMIT)));
        // 'é' is two bytes: 199 ASCII bytes then 'é' would end at 201, so it goes.
        let accented = format!("{}é{}", "a".repeat(QUOTE_LIMIT - 1), "b".repeat(10));
        assert_eq!(clip(&accented), format!("{}…", "a".repeat(QUOTE_LIMIT - 1)));
    }
}
