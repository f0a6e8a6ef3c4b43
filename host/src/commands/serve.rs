//! `skyhost serve [--addr ADDR] [--allow-unauthenticated] [--log-format FORMAT] [--no-ui]`.

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
    let secs = |v: Option<f64>, default: f64| Duration::from_secs_f64(v.unwrap_or(default));
    let settings = ServeSettings {
        addr: args.addr.clone().or_else(|| c.addr.clone()).unwrap_or_else(|| server::DEFAULT_ADDR.into()),
        cache_ttl: secs(c.cache_ttl_secs, 10.0),
        error_ttl: secs(c.error_ttl_secs, 2.0),
        max_backend_calls: c.max_backend_calls.unwrap_or(4),
        max_queued: c.max_queued.unwrap_or(64),
        max_connections: c.max_connections.unwrap_or(16_384),
        max_contexts: c.max_contexts.unwrap_or(64),
        request_timeout: secs(c.request_timeout_secs, 30.0),
        header_timeout: secs(c.header_timeout_secs, 10.0),
        tokens_file: c.tokens_file.clone(),
        tls: c.tls_cert.clone().zip(c.tls_key.clone()),
        allow_unauthenticated: args.allow_unauthenticated,
        ready_requires: c.ready_requires.clone(),
        log_format: args.log_format,
        ui: !args.no_ui && c.ui.unwrap_or(true),
    };
    let gather = crate::gpus::gather::GatherSettings::from_app(app)?;
    let plugins = app.load_plugins_as(crate::plugins::Isolation::Process, Some(settings.request_timeout), false)?;
    server::run(plugins, gather, settings)
}
