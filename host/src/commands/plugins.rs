//! `skyhost plugins`: every backend and every file found, with status and the
//! reason or hint. Works with any mix of good and bad files.

use crate::{
    api::plugins::{PluginsReport, report},
    app::App,
    cli::{Format, PluginsArgs},
    client,
    diagnostics::{Diagnostic, Failure, print_stdout},
    plugins::{
        PluginSet, Status,
        lock::{Lock, Pin},
    },
    table,
};

/// Runs the command: the plugins found here, or the server's with `--server`.
pub fn run(app: &App, args: &PluginsArgs) -> Result<u8, Failure> {
    let (report, config) = match &app.server {
        Some(_) if args.lock => {
            return Err(Failure::usage(
                "`plugins --lock` pins this machine's plugin files; it cannot be sent to a server",
            )
            .help("run it where the server runs, without --server / SKYHOST_SERVER"));
        }
        Some(server) => {
            let report = client::plugins(&client::Server::new(server, &app.config.client)?)?;
            if args.output == Format::Table {
                Diagnostic::note(format!("these are the plugins of the skyhost server at {server}")).eprint();
            }
            (report, None)
        }
        None if args.lock => {
            let set = app.load_plugins_as(crate::app::CLI_ISOLATION, None, true)?;
            write_lock(app, &set)?;
            (report(&set), Some(app.config_path.as_deref()))
        }
        None => (report(&app.load_plugins()?), Some(app.config_path.as_deref())),
    };
    let text = match args.output {
        Format::Json => serde_json::to_string_pretty(&report).expect("report serialises") + "\n",
        Format::Table => render_table(&report, app.verbose, config),
    };
    print_stdout(&text)?;
    Ok(0)
}

/// Pins every loaded plugin file in `plugins.lock`.
fn write_lock(app: &App, set: &PluginSet) -> Result<(), Failure> {
    let path = app.lock_path().ok_or_else(|| Failure::error("there is no config directory to put plugins.lock in"))?;
    let mut pins: Vec<Pin> = Vec::new();
    for e in set.entries.iter().filter(|e| e.status == Status::Loaded) {
        let (Some(file), Some(sha256), Some(info)) =
            (e.path.as_deref().and_then(|p| p.file_name()), e.sha256.clone(), e.info.as_ref())
        else {
            continue;
        };
        let file = file.to_string_lossy().into_owned();
        if !pins.iter().any(|p| p.file == file) {
            pins.push(Pin { file, sha256, interface_version: info.interface_version.clone() });
        }
    }
    Lock::write(&path, &pins).map_err(|e| Failure::error(format!("cannot write {}: {e}", path.display())))?;
    Diagnostic::note(format!("pinned {} plugin file(s) in {}", pins.len(), path.display())).eprint();
    Ok(())
}

/// `config`: the config file read, for a local report (`Some(None)`: none).
fn render_table(report: &PluginsReport, verbose: u8, config: Option<Option<&std::path::Path>>) -> String {
    let dash = || "-".to_string();
    let rows = report.plugins.iter().map(|e| {
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
    for e in report.plugins.iter().filter(|e| e.status != Status::Loaded) {
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
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    if verbose > 0 {
        out.push_str("\nSearch path:\n");
        for d in &report.search_path {
            let state = if d.exists { "" } else { " (absent)" };
            out.push_str(&format!("  {} [{}]{state}\n", d.dir.path.display(), d.dir.origin.label()));
        }
        if let Some(config) = config {
            out.push_str(&format!(
                "\nConfig file: {}\n",
                config.map_or_else(|| "none".to_string(), |p| p.display().to_string())
            ));
        }
        out.push_str(&format!(
            "\nLoaded {} backend(s) in {:.2} ms\n",
            report.plugins.iter().filter(|e| e.status == Status::Loaded).count(),
            report.load_ms
        ));
        for e in &report.plugins {
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
