//! `skyhost`: scans the plugin path at startup, loads every backend it finds,
//! checks each command's backend requirements, then runs the command.
//!
//! Where things are: `plugins/` discovers, checks and loads plugin files;
//! `api/` holds the HTTP API's wire types and the answers the server, the
//! client and the commands share;
//! `requirements.rs` is the up-front requirement check; `commands/` holds one
//! module per command; `gpus/` builds and renders the GPU listing.

mod api;
mod app;
mod catalogs;
mod cli;
mod client;
mod commands;
mod config;
mod diagnostics;
mod fan_out;
mod gpus;
mod hex;
mod plugins;
mod progress;
mod requirements;
mod server;
mod table;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    app::App,
    cli::{CatalogCommand, Cli, Command, GpusCommand},
    diagnostics::{Diagnostic, Failure, exit},
};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = plugins::worker::role::run_if_worker(&args) {
        return ExitCode::from(code);
    }
    quiet_panics();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(failure) => {
            failure.diagnostic.eprint();
            failure.code
        }
    };
    ExitCode::from(code)
}

/// No panic message or backtrace reaches the user from a helper thread: the
/// code that joins it reports the failure as a note for its backend. On the
/// main thread, a panic is a bug of skyhost, said in one line.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        if std::thread::current().name() == Some("main") {
            let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            Diagnostic::error(format!("skyhost hit a bug: {}{location}", fan_out::panic_text(info.payload())))
                .help_opt(Some("please report it, with the command you ran"))
                .eprint();
        }
    }));
}

fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Completions { shell } => return commands::completions::completions(*shell),
        Command::Man => return commands::completions::man(),
        _ => {}
    }
    let (config, config_path) = config::load(cli.config.as_deref()).map_err(|e| {
        Failure::usage(e.to_string()).help("fix the file, or point --config / SKYHOST_CONFIG elsewhere")
    })?;
    let app = App::new(&cli, config, config_path);
    match &cli.command {
        Command::Plugins(args) => commands::plugins::run(&app, args),
        Command::ShowGpus(args) => commands::show_gpus::run(&app, args, "show-gpus"),
        Command::Gpus { command: GpusCommand::List(args) } => commands::show_gpus::run(&app, args, "gpus list"),
        Command::Check(args) => commands::check::run(&app, args),
        Command::Catalog { command } => {
            commands::catalog::note_local(&app);
            match command {
                CatalogCommand::Status { output } => commands::catalog::status(&app, *output),
                CatalogCommand::Update { clouds } => commands::catalog::update(&app, clouds),
            }
        }
        Command::Serve(args) => commands::serve::run(&app, args),
        Command::Completions { .. } | Command::Man => unreachable!("handled before the config is read"),
    }
}
