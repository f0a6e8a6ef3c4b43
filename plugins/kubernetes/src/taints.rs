//! Which taints keep GPU pods off a node, as the scheduler sees them.
//!
//! A GPU pod tolerates the well-known GPU dedication taints: those keyed by a
//! GPU resource (`nvidia.com/gpu`, whatever the value: GKE's
//! `nvidia.com/gpu=present`, Karpenter's GPU node pools; the
//! ExtendedResourceToleration admission plugin adds the toleration to every
//! pod asking for the resource), AKS's documented `sku=gpu`, whose toleration
//! its GPU pods carry, and control-plane taints. Any other NoSchedule or
//! NoExecute taint keeps GPU pods off, unless the user says their pods
//! tolerate it (`[kubernetes] tolerations`, `--toleration`).

use skyhost_plugin_api::{Taint, Toleration};

use crate::scan::GPU_KEYS;

const CONTROL_PLANE: [&str; 2] = ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"];

/// A well-known GPU dedication or control-plane taint.
fn well_known(t: &Taint) -> bool {
    GPU_KEYS.contains(&t.key.as_str())
        || CONTROL_PLANE.contains(&t.key.as_str())
        || (t.key == "sku" && t.value == "gpu")
}

/// Kubernetes' rule: effects equal or the toleration's empty; keys equal or
/// the toleration's empty with `Exists`; `Exists` takes any value, `Equal`
/// (the default operator) the same value.
pub fn tolerates(tol: &Toleration, t: &Taint) -> bool {
    if !tol.effect.is_empty() && tol.effect != t.effect {
        return false;
    }
    let exists = tol.operator == "Exists";
    if tol.key.is_empty() {
        return exists;
    }
    tol.key == t.key && (exists || tol.value == t.value)
}

/// Whether GPU pods may land on a node with taint `t`.
pub fn tolerated(t: &Taint, tolerations: &[Toleration]) -> bool {
    well_known(t) || tolerations.iter().any(|tol| tolerates(tol, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: value.into(), effect: effect.into(), tolerated: false }
    }

    fn tol(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        Toleration { key: key.into(), operator: operator.into(), value: value.into(), effect: effect.into() }
    }

    #[test]
    fn gpu_dedication_taints_are_tolerated_without_asking() {
        for t in [
            taint("nvidia.com/gpu", "present", "NoSchedule"),
            taint("nvidia.com/gpu", "", "NoSchedule"),
            taint("amd.com/gpu", "true", "NoExecute"),
            taint("sku", "gpu", "NoSchedule"),
            taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
        ] {
            assert!(tolerated(&t, &[]), "{t:?}");
        }
        assert!(!tolerated(&taint("sku", "cpu", "NoSchedule"), &[]));
        assert!(!tolerated(&taint("dedicated", "gpuGroup", "NoSchedule"), &[]));
    }

    #[test]
    fn toleration_matching_follows_kubernetes() {
        let t = taint("dedicated", "gpuGroup", "NoSchedule");
        assert!(tolerates(&tol("dedicated", "Exists", "", ""), &t));
        assert!(tolerates(&tol("dedicated", "Exists", "", "NoSchedule"), &t));
        assert!(!tolerates(&tol("dedicated", "Exists", "", "NoExecute"), &t));
        assert!(tolerates(&tol("dedicated", "Equal", "gpuGroup", ""), &t));
        assert!(!tolerates(&tol("dedicated", "Equal", "other", ""), &t));
        // Equal is the default operator.
        assert!(tolerates(&tol("dedicated", "", "gpuGroup", ""), &t));
        assert!(!tolerates(&tol("other", "Exists", "", ""), &t));
        // An empty key with Exists tolerates everything; with Equal, nothing.
        assert!(tolerates(&tol("", "Exists", "", ""), &t));
        assert!(!tolerates(&tol("", "Equal", "", ""), &t));
    }
}
