//! `skyhost serve [--addr ADDR]`.

use std::time::Duration;

use crate::{
    app::App,
    cli::ServeArgs,
    diagnostics::Failure,
    server::{self, ServeSettings},
};

/// Runs the command.
pub fn run(app: &App, args: &ServeArgs) -> Result<u8, Failure> {
    if app.server.is_some() {
        return Err(Failure::usage("`serve` runs a server; it cannot be sent to one with --server / SKYHOST_SERVER"));
    }
    let c = &app.config.serve;
    let settings = ServeSettings {
        addr: args.addr.clone().or_else(|| c.addr.clone()).unwrap_or_else(|| server::DEFAULT_ADDR.into()),
        cache_ttl: Duration::from_secs_f64(c.cache_ttl_secs.unwrap_or(10.0).max(0.0)),
        max_backend_calls: c.max_backend_calls.unwrap_or(4),
        request_timeout: Duration::from_secs_f64(c.request_timeout_secs.unwrap_or(30.0).max(0.1)),
        header_timeout: Duration::from_secs_f64(c.header_timeout_secs.unwrap_or(10.0).max(0.1)),
    };
    let gather = crate::gpus::gather::GatherSettings::from_app(app)?;
    let plugins = app.load_plugins_as(crate::plugins::Isolation::Process, Some(settings.request_timeout), false)?;
    server::run(plugins, gather, settings, app)
}
