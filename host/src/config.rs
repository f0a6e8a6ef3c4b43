//! The config file (`$XDG_CONFIG_HOME/skyhost/config.toml`, `--config`, or
//! `SKYHOST_CONFIG`). Every key is optional; unknown keys are errors, so a typo
//! does not silently do nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Plugin directories searched after `--plugin-dir` and `SKYHOST_PLUGIN_PATH`.
    pub plugin_path: Vec<PathBuf>,
    /// Backends never to load.
    pub disable: Vec<String>,
    /// `[catalog]`.
    pub catalog: CatalogConfig,
    /// `[kubernetes]`.
    pub kubernetes: KubernetesConfig,
    /// `[serve]`.
    pub serve: ServeConfig,
    /// `[plugins]`.
    pub plugins: PluginsConfig,
    /// `[client]`.
    pub client: ClientConfig,
    /// `[slurm]`: passed to the Slurm plugin as JSON, which checks its keys;
    /// the host reads `allowed_clusters` and `timeout_secs` (see [`ClusterBackendSection`]).
    pub slurm: Option<toml::Table>,
}

/// `[client]`: how `--server` reaches a server.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// A file holding the bearer token to send (`SKYHOST_TOKEN` wins).
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust for an `https://` server, instead of the public roots.
    pub ca_file: Option<PathBuf>,
}

/// What the host reads of a cluster backend's own section (`[slurm]`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClusterBackendSection {
    /// `allowed_clusters`: a list, or `"all"`.
    pub allowed: Option<AllowedContexts>,
    /// `timeout_secs`: deadline per cluster.
    pub timeout_secs: Option<f64>,
    /// The whole section, as JSON, for the plugin.
    pub json: serde_json::Value,
}

impl ClusterBackendSection {
    /// Reads `[name]`; the error names the key.
    pub fn from_table(name: &str, table: &toml::Table) -> Result<Self, String> {
        let allowed = match table.get("allowed_clusters") {
            None => None,
            Some(v) => Some(
                AllowedContexts::deserialize(v.clone())
                    .map_err(|e| format!("[{name}] allowed_clusters: {}", e.to_string().trim()))?,
            ),
        };
        let timeout_secs = match table.get("timeout_secs") {
            None => None,
            Some(toml::Value::Integer(i)) => Some(TIMEOUT.check(&format!("[{name}] timeout_secs"), *i as f64)?),
            Some(toml::Value::Float(f)) => Some(TIMEOUT.check(&format!("[{name}] timeout_secs"), *f)?),
            Some(_) => return Err(format!("[{name}] timeout_secs must be a number of seconds")),
        };
        let json = serde_json::to_value(table).map_err(|e| format!("[{name}]: {e}"))?;
        Ok(Self { allowed, timeout_secs, json })
    }
}

/// `[plugins]`: how plugins run.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// `"process"` (each plugin file in a worker process) or `"in-process"`.
    pub isolation: Option<crate::plugins::Isolation>,
    /// Data a worker process may allocate, in MiB.
    pub worker_memory_mb: Option<u64>,
    /// Deadline of one call to a plugin, in seconds.
    pub call_timeout_secs: Option<f64>,
    /// Time a plugin has to load in a worker, in seconds.
    pub load_timeout_secs: Option<f64>,
    /// Refuse plugin files that are not pinned in `plugins.lock`.
    pub require_lock: Option<bool>,
}

/// `[catalog]`: where cloud catalogs come from.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// A directory laid out like SkyPilot's `~/.sky/catalogs/v8`.
    pub dir: Option<PathBuf>,
    /// Base URL of hosted catalogs (`<url>/v8/<cloud>/vms.csv`).
    pub url: Option<String>,
    /// Refresh cached catalogs older than this many hours.
    pub max_age_hours: Option<f64>,
    /// Download stale catalogs when a command needs them.
    pub auto_update: Option<bool>,
    /// Where downloaded catalogs are kept.
    pub cache_dir: Option<PathBuf>,
    /// Give up on one download after this many seconds.
    pub download_timeout_secs: Option<f64>,
}

/// `[kubernetes]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Contexts to query: a list, or `"all"`.
    pub allowed_contexts: Option<AllowedContexts>,
    /// Deadline per context, in seconds.
    pub timeout_secs: Option<f64>,
    /// Node taints the user's pods tolerate, `KEY[=VALUE][:EFFECT]`.
    pub tolerations: Vec<String>,
}

/// `allowed_contexts = ["a", "b"]` or `allowed_contexts = "all"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedContexts {
    /// Every context in the kubeconfig.
    All,
    /// These contexts.
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for AllowedContexts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "all" => Ok(Self::All),
            Raw::Word(w) => {
                Err(serde::de::Error::custom(format!("expected a list of contexts or \"all\", found \"{w}\"")))
            }
            Raw::List(l) => Ok(Self::List(l)),
        }
    }
}

/// `[serve]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Listen address.
    pub addr: Option<String>,
    /// Seconds an answer stays cached.
    pub cache_ttl_secs: Option<f64>,
    /// Backend calls allowed at once.
    pub max_backend_calls: Option<usize>,
    /// Deadline of one request, in seconds.
    pub request_timeout_secs: Option<f64>,
    /// A client must send its request headers within this many seconds.
    pub header_timeout_secs: Option<f64>,
    /// Bearer tokens, one per line (plain or `sha256:<hex>`); required for
    /// `/v1/*` and `/metrics` when set.
    pub tokens_file: Option<PathBuf>,
    /// PEM certificate chain, to serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Connections held at once; more are answered 503 and closed.
    pub max_connections: Option<usize>,
    /// Requests that may wait for a backend call; more are answered 503.
    pub max_queued: Option<usize>,
    /// Distinct contexts one request may name.
    pub max_contexts: Option<usize>,
    /// Seconds an error answer (a timeout, a missing backend) is reused.
    pub error_ttl_secs: Option<f64>,
    /// Backends that must be loaded and answer their check before `/readyz` says ready.
    pub ready_requires: Vec<String>,
    /// Serve the web dashboard at `/` (default true).
    pub ui: Option<bool>,
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("config file {path}: {reason}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Where the config file is: `explicit` (flag or env) or the default location.
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit.map(Path::to_path_buf).or_else(|| Some(dirs::config_dir()?.join("skyhost/config.toml")))
}

/// Reads the config. A missing default file is an empty config; a missing
/// explicit file is an error.
pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let Some(path) = config_path(explicit) else { return Ok((Config::default(), None)) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok((Config::default(), None));
        }
        Err(e) => return Err(ConfigError { path, reason: format!("cannot read it: {e}") }),
    };
    let mut config: Config = toml::from_str(&text)
        .map_err(|e| ConfigError { path: path.clone(), reason: e.to_string().trim().to_string() })?;
    config.validate().map_err(|reason| ConfigError { path: path.clone(), reason })?;
    for p in &mut config.plugin_path {
        *p = expand_home(p);
    }
    config.catalog.dir = config.catalog.dir.as_deref().map(expand_home);
    config.catalog.cache_dir = config.catalog.cache_dir.as_deref().map(expand_home);
    for p in [
        &mut config.serve.tokens_file,
        &mut config.serve.tls_cert,
        &mut config.serve.tls_key,
        &mut config.client.token_file,
        &mut config.client.ca_file,
    ] {
        *p = p.as_deref().map(expand_home);
    }
    Ok((config, Some(path)))
}

/// A number of seconds (or hours) that a key may hold: finite, in `min..=max`.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// `seconds` or `hours`.
    pub unit: &'static str,
}

/// Timeouts: from 0.1 s to a day.
pub const TIMEOUT: Range = Range { min: 0.1, max: 86_400.0, unit: "seconds" };

impl Range {
    /// Checks `value` of `key`; the error names the key and the range.
    pub fn check(self, key: &str, value: f64) -> Result<f64, String> {
        if value.is_finite() && value >= self.min && value <= self.max {
            Ok(value)
        } else {
            // 1e300 as written, not as 301 digits.
            let shown = if value.is_finite() && value.abs() >= 1e9 { format!("{value:e}") } else { value.to_string() };
            Err(format!(
                "{key} = {shown} is out of range: give a number of {} from {} to {}",
                self.unit, self.min, self.max
            ))
        }
    }
}

impl Config {
    /// Checks every number against what it may mean, so that no bad value
    /// reaches a `Duration` (which panics on infinity) or a semaphore.
    fn validate(&self) -> Result<(), String> {
        let secs = |min, max| Range { min, max, unit: "seconds" };
        let checks: [(&str, Option<f64>, Range); 9] = [
            ("[kubernetes] timeout_secs", self.kubernetes.timeout_secs, TIMEOUT),
            ("[catalog] max_age_hours", self.catalog.max_age_hours, Range { min: 0.0, max: 87_600.0, unit: "hours" }),
            ("[catalog] download_timeout_secs", self.catalog.download_timeout_secs, TIMEOUT),
            ("[serve] cache_ttl_secs", self.serve.cache_ttl_secs, secs(0.0, 86_400.0)),
            ("[serve] request_timeout_secs", self.serve.request_timeout_secs, TIMEOUT),
            ("[serve] header_timeout_secs", self.serve.header_timeout_secs, TIMEOUT),
            ("[plugins] call_timeout_secs", self.plugins.call_timeout_secs, TIMEOUT),
            ("[plugins] load_timeout_secs", self.plugins.load_timeout_secs, TIMEOUT),
            (
                "[plugins] worker_memory_mb",
                self.plugins.worker_memory_mb.map(|m| m as f64),
                Range { min: 16.0, max: 1_048_576.0, unit: "MiB" },
            ),
        ];
        for (key, value, range) in checks {
            if let Some(v) = value {
                range.check(key, v)?;
            }
        }
        if let Some(t) = &self.slurm {
            ClusterBackendSection::from_table("slurm", t)?;
        }
        let counts = [
            ("[serve] max_backend_calls", self.serve.max_backend_calls, 1024.0),
            ("[serve] max_connections", self.serve.max_connections, 1_000_000.0),
            ("[serve] max_queued", self.serve.max_queued, 1_000_000.0),
            ("[serve] max_contexts", self.serve.max_contexts, 10_000.0),
        ];
        for (key, value, max) in counts {
            if let Some(n) = value {
                Range { min: 1.0, max, unit: "whole numbers" }.check(key, n as f64)?;
            }
        }
        if let Some(t) = self.serve.error_ttl_secs {
            Range { min: 0.0, max: 86_400.0, unit: "seconds" }.check("[serve] error_ttl_secs", t)?;
        }
        if self.serve.tls_cert.is_some() != self.serve.tls_key.is_some() {
            return Err("[serve] tls_cert and tls_key go together: give both, or neither".into());
        }
        Ok(())
    }
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section() {
        let c: Config = toml::from_str(
            r#"
            plugin_path = ["/opt/p"]
            disable = ["aws"]
            [catalog]
            dir = "/cat"
            max_age_hours = 2.5
            [kubernetes]
            allowed_contexts = "all"
            timeout_secs = 3
            [serve]
            addr = "127.0.0.1:1"
            "#,
        )
        .unwrap();
        assert_eq!(c.disable, vec!["aws"]);
        assert_eq!(c.kubernetes.allowed_contexts, Some(AllowedContexts::All));
        assert_eq!(c.catalog.max_age_hours, Some(2.5));
    }

    #[test]
    fn numbers_out_of_range_name_their_key() {
        for (text, key) in [
            ("[kubernetes]\ntimeout_secs = inf", "[kubernetes] timeout_secs = inf"),
            ("[kubernetes]\ntimeout_secs = nan", "[kubernetes] timeout_secs = NaN"),
            ("[serve]\nrequest_timeout_secs = 1e300", "[serve] request_timeout_secs"),
            ("[catalog]\nmax_age_hours = -1", "[catalog] max_age_hours = -1"),
            ("[serve]\nmax_backend_calls = 0", "[serve] max_backend_calls = 0"),
            ("[plugins]\nworker_memory_mb = 1", "[plugins] worker_memory_mb = 1"),
        ] {
            let c: Config = toml::from_str(text).unwrap();
            let err = c.validate().unwrap_err();
            assert!(err.starts_with(key) && err.contains("out of range"), "{text}: {err}");
        }
        let fine: Config = toml::from_str("[kubernetes]\ntimeout_secs = 2\n[catalog]\nmax_age_hours = 0").unwrap();
        fine.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_keys_and_bad_context_words() {
        assert!(toml::from_str::<Config>("plugin_dirs = []").is_err());
        assert!(toml::from_str::<Config>("[kubernetes]\nallowed_contexts = \"some\"").is_err());
        let slurm: Config = toml::from_str(
            "[slurm]\nallowed_clusters = [\"a\"]\ntimeout_secs = 3\n[[slurm.clusters]]\nname = \"a\"\nlocal = true",
        )
        .unwrap();
        let section = ClusterBackendSection::from_table("slurm", slurm.slurm.as_ref().unwrap()).unwrap();
        assert_eq!(section.allowed, Some(AllowedContexts::List(vec!["a".into()])));
        assert_eq!(section.json["clusters"][0]["local"], true);
        let bad: Config = toml::from_str("[slurm]\ntimeout_secs = -1").unwrap();
        assert!(bad.validate().unwrap_err().starts_with("[slurm] timeout_secs = -1"));
        let bad: Config = toml::from_str("[slurm]\nallowed_clusters = \"some\"").unwrap();
        assert!(bad.validate().unwrap_err().starts_with("[slurm] allowed_clusters"));
        let list: Config = toml::from_str("[kubernetes]\nallowed_contexts = [\"a\", \"b\"]").unwrap();
        assert_eq!(list.kubernetes.allowed_contexts, Some(AllowedContexts::List(vec!["a".into(), "b".into()])));
    }
}
