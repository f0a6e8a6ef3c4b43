//! The HTTP API: `/healthz`, `/readyz`, `/v1/plugins`, `/v1/gpus`,
//! `/v1/check`, `/v1/openapi.json`. Every answer is JSON, errors included
//! (`{"error": {"kind", "backend", "message", "hint"}}`), and carries the
//! `skyhost-api-version` header.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::sync::Semaphore;

use super::cache::Cache;
use crate::{
    api::{
        self, check,
        error::{ApiError, ErrorKind},
        plugins as plugins_api,
    },
    gpus::gather::{self, GatherSettings, Progress},
    plugins::PluginSet,
    requirements::{self, Unmet},
};

/// Longest query string accepted.
pub const MAX_QUERY_BYTES: usize = 4096;

/// A status and a JSON body, cheap to clone out of the cache.
pub type Answer = (StatusCode, Bytes);

/// What every handler shares.
pub struct ServerState {
    /// Loaded once, at startup.
    pub plugins: Arc<PluginSet>,
    /// Catalog and cluster settings.
    pub settings: GatherSettings,
    /// `/v1/gpus` answers.
    pub gpus_cache: Cache<Answer>,
    /// `/v1/check` answers.
    pub check_cache: Cache<Answer>,
    /// Bounds backend calls in flight.
    pub backend_calls: Semaphore,
    /// Deadline of one request.
    pub request_timeout: Duration,
}

fn json(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
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
    (status, Bytes::from(serde_json::to_vec(&body).expect("serialises")))
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

async fn run_blocking<T: Send + 'static>(
    st: &ServerState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Answer> {
    let _permit = st.backend_calls.acquire().await.map_err(|_| {
        error(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::ShuttingDown, None, "the server is shutting down", None)
    })?;
    match tokio::time::timeout(st.request_timeout, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Internal,
            None,
            format!("the request failed: {e}"),
            None,
        )),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Timeout,
            None,
            format!("no answer within {} s", st.request_timeout.as_secs_f64()),
            Some("raise [serve] request_timeout_secs, or ask for less".into()),
        )),
    }
}

/// The answer for `key` from the cache `pick` chooses: fresh, shared with an
/// identical request in flight, or computed now by `work` on a blocking thread
/// under the request deadline. Only successful answers are kept.
async fn cached_blocking(
    st: &Arc<ServerState>,
    pick: fn(&ServerState) -> &Cache<Answer>,
    key: String,
    work: impl FnOnce(&ServerState) -> Answer + Send + 'static,
) -> Answer {
    let compute = || {
        let worker = st.clone();
        async move { run_blocking(st, move || work(&worker)).await.unwrap_or_else(|e| e) }
    };
    pick(st).get_or_compute(key, |a| a.0 == StatusCode::OK, compute).await
}

async fn gpus(State(st): State<Arc<ServerState>>, RawQuery(query): RawQuery) -> Response {
    // The same query string always means the same request: a fresh answer is
    // served before any parsing.
    let key = query.clone().unwrap_or_default();
    if key.len() <= MAX_QUERY_BYTES
        && let Some((status, body)) = st.gpus_cache.peek(&key)
    {
        return json(status, body);
    }
    let answer = async {
        let req =
            api::gpus::parse_query(pairs(query.as_deref())?).and_then(|raw| raw.validate()).map_err(bad_request)?;
        let skipped = requirements::check_gpus(&st.plugins, &req, "GET /v1/gpus").map_err(unmet)?;
        Ok(cached_blocking(
            &st,
            |st| &st.gpus_cache,
            key,
            move |st| {
                let report = gather::gather(&st.plugins, &req, &skipped, &st.settings, false, &Progress::default());
                (StatusCode::OK, Bytes::from(serde_json::to_vec(&report).expect("serialises")))
            },
        )
        .await)
    }
    .await
    .unwrap_or_else(|e| e);
    json(answer.0, answer.1)
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
        let key = format!("{backends:?}{contexts:?}{all_contexts}");
        Ok(cached_blocking(
            &st,
            |st| &st.check_cache,
            key,
            move |st| match check::checks(&st.plugins, &backends, &contexts, all_contexts, &st.settings) {
                Ok(backends) => {
                    (StatusCode::OK, Bytes::from(serde_json::to_vec(&check::Checks { backends }).expect("serialises")))
                }
                Err(u) => unmet(u),
            },
        )
        .await)
    }
    .await
    .unwrap_or_else(|e| e);
    json(answer.0, answer.1)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let (status, body) = error(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        None,
        format!("there is nothing at {}", uri.path()),
        Some("see /v1/openapi.json".into()),
    );
    json(status, body)
}

async fn method_not_allowed() -> Response {
    let (status, body) =
        error(StatusCode::METHOD_NOT_ALLOWED, ErrorKind::MethodNotAllowed, None, "only GET is served", None);
    let mut r = json(status, body);
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

async fn stamp(mut response: Response) -> Response {
    response.headers_mut().insert(api::VERSION_HEADER, HeaderValue::from(api::VERSION));
    response
}

/// The router.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}")) }))
        .route(
            "/readyz",
            get(|State(st): State<Arc<ServerState>>| async move { json(StatusCode::OK, plugin_documents(&st.plugins).1) }),
        )
        .route(
            "/v1/plugins",
            get(|State(st): State<Arc<ServerState>>| async move { json(StatusCode::OK, plugin_documents(&st.plugins).0) }),
        )
        .route("/v1/gpus", get(gpus))
        .route("/v1/check", get(check_route))
        .route(
            "/v1/openapi.json",
            get(|| async { json(StatusCode::OK, Bytes::from_static(include_bytes!("openapi.json"))) }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(stamp))
        .with_state(state)
}

/// The bodies `/v1/plugins` and `/readyz` serve: the startup report, with a
/// plugin whose worker keeps crashing shown as broken until it runs cleanly.
pub fn plugin_documents(plugins: &PluginSet) -> (Bytes, Bytes) {
    let report = plugins_api::report(plugins);
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
    let ready = serde_json::json!({ "ready": true, "backends": backends });
    (
        Bytes::from(serde_json::to_vec(&report).expect("serialises")),
        Bytes::from(serde_json::to_vec(&ready).expect("serialises")),
    )
}
