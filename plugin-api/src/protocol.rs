//! The JSON messages that cross the boundary, shared by host and plugins.
//!
//! Every struct here may gain fields in a minor version. Readers therefore
//! ignore unknown fields and default missing ones (`#[serde(default)]`), and
//! writers never remove or retype a field within a major version.

use serde::{Deserialize, Serialize};

/// Method names a plugin may implement (see [`PluginInfo::methods`]), and
/// since 1.3 each as a [`Method`](crate::Method) type for a typed router
/// ([`Router`](crate::sdk::Router)).
pub mod method {
    /// [`GpuQuery`](super::GpuQuery) → [`GpuQueryResponse`](super::GpuQueryResponse): offerings from a catalog.
    pub const GPU_QUERY: &str = "gpus.query";
    /// [`ClusterQuery`](super::ClusterQuery) → [`ClusterReport`](super::ClusterReport): realtime GPUs of live clusters.
    pub const CLUSTER_GPUS: &str = "clusters.gpus";
    /// [`CheckRequest`](super::CheckRequest) → [`CheckReport`](super::CheckReport):
    /// is the backend usable? (since 1.1)
    pub const CHECK: &str = "check";
    /// [`CatalogStatsRequest`](super::CatalogStatsRequest) → [`CatalogStats`](super::CatalogStats):
    /// what a catalog file holds. (since 1.1)
    pub const CATALOG_STATS: &str = "catalog.stats";

    use crate::typed::Method;

    /// [`GPU_QUERY`], declared for a typed router (since 1.3).
    #[derive(Debug)]
    pub struct GpuQueryCall;
    impl Method for GpuQueryCall {
        const NAME: &'static str = GPU_QUERY;
        type Request = super::GpuQuery;
        type Response = super::GpuQueryResponse;
    }

    /// [`CLUSTER_GPUS`], declared for a typed router (since 1.3).
    #[derive(Debug)]
    pub struct ClusterGpusCall;
    impl Method for ClusterGpusCall {
        const NAME: &'static str = CLUSTER_GPUS;
        type Request = super::ClusterQuery;
        type Response = super::ClusterReport;
    }

    /// [`CHECK`], declared for a typed router (since 1.3).
    #[derive(Debug)]
    pub struct CheckCall;
    impl Method for CheckCall {
        const NAME: &'static str = CHECK;
        type Request = super::CheckRequest;
        type Response = super::CheckReport;
    }

    /// [`CATALOG_STATS`], declared for a typed router (since 1.3).
    #[derive(Debug)]
    pub struct CatalogStatsCall;
    impl Method for CatalogStatsCall {
        const NAME: &'static str = CATALOG_STATS;
        type Request = super::CatalogStatsRequest;
        type Response = super::CatalogStats;
    }
}

/// Capability names: what kind of GPU source a backend is.
pub mod capability {
    /// Priced offerings from a catalog; answers [`method::GPU_QUERY`](super::method::GPU_QUERY).
    pub const CATALOG: &str = "catalog";
    /// Live clusters; answers [`method::CLUSTER_GPUS`](super::method::CLUSTER_GPUS).
    pub const CLUSTERS: &str = "clusters";
}

/// What a plugin says about itself; returned by `describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Backend name, as in the file name `libskyhost_<name>.so`.
    pub name: String,
    /// Name for people (`AWS`, `Kubernetes`).
    #[serde(default)]
    pub display_name: String,
    /// The plugin's own version.
    pub version: String,
    /// The `skyhost-plugin-api` version the plugin was built against.
    pub interface_version: String,
    /// One line on what the backend does.
    #[serde(default)]
    pub description: String,
    /// See [`capability`].
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// See [`method`].
    #[serde(default)]
    pub methods: Vec<String>,
    /// Which compiler and target built the plugin.
    #[serde(default)]
    pub build: BuildInfo,
    /// The SkyPilot catalog file this backend reads, if any. (since 1.1)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogSpec>,
    /// When not empty, the plugin serves these backends and `name` names the
    /// file only. The host calls a member's methods as `<backend>/<method>`. (since 1.1)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendInfo>,
}

/// One backend of a plugin that serves several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendInfo {
    /// Backend name.
    pub name: String,
    /// Name for people.
    pub display_name: String,
    /// One line on what the backend does.
    pub description: String,
    /// See [`capability`].
    pub capabilities: Vec<String>,
    /// See [`method`], called as `<name>/<method>`.
    pub methods: Vec<String>,
    /// The catalog file this backend reads, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogSpec>,
}

/// Which SkyPilot-format catalog a backend reads. The host finds the file
/// (catalog directory, cache, download) and passes its path in each request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogSpec {
    /// Path under a schema root such as `~/.sky/catalogs/v8`: `aws/vms.csv`.
    pub file: String,
    /// How old a cached copy may get before it is downloaded again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_hours: Option<f64>,
    /// Date of the copy compiled into the plugin (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded_date: Option<String>,
}

/// The compiler and target a plugin was built with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `rustc --version` of the compiler.
    #[serde(default)]
    pub rustc: String,
    /// Target triple.
    #[serde(default)]
    pub target: String,
    /// Cargo profile (`debug` or `release`).
    #[serde(default)]
    pub profile: String,
}

/// An error a plugin returns instead of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginError {
    /// What class of failure this is.
    pub kind: ErrorKind,
    /// What went wrong, naming the file or context.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Classes of [`PluginError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The plugin does not implement the method.
    UnknownMethod,
    /// The request did not parse or made no sense.
    BadRequest,
    /// The backend's input (catalog, kubeconfig) is unusable.
    Config,
    /// The backend has nothing to ask: it is not set up here (no kubeconfig,
    /// no credentials). Not a failure; a listing that does not need the
    /// backend skips it with a note. (since 1.2; older hosts read `other`)
    NotConfigured,
    /// The backend's service could not be reached in time.
    Unavailable,
    /// The plugin panicked; the guard caught it.
    Panic,
    /// Anything else.
    #[serde(other)]
    Other,
}

impl PluginError {
    /// An error of `kind` with `message` and no hint.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), hint: None }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

/// Request of [`method::GPU_QUERY`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuQuery {
    /// Catalog file (`vms.csv`) to read; `None` for the plugin's embedded copy.
    pub catalog_path: Option<String>,
    /// Accelerator name pattern: a case-insensitive regular expression that
    /// may match anywhere in the name (as `sky show-gpus NAME` does).
    pub name: Option<String>,
    /// Only offerings with exactly this many accelerators.
    pub quantity: Option<f64>,
    /// Only this region (case-insensitive exact match).
    pub region: Option<String>,
    /// One offering per instance type and region instead of the cheapest region.
    pub all_regions: bool,
    /// Fill [`GpuQueryResponse::counts`].
    pub want_counts: bool,
    /// Fill [`GpuQueryResponse::offerings`].
    pub want_offerings: bool,
}

/// Response of [`method::GPU_QUERY`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuQueryResponse {
    /// Accelerator names with the quantities offered, names sorted.
    pub counts: Vec<AcceleratorQuantities>,
    /// Offerings, in catalog order rules (see the catalog crate).
    pub offerings: Vec<Offering>,
    /// Problems that did not stop the answer (skipped rows).
    pub warnings: Vec<String>,
}

/// An accelerator name and the per-VM quantities offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceleratorQuantities {
    /// Accelerator name.
    pub name: String,
    /// Quantities, ascending, without repeats.
    pub quantities: Vec<f64>,
}

/// One priced way to get accelerators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    /// The table this row is listed under when it is not the accelerator's
    /// own (GCP's `tpu-v5p` gathers `tpu-v5p-8`, `tpu-v5p-16`, ...). (since 1.1)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Accelerator name.
    pub accelerator: String,
    /// Accelerators per VM; may be fractional.
    pub quantity: f64,
    /// VM type; `None` for accelerators attached without one (TPUs).
    pub instance_type: Option<String>,
    /// Memory of one device in GiB.
    pub device_memory_gib: Option<f64>,
    /// vCPUs of the VM.
    pub vcpus: Option<f64>,
    /// Memory of the VM in GiB.
    pub host_memory_gib: Option<f64>,
    /// On-demand USD per hour.
    pub price: Option<f64>,
    /// Spot USD per hour.
    pub spot_price: Option<f64>,
    /// Region of the price shown.
    pub region: Option<String>,
}

/// Request of [`method::CLUSTER_GPUS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterQuery {
    /// Clusters (kube contexts) to query; empty for the backend's default.
    pub clusters: Vec<String>,
    /// Query every cluster the backend knows.
    pub all_clusters: bool,
    /// Deadline per cluster, in seconds.
    pub timeout_secs: f64,
    /// Accelerator name pattern (case-insensitive, anchored at the start).
    pub name: Option<String>,
    /// Only nodes that can give this many GPUs.
    pub quantity: Option<u32>,
    /// The backend's own section of skyhost's config file (`[slurm]`), as
    /// JSON; the backend validates it. (since 1.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// Taints the user's pods tolerate (`[kubernetes] tolerations`,
    /// `--toleration`): a node tainted only by these, or by a well-known GPU
    /// dedication taint, still counts as ready. Older hosts
    /// send none.
    pub tolerations: Vec<Toleration>,
}

impl Default for ClusterQuery {
    fn default() -> Self {
        Self {
            clusters: Vec::new(),
            all_clusters: false,
            timeout_secs: 10.0,
            name: None,
            quantity: None,
            settings: None,
            tolerations: Vec::new(),
        }
    }
}

/// A toleration, with the meaning Kubernetes gives it: it tolerates a taint
/// when the effects are equal or its own is empty, and the keys are equal or
/// its own is empty with `Exists`; with `Exists` any value matches, with
/// `Equal` the values must be equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Toleration {
    /// Taint key; empty (with `Exists`) for every key.
    pub key: String,
    /// `Exists` or `Equal`.
    pub operator: String,
    /// Value, for `Equal`.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; empty for every effect.
    pub effect: String,
}

/// Response of [`method::CLUSTER_GPUS`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterReport {
    /// One entry per cluster queried, in the order asked.
    pub clusters: Vec<Cluster>,
    /// Notes about the selection (contexts skipped and why).
    pub notes: Vec<String>,
    /// What one cluster is called in messages: `context` when unset (Kubernetes),
    /// `cluster` (Slurm). (since 1.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_noun: Option<String>,
}

/// The GPUs of one cluster, or why they could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cluster {
    /// Cluster (context) name.
    pub name: String,
    /// Set when the cluster could not be read; then the lists are empty.
    pub error: Option<ClusterError>,
    /// Per GPU type totals, sorted by name.
    pub gpus: Vec<ClusterGpu>,
    /// Every node, GPU or not.
    pub nodes: Vec<ClusterNode>,
    /// Notes on this cluster (pods not listable, unlabelled GPU nodes).
    pub notes: Vec<String>,
    /// Per partition (Slurm) totals, in the cluster's order. (since 1.3)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<ClusterPartition>,
}

/// The GPUs of one partition of a cluster. (since 1.3)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterPartition {
    /// Partition name.
    pub name: String,
    /// Per GPU type totals over the partition's nodes, sorted by name.
    pub gpus: Vec<ClusterGpu>,
}

/// The GPUs of one type on one node. (since 1.3)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeGpu {
    /// Canonical GPU name.
    pub name: String,
    /// GPUs of this type on the node.
    pub total: u32,
    /// Free ones; `None` when unknown.
    pub free: Option<u32>,
}

/// Why a cluster could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterError {
    /// What went wrong.
    pub reason: String,
    /// What to run or change.
    pub hint: Option<String>,
}

/// Totals for one GPU type in one cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterGpu {
    /// Canonical GPU name.
    pub name: String,
    /// Quantities one pod can request on some node.
    pub requestable_quantities: Vec<u32>,
    /// GPUs on schedulable nodes.
    pub capacity: u32,
    /// Free GPUs; `None` when pods could not be listed.
    pub free: Option<u32>,
    /// GPUs on nodes that are not ready, cordoned or tainted.
    pub not_ready: u32,
}

/// One node of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterNode {
    /// Node name.
    pub name: String,
    /// Allocatable vCPUs.
    pub cpu_total: Option<f64>,
    /// vCPUs not requested by pods; `None` when unknown.
    pub cpu_free: Option<f64>,
    /// Allocatable memory in GB.
    pub memory_gb_total: Option<f64>,
    /// Memory not requested by pods, in GB; `None` when unknown.
    pub memory_gb_free: Option<f64>,
    /// Canonical GPU name; `None` for CPU nodes and unlabelled GPU nodes.
    pub gpu: Option<String>,
    /// Allocatable GPUs (or TPU chips).
    pub gpu_total: u32,
    /// Free GPUs; `None` when pods could not be listed.
    pub gpu_free: Option<u32>,
    /// The node's Ready condition is True.
    pub ready: bool,
    /// `spec.unschedulable` is set.
    pub cordoned: bool,
    /// The node's NoSchedule and NoExecute taints; those not
    /// [`Taint::tolerated`] keep GPU pods off the node.
    pub taints: Vec<Taint>,
    /// The node has GPU resources but no label naming the GPU type.
    pub unlabeled_gpu: bool,
    /// The node's state as its scheduler words it (`MIXED+DRAIN`). (since 1.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Partitions (queues) the node belongs to. (since 1.3)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
    /// Every GPU type of the node, when it reports them per type; `gpu`,
    /// `gpu_total` and `gpu_free` then hold the first type and the sums. (since 1.3)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<NodeGpu>,
}

/// A node taint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value, often empty (older plugins leave it empty).
    pub value: String,
    /// `NoSchedule` or `NoExecute`.
    pub effect: String,
    /// The taint does not keep GPU pods off the node: a well-known GPU
    /// dedication taint, a control-plane taint, or one the query's
    /// tolerations tolerate. Older plugins list only the
    /// taints that keep GPU pods off.
    pub tolerated: bool,
}

/// Request of [`method::CHECK`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckRequest {
    /// Catalog file, as in [`GpuQuery::catalog_path`].
    pub catalog_path: Option<String>,
    /// Clusters, as in [`ClusterQuery::clusters`].
    pub clusters: Vec<String>,
    /// As in [`ClusterQuery::all_clusters`].
    pub all_clusters: bool,
    /// As in [`ClusterQuery::timeout_secs`].
    pub timeout_secs: f64,
    /// As in [`ClusterQuery::settings`]. (since 1.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

impl Default for CheckRequest {
    fn default() -> Self {
        Self { catalog_path: None, clusters: Vec::new(), all_clusters: false, timeout_secs: 10.0, settings: None }
    }
}

/// Response of [`method::CHECK`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckReport {
    /// One item per thing checked (a catalog, a context).
    pub items: Vec<CheckItem>,
}

/// The outcome of checking one thing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckItem {
    /// What was checked (`catalog`, a context name).
    pub subject: String,
    /// Usable.
    pub ok: bool,
    /// One line.
    pub summary: String,
    /// Further lines.
    pub details: Vec<String>,
    /// What to do when not ok.
    pub hint: Option<String>,
}

/// Request of [`method::CATALOG_STATS`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogStatsRequest {
    /// Catalog file, as in [`GpuQuery::catalog_path`].
    pub catalog_path: Option<String>,
}

/// Response of [`method::CATALOG_STATS`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogStats {
    /// Data rows read.
    pub rows: u64,
    /// Rows that offer an accelerator.
    pub accelerator_rows: u64,
    /// Distinct accelerator names.
    pub accelerators: u64,
    /// Malformed rows skipped.
    pub skipped_rows: u64,
    /// Warnings, as in [`GpuQueryResponse::warnings`].
    pub warnings: Vec<String>,
}
