//! `skyhost check`: asks each backend whether it is usable (catalog readable,
//! clusters reachable), all at once, and reports per backend and context.

use crate::{
    api::check::{BackendCheck, Checks, checks},
    app::App,
    cli::{CheckArgs, Format},
    client,
    diagnostics::{Failure, exit, print_stdout},
    gpus::gather::GatherSettings,
    plugins::Status,
};

/// Runs the command: here, or on the server named by `--server`.
pub fn run(app: &App, args: &CheckArgs) -> Result<u8, Failure> {
    let results = match &app.server {
        Some(server) => client::check(
            &client::Server::new(server, &app.config.client)?,
            &args.backends,
            &args.contexts,
            args.all_contexts,
        )?,
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
