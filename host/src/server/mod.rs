//! `skyhost serve`: the same answers as the CLI, as JSON over HTTP (or HTTPS).
//!
//! Plugins load once, at startup, and the server logs what it has before it
//! listens: a server image without the Kubernetes plugin starts, serves the
//! clouds, and answers Kubernetes requests with a structured 424 naming the
//! missing plugin and how to install it. [`routes`] has the API, [`auth`]
//! who may ask, [`cache`] the kept answers, [`metrics`] `/metrics`, [`log`]
//! the log lines.

pub mod auth;
mod cache;
mod log;
pub mod metrics;
pub mod routes;
mod ui;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::Semaphore,
};
use tokio_rustls::{TlsAcceptor, rustls};

pub use crate::cli::LogFormat;
use crate::{
    api::error::ErrorKind,
    diagnostics::Failure,
    gpus::gather::GatherSettings,
    plugins::{PluginSet, Status},
};

/// Where `serve` listens by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:46590";
/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The bytes a cached answer may take in all.
const CACHE_BYTES: u64 = 256 << 20;

/// Server settings.
#[derive(Debug)]
pub struct ServeSettings {
    /// Listen address.
    pub addr: String,
    /// How long an answer is reused.
    pub cache_ttl: Duration,
    /// How long an error answer is reused.
    pub error_ttl: Duration,
    /// Backend calls at once.
    pub max_backend_calls: usize,
    /// Requests that may wait for a backend call beyond those running.
    pub max_queued: usize,
    /// Connections held at once.
    pub max_connections: usize,
    /// Distinct contexts one request may name.
    pub max_contexts: usize,
    /// Deadline per request, queueing included.
    pub request_timeout: Duration,
    /// A client must send its request headers within this time.
    pub header_timeout: Duration,
    /// `[serve] tokens_file`.
    pub tokens_file: Option<PathBuf>,
    /// `[serve] tls_cert` and `tls_key`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--allow-unauthenticated`.
    pub allow_unauthenticated: bool,
    /// Backends that must answer before `/readyz` says ready.
    pub ready_requires: Vec<String>,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// Serve the web dashboard at `/` (`--no-ui`, `[serve] ui`).
    pub ui: bool,
}

/// One line per backend, as the server starts: `(refused, line)`.
pub fn startup_lines(plugins: &PluginSet) -> Vec<(bool, String)> {
    plugins
        .entries
        .iter()
        .map(|e| match e.status {
            Status::Loaded => (
                false,
                format!(
                    "backend {}: loaded (version {}, {})",
                    e.name,
                    e.info.as_ref().map_or("?", |i| i.version.as_str()),
                    e.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
                ),
            ),
            Status::Missing => {
                (false, format!("backend {}: missing; {}", e.name, e.hint.as_deref().unwrap_or_default()))
            }
            Status::Disabled => (false, format!("backend {}: {}", e.name, e.reason.as_deref().unwrap_or("disabled"))),
            other => (
                true,
                format!(
                    "backend {}: {} ({}): {}",
                    e.name,
                    other.word(),
                    e.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                    e.reason.as_deref().unwrap_or_default()
                ),
            ),
        })
        .collect()
}

/// Lets this process hold as many connections as its hard limit allows.
fn raise_open_file_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, Failure> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let fix = "check [serve] tls_cert and tls_key: PEM files of a certificate chain and its private key";
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Failure::usage(format!("cannot read the TLS certificate {}: {e}", cert.display())).help(fix))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Failure::usage(format!("cannot read the TLS key {}: {e}", key.display())).help(fix))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| Failure::usage(format!("the TLS certificate and key do not make a server: {e}")).help(fix))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The answer to a connection over `max_connections`, before closing it.
fn refusal() -> Vec<u8> {
    let body = serde_json::to_vec(&crate::api::error::ApiError::new(
        ErrorKind::Overloaded,
        None,
        "the server holds as many connections as it may",
        Some("try again shortly; an operator can raise [serve] max_connections".into()),
    ))
    .expect("serialises");
    let mut out = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n{}: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        crate::api::VERSION_HEADER,
        crate::api::VERSION,
        body.len()
    )
    .into_bytes();
    out.extend(body);
    out
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(plugins: PluginSet, gather: GatherSettings, settings: ServeSettings) -> Result<u8, Failure> {
    let _log = log::init(settings.log_format);
    for (refused, line) in startup_lines(&plugins) {
        if refused {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
    raise_open_file_limit();
    let addr: SocketAddr = settings.addr.parse().map_err(|e| {
        Failure::usage(format!("cannot listen on '{}': {e}", settings.addr))
            .help("give an address like 127.0.0.1:46590")
    })?;
    let loopback = addr.ip().is_loopback();
    let tokens = match &settings.tokens_file {
        Some(path) => Some(auth::Tokens::load(path).map_err(|e| {
            Failure::usage(e)
                .help("write one token per line (plain, or sha256:<hex> of the token) into [serve] tokens_file")
        })?),
        None => None,
    };
    if !loopback && tokens.is_none() {
        if !settings.allow_unauthenticated {
            return Err(Failure::usage(format!(
                "refusing to serve {addr} without authentication: anyone who reaches it would read every cluster's nodes and errors"
            ))
            .help("set [serve] tokens_file, or pass --allow-unauthenticated if something in front of the server authenticates"));
        }
        tracing::warn!(
            "serving {addr} without authentication (--allow-unauthenticated): anyone who reaches it can read it"
        );
    }
    let tls = settings.tls.as_ref().map(|(c, k)| tls_acceptor(c, k)).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skyhost-serve")
        .build()
        .map_err(|e| Failure::error(format!("cannot start the server runtime: {e}")))?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(addr)).map_err(|e| {
        Failure::error(format!("cannot listen on {addr}: {e}")).help("choose another address with --addr")
    })?;
    let local = listener.local_addr().map_err(|e| Failure::error(e.to_string()))?;
    let (ttl, error_ttl) = (settings.cache_ttl, settings.error_ttl);
    let state = Arc::new(routes::ServerState {
        plugins: Arc::new(plugins),
        settings: gather,
        cache: cache::Cache::new(
            CACHE_BYTES,
            |a: &routes::Answer| u32::try_from(a.body.len()).unwrap_or(u32::MAX),
            move |a| routes::ServerState::lifetime(a, ttl, error_ttl),
        ),
        backend_calls: Arc::new(Semaphore::new(settings.max_backend_calls)),
        waiting: AtomicUsize::new(0),
        max_waiting: settings.max_backend_calls.saturating_add(settings.max_queued),
        request_timeout: settings.request_timeout,
        max_contexts: settings.max_contexts,
        tokens,
        loopback,
        metrics: metrics::Metrics::default(),
        ready: AtomicBool::new(settings.ready_requires.is_empty()),
        next_id: AtomicU64::new(1),
        ui: settings.ui,
    });
    let observer = state.clone();
    crate::plugins::handle::observe_calls(move |backend, method, took| {
        observer.metrics.observe_call(backend, method, took);
    });
    let router = routes::router(state.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{local}");
    let header_timeout = settings.header_timeout;
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    runtime.block_on(async move {
        if !settings.ready_requires.is_empty() {
            tokio::spawn(become_ready(state.clone(), settings.ready_requires.clone()));
        }
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown_signal());
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let Ok(permit) = connections.clone().try_acquire_owned() else {
                            tokio::spawn(async move {
                                let mut stream = stream;
                                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&refusal())).await;
                                let _ = stream.shutdown().await;
                            });
                            continue;
                        };
                        let router = router.clone().layer(axum::Extension(routes::Peer(peer)));
                        let (tls, watcher) = (tls.clone(), graceful.watcher());
                        tokio::spawn(async move {
                            let _permit = permit;
                            match tls {
                                None => serve_connection(stream, router, header_timeout, watcher).await,
                                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                                    Ok(Ok(tls_stream)) => serve_connection(tls_stream, router, header_timeout, watcher).await,
                                    Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                },
                            }
                        });
                    }
                    // Out of file descriptors, or a connection reset before accept:
                    // keep serving the others.
                    Err(e) => {
                        tracing::debug!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!("shutting down; finishing requests in flight");
        let started = Instant::now();
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
            tracing::warn!("gave up on requests still running after {} s", DRAIN_TIMEOUT.as_secs());
        } else {
            tracing::info!("stopped after {:.1} s", started.elapsed().as_secs_f64());
        }
    });
    // Calls still running end at their deadline (their workers are killed
    // then); nothing waits for them here.
    runtime.shutdown_background();
    Ok(0)
}

async fn serve_connection<I>(io: I, router: axum::Router, header_timeout: Duration, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!("connection ended: {e}");
    }
}

/// Marks the server ready once every backend of `[serve] ready_requires` is
/// loaded and its check succeeds (tried every two seconds).
async fn become_ready(state: Arc<routes::ServerState>, backends: Vec<String>) {
    loop {
        let st = state.clone();
        let names = backends.clone();
        let ok = tokio::task::spawn_blocking(move || {
            crate::api::check::checks(&st.plugins, &names, &[], false, &st.settings)
                .is_ok_and(|all| all.iter().all(|b| b.status == Status::Loaded && b.ok))
        })
        .await
        .unwrap_or(false);
        if ok {
            state.ready.store(true, Ordering::SeqCst);
            tracing::info!("ready: {} answered", backends.join(", "));
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
