//! `skyhost serve`: the same answers as the CLI, as JSON over HTTP.
//!
//! Plugins load once, at startup, and the server logs what it has before it
//! listens: a server image without the Kubernetes plugin starts, serves the
//! clouds, and answers Kubernetes requests with a structured 424 naming the
//! missing plugin and how to install it.

mod cache;
pub mod routes;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::sync::Semaphore;

use crate::{
    app::App,
    diagnostics::Failure,
    gpus::gather::GatherSettings,
    plugins::{PluginSet, Status},
};

/// Where `serve` listens by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:46590";
/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Listen address.
    pub addr: String,
    /// How long an answer is reused.
    pub cache_ttl: Duration,
    /// Backend calls at once.
    pub max_backend_calls: usize,
    /// Deadline per request.
    pub request_timeout: Duration,
    /// A client must send its request headers within this time.
    pub header_timeout: Duration,
}

/// One line per backend, as the server starts.
pub fn startup_lines(plugins: &PluginSet) -> Vec<String> {
    plugins
        .entries
        .iter()
        .map(|e| match e.status {
            Status::Loaded => format!(
                "backend {}: loaded (version {}, {})",
                e.name,
                e.info.as_ref().map_or("?", |i| i.version.as_str()),
                e.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            Status::Missing => format!("backend {}: missing; {}", e.name, e.hint.as_deref().unwrap_or_default()),
            Status::Disabled => format!("backend {}: {}", e.name, e.reason.as_deref().unwrap_or("disabled")),
            other => format!(
                "backend {}: {} ({}): {}",
                e.name,
                other.word(),
                e.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                e.reason.as_deref().unwrap_or_default()
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

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(plugins: PluginSet, gather: GatherSettings, settings: ServeSettings, app: &App) -> Result<u8, Failure> {
    for line in startup_lines(&plugins) {
        eprintln!("skyhost serve: {line}");
    }
    raise_open_file_limit();
    let addr: SocketAddr = settings.addr.parse().map_err(|e| {
        Failure::usage(format!("cannot listen on '{}': {e}", settings.addr))
            .help("give an address like 127.0.0.1:46590")
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skyhost-serve")
        .build()
        .map_err(|e| Failure::error(format!("cannot start the server runtime: {e}")))?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(addr)).map_err(|e| {
        Failure::error(format!("cannot listen on {addr}: {e}")).help("choose another address with --addr")
    })?;
    let local = listener.local_addr().map_err(|e| Failure::error(e.to_string()))?;
    let state = Arc::new(routes::ServerState {
        plugins: Arc::new(plugins),
        settings: gather,
        gpus_cache: cache::Cache::new(settings.cache_ttl),
        check_cache: cache::Cache::new(settings.cache_ttl),
        backend_calls: Semaphore::new(settings.max_backend_calls.max(1)),
        request_timeout: settings.request_timeout,
    });
    let router = routes::router(state);
    eprintln!("skyhost serve: listening on http://{local}");
    let verbose = app.verbose > 0;
    let header_timeout = settings.header_timeout;
    runtime.block_on(async move {
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown_signal());
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let service = TowerToHyperService::new(router.clone());
                        let connection = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(header_timeout)
                            .serve_connection(TokioIo::new(stream), service);
                        let connection = graceful.watch(connection);
                        tokio::spawn(async move {
                            if let Err(e) = connection.await
                                && verbose {
                                    eprintln!("skyhost serve: connection from {peer}: {e}");
                                }
                        });
                    }
                    // Out of file descriptors, or a connection reset before accept:
                    // keep serving the others.
                    Err(e) => {
                        if verbose {
                            eprintln!("skyhost serve: accept failed: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        eprintln!("skyhost serve: shutting down; finishing requests in flight");
        let started = Instant::now();
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
            eprintln!("skyhost serve: gave up on requests still running after {} s", DRAIN_TIMEOUT.as_secs());
        } else {
            eprintln!("skyhost serve: stopped after {:.1} s", started.elapsed().as_secs_f64());
        }
    });
    // Calls still running end at their deadline (their workers are killed
    // then); nothing waits for them here.
    runtime.shutdown_background();
    Ok(0)
}
