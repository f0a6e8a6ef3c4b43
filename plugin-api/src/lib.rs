//! # skyhost-plugin-api: the contract between skyhost and its backend plugins
//!
//! A backend (Kubernetes, a cloud catalog, or your own) is a `cdylib` named
//! `libskyhost_<name>.so` that the `skyhost` host loads at startup through
//! [`abi_stable`]. This crate is everything both sides share:
//!
//! * [`BackendModule`]: the root module each plugin exports (two functions);
//! * [`protocol`]: the JSON messages those functions carry;
//! * [`sdk`]: the [`Backend`] trait and the [`export_backend!`] macro, which
//!   writes the export and a panic guard so that an author writes only the backend;
//! * [`typed`]: typed methods (since 1.3), each declared once with its name,
//!   request and response types; the SDK dispatches to them and derives the
//!   plugin's `methods` list from the declarations ([`export_typed_backend!`]).
//!
//! ```no_run
//! use skyhost_plugin_api::{Backend, Description, PluginError, sdk};
//!
//! struct Hello;
//! impl Backend for Hello {
//!     fn describe(&self) -> Description {
//!         Description { name: "hello".into(), ..Default::default() }
//!     }
//!     fn call(&self, method: &str, _request: &str) -> Result<String, PluginError> {
//!         Err(sdk::unknown_method(method))
//!     }
//! }
//! fn new() -> Result<Hello, String> { Ok(Hello) }
//! skyhost_plugin_api::export_backend!(Hello, new);
//! ```
//!
//! ## Compatibility promise
//!
//! The interface version is this crate's version; a plugin reports the one it
//! was built against in [`PluginInfo::interface_version`].
//!
//! * **Same major, any minor, either direction.** A host built from 1.y loads
//!   plugins built from any 1.x, older or newer. abi_stable compares only the
//!   major number for versions ≥ 1 and checks the root module's layout, and
//!   the root module never changes within a major version: it has exactly two
//!   functions, `describe` and `call`. (abi_stable rejects an *older* plugin
//!   whose root module has fewer fields than the host's, so adding a field
//!   there would break this promise; we never do.)
//! * **Growth happens in JSON.** A minor version may add methods (advertised
//!   in [`PluginInfo::methods`]), capabilities, and fields to any message.
//!   Readers default missing fields and ignore unknown ones. A host asks a
//!   plugin only for methods the plugin lists, and says so plainly when an
//!   older plugin lacks one.
//! * **A new major version** is a deliberate break: the host refuses the
//!   plugin with "incompatible interface version" before running any of its code
//!   beyond the dynamic loader.
//! * **Same abi_stable minor (0.11).** abi_stable itself checks this.
//!
//! The test suite proves the promise with plugins built against the frozen
//! 1.0.0 and 1.2.0 copies of this crate (`tests/fixtures/abi/plugin-api-1.0`,
//! `plugin-api-1.2`).
//!
//! ## Rules for plugin authors
//!
//! * Build with `panic = "unwind"` (Rust's default). With `abort`, the guard
//!   cannot catch a panic and a bug takes the host down.
//! * Never pass futures, runtimes or Rust trait objects across the boundary.
//!   A backend that needs async builds its own runtime inside the plugin.
//! * Bound every call with a deadline: the host cannot cancel a call.
//! * Plugins are never unloaded; statics live as long as the process.
//!
//! ## History
//!
//! * 1.0: `describe` and `call`; methods `gpus.query` and `clusters.gpus`.
//! * 1.1: methods `check` and `catalog.stats`; [`PluginInfo::catalog`] tells the
//!   host which SkyPilot catalog file a backend reads; [`PluginInfo::backends`]
//!   lets one plugin file serve several backends, called as `<backend>/<method>`.
//! * 1.2: [`ErrorKind::NotConfigured`], for a backend that is not set up on
//!   this machine (no kubeconfig), which a listing skips rather than fails.
//! * 1.3: typed methods in the SDK: [`Method`], [`sdk::Router`],
//!   [`TypedBackend`] and [`export_typed_backend!`]; the standard methods
//!   declared as types ([`method::GpuQueryCall`], [`method::ClusterGpusCall`],
//!   [`method::CheckCall`], [`method::CatalogStatsCall`]); [`sdk::clip`] for
//!   quoting input in messages. Nothing changed on the wire: a typed plugin
//!   sends the same JSON through the same two functions, so 1.0 to 1.2 hosts
//!   load 1.3 plugins and a 1.3 host loads 1.0 to 1.2 plugins (the test suite
//!   keeps plugins built against frozen 1.0 and 1.2 copies of this crate).
//!   [`export_backend!`] with a hand-written [`Backend`] still works.
//!   Also in 1.3, for cluster backends other than Kubernetes (Slurm): [`ClusterQuery::settings`]
//!   and [`CheckRequest::settings`] carry the backend's config section;
//!   [`Cluster::partitions`], [`ClusterNode::state`], [`ClusterNode::partitions`],
//!   [`ClusterNode::gpus`] and [`ClusterReport::cluster_noun`].

pub mod abi;
pub mod protocol;
pub mod sdk;
pub mod typed;

pub use abi::{BackendModule, BackendModuleRef, INTERFACE_VERSION, interface_major};
pub use protocol::*;
pub use sdk::{Backend, Description};
pub use typed::{Method, TypedBackend};

#[doc(hidden)]
pub mod __private {
    pub use abi_stable::{
        library::{__call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult},
        std_types::{RBoxError, RResult, RStr, RString},
    };
}
