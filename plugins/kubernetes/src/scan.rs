//! One context: list its nodes and its active pods at the same time, keep only
//! per-node sums of what the pods request, and turn them into GPU totals.
//!
//! Free GPUs follow the scheduler: a pod holds its effective request (see
//! [`effective_request`]) on its node until it reaches a terminal phase; Pending, Running
//! and Unknown pods, terminating ones too, all hold it. Free = allocatable −
//! held, never below zero. GPUs on nodes that are NotReady, cordoned or
//! tainted NoSchedule/NoExecute by a taint GPU pods do not tolerate (see
//! `taints`) count as not ready.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kube::Client;
use regex_lite::Regex;
use skyhost_plugin_api::{Cluster, ClusterGpu, ClusterNode, Taint, Toleration};

use skyhost_gpu_identity as identity;

use crate::{
    api::{self, ApiError, Listed, NodeItem, PodItem},
    labels::{self, Accelerator},
    quantity, taints,
};

/// Resource keys counted as GPUs, in the order they are looked for
/// (`nvidia.com/gpu.shared`: time-sliced or MPS replicas, renamed).
pub const GPU_KEYS: [&str; 4] = ["nvidia.com/gpu", "amd.com/gpu", "google.com/tpu", "nvidia.com/gpu.shared"];

/// What is requested on one node.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Held {
    /// GPUs (any GPU key).
    pub gpus: f64,
    /// MIG slices per resource name (`nvidia.com/mig-1g.10gb`).
    pub mig: Vec<(Box<str>, f64)>,
    /// vCPUs.
    pub cpu: f64,
    /// Memory, bytes.
    pub memory: f64,
}

fn amount(map: Option<&BTreeMap<String, String>>, key: &str) -> f64 {
    map.and_then(|m| m.get(key)).and_then(|q| quantity::parse(q)).unwrap_or(0.0)
}

fn listed(list: Option<&api::ResourceList<'_>>, key: &str) -> Option<f64> {
    list.and_then(|l| l.get(key)).and_then(quantity::parse)
}

/// A container's request of `key`: its request, or its limit when it sets no
/// request (as the API server defaults it).
fn container_request(c: &api::Container<'_>, key: &str) -> f64 {
    listed(c.resources.requests.as_ref(), key).or_else(|| listed(c.resources.limits.as_ref(), key)).unwrap_or(0.0)
}

/// The scheduler's effective request of a pod for `key` (Kubernetes'
/// `PodRequests`): containers and native sidecars (init containers with
/// `restartPolicy: Always`) add up; an ordinary init container runs alone
/// beside the sidecars started before it; the larger of the two, plus
/// overhead. A pod-level request of cpu or memory replaces the containers'.
pub fn effective_request(pod: &PodItem<'_>, key: &str) -> f64 {
    let overhead = listed(pod.spec.overhead.as_ref(), key).unwrap_or(0.0);
    if matches!(key, "cpu" | "memory")
        && let Some(r) = pod.spec.resources.as_ref()
        && let Some(v) = listed(r.requests.as_ref(), key).or_else(|| listed(r.limits.as_ref(), key))
    {
        return v + overhead;
    }
    let containers: f64 = pod.spec.containers.iter().map(|c| container_request(c, key)).sum();
    let (mut sidecars, mut init_peak) = (0.0, 0.0f64);
    for c in &pod.spec.init_containers {
        let r = container_request(c, key);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars += r;
            init_peak = init_peak.max(sidecars);
        } else {
            init_peak = init_peak.max(r + sidecars);
        }
    }
    (containers + sidecars).max(init_peak) + overhead
}

/// The MIG resources a pod names anywhere (almost always none).
fn mig_keys(pod: &PodItem<'_>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let lists = pod
        .spec
        .containers
        .iter()
        .chain(&pod.spec.init_containers)
        .flat_map(|c| [c.resources.requests.as_ref(), c.resources.limits.as_ref()]);
    for list in lists.flatten() {
        for (k, _) in &list.mig {
            if !keys.iter().any(|have| have == k) {
                keys.push(k.to_string());
            }
        }
    }
    keys
}

/// Adds what `pod` holds to its node's sums; pods in a terminal phase and
/// unscheduled pods hold nothing.
pub fn fold_pod(held: &mut HashMap<String, Held>, pod: &PodItem<'_>) {
    if matches!(pod.status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return;
    }
    let Some(node) = pod.spec.node_name.as_deref().filter(|n| !n.is_empty()) else { return };
    let h = match held.get_mut(node) {
        Some(h) => h,
        None => held.entry(node.to_string()).or_default(),
    };
    h.gpus += GPU_KEYS.iter().map(|k| effective_request(pod, k)).sum::<f64>();
    for key in mig_keys(pod) {
        let amount = effective_request(pod, &key);
        match h.mig.iter_mut().find(|(k, _)| **k == *key) {
            Some((_, held)) => *held += amount,
            None => h.mig.push((key.into(), amount)),
        }
    }
    h.cpu += effective_request(pod, "cpu");
    h.memory += effective_request(pod, "memory");
}

/// What one node contributes.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    name: String,
    accelerator: Option<Accelerator>,
    gpu_total: u32,
    cpu: Option<f64>,
    memory: Option<f64>,
    ready: bool,
    cordoned: bool,
    taints: Vec<Taint>,
    multi_host_tpu: bool,
    /// MIG profiles offered as their own resources (strategy `mixed`):
    /// (profile, slices).
    mig: Vec<(String, u32)>,
    /// GPUs shared by time-slicing or MPS: (replicas per GPU, physical GPUs).
    shared: Option<(u32, u32)>,
}

/// Replicas per GPU and physical GPUs of a node whose `units` GPU units are
/// time-sliced or MPS-shared replicas, from the labels of GPU feature
/// discovery (`nvidia.com/gpu.replicas`, `nvidia.com/gpu.count`) or GKE
/// (`gke-max-shared-clients-per-gpu`, `gke-accelerator-count`).
fn sharing(labels: &BTreeMap<String, String>, units: u32, renamed: bool) -> Option<(u32, u32)> {
    let number = |k: &str| labels.get(k).and_then(|v| v.trim().parse::<u32>().ok());
    let replicas =
        number("nvidia.com/gpu.replicas").or_else(|| number("cloud.google.com/gke-max-shared-clients-per-gpu"));
    let replicas = match replicas {
        Some(r) if r > 1 => r,
        _ if renamed => 0,
        _ => return None,
    };
    let physical = number("nvidia.com/gpu.count")
        .or_else(|| number("cloud.google.com/gke-accelerator-count"))
        .or_else(|| (replicas > 0).then(|| units.div_ceil(replicas)))
        .unwrap_or(0);
    Some((replicas, physical))
}

impl NodeFacts {
    /// Reads the facts of a node.
    pub fn from_item(n: &NodeItem) -> Self {
        let alloc = &n.status.allocatable;
        let (gpu_key, gpu_total) =
            GPU_KEYS.iter().map(|k| (*k, amount(Some(alloc), k))).find(|(_, v)| *v > 0.0).unwrap_or(("", 0.0));
        let mig = alloc
            .range::<str, _>((std::ops::Bound::Included(api::MIG_PREFIX), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(api::MIG_PREFIX))
            .filter_map(|(k, v)| {
                let slices = quantity::parse(v).filter(|s| *s >= 1.0)? as u32;
                Some((k[api::MIG_PREFIX.len()..].to_string(), slices))
            })
            .collect();
        let shared = if gpu_key.starts_with("nvidia.com/gpu") {
            sharing(&n.metadata.labels, gpu_total as u32, gpu_key == "nvidia.com/gpu.shared")
        } else {
            None
        };
        let accelerator = labels::accelerator(&n.metadata.labels);
        let multi_host_tpu = accelerator.as_ref().is_some_and(|a| a.tpu)
            && n.metadata
                .labels
                .get("cloud.google.com/gke-tpu-topology")
                .and_then(|t| labels::topology_chips(t))
                .is_some_and(|chips| f64::from(chips) > gpu_total);
        Self {
            name: n.metadata.name.clone(),
            accelerator,
            gpu_total: gpu_total as u32,
            cpu: alloc.get("cpu").and_then(|q| quantity::parse(q)),
            memory: alloc.get("memory").and_then(|q| quantity::parse(q)),
            ready: n.status.conditions.iter().any(|c| c.kind == "Ready" && c.status == "True"),
            cordoned: n.spec.unschedulable,
            taints: n
                .spec
                .taints
                .iter()
                .filter(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute"))
                .map(|t| Taint {
                    key: t.key.clone(),
                    value: t.value.clone(),
                    effect: t.effect.clone(),
                    tolerated: false,
                })
                .collect(),
            multi_host_tpu,
            mig,
            shared,
        }
    }

    fn schedulable(&self, tolerations: &[Toleration]) -> bool {
        self.ready && !self.cordoned && self.taints.iter().all(|t| taints::tolerated(t, tolerations))
    }
}

/// Lists a context's nodes and active pods, concurrently.
pub async fn read_cluster(
    client: &Client,
) -> Result<(Vec<NodeFacts>, Result<HashMap<String, Held>, ApiError>), ApiError> {
    let nodes = async {
        let mut facts = Vec::new();
        api::list_all::<api::Nodes>(client, &api::nodes_path(), None, |listed| match listed {
            Listed::Page(page) => facts.extend(page.iter().map(NodeFacts::from_item)),
            Listed::Restart => facts.clear(),
        })
        .await
        .map(|()| facts)
    };
    let pods = async {
        let mut held: HashMap<String, Held> = HashMap::new();
        let result =
            api::list_all::<api::Pods>(client, &api::pods_path(), Some(api::ACTIVE_PODS), |listed| match listed {
                Listed::Page(page) => page.iter().for_each(|p| fold_pod(&mut held, p)),
                Listed::Restart => held.clear(),
            })
            .await;
        result.map(|()| held)
    };
    let (nodes, pods) = tokio::join!(nodes, pods);
    Ok((nodes?, pods))
}

/// Powers of two up to `n`, and `n`.
fn requestable(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = std::iter::successors(Some(1u32), |p| p.checked_mul(2)).take_while(|p| *p <= n).collect();
    if n > 0 && !v.contains(&n) {
        v.push(n);
    }
    v
}

/// Query filters for the GPU totals.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Name pattern, matched at the start, ignoring case.
    pub name: Option<Regex>,
    /// The GPU the name pattern names, if it names one of the GPU table:
    /// `H100-80GB` then also matches nodes shown as `H100`.
    pub identity: Option<&'static skyhost_gpu_identity::Gpu>,
    /// Quantity per node.
    pub quantity: Option<u32>,
    /// Taints the user's pods tolerate.
    pub tolerations: Vec<Toleration>,
}

/// Adds one node's GPUs of one name to the totals.
fn add(
    gpus: &mut BTreeMap<String, (ClusterGpu, BTreeSet<u32>)>,
    name: &str,
    pods_listed: bool,
    quantities: Vec<u32>,
    schedulable: bool,
    total: u32,
    free: Option<u32>,
) {
    let (g, qs) = gpus.entry(name.to_string()).or_insert_with(|| {
        (ClusterGpu { name: name.to_string(), free: pods_listed.then_some(0), ..Default::default() }, BTreeSet::new())
    });
    qs.extend(quantities);
    if schedulable {
        g.capacity += total;
        g.free = g.free.zip(free).map(|(a, b)| a + b);
    } else {
        g.not_ready += total;
    }
}

/// Builds the cluster's answer from its nodes and (when pods could be listed)
/// what the pods hold.
pub fn summarise(name: &str, nodes: &[NodeFacts], held: Option<&HashMap<String, Held>>, filter: &Filter) -> Cluster {
    let mut cluster = Cluster { name: name.to_string(), ..Default::default() };
    let mut gpus: BTreeMap<String, (ClusterGpu, BTreeSet<u32>)> = BTreeMap::new();
    let mut unlabeled = Vec::new();
    let mut labeled_without_gpus = Vec::new();
    let mut multi_host = 0;
    let mut unrecognised = BTreeSet::new();
    let (mut shared_nodes, mut shared_physical, mut shared_replicas) = (0, 0, 0);
    for n in nodes {
        let h = held.map(|m| m.get(&n.name).cloned().unwrap_or_default());
        let h = h.as_ref();
        let node_free = h.map(|h| (f64::from(n.gpu_total) - h.gpus).max(0.0) as u32);
        let schedulable = n.schedulable(&filter.tolerations);
        let node_free = if schedulable { node_free } else { node_free.map(|_| 0) };
        cluster.nodes.push(ClusterNode {
            name: n.name.clone(),
            cpu_total: n.cpu,
            cpu_free: h.zip(n.cpu).map(|(h, c)| (c - h.cpu).max(0.0)),
            memory_gb_total: n.memory.map(|m| m / 1024f64.powi(3)),
            memory_gb_free: h.zip(n.memory).map(|(h, m)| (m - h.memory).max(0.0) / 1024f64.powi(3)),
            gpu: n.accelerator.as_ref().map(|a| a.name.clone()),
            gpu_total: n.gpu_total,
            gpu_free: node_free,
            ready: n.ready,
            cordoned: n.cordoned,
            taints: n
                .taints
                .iter()
                .map(|t| Taint { tolerated: taints::tolerated(t, &filter.tolerations), ..t.clone() })
                .collect(),
            unlabeled_gpu: n.accelerator.is_none() && (n.gpu_total > 0 || !n.mig.is_empty()),
            ..Default::default()
        });
        if let Some(value) = n.accelerator.as_ref().and_then(|a| a.unrecognised.as_deref()) {
            unrecognised.insert(value);
        }
        let Some(acc) = &n.accelerator else {
            if n.gpu_total > 0 || !n.mig.is_empty() {
                unlabeled.push(n.name.clone());
            }
            continue;
        };
        // MIG strategy `mixed`: each profile is a GPU of its own.
        for (profile, slices) in &n.mig {
            let name = identity::mig_name(&acc.name, profile);
            if filter.name.as_ref().is_some_and(|re| !re.is_match(&name)) {
                continue;
            }
            let used = h.map(|h| {
                let key = format!("{}{profile}", api::MIG_PREFIX);
                h.mig.iter().find(|(k, _)| **k == *key).map_or(0.0, |(_, v)| *v)
            });
            let free = used.map(|u| if schedulable { (f64::from(*slices) - u).max(0.0) as u32 } else { 0 });
            let (total, free, quantities) = match filter.quantity {
                Some(q) if *slices < q => continue,
                Some(q) => (q * (slices / q), free.map(|f| q * (f / q)), vec![q]),
                None => (*slices, free, requestable(*slices)),
            };
            add(&mut gpus, &name, held.is_some(), quantities, schedulable, total, free);
        }
        if n.gpu_total == 0 {
            if n.mig.is_empty() {
                labeled_without_gpus.push(n.name.clone());
            }
            continue;
        }
        if n.multi_host_tpu {
            multi_host += 1;
            continue;
        }
        let same_gpu = || {
            filter.identity.is_some_and(|f| acc.mig_profile.is_none() && acc.gpu.is_some_and(|g| std::ptr::eq(f, g)))
        };
        if filter.name.as_ref().is_some_and(|re| !re.is_match(&acc.name)) && !same_gpu() {
            continue;
        }
        let (total, free, quantities) = match filter.quantity {
            Some(q) if n.gpu_total < q => continue,
            // A TPU node's chips are one requestable unit.
            Some(q) if acc.tpu && n.gpu_total != q => continue,
            Some(_) if acc.tpu => (n.gpu_total, node_free, vec![n.gpu_total]),
            Some(q) => (q * (n.gpu_total / q), node_free.map(|f| q * (f / q)), vec![q]),
            None if acc.tpu => (n.gpu_total, node_free, vec![n.gpu_total]),
            None => (n.gpu_total, node_free, requestable(n.gpu_total)),
        };
        // Time-sliced or MPS-shared: the units are replicas, not GPUs.
        let name = match n.shared {
            Some((_, physical)) => {
                shared_nodes += 1;
                shared_physical += physical;
                shared_replicas += n.gpu_total;
                format!("{} shared", acc.name)
            }
            None => acc.name.clone(),
        };
        add(&mut gpus, &name, held.is_some(), quantities, schedulable, total, free);
    }
    cluster.gpus = gpus
        .into_values()
        .map(|(mut g, qs)| {
            g.requestable_quantities = qs.into_iter().collect();
            g
        })
        .collect();
    if !unlabeled.is_empty() {
        cluster.notes.push(format!(
            "{} GPU node(s) have no label naming the GPU type: {}; label them, e.g. `kubectl label node {} skypilot.co/accelerator=<gpu>`",
            unlabeled.len(),
            list(&unlabeled),
            unlabeled[0]
        ));
    }
    if !labeled_without_gpus.is_empty() {
        cluster.notes.push(format!(
            "{} node(s) have GPU labels but report 0 GPU resources: {}; check the device plugin on them",
            labeled_without_gpus.len(),
            list(&labeled_without_gpus)
        ));
    }
    if !unrecognised.is_empty() {
        let values: Vec<String> = unrecognised.iter().map(|v| format!("`{v}`")).collect();
        cluster.notes.push(format!(
            "{} GPU label value(s) are not in skyhost's GPU table and are shown cleaned up: {}; please report them so they get one name everywhere",
            values.len(),
            list(&values)
        ));
    }
    if shared_nodes > 0 {
        cluster.notes.push(format!(
            "{shared_nodes} node(s) share their GPUs by time-slicing or MPS: {shared_physical} physical GPU(s) offered as {shared_replicas} replicas; rows named `<GPU> shared` count replicas"
        ));
    }
    if multi_host > 0 {
        cluster.notes.push(format!("{multi_host} node(s) of multi-host TPU slices are excluded"));
    }
    cluster
}

fn list(names: &[String]) -> String {
    let mut s = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        s.push_str(&format!(" and {} more", names.len() - 5));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> PodItem<'static> {
        serde_json::from_str(Box::leak(json.to_string().into_boxed_str())).unwrap()
    }

    #[test]
    fn effective_request_is_the_schedulers() {
        let p = pod(serde_json::json!({
            "spec": {
                "nodeName": "n1",
                "containers": [
                    {"resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "500m"}}},
                    {"resources": {"limits": {"nvidia.com/gpu": "2"}}}
                ],
                "initContainers": [{"resources": {"requests": {"nvidia.com/gpu": "4"}}}],
                "overhead": {"cpu": "250m"}
            },
            "status": {"phase": "Pending"}
        }));
        assert_eq!(effective_request(&p, "nvidia.com/gpu"), 4.0);
        assert_eq!(effective_request(&p, "cpu"), 0.75);
        let mut held = HashMap::new();
        fold_pod(&mut held, &p);
        fold_pod(
            &mut held,
            &pod(
                serde_json::json!({"spec": {"nodeName": "n1", "containers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}]}, "status": {"phase": "Succeeded"}}),
            ),
        );
        fold_pod(
            &mut held,
            &pod(
                serde_json::json!({"spec": {"containers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}]}, "status": {"phase": "Pending"}}),
            ),
        );
        assert_eq!(held["n1"].gpus, 4.0);
        assert_eq!(held.len(), 1);
    }

    #[test]
    fn native_sidecars_add_up_and_pod_level_resources_replace_the_containers() {
        // Kubernetes' own example (KEP-753): sidecars 1 and 2 CPUs, an init
        // container of 3 after the first sidecar, containers of 2.
        let p = pod(serde_json::json!({
            "spec": {
                "nodeName": "n1",
                "initContainers": [
                    {"restartPolicy": "Always", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"}}},
                    {"resources": {"requests": {"cpu": "3"}}},
                    {"restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}}
                ],
                "containers": [{"resources": {"requests": {"cpu": "2", "nvidia.com/gpu": "2", "memory": "1Gi"}}}]
            }
        }));
        // main = 2 + 1 + 2 = 5; init peak = max(1, 3 + 1, 1 + 2) = 4.
        assert_eq!(effective_request(&p, "cpu"), 5.0);
        // GPUs: the sidecar's one adds to the containers' two.
        assert_eq!(effective_request(&p, "nvidia.com/gpu"), 3.0);
        // An init container bigger than everything still wins, plus the
        // sidecars started before it.
        let p = pod(serde_json::json!({
            "spec": {
                "initContainers": [
                    {"restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                    {"resources": {"requests": {"cpu": "8"}}}
                ],
                "containers": [{"resources": {"requests": {"cpu": "2"}}}]
            }
        }));
        assert_eq!(effective_request(&p, "cpu"), 9.0);
        // Pod-level requests replace the containers' cpu and memory, not GPUs.
        let p = pod(serde_json::json!({
            "spec": {
                "resources": {"requests": {"cpu": "6"}, "limits": {"memory": "8Gi"}},
                "containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}}}],
                "overhead": {"cpu": "500m"}
            }
        }));
        assert_eq!(effective_request(&p, "cpu"), 6.5);
        assert_eq!(effective_request(&p, "memory"), 8.0 * 1024f64.powi(3));
        assert_eq!(effective_request(&p, "nvidia.com/gpu"), 1.0);
    }

    #[test]
    fn requestable_quantities() {
        assert_eq!(requestable(12), vec![1, 2, 4, 8, 12]);
        assert_eq!(requestable(8), vec![1, 2, 4, 8]);
        assert_eq!(requestable(1), vec![1]);
    }
}
