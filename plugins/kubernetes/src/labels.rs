//! Which GPU a node has, from its labels.
//!
//! Every convention SkyPilot knows is tried per node, in SkyPilot's priority
//! order, so a cluster that mixes conventions is read right (SkyPilot picks
//! one convention per context). AMD nodes are read from the labels of AMD's
//! node labeller. Every value is named by the one GPU table shared with the
//! catalogs (`skyhost-gpu-identity`), so one chip has one name whoever
//! labelled the node; a value not in the table keeps a cleaned-up name and
//! is reported as unrecognised.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, OnceLock},
};

use skyhost_gpu_identity::{self as identity, Gpu};

/// Label keys that name a node's accelerator, in priority order.
pub const LABEL_KEYS: [&str; 9] = [
    "skypilot.co/accelerator",
    "cloud.google.com/gke-accelerator",
    "cloud.google.com/gke-tpu-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
    "nvidia.com/gpu.product",
    "gpu.nvidia.com/class",
    "nebius.com/gpu-name",
    "amd.com/gpu.product-name",
    "beta.amd.com/gpu.product-name",
];

/// What a node's labels say about its accelerator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accelerator {
    /// The name shown: the GPU table's name, `<parent> MIG <profile>` for a
    /// MIG device, or the cleaned-up value.
    pub name: String,
    /// The label it came from.
    pub label: &'static str,
    /// A TPU (its whole count is one requestable unit).
    pub tpu: bool,
    /// The GPU of the table (the parent GPU of a MIG device).
    pub gpu: Option<&'static Gpu>,
    /// The MIG profile, when the label names a MIG device (MIG strategy
    /// `single`: the device plugin advertises slices as `nvidia.com/gpu`).
    pub mig_profile: Option<String>,
    /// `key=value` of a value not in the GPU table.
    pub unrecognised: Option<String>,
}

/// The accelerator named by the first label, in priority order, that names one.
pub fn accelerator(labels: &BTreeMap<String, String>) -> Option<Accelerator> {
    // Thousands of nodes share a handful of label values: read each once.
    type Seen = Mutex<HashMap<(String, String), Option<Accelerator>>>;
    static SEEN: OnceLock<Seen> = OnceLock::new();
    let key = LABEL_KEYS
        .iter()
        .find_map(|k| labels.get(*k).filter(|v| !v.trim().is_empty()).map(|v| (k.to_string(), v.clone())))?;
    let seen = SEEN.get_or_init(Mutex::default);
    if let Some(hit) = seen.lock().expect("label cache").get(&key) {
        return hit.clone();
    }
    let answer = read_accelerator(labels);
    seen.lock().expect("label cache").insert(key, answer.clone());
    answer
}

fn read_accelerator(labels: &BTreeMap<String, String>) -> Option<Accelerator> {
    let (key, value) =
        LABEL_KEYS.iter().find_map(|k| labels.get(*k).map(|v| v.trim()).filter(|v| !v.is_empty()).map(|v| (*k, v)))?;
    if key == "cloud.google.com/gke-tpu-accelerator" {
        let name = value.to_string();
        return Some(Accelerator { name, label: key, tpu: true, gpu: None, mig_profile: None, unrecognised: None });
    }
    let parts = identity::split(value);
    let gpu = identity::canonical(parts.base);
    let parent = gpu.map_or_else(|| identity::clean_name(parts.base), |g| g.name.to_string());
    let name = match parts.mig_profile {
        Some(profile) => identity::mig_name(&parent, profile),
        None => parent,
    };
    Some(Accelerator {
        name,
        label: key,
        tpu: false,
        gpu,
        mig_profile: parts.mig_profile.map(str::to_ascii_lowercase),
        unrecognised: gpu.is_none().then(|| format!("{key}={value}")),
    })
}

/// Chips in a GKE TPU slice of `topology` (`2x2x1` → 4).
pub fn topology_chips(topology: &str) -> Option<u32> {
    topology.split('x').map(|d| d.trim().parse::<u32>().ok()).try_fold(1u32, |acc, d| Some(acc * d?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_convention_in_priority_order() {
        type Case = (&'static [(&'static str, &'static str)], Option<&'static str>);
        let cases: [Case; 11] = [
            (&[("skypilot.co/accelerator", "h100")], Some("H100")),
            (&[("cloud.google.com/gke-accelerator", "nvidia-tesla-t4")], Some("T4")),
            (&[("cloud.google.com/gke-accelerator", "nvidia-h100-80gb")], Some("H100")),
            (&[("cloud.google.com/gke-accelerator", "nvidia-l4")], Some("L4")),
            (&[("cloud.google.com/gke-tpu-accelerator", "tpu-v5-lite-podslice")], Some("tpu-v5-lite-podslice")),
            (&[("karpenter.k8s.aws/instance-gpu-name", "a10g")], Some("A10G")),
            (&[("nvidia.com/gpu.product", "NVIDIA-L40S")], Some("L40S")),
            (&[("gpu.nvidia.com/class", "H100_NVLINK_80GB")], Some("H100")),
            (&[("nebius.com/gpu-name", "H200")], Some("H200")),
            (&[("amd.com/gpu.product-name", "AMD_Instinct_MI300X_OAM")], Some("MI300X")),
            (&[("cloud.google.com/gke-accelerator", ""), ("kubernetes.io/os", "linux")], None),
        ];
        for (pairs, want) in cases {
            assert_eq!(accelerator(&labels(pairs)).map(|a| a.name), want.map(String::from), "{pairs:?}");
        }
        // SkyPilot's own label wins over GFD's on the same node.
        let both =
            labels(&[("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB"), ("skypilot.co/accelerator", "a100-80gb")]);
        assert_eq!(accelerator(&both).unwrap().name, "A100-80GB");
    }

    #[test]
    fn one_chip_has_one_name_whoever_labelled_the_node() {
        let h100 = [
            ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
            ("cloud.google.com/gke-accelerator", "nvidia-h100-80gb"),
            ("karpenter.k8s.aws/instance-gpu-name", "h100"),
            ("gpu.nvidia.com/class", "H100_NVLINK_80GB"),
            ("nebius.com/gpu-name", "H100"),
            ("skypilot.co/accelerator", "h100"),
        ];
        for (key, value) in h100 {
            let a = accelerator(&labels(&[(key, value)])).unwrap();
            assert_eq!((a.name.as_str(), a.unrecognised), ("H100", None), "{key}={value}");
        }
    }

    // Regression tests for SkyPilot's slips (issue 11).
    #[test]
    fn t4g_is_one_name_and_h100_mega_is_reachable() {
        let name = |k: &str, v: &str| accelerator(&labels(&[(k, v)])).unwrap().name;
        assert_eq!(name("karpenter.k8s.aws/instance-gpu-name", "t4g"), "T4g");
        assert_eq!(name("nvidia.com/gpu.product", "NVIDIA-T4G"), "T4g");
        assert_eq!(name("cloud.google.com/gke-accelerator", "nvidia-h100-mega-80gb"), "H100-MEGA");
        assert_eq!(name("nvidia.com/gpu.product", "NVIDIA-H100-MEGA-80GB"), "H100-MEGA");
        assert_eq!(name("gpu.nvidia.com/class", "A100_NVLINK_80GB"), "A100-80GB");
        assert_eq!(name("gpu.nvidia.com/class", "RTX_A6000"), "A6000");
    }

    #[test]
    fn an_empty_value_types_the_node_as_unlabeled() {
        assert_eq!(accelerator(&labels(&[("gpu.nvidia.com/class", "")])), None);
        assert_eq!(accelerator(&labels(&[("gpu.nvidia.com/class", "  ")])), None);
        // An empty value of a higher-priority key gives way to the next key.
        let both = labels(&[("skypilot.co/accelerator", ""), ("gpu.nvidia.com/class", "A40")]);
        assert_eq!(accelerator(&both).unwrap().name, "A40");
    }

    #[test]
    fn unknown_values_are_cleaned_up_and_flagged() {
        let a = accelerator(&labels(&[("gpu.nvidia.com/class", "Quadro_RTX_5000")])).unwrap();
        assert_eq!(a.name, "RTX5000");
        assert_eq!(a.unrecognised.as_deref(), Some("gpu.nvidia.com/class=Quadro_RTX_5000"));
        let tpu = accelerator(&labels(&[("cloud.google.com/gke-tpu-accelerator", "tpu-v5p-slice")])).unwrap();
        assert_eq!((tpu.name.as_str(), tpu.unrecognised), ("tpu-v5p-slice", None));
    }

    #[test]
    fn mig_single_names_the_slice_after_its_parent() {
        let a = accelerator(&labels(&[
            ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb"),
            ("nvidia.com/mig.strategy", "single"),
        ]))
        .unwrap();
        assert_eq!(a.name, "A100-80GB MIG 1g.10gb");
        assert_eq!(a.gpu.map(|g| g.name), Some("A100-80GB"));
        assert_eq!(a.mig_profile.as_deref(), Some("1g.10gb"));
    }

    #[test]
    fn tpu_topologies_count_chips() {
        assert_eq!(topology_chips("2x2x1"), Some(4));
        assert_eq!(topology_chips("4x4"), Some(16));
        assert_eq!(topology_chips("bad"), None);
    }
}
