//! How the host reaches a plugin: the [`Connection`] trait and its in-process
//! implementation. The other implementation, a worker process per plugin
//! file, is in [`super::worker`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use skyhost_plugin_api::{BackendModuleRef, ErrorKind, PluginError};

/// Where plugins run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Each plugin file in a worker process of its own: a crash, a hang or a
    /// runaway allocation costs one backend, never the host.
    Process,
    /// Plugins are libraries in the host process: fastest, but a plugin that
    /// crashes takes the host with it.
    InProcess,
}

/// What the host knows of a plugin's recent behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// Calls in a row that ended with the worker crashing or being stopped.
    pub failures_in_a_row: u32,
    /// The last such failure, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Workers started again after a failure.
    pub restarts: u64,
}

impl Health {
    /// A plugin that keeps failing: reported as broken until a call succeeds.
    pub const BROKEN_AFTER: u32 = 3;

    /// Whether the plugin keeps crashing.
    pub fn is_broken(&self) -> bool {
        self.failures_in_a_row >= Self::BROKEN_AFTER
    }
}

/// One plugin file, ready to take calls. Methods arrive fully qualified
/// (`<backend>/<method>` for a member of a bundle) with a JSON request; the
/// answer is the JSON response or a [`PluginError`].
pub trait Connection: Send + Sync {
    /// Runs one call. `timeout` bounds it where the implementation can.
    fn call(&self, method: &str, request: &str, timeout: Duration) -> Result<String, PluginError>;

    /// Recent behaviour of the plugin.
    fn health(&self) -> Health {
        Health::default()
    }
}

/// A plugin mapped into this process.
pub struct InProcess {
    pub(super) module: BackendModuleRef,
}

impl Connection for InProcess {
    fn call(&self, method: &str, request: &str, _timeout: Duration) -> Result<String, PluginError> {
        call_module(self.module, method, request)
    }
}

/// Calls a plugin's root module and reads its JSON error, if any. The panic
/// guard of the plugin's SDK keeps panics on its side of the boundary.
pub fn call_module(module: BackendModuleRef, method: &str, request: &str) -> Result<String, PluginError> {
    match (module.call())(method.into(), request.into()).into_result() {
        Ok(text) => Ok(text.into_string()),
        Err(text) => {
            Err(serde_json::from_str(&text).unwrap_or_else(|_| PluginError::new(ErrorKind::Other, text.into_string())))
        }
    }
}
