//! Listing nodes and pods: pages of 500 with `continue` tokens, a restart
//! when a token has expired (410 Gone), and slim types that read only the
//! fields we use, so a page is parsed, folded into sums and dropped.

use std::{borrow::Cow, collections::BTreeMap};

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Client,
    api::ListParams,
    core::{Request, Resource},
};
use serde::Deserialize;

/// Items per page.
pub const PAGE_SIZE: u32 = 500;
/// Pods that hold no resources are not transferred at all.
pub const ACTIVE_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";
const MAX_RESTARTS: u32 = 3;

/// A failed API call.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The server answered with an error status.
    Status {
        /// HTTP status.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached (connect, TLS, I/O).
    Transport(String),
    /// The response is not the JSON expected.
    Parse(String),
}

#[derive(Debug, Default, Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    cont: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
struct StatusBody {
    #[serde(default)]
    message: String,
}

/// Object metadata we read.
#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A node, as far as GPU availability goes.
#[derive(Debug, Default, Deserialize)]
pub struct NodeItem {
    /// Metadata.
    #[serde(default)]
    pub metadata: Meta,
    /// Spec.
    #[serde(default)]
    pub spec: NodeSpec,
    /// Status.
    #[serde(default)]
    pub status: NodeStatus,
}

/// `spec` of a node.
#[derive(Debug, Default, Deserialize)]
pub struct NodeSpec {
    /// Cordoned.
    #[serde(default)]
    pub unschedulable: bool,
    /// Taints.
    #[serde(default)]
    pub taints: Vec<TaintItem>,
}

/// A taint.
#[derive(Debug, Default, Deserialize)]
pub struct TaintItem {
    /// Key.
    #[serde(default)]
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
    /// Effect.
    #[serde(default)]
    pub effect: String,
}

/// `status` of a node.
#[derive(Debug, Default, Deserialize)]
pub struct NodeStatus {
    /// Allocatable resources.
    #[serde(default)]
    pub allocatable: BTreeMap<String, String>,
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A node condition.
#[derive(Debug, Default, Deserialize)]
pub struct Condition {
    /// Type (`Ready`).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
}

/// A pod, as far as its requests go. Strings borrow from the page.
#[derive(Debug, Default, Deserialize)]
pub struct PodItem<'a> {
    /// Spec.
    #[serde(default, borrow)]
    pub spec: PodSpec<'a>,
    /// Status.
    #[serde(default, borrow)]
    pub status: PodStatus<'a>,
}

/// `spec` of a pod.
#[derive(Debug, Default, Deserialize)]
pub struct PodSpec<'a> {
    /// The node it is bound to.
    #[serde(rename = "nodeName", default, borrow)]
    pub node_name: Option<Cow<'a, str>>,
    /// Containers.
    #[serde(default, borrow)]
    pub containers: Vec<Container<'a>>,
    /// Init containers.
    #[serde(rename = "initContainers", default, borrow)]
    pub init_containers: Vec<Container<'a>>,
    /// Pod overhead.
    #[serde(default, borrow)]
    pub overhead: Option<ResourceList<'a>>,
    /// Pod-level resources (`PodLevelResources`: cpu and memory only).
    #[serde(default, borrow)]
    pub resources: Option<Resources<'a>>,
}

/// A container's resources.
#[derive(Debug, Default, Deserialize)]
pub struct Container<'a> {
    /// Resources.
    #[serde(default, borrow)]
    pub resources: Resources<'a>,
    /// `Always` on an init container makes it a native sidecar.
    #[serde(rename = "restartPolicy", default, borrow)]
    pub restart_policy: Option<Cow<'a, str>>,
}

/// Requests and limits.
#[derive(Debug, Default, Deserialize)]
pub struct Resources<'a> {
    /// Requests.
    #[serde(default, borrow)]
    pub requests: Option<ResourceList<'a>>,
    /// Limits.
    #[serde(default, borrow)]
    pub limits: Option<ResourceList<'a>>,
}

/// The resources we count, out of a resource list; the others are skipped.
/// Values (and MIG keys, where the JSON allows it) borrow from the page.
#[derive(Debug, Default, Clone)]
pub struct ResourceList<'a> {
    /// `cpu`.
    pub cpu: Option<Cow<'a, str>>,
    /// `memory`.
    pub memory: Option<Cow<'a, str>>,
    /// `nvidia.com/gpu`.
    pub nvidia_gpu: Option<Cow<'a, str>>,
    /// `amd.com/gpu`.
    pub amd_gpu: Option<Cow<'a, str>>,
    /// `google.com/tpu`.
    pub google_tpu: Option<Cow<'a, str>>,
    /// `nvidia.com/gpu.shared` (time-slicing or MPS with `renameByDefault`).
    pub nvidia_gpu_shared: Option<Cow<'a, str>>,
    /// `nvidia.com/mig-<profile>` resources (MIG strategy `mixed`).
    pub mig: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl ResourceList<'_> {
    /// The quantity under `key`, if this list sets it.
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            "cpu" => self.cpu.as_deref(),
            "memory" => self.memory.as_deref(),
            "nvidia.com/gpu" => self.nvidia_gpu.as_deref(),
            "amd.com/gpu" => self.amd_gpu.as_deref(),
            "google.com/tpu" => self.google_tpu.as_deref(),
            "nvidia.com/gpu.shared" => self.nvidia_gpu_shared.as_deref(),
            other => self.mig.iter().find(|(k, _)| k == other).map(|(_, v)| v.as_ref()),
        }
    }
}

/// Prefix of the MIG resources of NVIDIA's device plugin.
pub const MIG_PREFIX: &str = "nvidia.com/mig-";

/// A string that borrows from the input when it can.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A resource name, classified without allocating unless it is a MIG key.
enum Key<'a> {
    Known(&'static str),
    Mig(Cow<'a, str>),
    Other,
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const KNOWN: [&str; 6] =
            ["cpu", "memory", "nvidia.com/gpu", "amd.com/gpu", "google.com/tpu", "nvidia.com/gpu.shared"];
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a resource name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(match KNOWN.iter().find(|k| **k == v) {
                    Some(k) => Key::Known(k),
                    None if v.starts_with(MIG_PREFIX) => Key::Mig(Cow::Borrowed(v)),
                    None => Key::Other,
                })
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(match KNOWN.iter().find(|k| **k == v) {
                    Some(k) => Key::Known(k),
                    None if v.starts_with(MIG_PREFIX) => Key::Mig(Cow::Owned(v.to_string())),
                    None => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ResourceList<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ResourceList<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a resource list")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut list = ResourceList::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key {
                        Key::Known(k) => {
                            let value = Some(map.next_value::<Text<'de>>()?.0);
                            match k {
                                "cpu" => list.cpu = value,
                                "memory" => list.memory = value,
                                "nvidia.com/gpu" => list.nvidia_gpu = value,
                                "amd.com/gpu" => list.amd_gpu = value,
                                "google.com/tpu" => list.google_tpu = value,
                                _ => list.nvidia_gpu_shared = value,
                            }
                        }
                        Key::Mig(k) => list.mig.push((k, map.next_value::<Text<'de>>()?.0)),
                        Key::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(list)
            }
        }
        d.deserialize_map(V)
    }
}

/// `status` of a pod.
#[derive(Debug, Default, Deserialize)]
pub struct PodStatus<'a> {
    /// Phase.
    #[serde(default, borrow)]
    pub phase: Option<Cow<'a, str>>,
}

/// How often a throttled request (429) is sent again.
const MAX_THROTTLED: u32 = 3;

/// Sends `request`; a 429 Too Many Requests is sent again after the
/// server's `Retry-After` (1 s when it gives none), up to [`MAX_THROTTLED`]
/// times. The context's deadline still bounds the whole listing.
async fn get_page(client: &Client, request: http::Request<Vec<u8>>) -> Result<bytes::Bytes, ApiError> {
    let mut throttled = 0;
    loop {
        let mut copy = http::Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        match send(client, copy).await {
            Err((ApiError::Status { code: 429, .. }, Some(wait))) if throttled < MAX_THROTTLED => {
                throttled += 1;
                tokio::time::sleep(wait).await;
            }
            result => return result.map_err(|(e, _)| e),
        }
    }
}

/// One request; on an error status, also the `Retry-After` of a 429.
async fn send(
    client: &Client,
    request: http::Request<Vec<u8>>,
) -> Result<bytes::Bytes, (ApiError, Option<std::time::Duration>)> {
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .map_err(|e| (ApiError::Transport(root_cause(&e)), None))?;
    let status = response.status();
    let retry_after = (status.as_u16() == 429).then(|| {
        let secs = response.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.trim().parse().ok());
        std::time::Duration::from_secs(secs.unwrap_or(1).min(60))
    });
    let bytes =
        response.into_body().collect().await.map_err(|e| (ApiError::Transport(root_cause(&e)), None))?.to_bytes();
    if !status.is_success() {
        let body: StatusBody = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = if body.message.is_empty() {
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim().to_string()
        } else {
            body.message
        };
        return Err((ApiError::Status { code: status.as_u16(), message }, retry_after));
    }
    Ok(bytes)
}

/// The innermost error message (`Connection refused (os error 111)`).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What [`list_all`] hands its consumer.
pub enum Listed<T> {
    /// The next page of items (borrowing from the page's bytes).
    Page(Vec<T>),
    /// A `continue` token expired: the list starts over, so forget the pages so far.
    Restart,
}

/// The `continue` token of a list page, read from the list metadata that the
/// API server writes before the items, without parsing the page; `None` when
/// it is not there in the plain form (the page is then parsed first).
fn continue_token_ahead(page: &[u8]) -> Option<&str> {
    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }
    const KEY: &[u8] = b"\"continue\":\"";
    let head = &page[..page.len().min(4096)];
    let head = &head[..find(head, b"\"items\"")?];
    let rest = &head[find(head, KEY)? + KEY.len()..];
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' || end == 0 {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// A page being fetched on the runtime; dropping it stops the fetch.
struct Fetch {
    token: Option<String>,
    task: tokio::task::JoinHandle<Result<bytes::Bytes, ApiError>>,
}

impl Fetch {
    fn start(client: &Client, request: &Request, params: &ListParams, token: Option<String>) -> Result<Self, ApiError> {
        let mut params = params.clone();
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let http_request = request.list(&params).map_err(|e| ApiError::Transport(e.to_string()))?;
        let client = client.clone();
        let task = tokio::spawn(async move { get_page(&client, http_request).await });
        Ok(Self { token, task })
    }

    async fn finish(mut self) -> Result<bytes::Bytes, ApiError> {
        (&mut self.task).await.unwrap_or_else(|e| Err(ApiError::Transport(format!("page fetch stopped: {e}"))))
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Lists every item at `url_path`, page by page, handing each to `on`.
///
/// The next page is asked for as soon as its `continue` token is known, so
/// the server (and the network) work on it while this page is parsed.
pub async fn list_all<T>(
    client: &Client,
    url_path: &str,
    field_selector: Option<&str>,
    mut on: impl for<'a> FnMut(Listed<T::Borrowed<'a>>),
) -> Result<(), ApiError>
where
    T: Item,
{
    let request = Request::new(url_path);
    let mut params = ListParams::default().limit(PAGE_SIZE);
    if let Some(f) = field_selector {
        params = params.fields(f);
    }
    let mut fetch = Fetch::start(client, &request, &params, None)?;
    let mut restarts = 0;
    loop {
        let had_token = fetch.token.is_some();
        match fetch.finish().await {
            Ok(bytes) => {
                let ahead = continue_token_ahead(&bytes)
                    .map(|t| Fetch::start(client, &request, &params, Some(t.to_string())))
                    .transpose()?;
                if ahead.is_some() {
                    // Let the new fetch send its request before this task
                    // keeps the thread busy parsing (a task spawned from a
                    // worker waits in that worker's slot, where others cannot take it).
                    tokio::task::yield_now().await;
                }
                let page: Page<T::Borrowed<'_>> =
                    serde_json::from_slice(&bytes).map_err(|e| ApiError::Parse(e.to_string()))?;
                let next = page.metadata.cont.filter(|c| !c.is_empty());
                on(Listed::Page(page.items));
                fetch = match (next, ahead) {
                    (None, _) => return Ok(()),
                    (Some(next), Some(ahead)) if ahead.token.as_deref() == Some(next.as_str()) => ahead,
                    (Some(next), _) => Fetch::start(client, &request, &params, Some(next))?,
                };
            }
            Err(ApiError::Status { code: 410, .. }) if had_token && restarts < MAX_RESTARTS => {
                restarts += 1;
                on(Listed::Restart);
                fetch = Fetch::start(client, &request, &params, None)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A kind of listed item, parsed borrowing from its page.
pub trait Item {
    /// The item type, borrowing from a page of lifetime `'a`.
    type Borrowed<'a>: Deserialize<'a>;
}

/// Nodes.
pub struct Nodes;
impl Item for Nodes {
    type Borrowed<'a> = NodeItem;
}

/// Pods.
pub struct Pods;
impl Item for Pods {
    type Borrowed<'a> = PodItem<'a>;
}

/// `/api/v1/nodes`.
pub fn nodes_path() -> String {
    Node::url_path(&(), None)
}

/// `/api/v1/pods` (all namespaces).
pub fn pods_path() -> String {
    Pod::url_path(&(), None)
}

#[cfg(test)]
mod tests {
    use super::continue_token_ahead;

    #[test]
    fn the_continue_token_is_read_from_the_list_metadata_only() {
        let page = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ","remainingItemCount":5},"items":[{"continue":"no"}]}"#;
        assert_eq!(continue_token_ahead(page), Some("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"));
        // The last page: an empty token, or none; a token after the items is not looked at.
        assert_eq!(continue_token_ahead(br#"{"metadata":{"continue":""},"items":[]}"#), None);
        assert_eq!(continue_token_ahead(br#"{"metadata":{},"items":[{"continue":"x"}]}"#), None);
        assert_eq!(continue_token_ahead(br#"{"items":[],"metadata":{"continue":"late"}}"#), None);
        // Escapes and pretty-printing are left to the parser.
        assert_eq!(continue_token_ahead(br#"{"metadata":{"continue":"a\u0041"},"items":[]}"#), None);
        assert_eq!(continue_token_ahead(b"{\"metadata\": {\"continue\": \"x\"}, \"items\": []}"), None);
    }
}
