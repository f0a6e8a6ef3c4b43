//! Which GPU a node has, from its labels, and the canonical GPU names.
//!
//! Every convention SkyPilot knows is tried per node, in SkyPilot's priority
//! order, so a cluster that mixes conventions is read right (SkyPilot picks
//! one convention per context). AMD nodes are read from the labels of AMD's
//! node labeller.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, OnceLock},
};

use regex_lite::Regex;

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

/// Canonical names, most specific first: `L40S` before `L40` before `L4`.
const CANONICAL: [&str; 34] = [
    "GB300",
    "GB200",
    "B300",
    "B200",
    "B100",
    "GH200",
    "H200",
    "H100-80GB",
    "H100-MEGA",
    "H100",
    "A100-80GB",
    "A100",
    "A10G",
    "A10",
    "A16",
    "A30",
    "A40",
    "RTX6000-Ada",
    "L40S",
    "L40",
    "L4",
    "A6000",
    "A5000",
    "A4000",
    "V100-32GB",
    "V100",
    "P100",
    "P40",
    "P4000",
    "P4",
    "T4g",
    "T4",
    "K80",
    "M60",
];

/// A GPU product string (e.g. from GPU feature discovery) as a canonical name:
/// `NVIDIA-A100-SXM4-80GB` → `A100-80GB`, `NVIDIA-L40S-48GB` → `L40S`.
/// `A100-80GB` and `H100-80GB` match the model followed later by `-80GB`;
/// other names need a whole-word match, so `L4` does not match `L400`.
/// Without a match, and for RTX cards: uppercased, without `NVIDIA-` and
/// `GEFORCE-`, `RTX-` → `RTX` (`NVIDIA-RTX-A6000` → `RTXA6000`).
pub fn canonical(value: &str) -> String {
    let upper = value.to_uppercase();
    if !upper.contains("RTX-") {
        let found = CANONICAL.iter().find(|name| match **name {
            "A100-80GB" => model_then_80gb(&upper, "A100"),
            "H100-80GB" => model_then_80gb(&upper, "H100"),
            other => contains_word(&upper, &other.to_uppercase()),
        });
        if let Some(name) = found {
            return name.to_string();
        }
    }
    upper.replace("NVIDIA-", "").replace("GEFORCE-", "").replace("RTX-", "RTX")
}

/// `word` occurs in `text` with no letter or digit on either side.
fn contains_word(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(word).any(|(at, w)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + w.len()).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric()) && !after.is_some_and(|b| b.is_ascii_alphanumeric())
    })
}

/// `model`, and later `-80GB`.
fn model_then_80gb(text: &str, model: &str) -> bool {
    text.find(model).is_some_and(|at| text[at + model.len()..].contains("-80GB"))
}

/// GKE's `cloud.google.com/gke-accelerator` value as a GPU name.
fn gke(value: &str) -> Option<String> {
    match value {
        "nvidia-h100-80gb" => Some("H100".into()),
        "nvidia-h200-141gb" => Some("H200".into()),
        "nvidia-h100-mega-80gb" => Some("H100-MEGA-80GB".into()),
        v => v
            .strip_prefix("nvidia-tesla-")
            .or_else(|| v.strip_prefix("nvidia-"))
            .map(str::to_uppercase)
            .or_else(|| Some(canonical(v))),
    }
}

/// AMD's product name (`AMD_Instinct_MI300X_OAM`) as a GPU name (`MI300X`).
fn amd(value: &str) -> String {
    let upper = value.to_uppercase();
    let re = Regex::new(r"MI[0-9]+[A-Z]*").expect("valid pattern");
    match re.find(&upper) {
        Some(m) => m.as_str().to_string(),
        None => upper.replace("AMD_", "").replace("AMD ", "").replace(['_', ' '], "-"),
    }
}

/// What a node's labels say about its accelerator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accelerator {
    /// Canonical name.
    pub name: String,
    /// The label it came from.
    pub label: &'static str,
    /// A TPU (its whole count is one requestable unit).
    pub tpu: bool,
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
    for key in LABEL_KEYS {
        let Some(value) = labels.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) else { continue };
        let name = match key {
            "skypilot.co/accelerator" | "karpenter.k8s.aws/instance-gpu-name" => value.to_uppercase(),
            "cloud.google.com/gke-accelerator" => gke(value)?,
            "cloud.google.com/gke-tpu-accelerator" => value.to_string(),
            "nvidia.com/gpu.product" => canonical(value),
            "gpu.nvidia.com/class" => match value {
                "H100_NVLINK_80GB" => "H100".to_string(),
                other => other.to_string(),
            },
            "amd.com/gpu.product-name" | "beta.amd.com/gpu.product-name" => amd(value),
            _ => value.to_string(),
        };
        return Some(Accelerator { name, label: key, tpu: key == "cloud.google.com/gke-tpu-accelerator" });
    }
    None
}

/// Chips in a GKE TPU slice of `topology` (`2x2x1` → 4).
pub fn topology_chips(topology: &str) -> Option<u32> {
    topology.split('x').map(|d| d.trim().parse::<u32>().ok()).try_fold(1u32, |acc, d| Some(acc * d?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_feature_discovery_names_become_canonical() {
        for (value, name) in [
            ("NVIDIA-A100-SXM4-80GB", "A100-80GB"),
            ("NVIDIA-A100-PCIE-80GB", "A100-80GB"),
            ("NVIDIA-A100-SXM4-40GB", "A100"),
            ("NVIDIA-H100-80GB-HBM3", "H100-80GB"),
            ("NVIDIA-H100-SXM-80GB", "H100-80GB"),
            ("NVIDIA-H100-PCIE-80GB", "H100-80GB"),
            ("NVIDIA-H100-SXM", "H100"),
            ("NVIDIA-H100", "H100"),
            ("NVIDIA-L40S-48GB", "L40S"),
            ("NVIDIA-L40", "L40"),
            ("NVIDIA-L4-24GB", "L4"),
            ("NVIDIA-GB200", "GB200"),
            ("NVIDIA-GH200-480GB", "GH200"),
            ("Tesla-T4", "T4"),
            ("NVIDIA-A10G", "A10G"),
            ("NVIDIA-L400", "L400"),
            ("NVIDIA-RTX-A6000", "RTXA6000"),
            ("NVIDIA-GEFORCE-RTX-4090", "RTX4090"),
        ] {
            assert_eq!(canonical(value), name, "{value}");
        }
    }

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
    fn tpu_topologies_count_chips() {
        assert_eq!(topology_chips("2x2x1"), Some(4));
        assert_eq!(topology_chips("4x4"), Some(16));
        assert_eq!(topology_chips("bad"), None);
    }
}
