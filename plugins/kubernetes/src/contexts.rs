//! Which clusters to ask: kubeconfig contexts (from `KUBECONFIG`, several
//! files merged as kubectl merges them, or `~/.kube/config`), or the pod's
//! own service account when running inside a cluster.

use std::{path::PathBuf, time::Duration};

use kube::config::{KubeConfigOptions, Kubeconfig};
use skyhost_plugin_api::{ClusterError, ErrorKind, PluginError};

/// Name of the in-cluster "context".
pub const IN_CLUSTER: &str = "in-cluster";

/// Where cluster credentials come from.
pub enum Source {
    /// A (merged) kubeconfig.
    Kubeconfig(Box<Kubeconfig>),
    /// The pod's service account.
    InCluster,
}

fn kubeconfig_label() -> String {
    std::env::var("KUBECONFIG").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "~/.kube/config".to_string())
}

/// The kubeconfig files to read: those on `KUBECONFIG`, or `~/.kube/config`.
fn kubeconfig_paths() -> Vec<PathBuf> {
    let listed: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    if !listed.is_empty() {
        return listed;
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".kube/config"))
        .into_iter()
        .collect()
}

/// Reads the kubeconfig (the files on `KUBECONFIG` that exist, merged in
/// order, as kubectl skips missing ones), or falls back to the in-cluster
/// service account when there is none.
pub fn load() -> Result<Source, PluginError> {
    let paths = kubeconfig_paths();
    let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    if existing.is_empty() {
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return Ok(Source::InCluster);
        }
        let message = match paths.as_slice() {
            [] => "no kubeconfig: KUBECONFIG is unset and there is no home directory".to_string(),
            [one] => format!("no kubeconfig: {} does not exist", one.display()),
            many => format!(
                "no kubeconfig: none of the files on KUBECONFIG exist ({})",
                many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        };
        return Err(PluginError::new(ErrorKind::NotConfigured, message)
            .with_hint("point KUBECONFIG at a kubeconfig, or run skyhost in a pod with a service account"));
    }
    let mut merged = Kubeconfig::default();
    for path in existing {
        merged = Kubeconfig::read_from(path).and_then(|k| merged.merge(k)).map_err(|e| {
            PluginError::new(
                ErrorKind::Config,
                format!(
                    "kubeconfig {} cannot be used: {}",
                    path.display(),
                    crate::api::root_cause(&e).lines().next().unwrap_or_default()
                ),
            )
            .with_hint(format!("fix {} (`kubectl config view` shows what kubectl makes of it)", path.display()))
        })?;
    }
    Ok(Source::Kubeconfig(Box::new(merged)))
}

/// The contexts to ask: `named`, every context (`all`), or the current one.
pub fn select(source: &Source, named: &[String], all: bool) -> Result<Vec<String>, PluginError> {
    let Source::Kubeconfig(k) = source else { return Ok(vec![IN_CLUSTER.to_string()]) };
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    if all {
        return Ok(k.contexts.iter().map(|c| c.name.clone()).collect());
    }
    match k.current_context.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Ok(vec![c.to_string()]),
        None => Err(PluginError::new(ErrorKind::Config, format!("kubeconfig {} sets no current context", kubeconfig_label()))
            .with_hint("name one with --context, set `allowed_contexts` in the skyhost config, or run `kubectl config use-context NAME`")),
    }
}

/// The note for a context whose cluster entry sets `insecure-skip-tls-verify`.
pub const INSECURE_NOTE: &str = "the kubeconfig sets insecure-skip-tls-verify for this cluster, so its API server's \
     certificate is not checked and anyone on the way could answer in its place; set certificate-authority-data instead";

/// The debugging hint for a context.
pub fn kubectl_hint(context: &str) -> String {
    if context == IN_CLUSTER {
        "run `kubectl get nodes` from the pod to see what the API server says".to_string()
    } else {
        format!("run `kubectl --context {context} get nodes` to see what the API server says")
    }
}

/// A client configuration for `context`, with `timeout` on connecting and reading.
pub async fn client_config(source: &Source, context: &str, timeout: Duration) -> Result<kube::Config, ClusterError> {
    let mut config = match source {
        Source::InCluster => kube::Config::incluster().map_err(|e| ClusterError {
            reason: format!("in-cluster configuration failed: {}", crate::api::root_cause(&e)),
            hint: Some("check the pod's service account".into()),
        })?,
        Source::Kubeconfig(k) => {
            if !k.contexts.iter().any(|c| c.name == context) {
                let known: Vec<&str> = k.contexts.iter().map(|c| c.name.as_str()).collect();
                return Err(ClusterError {
                    reason: format!("context '{context}' is not in the kubeconfig (it has: {})", known.join(", ")),
                    hint: Some("run `kubectl config get-contexts` to list them".into()),
                });
            }
            let options = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
            kube::Config::from_custom_kubeconfig((**k).clone(), &options).await.map_err(|e| ClusterError {
                reason: format!("context '{context}' is misconfigured: {}", crate::api::root_cause(&e)),
                hint: Some(format!("fix it in the kubeconfig; {}", kubectl_hint(context))),
            })?
        }
    };
    let cluster_proxy = match source {
        Source::Kubeconfig(k) => cluster_of(k, context).and_then(|c| c.proxy_url.clone()),
        Source::InCluster => None,
    };
    config.proxy_url = crate::proxy::choose(cluster_proxy.as_deref(), &config.cluster_url).map_err(|reason| {
        ClusterError { reason, hint: Some("fix the proxy setting, or unset it to connect directly".into()) }
    })?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    Ok(config)
}

/// Why a client for `context` could not be built, and what to do. (Credential
/// helpers are run before this, by [`crate::credential_helper`].)
pub fn client_error(context: &str, e: &kube::Error) -> ClusterError {
    ClusterError {
        reason: format!("cannot build a client: {}", crate::api::root_cause(e)),
        hint: Some(kubectl_hint(context)),
    }
}

/// The cluster entry that `context` names.
fn cluster_of<'a>(k: &'a Kubeconfig, context: &str) -> Option<&'a kube::config::Cluster> {
    let name = k.contexts.iter().find(|c| c.name == context)?.context.as_ref()?.cluster.clone();
    k.clusters.iter().find(|c| c.name == name)?.cluster.as_ref()
}
