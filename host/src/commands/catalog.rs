//! `skyhost catalog status` and `skyhost catalog update [CLOUD...]`.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use skyhost_plugin_api::{CatalogStats, CatalogStatsRequest, capability, method};

use crate::{
    app::App,
    catalogs::{self, CatalogSettings, Origin},
    cli::Format,
    diagnostics::{Diagnostic, Failure, exit, print_stdout},
    fan_out::fan_out,
    plugins::{BackendHandle, PluginSet},
    requirements::{self, Requirements},
    table,
};

#[derive(Debug, Serialize)]
struct Status {
    cloud: String,
    source: Origin,
    path: Option<String>,
    age_secs: Option<u64>,
    #[serde(flatten)]
    stats: Option<CatalogStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded_date: Option<String>,
}

/// The catalog backends to act on: `names`, or every loaded one.
fn selected<'a>(
    plugins: &'a PluginSet,
    names: &[String],
    command: &str,
) -> Result<Vec<&'a Arc<BackendHandle>>, Failure> {
    requirements::check(plugins, &Requirements { needs: names.to_vec(), uses: Vec::new() }, command)
        .map_err(Failure::from)?;
    let chosen: Vec<&Arc<BackendHandle>> = plugins
        .with_capability(capability::CATALOG)
        .filter(|b| b.info.catalog.is_some() && (names.is_empty() || names.contains(&b.name)))
        .collect();
    if let Some(not_catalog) = names.iter().find(|n| !chosen.iter().any(|b| &&b.name == n)) {
        return Err(Failure::usage(format!("the {not_catalog} backend has no catalog")));
    }
    Ok(chosen)
}

/// The catalogs are this machine's: with `--server` set, says so once.
pub fn note_local(app: &App) {
    if let Some(server) = &app.server {
        Diagnostic::note(format!(
            "catalog commands act on this machine's catalogs; the skyhost server at {server} keeps its own"
        ))
        .eprint();
    }
}

/// `skyhost catalog status`.
pub fn status(app: &App, format: Format) -> Result<u8, Failure> {
    let plugins = app.load_plugins()?;
    let settings = CatalogSettings { auto_update: false, ..CatalogSettings::from_app(app) };
    let rows: Vec<Status> = fan_out(
        selected(&plugins, &[], "catalog status").unwrap_or_default(),
        |b| {
            let spec = b.info.catalog.as_ref().expect("selected catalog backends have a spec");
            let r = catalogs::resolve(&settings, b, spec, &|_| {});
            let stats = b.call::<_, CatalogStats>(
                method::CATALOG_STATS,
                &CatalogStatsRequest { catalog_path: r.request_path() },
            );
            Status {
                cloud: b.name.clone(),
                source: r.origin,
                path: r.request_path(),
                age_secs: r.age.map(|a| a.as_secs()),
                error: stats.as_ref().err().map(|e| e.message.clone()),
                stats: stats.ok(),
                embedded_date: spec.embedded_date.clone().filter(|_| r.origin == Origin::Embedded),
            }
        },
        |b, message| Status {
            cloud: b.name.clone(),
            source: Origin::Embedded,
            path: None,
            age_secs: None,
            error: Some(format!("skyhost hit a bug: {message}")),
            stats: None,
            embedded_date: None,
        },
    );
    let text = match format {
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({ "catalogs": rows })).expect("serialises") + "\n"
        }
        Format::Table => {
            let dash = || "-".to_string();
            table::render(
                &["CLOUD", "SOURCE", "PATH", "AGE", "ROWS", "NOTE"],
                rows.iter().map(|r| {
                    vec![
                        r.cloud.clone(),
                        r.source.word().to_string(),
                        r.path.clone().unwrap_or_else(|| {
                            format!("(compiled in, {})", r.embedded_date.as_deref().unwrap_or("undated"))
                        }),
                        r.age_secs.map_or_else(dash, |a| catalogs::human_age(std::time::Duration::from_secs(a))),
                        r.stats.as_ref().map_or_else(dash, |s| s.rows.to_string()),
                        r.error
                            .clone()
                            .or_else(|| r.stats.as_ref().and_then(|s| s.warnings.first().cloned()))
                            .unwrap_or_default(),
                    ]
                }),
            ) + "\n"
        }
    };
    print_stdout(&text)?;
    Ok(if rows.iter().any(|r| r.error.is_some()) { exit::ERROR } else { exit::OK })
}

/// `skyhost catalog update [CLOUD...]`.
pub fn update(app: &App, clouds: &[String]) -> Result<u8, Failure> {
    if app.offline {
        return Err(Failure::usage(
            "`catalog update` downloads catalogs, and --offline (or SKYHOST_OFFLINE) forbids it",
        ));
    }
    let plugins = app.load_plugins()?;
    let chosen = selected(&plugins, clouds, "catalog update")?;
    let settings = CatalogSettings::from_app(app);
    let bar = if crate::progress::enabled() { ProgressBar::new(chosen.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"));
    bar.set_message(format!("downloading from {}", settings.url));
    let results: Vec<(String, Result<u64, String>)> = fan_out(
        &chosen,
        |b| {
            let spec = b.info.catalog.as_ref().expect("selected catalog backends have a spec");
            let result = catalogs::download(&settings, b, spec).map(|stats| stats.rows);
            bar.inc(1);
            (b.name.clone(), result)
        },
        |b, message| (b.name.clone(), Err(format!("skyhost hit a bug: {message}"))),
    );
    bar.finish_and_clear();
    let mut out = String::new();
    for (cloud, result) in &results {
        match result {
            Ok(rows) => out.push_str(&format!("{cloud}: updated, {rows} rows\n")),
            Err(e) => out.push_str(&format!("{cloud}: failed: {e} (the previous copy, if any, is kept)\n")),
        }
    }
    print_stdout(&out)?;
    Ok(if results.iter().any(|(_, r)| r.is_err()) { exit::ERROR } else { exit::OK })
}
