//! The Kubernetes backend: realtime GPU availability of every selected
//! context, queried concurrently, each with its own deadline.
//!
//! The plugin builds its own tokio runtime on first use (never shared with
//! the host, never dropped) and answers the host's blocking calls from it.

pub mod api;
pub mod contexts;
pub mod credential_helper;
pub mod labels;
pub mod proxy;
pub mod quantity;
pub mod scan;
pub mod taints;

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use regex_lite::RegexBuilder;
use skyhost_plugin_api::{
    CheckItem, CheckReport, CheckRequest, Cluster, ClusterError, ClusterQuery, ClusterReport, Description, ErrorKind,
    PluginError, capability, method,
    sdk::{Router, TypedBackend},
};

use crate::{api::ApiError, contexts::Source, credential_helper::Helper};

/// The backend.
pub struct Kubernetes {
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
}

fn new() -> Result<Kubernetes, String> {
    Ok(Kubernetes { runtime: OnceLock::new() })
}

skyhost_plugin_api::export_typed_backend!(Kubernetes, new);

/// One context's outcome: its summary, and what the check reports.
struct Outcome {
    cluster: Cluster,
    pods_listable: bool,
}

fn explain(e: &ApiError, context: &str, what: &str, timeout: Duration) -> ClusterError {
    if let ApiError::Transport(m) = e
        && let Some(detail) = m.split("invalid peer certificate: ").nth(1)
    {
        let ca = if context == contexts::IN_CLUSTER {
            "the service account's ca.crt".to_string()
        } else {
            format!("the kubeconfig for context '{context}' (certificate-authority or certificate-authority-data)")
        };
        return ClusterError {
            reason: format!("the API server's TLS certificate is not trusted ({detail})"),
            hint: Some(format!(
                "the server's certificate must be issued by the CA in {ca}; fetch fresh credentials from the cluster's provider, then {}",
                contexts::kubectl_hint(context)
            )),
        };
    }
    let hint = Some(contexts::kubectl_hint(context));
    let reason = match e {
        ApiError::Status { code: 401, .. } => "unauthorized (401): the API server rejected the credentials".to_string(),
        ApiError::Status { code: 403, message } => format!("forbidden (403) to list {what}: {message}"),
        ApiError::Status { code, message } => format!("the API server answered {code} when listing {what}: {message}"),
        ApiError::Transport(m) if m.contains("elapsed") || m.contains("timed out") => {
            format!("no answer within {} s", timeout.as_secs_f64())
        }
        ApiError::Transport(m) => format!("cannot reach the API server: {m}"),
        ApiError::Parse(m) => format!("the API server sent {what} that do not parse: {m}"),
    };
    ClusterError { reason, hint }
}

async fn scan_context(source: &Source, context: String, timeout: Duration, filter: &scan::Filter) -> Outcome {
    let failed = |error: ClusterError| Outcome {
        cluster: Cluster { name: context.clone(), error: Some(error), ..Default::default() },
        pods_listable: false,
    };
    let deadline = Instant::now() + timeout;
    // The credential helper running when the deadline passes, to name it.
    let running_helper: Arc<Mutex<Option<Helper>>> = Arc::default();
    let mut insecure = false;
    let work = async {
        let mut config = match contexts::client_config(source, &context, timeout).await {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        insecure = config.accept_invalid_certs;
        if let Some(helper) = Helper::of(&config) {
            *running_helper.lock().expect("helper lock") = Some(helper.clone());
            match helper.run(deadline).await {
                Ok(credentials) => credential_helper::apply(&mut config, credentials),
                Err(e) => return failed(helper.explain(&e, &context, timeout)),
            }
            *running_helper.lock().expect("helper lock") = None;
        }
        let client = match kube::Client::try_from(config) {
            Ok(c) => c,
            Err(e) => return failed(contexts::client_error(&context, &e)),
        };
        match scan::read_cluster(&client).await {
            Err(e) => failed(explain(&e, &context, "nodes", timeout)),
            Ok((nodes, Ok(held))) => {
                Outcome { cluster: scan::summarise(&context, &nodes, Some(&held), filter), pods_listable: true }
            }
            Ok((nodes, Err(ApiError::Status { code: 403, message }))) => {
                let mut cluster = scan::summarise(&context, &nodes, None, filter);
                cluster.notes.push(format!(
                    "cannot list pods (403 forbidden: {message}), so free GPUs are unknown; grant `list` on pods in all namespaces to see them"
                ));
                Outcome { cluster, pods_listable: false }
            }
            Ok((_, Err(e))) => failed(explain(&e, &context, "pods", timeout)),
        }
    };
    let mut outcome = match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(outcome) => outcome,
        Err(_) => match running_helper.lock().expect("helper lock").take() {
            Some(helper) => failed(helper.timed_out(&context, timeout)),
            None => failed(ClusterError {
                reason: format!("no answer within {} s", timeout.as_secs_f64()),
                hint: Some(format!(
                    "{}; raise `timeout_secs` under [kubernetes] if the cluster is just slow",
                    contexts::kubectl_hint(&context)
                )),
            }),
        },
    };
    if insecure {
        outcome.cluster.notes.push(contexts::INSECURE_NOTE.to_string());
    }
    outcome
}

impl Kubernetes {
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, PluginError> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("skyhost-kubernetes")
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| PluginError::new(ErrorKind::Other, format!("cannot start the Kubernetes client runtime: {e}")))
    }

    /// Scans the selected contexts concurrently.
    fn outcomes(
        &self,
        clusters: &[String],
        all: bool,
        timeout_secs: f64,
        filter: scan::Filter,
    ) -> Result<Vec<Outcome>, PluginError> {
        let source = contexts::load()?;
        let names = contexts::select(&source, clusters, all)?;
        let timeout = Duration::from_secs_f64(timeout_secs.clamp(0.05, 3600.0));
        let runtime = self.runtime()?;
        Ok(runtime.block_on(async {
            let source = std::sync::Arc::new(source);
            let filter = std::sync::Arc::new(filter);
            let tasks: Vec<_> = names
                .iter()
                .map(|name| {
                    let (source, filter, name) = (source.clone(), filter.clone(), name.clone());
                    tokio::spawn(async move { scan_context(&source, name, timeout, &filter).await })
                })
                .collect();
            let mut out = Vec::with_capacity(tasks.len());
            for (task, name) in tasks.into_iter().zip(&names) {
                out.push(task.await.unwrap_or_else(|e| Outcome {
                    cluster: Cluster {
                        name: name.clone(),
                        error: Some(ClusterError { reason: format!("internal error: {e}"), hint: None }),
                        ..Default::default()
                    },
                    pods_listable: false,
                }));
            }
            out
        }))
    }

    fn gpus(&self, q: ClusterQuery) -> Result<ClusterReport, PluginError> {
        let name = q
            .name
            .as_deref()
            .map(|n| RegexBuilder::new(&format!("^(?:{n})")).case_insensitive(true).build())
            .transpose()
            .map_err(|e| PluginError::new(ErrorKind::BadRequest, format!("invalid GPU name pattern: {e}")))?;
        let outcomes = self.outcomes(
            &q.clusters,
            q.all_clusters,
            q.timeout_secs,
            scan::Filter {
                name,
                identity: q.name.as_deref().and_then(skyhost_gpu_identity::canonical),
                quantity: q.quantity,
                tolerations: q.tolerations.clone(),
            },
        )?;
        Ok(ClusterReport {
            clusters: outcomes.into_iter().map(|o| o.cluster).collect(),
            notes: Vec::new(),
            ..Default::default()
        })
    }

    fn check(&self, r: CheckRequest) -> Result<CheckReport, PluginError> {
        let outcomes = self.outcomes(&r.clusters, r.all_clusters, r.timeout_secs, scan::Filter::default())?;
        let items = outcomes
            .into_iter()
            .map(|o| {
                let c = o.cluster;
                match c.error {
                    Some(e) => CheckItem {
                        subject: c.name,
                        ok: false,
                        summary: format!("unreachable: {}", e.reason),
                        details: vec![],
                        hint: e.hint,
                    },
                    None => {
                        let gpu_nodes = c.nodes.iter().filter(|n| n.gpu_total > 0).count();
                        let unlabeled = c.nodes.iter().filter(|n| n.unlabeled_gpu).count();
                        let types: Vec<String> =
                            c.gpus.iter().map(|g| format!("{} ×{}", g.name, g.capacity + g.not_ready)).collect();
                        CheckItem {
                            subject: c.name,
                            ok: true,
                            summary: format!(
                                "reachable; {} nodes, {gpu_nodes} with GPUs{}; {unlabeled} unlabeled GPU node(s); {}",
                                c.nodes.len(),
                                if types.is_empty() { String::new() } else { format!(" ({})", types.join(", ")) },
                                if o.pods_listable { "can list pods" } else { "cannot list pods (free GPUs unknown)" }
                            ),
                            details: c.notes,
                            hint: None,
                        }
                    }
                }
            })
            .collect();
        Ok(CheckReport { items })
    }
}

impl TypedBackend for Kubernetes {
    fn describe(&self) -> Description {
        Description {
            name: "kubernetes".into(),
            display_name: "Kubernetes".into(),
            description: "realtime GPU availability of Kubernetes clusters, every context at once".into(),
            capabilities: vec![capability::CLUSTERS.into()],
            ..Default::default()
        }
    }

    fn router() -> Router<Self> {
        Router::new().method::<method::ClusterGpusCall>(Self::gpus).method::<method::CheckCall>(Self::check)
    }
}
