//! Listing nodes and pods: pages of 500 with `continue` tokens, a restart
//! when a token has expired (410 Gone), and slim types that read only the
//! fields we use, so a page is parsed, folded into sums and dropped.

use std::collections::BTreeMap;

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Client,
    api::ListParams,
    core::{Request, Resource},
};
use serde::{Deserialize, de::DeserializeOwned};

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

/// A pod, as far as its requests go.
#[derive(Debug, Default, Deserialize)]
pub struct PodItem {
    /// Spec.
    #[serde(default)]
    pub spec: PodSpec,
    /// Status.
    #[serde(default)]
    pub status: PodStatus,
}

/// `spec` of a pod.
#[derive(Debug, Default, Deserialize)]
pub struct PodSpec {
    /// The node it is bound to.
    #[serde(rename = "nodeName", default)]
    pub node_name: Option<String>,
    /// Containers.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Init containers.
    #[serde(rename = "initContainers", default)]
    pub init_containers: Vec<Container>,
    /// Pod overhead.
    #[serde(default)]
    pub overhead: Option<BTreeMap<String, String>>,
}

/// A container's resources.
#[derive(Debug, Default, Deserialize)]
pub struct Container {
    /// Resources.
    #[serde(default)]
    pub resources: Resources,
}

/// Requests and limits.
#[derive(Debug, Default, Deserialize)]
pub struct Resources {
    /// Requests.
    #[serde(default)]
    pub requests: Option<BTreeMap<String, String>>,
    /// Limits.
    #[serde(default)]
    pub limits: Option<BTreeMap<String, String>>,
}

/// `status` of a pod.
#[derive(Debug, Default, Deserialize)]
pub struct PodStatus {
    /// Phase.
    #[serde(default)]
    pub phase: Option<String>,
}

async fn get_page<T: DeserializeOwned>(client: &Client, request: http::Request<Vec<u8>>) -> Result<Page<T>, ApiError> {
    let response = client.send(request.map(kube::client::Body::from)).await.map_err(|e| ApiError::Transport(root_cause(&e)))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::Transport(root_cause(&e)))?
        .to_bytes();
    if !status.is_success() {
        let body: StatusBody = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = if body.message.is_empty() {
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim().to_string()
        } else {
            body.message
        };
        return Err(ApiError::Status { code: status.as_u16(), message });
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Parse(e.to_string()))
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
    /// The next page of items.
    Page(Vec<T>),
    /// A `continue` token expired: the list starts over, so forget the pages so far.
    Restart,
}

/// Lists every item at `url_path`, page by page, handing each to `on`.
pub async fn list_all<T: DeserializeOwned>(
    client: &Client,
    url_path: &str,
    field_selector: Option<&str>,
    mut on: impl FnMut(Listed<T>),
) -> Result<(), ApiError> {
    let request = Request::new(url_path);
    let mut token: Option<String> = None;
    let mut restarts = 0;
    loop {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if let Some(f) = field_selector {
            params = params.fields(f);
        }
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let http_request = request.list(&params).map_err(|e| ApiError::Transport(e.to_string()))?;
        match get_page::<T>(client, http_request).await {
            Ok(page) => {
                on(Listed::Page(page.items));
                match page.metadata.cont.filter(|c| !c.is_empty()) {
                    Some(next) => token = Some(next),
                    None => return Ok(()),
                }
            }
            Err(ApiError::Status { code: 410, .. }) if token.is_some() && restarts < MAX_RESTARTS => {
                restarts += 1;
                token = None;
                on(Listed::Restart);
            }
            Err(e) => return Err(e),
        }
    }
}

/// `/api/v1/nodes`.
pub fn nodes_path() -> String {
    Node::url_path(&(), None)
}

/// `/api/v1/pods` (all namespaces).
pub fn pods_path() -> String {
    Pod::url_path(&(), None)
}
