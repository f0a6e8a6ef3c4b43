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
    for p in &mut config.plugin_path {
        *p = expand_home(p);
    }
    config.catalog.dir = config.catalog.dir.as_deref().map(expand_home);
    config.catalog.cache_dir = config.catalog.cache_dir.as_deref().map(expand_home);
    Ok((config, Some(path)))
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
    fn rejects_unknown_keys_and_bad_context_words() {
        assert!(toml::from_str::<Config>("plugin_dirs = []").is_err());
        assert!(toml::from_str::<Config>("[kubernetes]\nallowed_contexts = \"some\"").is_err());
        let list: Config = toml::from_str("[kubernetes]\nallowed_contexts = [\"a\", \"b\"]").unwrap();
        assert_eq!(list.kubernetes.allowed_contexts, Some(AllowedContexts::List(vec!["a".into(), "b".into()])));
    }
}
