//! Client mode (`--server URL` / `SKYHOST_SERVER`): the server does the
//! backend work; this side only formats. No plugins are loaded here.

use std::time::Duration;

use crate::{
    api::{self, check::Checks, error::ApiError, gpus::query_pairs, plugins::PluginsReport},
    diagnostics::{Diagnostic, Failure, exit},
    gpus::{
        report::{GpuReport, SCHEMA_VERSION},
        request::GpuRequest,
    },
};

fn unreachable(url: &str, e: impl std::fmt::Display) -> Failure {
    Failure::error(format!("cannot reach the skyhost server at {url}: {e}")).help(
        "check the URL and that `skyhost serve` runs there, or unset SKYHOST_SERVER / drop --server to run locally",
    )
}

/// `GET {server}{path}?{query}` for a document of type `T` (`what` names it
/// in messages), with the API version check and the server's errors turned
/// into the exit codes a local run would give.
fn get<T: serde::de::DeserializeOwned>(
    server: &Server,
    path: &str,
    query: &[(&str, String)],
    what: &str,
) -> Result<T, Failure> {
    let base = server.url.trim_end_matches('/');
    let url = format!("{base}{path}");
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .timeout_connect(Some(Duration::from_secs(5)));
    if let Some(roots) = &server.roots {
        config = config.tls_config(
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(roots.clone())).build(),
        );
    }
    let agent: ureq::Agent = config.build().into();
    let mut request = agent.get(&url);
    if let Some((token, _)) = &server.token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    for (k, v) in query {
        request = request.query(*k, v);
    }
    let mut response = request.call().map_err(|e| unreachable(base, e))?;
    let version =
        response.headers().get(api::VERSION_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
    if version != Some(api::VERSION) {
        let theirs = version.map_or_else(|| "none (is it a skyhost server?)".to_string(), |v| v.to_string());
        return Err(Failure::error(format!(
            "the server at {base} speaks skyhost API version {theirs}; this client speaks {}",
            api::VERSION
        ))
        .help("use a client and server of the same skyhost release"));
    }
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().map_err(|e| unreachable(base, e))?;
    if status == 401 {
        let (message, hint) = match &server.token {
            None => (
                format!("the server at {base} needs a token, and none was sent"),
                "set SKYHOST_TOKEN, or token_file in [client] of the config file, to a token the server's operator gave you".to_string(),
            ),
            Some((_, from)) => (
                format!("the server at {base} does not accept the token from {from}"),
                format!("check {from}: ask the server's operator for a valid token"),
            ),
        };
        return Err(Failure::error(message).help(hint));
    }
    if status != 200 {
        let err: ApiError = serde_json::from_str(&body)
            .map_err(|_| Failure::error(format!("the server at {base} answered {status}")))?;
        let code = match err.error.kind {
            api::error::ErrorKind::BadRequest => exit::USAGE,
            k if k.is_backend_unavailable() => exit::BACKEND_UNAVAILABLE,
            _ => exit::ERROR,
        };
        let d =
            Diagnostic::error(format!("{} (from the server at {base})", err.error.message)).help_opt(err.error.hint);
        return Err(Failure::new(code, d));
    }
    serde_json::from_str(&body)
        .map_err(|e| Failure::error(format!("the server at {base} sent {what} that does not parse: {e}")))
}

/// A server to ask: its URL, the token to send (and where it came from),
/// and the roots to trust for `https://`.
#[derive(Debug)]
pub struct Server {
    /// Base URL.
    pub url: String,
    /// The token and the name of its source (`SKYHOST_TOKEN`, the token file).
    pub token: Option<(String, String)>,
    /// `[client] ca_file`, parsed.
    pub roots: Option<std::sync::Arc<Vec<ureq::tls::Certificate<'static>>>>,
}

impl Server {
    /// The server at `url`, with the token and CA file of `config`.
    pub fn new(url: &str, config: &crate::config::ClientConfig) -> Result<Self, Failure> {
        let token = match std::env::var("SKYHOST_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
            Some(t) => Some((t.trim().to_string(), "SKYHOST_TOKEN".to_string())),
            None => match &config.token_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        Failure::usage(format!("cannot read the token file {}: {e}", path.display()))
                            .help("fix token_file in [client] of the config file, or set SKYHOST_TOKEN")
                    })?;
                    Some((text.trim().to_string(), path.display().to_string()))
                }
                None => None,
            },
        };
        let roots = match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Failure::usage(format!("cannot read the CA file {}: {e}", path.display()))
                        .help("fix ca_file in [client] of the config file")
                })?;
                let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(Failure::usage(format!("the CA file {} holds no PEM certificate", path.display())));
                }
                Some(std::sync::Arc::new(certs))
            }
            None => None,
        };
        Ok(Self { url: url.to_string(), token, roots })
    }
}

/// Asks the server for the GPU listing.
pub fn show_gpus(server: &Server, req: &GpuRequest) -> Result<GpuReport, Failure> {
    let report: GpuReport = get(server, "/v1/gpus", &query_pairs(req), "a listing")?;
    if report.schema_version != SCHEMA_VERSION {
        return Err(Failure::error(format!(
            "the server at {} sent listing schema {}, this client reads {SCHEMA_VERSION}",
            server.url.trim_end_matches('/'),
            report.schema_version
        )));
    }
    Ok(report)
}

/// Asks the server which plugins it loaded.
pub fn plugins(server: &Server) -> Result<PluginsReport, Failure> {
    get(server, "/v1/plugins", &[], "a plugin report")
}

/// Asks the server to check `backends` (every one when empty).
pub fn check(server: &Server, backends: &[String], contexts: &[String], all_contexts: bool) -> Result<Checks, Failure> {
    let mut query: Vec<(&str, String)> = backends.iter().map(|b| ("backend", b.clone())).collect();
    query.extend(contexts.iter().map(|c| ("context", c.clone())));
    if all_contexts {
        query.push(("all_contexts", "true".into()));
    }
    get(server, "/v1/check", &query, "a check report")
}
