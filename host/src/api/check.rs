//! The backend checks: `skyhost check -o json` and `GET /v1/check`. Each
//! backend is asked, all at once, whether it is usable (catalog readable,
//! clusters reachable).

use serde::{Deserialize, Serialize};
use skyhost_plugin_api::{CheckItem, CheckReport, CheckRequest, ErrorKind, method};

use crate::{
    catalogs::{self, CatalogSettings},
    fan_out::fan_out,
    gpus::{gather::GatherSettings, request::backend_of},
    plugins::{PluginSet, Status},
    requirements::{self, Requirements, Unmet},
};

/// The document of `skyhost check -o json` and `GET /v1/check`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Checks {
    /// One per backend asked.
    pub backends: Vec<BackendCheck>,
}

/// One backend's check.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackendCheck {
    /// Backend name.
    pub name: String,
    /// Name for people.
    pub display_name: String,
    /// Its status in the plugin report.
    pub status: Status,
    /// Loaded and every item ok.
    pub ok: bool,
    /// What the backend checked.
    pub items: Vec<CheckItem>,
    /// Why it is not loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn check_loaded(plugins: &PluginSet, name: &str, request: &CheckRequest, catalogs: &CatalogSettings) -> BackendCheck {
    let backend = plugins.backend(name).expect("loaded");
    let mut request = request.clone();
    if let Some(spec) = &backend.info.catalog {
        // Check the catalog a query would read, without downloading.
        let settings = CatalogSettings { auto_update: false, ..catalogs.clone() };
        request.catalog_path = catalogs::resolve(&settings, backend, spec, &|_| {}).request_path();
    }
    let items = match backend.call::<_, CheckReport>(method::CHECK, &request) {
        Ok(report) => report.items,
        Err(e) => vec![CheckItem {
            subject: match e.kind {
                ErrorKind::UnknownMethod => "plugin".into(),
                ErrorKind::NotConfigured => "setup".into(),
                _ => "check".into(),
            },
            ok: false,
            summary: e.message,
            details: Vec::new(),
            hint: e.hint,
        }],
    };
    BackendCheck {
        name: name.to_string(),
        display_name: backend.display_name().to_string(),
        status: Status::Loaded,
        ok: !items.is_empty() && items.iter().all(|i| i.ok),
        items,
        reason: None,
        hint: None,
    }
}

/// Checks `backends` (every one when empty), all at once.
pub fn checks(
    plugins: &PluginSet,
    backends: &[String],
    contexts: &[String],
    all_contexts: bool,
    settings: &GatherSettings,
) -> Result<Vec<BackendCheck>, Unmet> {
    let named: Vec<String> = backends.iter().map(|b| backend_of(b)).collect();
    requirements::check(plugins, &Requirements { needs: named.clone(), uses: Vec::new() }, "check")?;
    // Each backend's own selection and deadline (`--context` names Kubernetes
    // contexts; `check slurm --context X` names a Slurm cluster).
    let request_for = |backend: &str| {
        let only = named.len() == 1 && named[0] == backend;
        let (clusters, all_clusters, timeout, section) = settings.clusters_for(backend, contexts, all_contexts, only);
        CheckRequest {
            catalog_path: None,
            clusters,
            all_clusters,
            timeout_secs: timeout.as_secs_f64(),
            settings: section,
        }
    };
    let selected: Vec<&crate::plugins::Entry> = plugins
        .entries
        .iter()
        .filter(|e| e.status != Status::Shadowed && (named.is_empty() || named.contains(&e.name)))
        .collect();
    Ok(fan_out(
        selected,
        |e| match e.status {
            Status::Loaded => check_loaded(plugins, &e.name, &request_for(&e.name), &settings.catalogs),
            status => BackendCheck {
                name: e.name.clone(),
                display_name: e.display_name().to_string(),
                status,
                ok: false,
                items: Vec::new(),
                reason: e.reason.clone(),
                hint: e.hint.clone(),
            },
        },
        |e, message| BackendCheck {
            name: e.name.clone(),
            display_name: e.display_name().to_string(),
            status: e.status,
            ok: false,
            items: vec![CheckItem {
                subject: "skyhost".into(),
                summary: format!("skyhost hit a bug while checking it: {message}"),
                hint: Some("please report it, with the command you ran".into()),
                ..Default::default()
            }],
            reason: None,
            hint: None,
        },
    ))
}
