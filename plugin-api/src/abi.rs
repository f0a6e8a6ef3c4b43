//! The root module every plugin exports: frozen for the whole 1.x series.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
};

/// The functions a plugin exports, as abi_stable checks them at load time.
///
/// This struct is **frozen**: abi_stable rejects a plugin whose root module has
/// fewer fields than the host's, so adding a field would lock every older
/// plugin out of a newer host. Everything that grows (metadata, methods,
/// request and response fields) travels as JSON through these two functions.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackendModuleRef)))]
#[sabi(missing_field(panic))]
pub struct BackendModule {
    /// Returns the plugin's [`PluginInfo`](crate::PluginInfo) as JSON.
    pub describe: extern "C" fn() -> RString,

    /// Runs `method` with a JSON `request`; returns a JSON response or a JSON
    /// [`PluginError`](crate::PluginError). Never unwinds.
    #[sabi(last_prefix_field)]
    pub call: extern "C" fn(method: RStr<'_>, request: RStr<'_>) -> RResult<RString, RString>,
}

impl RootModule for BackendModuleRef {
    declare_root_module_statics! {BackendModuleRef}
    const BASE_NAME: &'static str = "skyhost_backend";
    const NAME: &'static str = "skyhost backend";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The interface version this copy of the contract speaks (the crate version).
pub const INTERFACE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The major number of [`INTERFACE_VERSION`]: hosts and plugins must agree on it.
pub fn interface_major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}
