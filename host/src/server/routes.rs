//! The HTTP API: `/healthz`, `/readyz`, `/metrics`, `/v1/plugins`,
//! `/v1/gpus`, `/v1/check`, `/v1/openapi.json`, and the dashboard at `/`
//! (`ui.rs`). Every answer is JSON (but `/metrics` and the dashboard), errors included (`{"error": {"kind", "backend", "message",
//! "hint"}}`), and carries the `skyhost-api-version` header.
//!
//! In front of the routes, outermost first: the access log and request
//! metrics; the `Host` check of a loopback server (421); the bearer token
//! of `/v1/*` and `/metrics` (401).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{MatchedPath, RawQuery, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::sync::Semaphore;

use super::{auth, cache::Cache, metrics::Metrics};
use crate::{
    api::{
        self, check,
        error::{ApiError, ErrorKind},
        plugins as plugins_api,
    },
    config::AllowedContexts,
    gpus::{
        gather::{self, GatherSettings, Progress},
        report::GpuReport,
        request::GpuRequest,
    },
    plugins::PluginSet,
    requirements::{self, Unmet},
};

/// Longest query string accepted.
pub const MAX_QUERY_BYTES: usize = 8192;

/// One answer, cheap to clone out of the cache: status, JSON body, and for
/// a listing the report itself (for `/metrics`) and when it was made.
#[derive(Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Bytes,
    /// The listing, for a `/v1/gpus` answer.
    pub report: Option<Arc<GpuReport>>,
    /// When it was computed.
    pub at: Instant,
}

impl Answer {
    fn new(status: StatusCode, body: Bytes) -> Self {
        Self { status, body, report: None, at: Instant::now() }
    }
}

/// The peer of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// What every handler shares.
pub struct ServerState {
    /// Loaded once, at startup.
    pub plugins: Arc<PluginSet>,
    /// Catalog and cluster settings; `allowed_contexts` is the server's boundary.
    pub settings: GatherSettings,
    /// Answers of `/v1/gpus` and `/v1/check`.
    pub cache: Cache<Answer>,
    /// Backend calls that may run at once.
    pub backend_calls: Arc<Semaphore>,
    /// Requests waiting for or running a backend call.
    pub waiting: AtomicUsize,
    /// The most that may wait or run; more are answered 503.
    pub max_waiting: usize,
    /// Deadline of one request, queueing included.
    pub request_timeout: Duration,
    /// Distinct contexts one request may name.
    pub max_contexts: usize,
    /// Bearer tokens, when required.
    pub tokens: Option<auth::Tokens>,
    /// Listening on loopback: only loopback `Host` names are answered.
    pub loopback: bool,
    /// Counters and histograms.
    pub metrics: Metrics,
    /// `/readyz` says ready.
    pub ready: AtomicBool,
    /// Request ids for the access log.
    pub next_id: AtomicU64,
    /// Serve the web dashboard at `/`.
    pub ui: bool,
}

fn json(answer: &Answer) -> Response {
    let mut r =
        (answer.status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], answer.body.clone())
            .into_response();
    if answer.status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// An error answer.
pub fn error(
    status: StatusCode,
    kind: ErrorKind,
    backend: Option<&str>,
    message: impl Into<String>,
    hint: Option<String>,
) -> Answer {
    let body = ApiError::new(kind, backend, message, hint);
    Answer::new(status, Bytes::from(serde_json::to_vec(&body).expect("serialises")))
}

fn unmet(u: Unmet) -> Answer {
    let status = match u {
        Unmet::Unknown { .. } => StatusCode::BAD_REQUEST,
        // 424 Failed Dependency: the request is fine, a backend it depends on is not there.
        Unmet::Unavailable { .. } => StatusCode::FAILED_DEPENDENCY,
    };
    error(status, u.kind(), Some(u.backend()), u.message(), u.hint())
}

fn bad_request(message: impl Into<String>) -> Answer {
    error(StatusCode::BAD_REQUEST, ErrorKind::BadRequest, None, message, Some("see /v1/openapi.json".into()))
}

fn forbidden(message: impl Into<String>) -> Answer {
    error(
        StatusCode::FORBIDDEN,
        ErrorKind::Forbidden,
        None,
        message,
        Some("ask for the contexts this server allows ([kubernetes] allowed_contexts of its config)".into()),
    )
}

/// The decoded `key=value` pairs of a query string, refusing one over
/// [`MAX_QUERY_BYTES`].
fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Answer> {
    let q = query.unwrap_or_default();
    if q.len() > MAX_QUERY_BYTES {
        return Err(error(
            StatusCode::URI_TOO_LONG,
            ErrorKind::BadRequest,
            None,
            format!("the query string has {} bytes; the limit is {MAX_QUERY_BYTES}", q.len()),
            None,
        ));
    }
    api::query::decode_pairs(q).map_err(|e| bad_request(format!("the query string does not parse: {e}")))
}

impl ServerState {
    /// The contexts a request may ask for: those of `allowed_contexts`, never
    /// more. Names are de-duplicated and capped; `all_contexts` means all the
    /// allowed ones. Without `allowed_contexts`, the server answers for its
    /// default context only.
    fn narrow(&self, contexts: &mut Vec<String>, all: &mut bool) -> Result<(), Answer> {
        let mut seen = std::collections::HashSet::new();
        contexts.retain(|c| seen.insert(c.clone()));
        if contexts.len() > self.max_contexts {
            return Err(bad_request(format!(
                "{} contexts named; this server answers for at most {} at once",
                contexts.len(),
                self.max_contexts
            )));
        }
        match &self.settings.allowed_contexts {
            Some(AllowedContexts::All) => Ok(()),
            Some(AllowedContexts::List(allowed)) => {
                if let Some(c) = contexts.iter().find(|c| !allowed.contains(c)) {
                    return Err(forbidden(format!("context '{c}' is not served here")));
                }
                if std::mem::take(all) {
                    contexts.clone_from(allowed);
                }
                Ok(())
            }
            None => match (contexts.first(), *all) {
                (Some(c), _) => Err(forbidden(format!("context '{c}' is not served here"))),
                (None, true) => Err(forbidden("this server answers for its default context only, not all_contexts")),
                (None, false) => Ok(()),
            },
        }
    }

    /// How long `answer` may be kept: a listing for the cache's lifetime, an
    /// error for a shorter one, a refusal for load not at all.
    pub fn lifetime(answer: &Answer, ttl: Duration, error_ttl: Duration) -> Duration {
        match answer.status {
            StatusCode::OK => ttl,
            StatusCode::SERVICE_UNAVAILABLE => Duration::ZERO,
            _ => error_ttl,
        }
    }
}

/// Runs `work` on a blocking thread once a backend slot is free, all within
/// `deadline`. A request that finds the queue full is answered 503 at once;
/// one whose deadline passes while it waits or works gets 504. The slot is
/// held until the work itself ends (a plugin call past its deadline is
/// killed in its worker process), not merely until the request gives up.
async fn run_blocking<T: Send + 'static>(
    st: &ServerState,
    deadline: tokio::time::Instant,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Answer> {
    struct Leave<'a>(&'a AtomicUsize);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let before = st.waiting.fetch_add(1, Ordering::SeqCst);
    let _leave = Leave(&st.waiting);
    if before >= st.max_waiting {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Overloaded,
            None,
            format!("{before} requests already wait for a backend"),
            Some("try again shortly; an operator can raise [serve] max_queued or max_backend_calls".into()),
        ));
    }
    let timeout = || {
        error(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Timeout,
            None,
            format!("no answer within {} s", st.request_timeout.as_secs_f64()),
            Some("raise [serve] request_timeout_secs, or ask for less".into()),
        )
    };
    let permit = match tokio::time::timeout_at(deadline, st.backend_calls.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::ShuttingDown,
                None,
                "the server is shutting down",
                None,
            ));
        }
        Err(_) => return Err(timeout()),
    };
    let handle = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    });
    match tokio::time::timeout_at(deadline, handle).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Internal,
            None,
            format!("the request failed: {e}"),
            None,
        )),
        Err(_) => Err(timeout()),
    }
}

/// The answer for `key`: kept, shared with an identical request in flight,
/// or computed now by `work` within the request's deadline.
async fn cached_blocking(
    st: &Arc<ServerState>,
    key: String,
    work: impl FnOnce(&ServerState) -> Answer + Send + 'static,
) -> Answer {
    let deadline = tokio::time::Instant::now() + st.request_timeout;
    let worker = st.clone();
    st.cache
        .get_or_compute(
            key,
            async move { run_blocking(st, deadline, move || work(&worker)).await.unwrap_or_else(|e| e) },
        )
        .await
}

/// The listing for `req` (already narrowed to the allowed contexts).
async fn listing(st: &Arc<ServerState>, req: GpuRequest) -> Answer {
    let skipped = match requirements::check_gpus(&st.plugins, &req, "GET /v1/gpus") {
        Ok(s) => s,
        Err(u) => return unmet(u),
    };
    let key = format!("gpus {}", serde_json::to_string(&req).expect("serialises"));
    cached_blocking(st, key, move |st| {
        let mut report = gather::gather(&st.plugins, &req, &skipped, &st.settings, false, &Progress::default());
        api::redact::report(&mut report);
        let body = Bytes::from(serde_json::to_vec(&report).expect("serialises"));
        Answer { report: Some(Arc::new(report)), ..Answer::new(StatusCode::OK, body) }
    })
    .await
}

async fn gpus(State(st): State<Arc<ServerState>>, RawQuery(query): RawQuery) -> Response {
    let answer = async {
        let mut req =
            api::gpus::parse_query(pairs(query.as_deref())?).and_then(|raw| raw.validate()).map_err(bad_request)?;
        st.narrow(&mut req.contexts, &mut req.all_contexts)?;
        Ok(listing(&st, req).await)
    }
    .await
    .unwrap_or_else(|e: Answer| e);
    json(&answer)
}

async fn check_route(State(st): State<Arc<ServerState>>, RawQuery(query): RawQuery) -> Response {
    let answer = async {
        let mut backends = Vec::new();
        let mut contexts = Vec::new();
        let mut all_contexts = false;
        for (key, value) in pairs(query.as_deref())? {
            match key.as_str() {
                "backend" => backends.push(value),
                "context" => contexts.push(value),
                "all_contexts" => all_contexts = api::query::truthy(&key, &value).map_err(bad_request)?,
                other => {
                    return Err(bad_request(format!(
                        "unknown query parameter '{other}' (known: backend, context, all_contexts)"
                    )));
                }
            }
        }
        st.narrow(&mut contexts, &mut all_contexts)?;
        backends.sort();
        backends.dedup();
        let key = format!("check {backends:?} {contexts:?} {all_contexts}");
        Ok(cached_blocking(&st, key, move |st| {
            match check::checks(&st.plugins, &backends, &contexts, all_contexts, &st.settings) {
                Ok(mut backends) => Answer::new(
                    StatusCode::OK,
                    Bytes::from(
                        serde_json::to_vec(&check::Checks {
                            backends: {
                                api::redact::checks(&mut backends);
                                backends
                            },
                        })
                        .expect("serialises"),
                    ),
                ),
                Err(u) => unmet(u),
            }
        })
        .await)
    }
    .await
    .unwrap_or_else(|e: Answer| e);
    json(&answer)
}

async fn metrics_route(State(st): State<Arc<ServerState>>) -> Response {
    let listing = listing(&st, GpuRequest::default()).await;
    let figures = listing.report.as_ref().map(|r| (r.as_ref(), listing.at.elapsed()));
    let text = st.metrics.render(&st.plugins, figures);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))],
        text,
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    json(&error(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        None,
        format!("there is nothing at {}", uri.path()),
        Some("see /v1/openapi.json".into()),
    ))
}

async fn method_not_allowed() -> Response {
    let mut r =
        json(&error(StatusCode::METHOD_NOT_ALLOWED, ErrorKind::MethodNotAllowed, None, "only GET is served", None));
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// Access log line and request metrics, around everything else.
async fn observe(State(st): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = st.next_id.fetch_add(1, Ordering::Relaxed);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("other", |m| m.as_str()).to_string();
    let peer = request.extensions().get::<Peer>().map(|p| p.0.to_string()).unwrap_or_default();
    let mut response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    st.metrics.observe_request(&route, status, took);
    tracing::info!(
        target: "access",
        id,
        method = %method,
        path = %path,
        status,
        ms = (took.as_secs_f64() * 1e4).round() / 10.0,
        peer = %peer,
        "request"
    );
    response.headers_mut().insert(api::VERSION_HEADER, HeaderValue::from(api::VERSION));
    response.headers_mut().insert("x-request-id", HeaderValue::from(id));
    response
}

/// A loopback server answers only loopback `Host` names (DNS rebinding);
/// `/v1/*` and `/metrics` need a bearer token when tokens are configured.
async fn guard(State(st): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    if st.loopback {
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !auth::is_loopback_host(host) {
            return json(&error(
                StatusCode::MISDIRECTED_REQUEST,
                ErrorKind::MisdirectedRequest,
                None,
                format!("this server listens on loopback and does not answer for host '{host}'"),
                Some("reach it as localhost or 127.0.0.1".into()),
            ));
        }
    }
    let path = request.uri().path();
    let guarded = path.starts_with("/v1/") || path == "/metrics";
    if let Some(tokens) = st.tokens.as_ref().filter(|_| guarded) {
        let presented = request.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        if !tokens.accepts(presented) {
            let said = if presented.is_some() { "the token sent is not accepted" } else { "no token was sent" };
            let mut r = json(&error(
                StatusCode::UNAUTHORIZED,
                ErrorKind::Unauthorized,
                None,
                format!("{path} needs a bearer token: {said}"),
                Some(
                    "send `Authorization: Bearer <token>`; skyhost --server sends SKYHOST_TOKEN or [client] token_file"
                        .into(),
                ),
            ));
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(request).await
}

/// The router.
pub fn router(state: Arc<ServerState>) -> Router {
    let ui = if state.ui { super::ui::routes() } else { Router::new() };
    Router::new()
        .route(
            "/healthz",
            get(|| async { json(&Answer::new(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"))) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_route))
        .route("/v1/plugins", get(plugins_route))
        .route("/v1/gpus", get(gpus))
        .route("/v1/check", get(check_route))
        .route(
            "/v1/openapi.json",
            get(|| async { json(&Answer::new(StatusCode::OK, Bytes::from_static(include_bytes!("openapi.json")))) }),
        )
        .merge(ui)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn plugins_route(State(st): State<Arc<ServerState>>, peer: Option<Extension<Peer>>) -> Response {
    let mut report = plugins_api::report(&st.plugins);
    // The search path's home directories are for the machine's own eyes.
    if !peer.is_some_and(|Extension(Peer(p))| p.ip().is_loopback())
        && let Some(home) = dirs::home_dir()
    {
        report.search_path.retain(|d| !d.dir.path.starts_with(&home));
    }
    json(&Answer::new(StatusCode::OK, Bytes::from(serde_json::to_vec(&report).expect("serialises"))))
}

async fn readyz(State(st): State<Arc<ServerState>>) -> Response {
    let report = plugins_api::report(&st.plugins);
    let backends: Vec<serde_json::Value> = report
        .plugins
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "status": e.status,
                "version": e.info.as_ref().map(|i| i.version.clone()),
                "reason": e.reason,
                "hint": e.hint,
            })
        })
        .collect();
    let ready = st.ready.load(Ordering::SeqCst);
    let body = serde_json::json!({ "ready": ready, "backends": backends });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut r = json(&Answer::new(status, Bytes::from(serde_json::to_vec(&body).expect("serialises"))));
    r.headers_mut().remove(header::RETRY_AFTER);
    r
}
