//! `skyhost show-gpus` (and `skyhost gpus list`): validate, check the
//! backends, ask them all at once, print tables, JSON or CSV.

use crate::{
    app::App,
    cli::{Cli, GpuFormat, ShowGpusArgs},
    client,
    diagnostics::{Diagnostic, Failure, exit, print_stdout, stdout_color},
    gpus::{
        gather::{self, GatherSettings, Progress},
        render,
        report::{GpuReport, Mode},
        request::RawGpuQuery,
    },
    progress, requirements,
};
use clap::CommandFactory;

/// Whether anything at all matched (a named query that found nothing exits 4).
pub fn found_anything(report: &GpuReport) -> bool {
    report.mode != Mode::Named
        || !report.offerings.is_empty()
        || report.clusters.iter().any(|s| s.clusters.iter().any(|c| !c.gpus.is_empty()))
}

fn usage(invoked_as: &str, message: String) -> u8 {
    let mut cmd = Cli::command();
    cmd.build();
    let sub = invoked_as.split(' ').fold(&mut cmd, |c, name| c.find_subcommand_mut(name).expect("known subcommand"));
    let _ = sub.error(clap::error::ErrorKind::ValueValidation, message).print();
    exit::USAGE
}

/// Prints `report` in `format`; notes go to stderr after the tables.
pub fn print_report(report: &GpuReport, format: GpuFormat, verbose: bool) -> Result<u8, Failure> {
    match format {
        GpuFormat::Json => print_stdout(&(serde_json::to_string_pretty(report).expect("report serialises") + "\n"))?,
        GpuFormat::Csv => print_stdout(&render::csv(report))?,
        GpuFormat::Table => print_stdout(&render::tables(report, stdout_color(), verbose))?,
    }
    if format != GpuFormat::Json {
        for n in &report.notes {
            Diagnostic::note(n.message.clone()).help_opt(n.hint.clone()).eprint();
        }
    }
    let only_backend_failed = report
        .query
        .infra
        .as_deref()
        .is_some_and(|b| report.notes.iter().any(|n| n.kind == "backend_error" && n.backend.as_deref() == Some(b)));
    Ok(if only_backend_failed {
        exit::ERROR
    } else if found_anything(report) {
        exit::OK
    } else {
        exit::NOT_FOUND
    })
}

/// Runs the command; `invoked_as` is `show-gpus` or `gpus list`.
pub fn run(app: &App, args: &ShowGpusArgs, invoked_as: &str) -> Result<u8, Failure> {
    let req = match RawGpuQuery::from(args).validate() {
        Ok(r) => r,
        Err(message) => return Ok(usage(invoked_as, message)),
    };
    if args.cloud.is_some() {
        Diagnostic::note("--cloud and --region are the older spelling; use --infra CLOUD[/REGION]").eprint();
    }
    if let Some(server) = &app.server {
        let report = client::show_gpus(&client::Server::new(server, &app.config.client)?, &req)?;
        return print_report(&report, args.output, app.verbose > 0);
    }
    let plugins = app.load_plugins()?;
    let command = match &req.infra {
        Some(i) => format!("{invoked_as} --infra {i}"),
        None => invoked_as.to_string(),
    };
    let skipped = requirements::check_gpus(&plugins, &req, &command).map_err(Failure::from)?;
    let settings = GatherSettings::from_app(app)?;
    let progress = Progress::default();
    let report = progress::with_spinner(&progress, || {
        gather::gather(&plugins, &req, &skipped, &settings, args.output == GpuFormat::Csv, &progress)
    });
    print_report(&report, args.output, app.verbose > 0)
}
