//! [`BackendHandle`]: the host's handle on one loaded backend. Commands, the
//! server and the requirement check call backends only through it, and do not
//! know whether the plugin runs in this process or in a worker process.

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use serde::{Serialize, de::DeserializeOwned};
use skyhost_plugin_api::{ErrorKind, PluginError, PluginInfo, capability};

use super::{connection::Connection, entry::display_name};

/// Told of every plugin call: backend, method, time taken.
type CallObserver = Box<dyn Fn(&str, &str, Duration) + Send + Sync>;

static CALL_OBSERVER: OnceLock<CallObserver> = OnceLock::new();

/// Has `observer` told of every plugin call from now on (the server's metrics).
pub fn observe_calls(observer: impl Fn(&str, &str, Duration) + Send + Sync + 'static) {
    let _ = CALL_OBSERVER.set(Box::new(observer));
}

/// A loaded backend, ready to call.
pub struct BackendHandle {
    /// Backend name.
    pub name: String,
    /// The plugin file.
    pub path: PathBuf,
    /// What the plugin says about this backend.
    pub info: PluginInfo,
    /// How calls reach the plugin; shared by the backends of one file.
    pub(super) connection: Arc<dyn Connection>,
    /// Set for one backend of a plugin that serves several: methods are
    /// called as `<backend>/<method>`.
    pub(super) member: bool,
    /// Deadline of a call that names none.
    pub(super) call_timeout: Duration,
}

impl std::fmt::Debug for BackendHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendHandle").field("name", &self.name).field("path", &self.path).finish()
    }
}

impl BackendHandle {
    /// Name for people (see [`display_name`]).
    pub fn display_name(&self) -> &str {
        display_name(&self.name, Some(&self.info))
    }

    /// Whether the plugin declares `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.info.capabilities.iter().any(|c| c == capability)
    }

    /// Whether it answers GPU listings: from a catalog or from live clusters.
    pub fn lists_gpus(&self) -> bool {
        self.has_capability(capability::CATALOG) || self.has_capability(capability::CLUSTERS)
    }

    /// The connection's view of the plugin's health (crashes in a row).
    pub fn health(&self) -> super::connection::Health {
        self.connection.health()
    }

    /// Calls `method` with `request`, within the default call deadline.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Resp, PluginError> {
        self.call_within(method, request, self.call_timeout)
    }

    /// Calls `method` with `request`. A method the plugin does not list is
    /// refused here, with a hint to upgrade, instead of being sent. Where the
    /// plugin runs in a worker, a call still running after `timeout` stops
    /// the worker and fails; in this process, `timeout` cannot be enforced.
    pub fn call_within<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, PluginError> {
        if !self.info.methods.iter().any(|m| m == method) {
            return Err(PluginError::new(
                ErrorKind::UnknownMethod,
                format!(
                    "the {} plugin (version {}, interface {}) does not implement '{method}'",
                    self.name, self.info.version, self.info.interface_version
                ),
            )
            .with_hint(format!("upgrade {} to a newer build", self.path.display())));
        }
        let request = serde_json::to_string(request)
            .map_err(|e| PluginError::new(ErrorKind::BadRequest, format!("request does not serialise: {e}")))?;
        let qualified;
        let wire_method = if self.member {
            qualified = format!("{}/{method}", self.name);
            qualified.as_str()
        } else {
            method
        };
        let started = Instant::now();
        let answer = self.connection.call(wire_method, &request, timeout);
        if let Some(observe) = CALL_OBSERVER.get() {
            observe(&self.name, method, started.elapsed());
        }
        let text = answer?;
        serde_json::from_str(&text).map_err(|e| {
            PluginError::new(
                ErrorKind::Other,
                format!("the {} plugin sent a response that does not parse: {e}", self.name),
            )
        })
    }
}
