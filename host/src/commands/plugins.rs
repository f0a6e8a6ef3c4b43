//! `skyhost plugins`: every backend and every file found, with status and the
//! reason or hint. Works with any mix of good and bad files.

use serde::Serialize;

use crate::{
    app::App,
    cli::{Format, PluginsArgs},
    diagnostics::{Failure, print_stdout},
    plugins::{Entry, PluginSet, SearchDir, Status},
    table,
};

#[derive(Serialize)]
struct SearchDirReport<'a> {
    #[serde(flatten)]
    dir: &'a SearchDir,
    exists: bool,
}

#[derive(Serialize)]
struct PluginsReport<'a> {
    search_path: Vec<SearchDirReport<'a>>,
    warnings: &'a [String],
    plugins: &'a [Entry],
    load_ms: f64,
}

/// The JSON document of `skyhost plugins -o json` (and `GET /v1/plugins`).
pub fn report(set: &PluginSet) -> serde_json::Value {
    let report = PluginsReport {
        search_path: set.search_path.iter().map(|dir| SearchDirReport { dir, exists: dir.path.is_dir() }).collect(),
        warnings: &set.path_warnings,
        plugins: &set.entries,
        load_ms: set.elapsed.as_secs_f64() * 1e3,
    };
    serde_json::to_value(&report).expect("report serialises")
}

/// Runs the command.
pub fn run(app: &App, args: &PluginsArgs) -> Result<u8, Failure> {
    let set = app.load_plugins();
    let text = match args.output {
        Format::Json => serde_json::to_string_pretty(&report(&set)).expect("report serialises") + "\n",
        Format::Table => render_table(&set, app.verbose, app.config_path.as_deref()),
    };
    print_stdout(&text)?;
    Ok(0)
}

fn render_table(set: &PluginSet, verbose: u8, config: Option<&std::path::Path>) -> String {
    let dash = || "-".to_string();
    let rows = set.entries.iter().map(|e| {
        let info = e.info.as_ref();
        vec![
            e.name.clone(),
            e.status.word().to_string(),
            info.map_or_else(dash, |i| i.version.clone()),
            info.map_or_else(dash, |i| i.interface_version.clone()),
            e.path.as_deref().map_or_else(dash, |p| p.display().to_string()),
            match e.status {
                Status::Loaded => info.map(|i| i.description.clone()).unwrap_or_default(),
                _ => e.reason.clone().unwrap_or_default(),
            },
        ]
    });
    let mut out = table::render(&["NAME", "STATUS", "VERSION", "INTERFACE", "PATH", "NOTE"], rows);
    out.push('\n');
    // One help line per distinct hint (the seven neoclouds share one).
    let mut hints: Vec<(Vec<&str>, &str)> = Vec::new();
    for e in set.entries.iter().filter(|e| e.status != Status::Loaded) {
        let Some(hint) = e.hint.as_deref() else { continue };
        match hints.iter_mut().find(|(_, h)| *h == hint) {
            Some((names, _)) => names.push(&e.name),
            None => hints.push((vec![&e.name], hint)),
        }
    }
    if !hints.is_empty() {
        out.push('\n');
        for (names, hint) in hints {
            out.push_str(&format!("help: {}: {hint}\n", names.join(", ")));
        }
    }
    for w in &set.path_warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    if verbose > 0 {
        out.push_str("\nSearch path:\n");
        for d in &set.search_path {
            let state = if d.path.is_dir() { "" } else { " (absent)" };
            out.push_str(&format!("  {} [{}]{state}\n", d.path.display(), d.origin.label()));
        }
        out.push_str(&format!(
            "\nConfig file: {}\n",
            config.map_or_else(|| "none".to_string(), |p| p.display().to_string())
        ));
        out.push_str(&format!(
            "\nLoaded {} backend(s) in {:.2} ms\n",
            set.loaded.len(),
            set.elapsed.as_secs_f64() * 1e3
        ));
        for e in &set.entries {
            if let Some(ms) = e.load_ms {
                out.push_str(&format!("  {}: {ms:.2} ms", e.name));
                if let Some(i) = &e.info {
                    out.push_str(&format!(" ({}, {}, {})", i.build.rustc, i.build.target, i.build.profile));
                }
                out.push('\n');
            }
            if let Some(d) = &e.detail {
                out.push_str(&format!("  {} loader said:\n", e.name));
                for line in d.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    out
}
