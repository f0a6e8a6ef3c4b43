//! `skyhost check`: asks each backend whether it is usable (catalog readable,
//! clusters reachable), all at once, and reports per backend and context.

use serde::{Deserialize, Serialize};
use skyhost_plugin_api::{CheckItem, CheckReport, CheckRequest, ErrorKind, method};

use crate::{
    app::App,
    catalogs::{self, CatalogSettings},
    cli::{CheckArgs, Format},
    client,
    diagnostics::{Failure, exit, print_stdout},
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
    name: String,
    display_name: String,
    status: Status,
    ok: bool,
    items: Vec<CheckItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
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

/// Runs the command: here, or on the server named by `--server`.
pub fn run(app: &App, args: &CheckArgs) -> Result<u8, Failure> {
    let results = match &app.server {
        Some(server) => client::check(server, &args.backends, &args.contexts, args.all_contexts)?,
        None => {
            let plugins = app.load_plugins()?;
            let settings = GatherSettings::from_app(app)?;
            Checks { backends: checks(&plugins, &args.backends, &args.contexts, args.all_contexts, &settings)? }
        }
    };
    let failed = results.backends.iter().any(|r| r.status == Status::Loaded && !r.ok);
    let text = match args.output {
        Format::Json => serde_json::to_string_pretty(&results).expect("serialises") + "\n",
        Format::Table => render(&results.backends),
    };
    print_stdout(&text)?;
    Ok(if failed { exit::ERROR } else { exit::OK })
}

fn render(results: &[BackendCheck]) -> String {
    let mut out = String::from("Checking backends.\n");
    for r in results {
        let state = match r.status {
            Status::Loaded if r.ok => "ok".to_string(),
            Status::Loaded => "not usable".to_string(),
            Status::Missing => "not installed".to_string(),
            other => other.word().to_string(),
        };
        out.push_str(&format!("  {}: {state}\n", r.display_name));
        let n = r.items.len();
        for (i, item) in r.items.iter().enumerate() {
            let branch = if n == 1 {
                "   "
            } else if i + 1 == n {
                "└──"
            } else {
                "├──"
            };
            let word = if item.ok { "ok" } else { "failed" };
            out.push_str(&format!("    {branch} {}: {word}. {}\n", item.subject, item.summary));
            for d in &item.details {
                out.push_str(&format!("          {d}\n"));
            }
            if let Some(h) = &item.hint {
                out.push_str(&format!("          help: {h}\n"));
            }
        }
        if r.status != Status::Loaded {
            if let Some(reason) = r.reason.as_deref().filter(|_| r.status != Status::Missing) {
                out.push_str(&format!("    reason: {reason}\n"));
            }
            if let Some(h) = &r.hint {
                out.push_str(&format!("    help: {h}\n"));
            }
        }
    }
    out
}
