//! Which Slurm clusters there are: `Host` entries of `~/.slurm/config`
//! (SSH-config format, as SkyPilot reads it), `[slurm] clusters` of skyhost's
//! config, and `local` when the Slurm client commands and a slurm.conf are here.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use skyhost_plugin_api::{ErrorKind, PluginError};

/// How a cluster's commands are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// On this machine; `slurm_conf` sets `SLURM_CONF` when given.
    Local {
        /// A slurm.conf to use instead of the default.
        slurm_conf: Option<PathBuf>,
    },
    /// Through the system `ssh` client.
    Ssh(SshTarget),
    /// Through slurmrestd's REST API.
    Rest(crate::rest::RestTarget),
}

/// An SSH destination. Everything is handed to OpenSSH as separate arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SshTarget {
    /// `-F FILE`: the SSH-format file the host alias comes from.
    pub config_file: Option<PathBuf>,
    /// The destination: a `Host` alias of `config_file`, or `[user@]host`.
    pub destination: String,
    /// `-p`.
    pub port: Option<u16>,
    /// `-i`.
    pub identity_file: Option<PathBuf>,
    /// `-J`.
    pub proxy_jump: Option<String>,
    /// Extra `-o key=value` options.
    pub options: Vec<String>,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDef {
    /// Name used in `--infra slurm/<name>` and the tables.
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
    /// Where the definition came from, for messages.
    pub origin: String,
}

/// The `[slurm]` section of skyhost's config, as the host passes it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Cluster definitions.
    pub clusters: Vec<ClusterConfig>,
    /// Read by the host (which clusters to ask).
    pub allowed_clusters: Option<serde_json::Value>,
    /// Read by the host (deadline per cluster).
    pub timeout_secs: Option<f64>,
    /// The SSH-format cluster file instead of `~/.slurm/config`.
    pub config_file: Option<PathBuf>,
    /// Whether to add `local` when Slurm is installed here (default true).
    pub detect_local: Option<bool>,
}

/// One `[[slurm.clusters]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Cluster name.
    pub name: String,
    /// `user@host` or `host`.
    pub ssh: Option<String>,
    /// Run the commands here.
    pub local: bool,
    /// SSH port.
    pub port: Option<u16>,
    /// SSH private key.
    pub identity_file: Option<PathBuf>,
    /// SSH jump host.
    pub proxy_jump: Option<String>,
    /// Extra OpenSSH options, `Key=value`.
    pub ssh_options: Vec<String>,
    /// `SLURM_CONF` for a local cluster.
    pub slurm_conf: Option<PathBuf>,
    /// slurmrestd: `unix:/path/to/socket` or `http://host:port`.
    pub rest_url: Option<String>,
    /// JWT for slurmrestd (`scontrol token`).
    pub token: Option<String>,
    /// A file holding the JWT (or `SLURM_JWT=...` as `scontrol token` prints it).
    pub token_file: Option<PathBuf>,
    /// User name sent with the token.
    pub rest_user: Option<String>,
}

fn config_error(message: String, hint: &str) -> PluginError {
    PluginError::new(ErrorKind::Config, message).with_hint(hint.to_string())
}

/// `~` at the start of a path → the home directory.
fn expand(p: &Path, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => p.to_path_buf(),
    }
}

/// `Host` names of an SSH-format file: every non-pattern word of every `Host`
/// line, in order (`Host *` and `Host gpu-*` are defaults, not clusters).
pub fn ssh_config_hosts(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, rest) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, r)) => (k, r.trim_start_matches(|c: char| c.is_whitespace() || c == '=')),
            None => (line, ""),
        };
        if !key.eq_ignore_ascii_case("host") {
            continue;
        }
        for word in rest.split_whitespace().map(|w| w.trim_matches('"')) {
            if word.contains(['*', '?', '!']) || word.is_empty() || out.iter().any(|o| o == word) {
                continue;
            }
            out.push(word.to_string());
        }
    }
    out
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The slurm.conf this machine's commands would read, if any.
fn local_slurm_conf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLURM_CONF") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    ["/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf", "/usr/local/etc/slurm.conf"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Every cluster known, in this order: the SSH-format file, the config's
/// entries, then `local`. A name given twice is an error naming both places.
pub fn discover(settings: &Settings, home: Option<&Path>) -> Result<Vec<ClusterDef>, PluginError> {
    let mut out: Vec<ClusterDef> = Vec::new();
    let file = match &settings.config_file {
        Some(f) => Some(expand(f, home)),
        None => home.map(|h| h.join(".slurm/config")),
    };
    if let Some(file) = file {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                for host in ssh_config_hosts(&text) {
                    out.push(ClusterDef {
                        name: host.clone(),
                        transport: Transport::Ssh(SshTarget {
                            config_file: Some(file.clone()),
                            destination: host,
                            ..Default::default()
                        }),
                        origin: file.display().to_string(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && settings.config_file.is_none() => {}
            Err(e) => {
                return Err(config_error(
                    format!("cannot read the Slurm cluster file {}: {e}", file.display()),
                    "fix the file, or remove `config_file` under [slurm]",
                ));
            }
        }
    }
    for (i, c) in settings.clusters.iter().enumerate() {
        let at = format!("[slurm] clusters entry {} ('{}')", i + 1, c.name);
        if c.name.is_empty() || c.name.contains(['/', ' ']) {
            return Err(config_error(
                format!("{at}: `name` must be a non-empty word without '/' or spaces"),
                "give each cluster a name, e.g. name = \"hpc\"",
            ));
        }
        let transport = match (&c.ssh, c.local, &c.rest_url) {
            (None, false, Some(url)) => {
                let token = match (&c.token, &c.token_file) {
                    (Some(t), None) => Some(t.clone()),
                    (None, Some(f)) => {
                        let f = expand(f, home);
                        let text = std::fs::read_to_string(&f).map_err(|e| {
                            config_error(
                                format!("{at}: cannot read token_file {}: {e}", f.display()),
                                "write the token (`scontrol token`) into it",
                            )
                        })?;
                        Some(text.trim().trim_start_matches("SLURM_JWT=").to_string())
                    }
                    (None, None) => None,
                    (Some(_), Some(_)) => {
                        return Err(config_error(
                            format!("{at}: give `token` or `token_file`, not both"),
                            "keep one of them",
                        ));
                    }
                };
                if !(url.starts_with("unix:") || url.starts_with("http://")) {
                    return Err(config_error(
                        format!("{at}: rest_url = {url:?} is neither unix:/path nor http://host:port"),
                        "https is not supported: reach slurmrestd through its unix socket or an ssh tunnel",
                    ));
                }
                Transport::Rest(crate::rest::RestTarget { url: url.clone(), token, user: c.rest_user.clone() })
            }
            (Some(dest), false, None) => {
                if dest.is_empty() || dest.starts_with('-') || dest.contains(char::is_whitespace) {
                    return Err(config_error(
                        format!("{at}: ssh = {dest:?} is not a destination"),
                        "write ssh = \"user@host\"",
                    ));
                }
                for o in &c.ssh_options {
                    if !o.contains('=') || o.starts_with('-') {
                        return Err(config_error(
                            format!("{at}: ssh_options entry {o:?} is not Key=value"),
                            "write ssh_options = [\"StrictHostKeyChecking=accept-new\"]",
                        ));
                    }
                }
                Transport::Ssh(SshTarget {
                    config_file: None,
                    destination: dest.clone(),
                    port: c.port,
                    identity_file: c.identity_file.as_deref().map(|p| expand(p, home)),
                    proxy_jump: c.proxy_jump.clone(),
                    options: c.ssh_options.clone(),
                })
            }
            (None, true, None) => Transport::Local { slurm_conf: c.slurm_conf.as_deref().map(|p| expand(p, home)) },
            _ => {
                return Err(config_error(
                    format!("{at}: give exactly one of `ssh = \"user@host\"`, `local = true` or `rest_url = \"...\"`"),
                    "write ssh = \"user@host\" for a login node, local = true for this machine, or rest_url for slurmrestd",
                ));
            }
        };
        out.push(ClusterDef { name: c.name.clone(), transport, origin: "[slurm] clusters".into() });
    }
    if settings.detect_local != Some(false)
        && !out.iter().any(|c| c.name == "local")
        && on_path("scontrol")
        && let Some(conf) = local_slurm_conf()
    {
        out.push(ClusterDef {
            name: "local".into(),
            transport: Transport::Local { slurm_conf: None },
            origin: format!("this machine ({})", conf.display()),
        });
    }
    for (i, c) in out.iter().enumerate() {
        if let Some(first) = out[..i].iter().find(|o| o.name == c.name) {
            return Err(config_error(
                format!("Slurm cluster '{}' is defined twice: in {} and in {}", c.name, first.origin, c.origin),
                "rename one of them",
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_entries_are_clusters() {
        let text = "# clusters\nHost hpc1 hpc2\n  HostName login.example\n  User me\nHost *\n  IdentityFile ~/.ssh/k\nHost=gpu-*\nhost \"quoted\"\n";
        assert_eq!(ssh_config_hosts(text), vec!["hpc1", "hpc2", "quoted"]);
    }

    #[test]
    fn config_entries_are_checked() {
        let s: Settings = serde_json::from_value(serde_json::json!({
            "clusters": [{"name": "a", "ssh": "me@h", "port": 2222}, {"name": "b", "local": true}],
            "detect_local": false, "config_file": "/nonexistent-skyhost-none"
        }))
        .unwrap();
        assert!(discover(&s, None).unwrap_err().message.contains("cannot read the Slurm cluster file"));
        let s = Settings { config_file: None, ..s };
        let d = discover(&s, None).unwrap();
        assert_eq!(d.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
        for bad in [
            serde_json::json!({"clusters": [{"name": "a"}]}),
            serde_json::json!({"clusters": [{"name": "a", "ssh": "-oProxyCommand=x"}]}),
            serde_json::json!({"clusters": [{"name": "a/b", "local": true}]}),
            serde_json::json!({"clusters": [{"name": "a", "local": true}, {"name": "a", "local": true}]}),
        ] {
            let s: Settings = serde_json::from_value(bad.clone()).unwrap();
            let s = Settings { detect_local: Some(false), ..s };
            assert_eq!(discover(&s, None).unwrap_err().kind, ErrorKind::Config, "{bad}");
        }
        assert!(
            serde_json::from_value::<Settings>(serde_json::json!({"clusters": [{"name": "a", "sssh": "x"}]})).is_err()
        );
    }
}
