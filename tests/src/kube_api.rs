//! A Kubernetes API server double on 127.0.0.1: `GET /api/v1/nodes` and
//! `GET /api/v1/pods` with real-shaped `NodeList`/`PodList` JSON, pagination
//! (`limit`, `continue`), field selectors, bearer-token auth, and faults the
//! tests switch on. Items are serialised once at start, so it can serve a
//! 100,000-pod cluster quickly for the benchmark.
//!
//! It refuses what a real API server refuses, with the same `Status` body:
//! an unknown field-selector field or operator and a bad `limit` are 400
//! `BadRequest`; a `continue` token is bound to its resource and selector (a
//! token of another list is 400); an unknown path is a 404 `NotFound` Status.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Extension, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

/// Faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer pod lists with 403.
    pub pods_forbidden: bool,
    /// Answer node lists with this status.
    pub nodes_status: Option<u16>,
    /// Wait this long before answering anything.
    pub delay: Option<Duration>,
    /// Answer the next request that carries a `continue` token with 410 Gone.
    pub expire_next_continue: bool,
    /// Answer this many more requests that carry a `continue` token with 410
    /// Gone (after `expire_next_continue`).
    pub expire_continues: usize,
    /// Send node lists that are not JSON.
    pub malformed_nodes: bool,
    /// Answer the next this many list requests with 429 Too Many Requests
    /// and `Retry-After: retry_after_secs`.
    pub throttle_next: usize,
    /// The `Retry-After` of a throttled answer, in seconds.
    pub retry_after_secs: u32,
}

/// The fields a selector may name, per list (as the API server allows them).
const POD_FIELDS: [&str; 4] = ["metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"];
const NODE_FIELDS: [&str; 2] = ["metadata.name", "spec.unschedulable"];

/// An item serialised once, with the values its field selectors can test.
struct Item {
    json: String,
    fields: Vec<(&'static str, String)>,
}

impl Item {
    fn new(value: &Value, fields: &[&'static str]) -> Self {
        let field = |path: &str| -> String {
            let v = path.split('.').fold(value, |v, k| &v[k]);
            match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                // An unset bool field selects as "false", an unset string as "".
                Value::Null if path == "spec.unschedulable" => "false".into(),
                _ => String::new(),
            }
        };
        Self { json: value.to_string(), fields: fields.iter().map(|f| (*f, field(f))).collect() }
    }

    fn matches(&self, terms: &[Term]) -> bool {
        terms.iter().all(|t| {
            let value = self.fields.iter().find(|(f, _)| *f == t.field).map_or("", |(_, v)| v.as_str());
            (value == t.value) == t.equal
        })
    }
}

/// One term of a field selector: `field=value`, `field==value` or `field!=value`.
#[derive(Debug, Clone)]
struct Term {
    field: String,
    equal: bool,
    value: String,
}

/// Parses a field selector as the API server does: unknown fields and
/// operators are refused.
/// Refusals are 400 Bad Request with the message.
fn parse_selector(selector: &str, allowed: &[&str]) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    for term in selector.split(',').filter(|t| !t.is_empty()) {
        let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
            (f, false, v)
        } else if let Some((f, v)) = term.split_once("==") {
            (f, true, v)
        } else if let Some((f, v)) = term.split_once('=') {
            (f, true, v)
        } else {
            return Err(format!("unable to parse requirement: found '{term}', expected: '=', '!=' or '=='"));
        };
        if ["=", "!", "<", ">", "("].iter().any(|c| value.contains(c) || field.contains(c)) {
            return Err(format!("invalid selector: '{selector}'; can't understand '{term}'"));
        }
        if !allowed.contains(&field.trim()) {
            return Err(format!("field label not supported: {}", field.trim()));
        }
        terms.push(Term { field: field.trim().to_string(), equal, value: value.trim().to_string() });
    }
    Ok(terms)
}

/// A `continue` token: which list it belongs to, and where it goes on.
fn continue_token(kind: &str, selector: &str, offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}\n{selector}\n{offset}"))
}

/// The offset of `token` if it was issued for this list.
/// Refusals are 400 Bad Request with the message.
fn continue_offset(token: &str, kind: &str, selector: &str) -> Result<usize, String> {
    use base64::Engine;
    let invalid = || "The provided continue parameter is invalid: it does not belong to this list request".to_string();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let (Some(k), Some(sel), Some(offset)) = (parts.next(), parts.next(), parts.next()) else { return Err(invalid()) };
    if k != kind || sel != selector {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

/// The indices of the items a selector keeps.
type Selection = Arc<Vec<usize>>;

struct Shared {
    nodes: Vec<Item>,
    pods: Vec<Item>,
    /// Indices of the items each field selector keeps, computed once per list and selector.
    selected: Mutex<HashMap<(&'static str, String), Selection>>,
    token: Option<String>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<String>>,
    paths: Mutex<Vec<String>>,
    /// The path of every request, whatever it asked for.
    every_path: Mutex<Vec<String>>,
    /// While true, list requests are received (and counted) but not answered.
    held: tokio::sync::watch::Sender<bool>,
}

/// A running API double; stops when dropped.
pub struct KubeApi {
    /// Its address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// A cluster to serve.
#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    /// Node objects.
    pub nodes: Vec<Value>,
    /// Pod objects.
    pub pods: Vec<Value>,
    /// Bearer token required, if any.
    pub token: Option<String>,
}

/// The `reason` a real API server gives with each status code.
fn reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// An error answer: a `Status` object with the reason of `code`.
fn status(code: u16, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason(code), "code": code});
    (StatusCode::from_u16(code).expect("status"), [(header::CONTENT_TYPE, "application/json")], body.to_string())
        .into_response()
}

fn page(
    kind: &str,
    selector: &str,
    items: &[&String],
    offset: usize,
    limit: usize,
    total: usize,
    generation: u64,
) -> String {
    let end = offset.saturating_add(limit).min(total);
    let cont = if end < total { continue_token(kind, selector, end) } else { String::new() };
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 200);
    out.push_str(&format!(
        "{{\"kind\":\"{kind}\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{generation}\",\"continue\":\"{cont}\""
    ));
    if end < total {
        out.push_str(&format!(",\"remainingItemCount\":{}", total - end));
    }
    out.push_str("},\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str("]}");
    out
}

/// Set on requests that came over TLS with a client certificate signed by the test CA.
#[derive(Debug, Clone, Copy)]
struct ClientCertificate;

async fn list(
    kind: &'static str,
    State(s): State<Arc<Shared>>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.requests.lock().expect("lock").push(format!("{kind}?{}", {
        let mut keys: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        keys.sort();
        keys.join("&")
    }));
    let _ = s.held.subscribe().wait_for(|held| !held).await;
    let faults = s.faults.lock().expect("lock").clone();
    if let Some(d) = faults.delay {
        tokio::time::sleep(d).await;
    }
    if let Some(token) = &s.token {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if given != format!("Bearer {token}") && cert.is_none() {
            return status(401, "Unauthorized");
        }
    }
    let throttled = {
        let mut f = s.faults.lock().expect("lock");
        let throttled = f.throttle_next > 0;
        f.throttle_next = f.throttle_next.saturating_sub(1);
        throttled
    };
    if throttled {
        let mut r = status(429, "Too many requests, please try again later.");
        r.headers_mut().insert(header::RETRY_AFTER, faults.retry_after_secs.to_string().parse().expect("header"));
        return r;
    }
    let selector = q.get("fieldSelector").cloned().unwrap_or_default();
    let terms = match parse_selector(&selector, if kind == "NodeList" { &NODE_FIELDS } else { &POD_FIELDS }) {
        Ok(t) => t,
        Err(refused) => return status(400, &refused),
    };
    let limit = match q.get("limit").map(|l| l.parse::<i64>()) {
        None | Some(Ok(0)) => usize::MAX,
        Some(Ok(l)) if l > 0 => l as usize,
        _ => return status(400, &format!("invalid limit: {:?}", q.get("limit").expect("given"))),
    };
    if kind == "NodeList" {
        if let Some(code) = faults.nodes_status {
            return status(code, "etcdserver: request timed out");
        }
        if faults.malformed_nodes {
            return ([(header::CONTENT_TYPE, "application/json")], "{\"kind\":\"NodeList\",\"items\":[{\"metadata\":")
                .into_response();
        }
    }
    if kind == "PodList" && faults.pods_forbidden {
        return status(
            403,
            "pods is forbidden: User \"system:serviceaccount:skyhost:reader\" cannot list resource \"pods\" in API group \"\" at the cluster scope",
        );
    }
    let offset = match q.get("continue").filter(|c| !c.is_empty()) {
        None => 0,
        Some(token) => {
            let expired = {
                let mut f = s.faults.lock().expect("lock");
                let expired = f.expire_next_continue || f.expire_continues > 0;
                if f.expire_next_continue {
                    f.expire_next_continue = false;
                } else {
                    f.expire_continues = f.expire_continues.saturating_sub(1);
                }
                expired
            };
            if expired {
                return status(
                    410,
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                );
            }
            match continue_offset(token, kind, &selector) {
                Ok(o) => o,
                Err(refused) => return status(400, &refused),
            }
        }
    };
    let all = if kind == "NodeList" { &s.nodes } else { &s.pods };
    let selected = s
        .selected
        .lock()
        .expect("lock")
        .entry((kind, selector.clone()))
        .or_insert_with(|| Arc::new((0..all.len()).filter(|i| all[*i].matches(&terms)).collect()))
        .clone();
    let end = offset.saturating_add(limit).min(selected.len());
    let items: Vec<&String> = selected[offset.min(end)..end].iter().map(|i| &all[*i].json).collect();
    let body = page(kind, &selector, &items, offset, limit, selected.len(), 1);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl KubeApi {
    /// Starts serving `cluster` on a free loopback port.
    pub fn start(cluster: ClusterSpec) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let shared = Arc::new(Shared {
            nodes: cluster.nodes.iter().map(|n| Item::new(n, &NODE_FIELDS)).collect(),
            pods: cluster.pods.iter().map(|p| Item::new(p, &POD_FIELDS)).collect(),
            token: cluster.token,
            selected: Mutex::default(),
            faults: Mutex::default(),
            requests: Mutex::default(),
            paths: Mutex::default(),
            every_path: Mutex::default(),
            held: tokio::sync::watch::Sender::new(false),
        });
        let mut api = Self { addr: ([127, 0, 0, 1], 0).into(), shared, runtime: Some(runtime) };
        api.addr = api.also_listen();
        api
    }

    /// Serves the same cluster on one more loopback port (another "context"
    /// of the same size, without a second copy of the data).
    pub fn also_listen(&self) -> SocketAddr {
        let app = self.router();
        let runtime = self.runtime.as_ref().expect("running");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    /// Serves the same cluster over HTTPS on one more loopback port, with the
    /// certificate `tests/fixtures/tls/server.crt` (for 127.0.0.1, signed by
    /// `tls_fixture("ca.crt")`), as every real API server does. A client
    /// certificate signed by that CA authenticates as the token does.
    pub fn also_listen_tls(&self) -> SocketAddr {
        let app = self.router();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_server_config()));
        let runtime = self.runtime.as_ref().expect("running");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that rejects the certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    // rustls has verified any certificate the client sent against the test CA.
                    let app = match tls.get_ref().1.peer_certificates() {
                        Some(_) => app.layer(Extension(ClientCertificate)),
                        None => app,
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        addr
    }

    fn router(&self) -> Router {
        let json = |body: &'static str| ([(header::CONTENT_TYPE, "application/json")], body);
        // Discovery, so that kubectl can be pointed at the double too.
        let api = Router::new()
            .route("/api", get(move || async move { json(r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}"#) }))
            .route("/apis", get(move || async move { json(r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#) }))
            .route(
                "/api/v1",
                get(move || async move {
                    json(r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"nodes","singularName":"node","namespaced":false,"kind":"Node","verbs":["get","list"],"shortNames":["no"]},{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]}]}"#)
                }),
            )
            .route("/api/v1/nodes", get(|st, c, h, q| list("NodeList", st, c, h, q)))
            .route("/api/v1/pods", get(|st, c, h, q| list("PodList", st, c, h, q)))
            .with_state(self.shared.clone());
        // Also under a path, as Rancher and other gateways serve clusters
        // (`https://rancher.example/k8s/clusters/c-m-7x2kq`).
        let shared = self.shared.clone();
        Router::new()
            .nest(GATEWAY_PATH, api.clone())
            .merge(api)
            .fallback(|| async { status(404, "the server could not find the requested resource") })
            .layer(axum::middleware::map_request(move |request: axum::extract::Request| {
                let path = request.uri().path().to_string();
                shared.every_path.lock().expect("lock").push(path.clone());
                if path.contains("/api/v1/") {
                    shared.paths.lock().expect("lock").push(path);
                }
                std::future::ready(request)
            }))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the faults.
    pub fn set_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.faults.lock().expect("lock"));
    }

    /// The paths of the list requests served so far (`/api/v1/pods`).
    pub fn paths(&self) -> Vec<String> {
        self.shared.paths.lock().expect("lock").clone()
    }

    /// Holds every list request from now on until [`KubeApi::release`]: a
    /// test can then act while requests are certainly in flight.
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Answers the held requests and those that come later.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Waits until at least `n` list requests have come in (panics after a minute).
    #[track_caller]
    pub fn wait_for_requests(&self, n: usize) {
        crate::wait_until(&format!("{n} list requests"), || self.requests().len() >= n);
    }

    /// The path of every request so far, discovery and unknown paths included.
    pub fn every_path(&self) -> Vec<String> {
        self.shared.every_path.lock().expect("lock").clone()
    }

    /// Requests served so far (`PodList?continue=...&limit=500`).
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("lock").clone()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The path under which the double also serves the API, as a gateway would.
pub const GATEWAY_PATH: &str = "/k8s/clusters/c-m-7x2kq";

/// A file of the test-only TLS material in `tests/fixtures/tls` (see `gen.sh` there).
pub fn tls_fixture(name: &str) -> std::path::PathBuf {
    crate::workspace().join("tests/fixtures/tls").join(name)
}

fn tls_server_config() -> tokio_rustls::rustls::ServerConfig {
    use tokio_rustls::rustls::{
        ServerConfig,
        crypto::ring,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls_fixture("server.crt"))
        .expect("server.crt")
        .collect::<Result<_, _>>()
        .expect("server.crt parses");
    let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).expect("server.key");
    let provider = Arc::new(ring::default_provider());
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(tls_fixture("ca.crt")).expect("ca.crt") {
        roots.add(ca.expect("ca.crt parses")).expect("a CA certificate");
    }
    let clients =
        tokio_rustls::rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .expect("client verifier");
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)
        .expect("certificate and key match")
}

/// A kubeconfig naming `contexts` as `(name, server URL, token)`, current context `current`.
pub fn kubeconfig(contexts: &[(&str, &str, &str)], current: Option<&str>) -> String {
    kubeconfig_trusting(contexts, current, None)
}

/// A kubeconfig as [`kubeconfig`] whose clusters trust the CA certificate
/// `ca_pem` (as `certificate-authority-data`, the way cloud providers write it).
pub fn kubeconfig_trusting(contexts: &[(&str, &str, &str)], current: Option<&str>, ca_pem: Option<&[u8]>) -> String {
    use base64::Engine;
    let mut y = String::from("apiVersion: v1\nkind: Config\n");
    if let Some(c) = current {
        y.push_str(&format!("current-context: {c}\n"));
    }
    y.push_str("clusters:\n");
    for (name, url, _) in contexts {
        y.push_str(&format!("- name: {name}\n  cluster:\n    server: {url}\n"));
        if let Some(pem) = ca_pem {
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            y.push_str(&format!("    certificate-authority-data: {data}\n"));
        }
    }
    y.push_str("contexts:\n");
    for (name, _, _) in contexts {
        y.push_str(&format!("- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"));
    }
    y.push_str("users:\n");
    for (name, _, token) in contexts {
        y.push_str(&format!("- name: {name}\n  user:\n    token: {token}\n"));
    }
    y
}

/// A node, built up with the methods below, as the API server writes one.
#[derive(Debug, Clone)]
pub struct Node(pub Value);

/// A node called `name` with 8 vCPUs and 32 GiB.
pub fn node(name: &str) -> Node {
    Node(json!({
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": "4242",
            "creationTimestamp": "2026-01-05T10:00:00Z",
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "standard-8"
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
        },
        "spec": {"podCIDR": "10.244.1.0/24", "providerID": format!("test://{name}")},
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "95Gi"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": "2026-11-28T10:00:00Z", "lastTransitionTime": "2026-01-05T10:00:00Z"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": "2026-11-28T10:00:00Z", "lastTransitionTime": "2026-01-05T10:00:00Z"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": "2026-11-28T10:00:00Z", "lastTransitionTime": "2026-01-05T10:00:00Z"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": "2026-11-28T10:00:00Z", "lastTransitionTime": "2026-01-05T10:00:00Z"}
            ],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.10"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.33.2", "containerRuntimeVersion": "containerd://2.0.5", "kernelVersion": "6.8.0", "osImage": "Ubuntu 24.04 LTS", "architecture": "amd64", "operatingSystem": "linux"},
            "images": [
                {"names": ["registry.k8s.io/kube-proxy@sha256:0f3c", "registry.k8s.io/kube-proxy:v1.33.2"], "sizeBytes": 30_000_000},
                {"names": ["nvcr.io/nvidia/k8s-device-plugin@sha256:9a1b", "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"], "sizeBytes": 120_000_000}
            ]
        }
    }))
}

impl Node {
    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0["metadata"]["labels"][key] = json!(value);
        self
    }
    /// Sets an allocatable (and capacity) resource.
    pub fn resource(mut self, key: &str, value: &str) -> Self {
        self.0["status"]["allocatable"][key] = json!(value);
        self.0["status"]["capacity"][key] = json!(value);
        self
    }
    /// `count` GPUs under `key` (`nvidia.com/gpu`, `amd.com/gpu`, `google.com/tpu`).
    pub fn gpus(self, key: &str, count: u32) -> Self {
        self.resource(key, &count.to_string())
    }
    /// Ready condition False.
    pub fn not_ready(mut self) -> Self {
        self.0["status"]["conditions"][3]["status"] = json!("False");
        self
    }
    /// Cordoned.
    pub fn cordoned(mut self) -> Self {
        self.0["spec"]["unschedulable"] = json!(true);
        self
    }
    /// A taint with the value `true`.
    pub fn taint(self, key: &str, effect: &str) -> Self {
        self.taint_value(key, "true", effect)
    }
    /// A taint; an empty `value` is left out, as the API server does.
    pub fn taint_value(mut self, key: &str, value: &str, effect: &str) -> Self {
        let mut taints = self.0["spec"]["taints"].as_array().cloned().unwrap_or_default();
        let mut taint = json!({"key": key, "effect": effect});
        if !value.is_empty() {
            taint["value"] = json!(value);
        }
        taints.push(taint);
        self.0["spec"]["taints"] = json!(taints);
        self
    }
}

/// A pod, built up with the methods below.
#[derive(Debug, Clone)]
pub struct Pod(pub Value);

/// A running pod called `name` in namespace `ns` on `node`, one container, no requests.
pub fn pod(name: &str, ns: &str, node: Option<&str>) -> Pod {
    let mut p = json!({
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": format!("uid-{ns}-{name}"),
            "resourceVersion": "777",
            "creationTimestamp": "2026-11-27T08:00:00Z",
            "labels": {"app": "trainer", "pod-template-hash": "7d9f8c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "trainer-7d9f8c", "uid": "uid-rs", "controller": true}]
        },
        "spec": {
            "containers": [{
                "name": "main",
                "image": "nvcr.io/nvidia/pytorch:25.01-py3",
                "command": ["python", "train.py"],
                "env": [{"name": "NCCL_DEBUG", "value": "WARN"}, {"name": "EPOCHS", "value": "10"}],
                "resources": {},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
            }],
            "restartPolicy": "Always",
            "serviceAccountName": "default",
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-27T08:01:00Z"}],
            "hostIP": "10.0.0.10",
            "podIP": "10.244.1.7",
            "startTime": "2026-11-27T08:00:00Z",
            "qosClass": "Burstable"
        }
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    Pod(p)
}

impl Pod {
    /// Sets the phase.
    pub fn phase(mut self, phase: &str) -> Self {
        self.0["status"]["phase"] = json!(phase);
        self
    }
    /// Requests of the first container.
    pub fn requests(mut self, pairs: &[(&str, &str)]) -> Self {
        for (k, v) in pairs {
            self.0["spec"]["containers"][0]["resources"]["requests"][*k] = json!(v);
        }
        self
    }
    /// Adds a container with these requests.
    pub fn container(mut self, pairs: &[(&str, &str)]) -> Self {
        let requests: serde_json::Map<String, Value> = pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        self.0["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "side", "image": "busybox", "resources": {"requests": requests}}));
        self
    }
    /// Adds an init container with these requests.
    pub fn init_container(mut self, pairs: &[(&str, &str)]) -> Self {
        let requests: serde_json::Map<String, Value> = pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let mut inits = self.0["spec"]["initContainers"].as_array().cloned().unwrap_or_default();
        inits.push(json!({"name": "init", "image": "busybox", "resources": {"requests": requests}}));
        self.0["spec"]["initContainers"] = json!(inits);
        self
    }
    /// Adds a native sidecar: an init container with `restartPolicy: Always`.
    pub fn sidecar(mut self, pairs: &[(&str, &str)]) -> Self {
        let requests: serde_json::Map<String, Value> = pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let mut inits = self.0["spec"]["initContainers"].as_array().cloned().unwrap_or_default();
        inits.push(
            json!({"name": "sidecar", "image": "envoy", "restartPolicy": "Always", "resources": {"requests": requests}}),
        );
        self.0["spec"]["initContainers"] = json!(inits);
        self
    }
    /// Pod-level requests (`spec.resources.requests`).
    pub fn pod_requests(mut self, pairs: &[(&str, &str)]) -> Self {
        for (k, v) in pairs {
            self.0["spec"]["resources"]["requests"][*k] = json!(v);
        }
        self
    }
    /// Pod overhead.
    pub fn overhead(mut self, pairs: &[(&str, &str)]) -> Self {
        for (k, v) in pairs {
            self.0["spec"]["overhead"][*k] = json!(v);
        }
        self
    }
    /// Marks the pod as terminating.
    pub fn terminating(mut self) -> Self {
        self.0["metadata"]["deletionTimestamp"] = json!("2026-11-28T10:00:00Z");
        self
    }
}

/// A generated cluster: `nodes` nodes, 8 H100s each on every GPU node, and
/// `pods_per_node` pods per node (the first of which holds 4 GPUs).
pub fn generated(nodes: usize, pods_per_node: usize) -> ClusterSpec {
    let mut spec = ClusterSpec::default();
    for i in 0..nodes {
        let name = format!("node-{i:05}");
        let gpu = i % 5 != 4;
        let mut n = node(&name).resource("cpu", "96").resource("memory", "768Gi");
        if gpu {
            n = n
                .gpus("nvidia.com/gpu", 8)
                .label("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3")
                .label("nvidia.com/gpu.count", "8");
        }
        spec.nodes.push(n.0);
        for j in 0..pods_per_node {
            let mut p = pod(&format!("job-{i:05}-{j:02}"), &format!("team-{}", j % 7), Some(&name))
                .requests(&[("cpu", "2"), ("memory", "8Gi")]);
            if gpu && j == 0 {
                p = p.requests(&[("nvidia.com/gpu", "4")]);
            }
            if j % 10 == 9 {
                p = p.phase("Succeeded");
            }
            spec.pods.push(p.0);
        }
    }
    spec
}
