//! The Slurm backend: GPUs of Slurm clusters, read with the Slurm client
//! commands on this machine or on a login node over SSH, every cluster at
//! once, each with its own deadline.
//!
//! Modules by concern: [`clusters`] (which clusters), [`transport`] and
//! [`run`] (running the commands), [`nodes`], [`gres`] and [`state`] (reading
//! what Slurm prints), [`gpu_names`] (the Slurm mapping of GPU names), and
//! [`summary`] (what the host shows).

pub mod clusters;
pub mod gpu_names;
pub mod gres;
pub mod nodes;
pub mod rest;
pub mod run;
pub mod state;
pub mod summary;
pub mod transport;

use std::time::Duration;

use regex_lite::RegexBuilder;
use skyhost_plugin_api::{
    Backend, CheckItem, CheckReport, CheckRequest, Cluster, ClusterError, ClusterQuery, ClusterReport, Description,
    ErrorKind, PluginError, capability, method,
    sdk::{json_call, unknown_method},
};

use crate::clusters::{ClusterDef, Settings};

/// The backend.
pub struct Slurm;

fn new() -> Result<Slurm, String> {
    Ok(Slurm)
}

skyhost_plugin_api::export_backend!(Slurm, new);

fn settings(value: Option<&serde_json::Value>) -> Result<Settings, PluginError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(Settings::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            PluginError::new(ErrorKind::Config, format!("config [slurm]: {e}")).with_hint(
                "keys under [slurm] are clusters, allowed_clusters, timeout_secs, config_file, detect_local; \
                 each [[slurm.clusters]] has name and ssh = \"user@host\", local = true or rest_url",
            )
        }),
    }
}

fn home() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(std::path::PathBuf::from)
}

/// The clusters a request selects: those named, else all. With none known,
/// a request that asked for Slurm (`all`, or names) fails as not set up; a
/// listing that merely could use it gets none, quietly, as SkyPilot shows no
/// Slurm section where Slurm is not enabled.
fn select(section: Option<&serde_json::Value>, named: &[String], all: bool) -> Result<Vec<ClusterDef>, PluginError> {
    let known = clusters::discover(&settings(section)?, home().as_deref())?;
    if known.is_empty() && !all && named.is_empty() {
        return Ok(Vec::new());
    }
    if known.is_empty() {
        return Err(PluginError::new(
            ErrorKind::NotConfigured,
            "no Slurm clusters: no ~/.slurm/config, no [slurm] clusters in the config, and no local Slurm (scontrol on PATH and a slurm.conf)",
        )
        .with_hint("add a `Host` entry for a login node to ~/.slurm/config, or [[slurm.clusters]] with name and ssh = \"user@host\""));
    }
    if named.is_empty() {
        return Ok(known);
    }
    let mut out = Vec::new();
    for n in named {
        match known.iter().find(|c| &c.name == n) {
            Some(c) => out.push(c.clone()),
            None => {
                let names: Vec<&str> = known.iter().map(|c| c.name.as_str()).collect();
                return Err(PluginError::new(ErrorKind::Config, format!("no Slurm cluster named '{n}'"))
                    .with_hint(format!("known clusters: {}", names.join(", "))));
            }
        }
    }
    Ok(out)
}

/// Asks every cluster at once; one thread each, each bounded by `timeout`.
fn each<T: Send>(defs: &[ClusterDef], f: impl Fn(&ClusterDef) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = defs.iter().map(|d| s.spawn(|| f(d))).collect();
        handles.into_iter().map(|h| h.join().expect("cluster thread")).collect()
    })
}

fn timeout(secs: f64) -> Duration {
    Duration::from_secs_f64(if secs.is_finite() { secs.clamp(0.05, 3600.0) } else { 10.0 })
}

impl Slurm {
    fn gpus(&self, q: ClusterQuery) -> Result<ClusterReport, PluginError> {
        let name = q
            .name
            .as_deref()
            .map(|n| RegexBuilder::new(&format!("^(?:{n})")).case_insensitive(true).build())
            .transpose()
            .map_err(|e| PluginError::new(ErrorKind::BadRequest, format!("invalid GPU name pattern: {e}")))?;
        let filter = summary::Filter { name, quantity: q.quantity };
        let defs = select(q.settings.as_ref(), &q.clusters, q.all_clusters)?;
        let t = timeout(q.timeout_secs);
        let clusters = each(&defs, |d| match transport::read_nodes(d, t) {
            Ok((listing, _)) => summary::summarise(&d.name, &listing.nodes, &filter),
            Err(e) => Cluster { name: d.name.clone(), error: Some(e), ..Default::default() },
        });
        Ok(ClusterReport { clusters, notes: Vec::new(), cluster_noun: Some("cluster".into()) })
    }

    fn check(&self, r: CheckRequest) -> Result<CheckReport, PluginError> {
        // A check is always asked for: no clusters is a failed setup.
        let defs = select(r.settings.as_ref(), &r.clusters, true)?;
        let t = timeout(r.timeout_secs);
        let items = each(&defs, |d| match transport::read_nodes(d, t) {
            Err(ClusterError { reason, hint }) => CheckItem {
                subject: d.name.clone(),
                ok: false,
                summary: format!("unreachable: {reason}"),
                details: vec![],
                hint,
            },
            Ok((listing, form)) => {
                let version = listing.version.clone().or_else(|| transport::version(d, t));
                let partitions = transport::partitions(d, t).or_else(|| {
                    let mut names: Vec<&String> = listing.nodes.iter().flat_map(|n| &n.partitions).collect();
                    names.sort();
                    names.dedup();
                    Some(names.len())
                });
                let c = summary::summarise(&d.name, &listing.nodes, &summary::Filter::default());
                let gpu_nodes = c.nodes.iter().filter(|n| n.gpu_total > 0).count();
                let types: Vec<String> =
                    c.gpus.iter().map(|g| format!("{} ×{}", g.name, g.capacity + g.not_ready)).collect();
                CheckItem {
                    subject: d.name.clone(),
                    ok: true,
                    summary: format!(
                        "reachable; Slurm {}; {} nodes, {gpu_nodes} with GPUs{}; {} partitions",
                        version.as_deref().unwrap_or("(version unknown)"),
                        c.nodes.len(),
                        if types.is_empty() { String::new() } else { format!(" ({})", types.join(", ")) },
                        partitions.map_or_else(|| "?".to_string(), |p| p.to_string()),
                    ),
                    details: vec![format!("read with `{}`; defined in {}", form_words(form), d.origin)],
                    hint: None,
                }
            }
        });
        Ok(CheckReport { items })
    }
}

fn form_words(form: transport::Form) -> &'static str {
    match form {
        transport::Form::ScontrolJson => "scontrol show node --json",
        transport::Form::SinfoJson => "sinfo --json",
        transport::Form::Text => "scontrol --oneliner --details show node",
        transport::Form::Rest => "slurmrestd /slurm/v0.0.NN/nodes/",
    }
}

impl Backend for Slurm {
    fn describe(&self) -> Description {
        Description {
            name: "slurm".into(),
            display_name: "Slurm".into(),
            description: "GPUs of Slurm clusters, read with the Slurm commands locally or over SSH".into(),
            capabilities: vec![capability::CLUSTERS.into()],
            methods: vec![method::CLUSTER_GPUS.into(), method::CHECK.into()],
            catalog: None,
            backends: Vec::new(),
        }
    }

    fn call(&self, m: &str, request: &str) -> Result<String, PluginError> {
        match m {
            method::CLUSTER_GPUS => json_call(request, |q| self.gpus(q)),
            method::CHECK => json_call(request, |r| self.check(r)),
            other => Err(unknown_method(other)),
        }
    }
}
