//! One GPU identity: a table of GPU models (vendor, memory, and the name the
//! cloud catalogs use for that chip and memory), and one reader that maps
//! every naming convention onto it, so one chip has one name everywhere.
//!
//! The conventions read are GPU feature discovery's product strings
//! (`NVIDIA-H100-80GB-HBM3`), GKE's accelerator values (`nvidia-h100-80gb`),
//! Karpenter's and SkyPilot's lowercase names (`h100`, `t4g`), CoreWeave's
//! classes (`H100_NVLINK_80GB`), Nebius' names, AMD's node labeller
//! (`AMD_Instinct_MI300X_OAM`), DRA `productName` attributes (`NVIDIA H100
//! 80GB HBM3`) and the catalogs' own names. The value is split into words;
//! packaging words (`SXM5`, `PCIe`, `HBM3`, `NVLINK`...) are dropped, a
//! memory word (`80GB`) picks the memory variant, `NVL` and `MEGA` pick the
//! hardware variant, and the remaining words name the model. See README.md
//! next to this crate for the table and where these names differ from
//! SkyPilot's.
//!
//! ```
//! use skyhost_gpu_identity::{canonical, clean_name};
//! assert_eq!(canonical("NVIDIA-H100-80GB-HBM3").unwrap().name, "H100");
//! assert_eq!(canonical("nvidia-a100-80gb").unwrap().name, "A100-80GB");
//! assert!(canonical("NVIDIA-L400").is_none());
//! assert_eq!(clean_name("NVIDIA-GeForce-RTX-4090"), "RTX4090");
//! ```

/// Who makes a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// NVIDIA.
    Nvidia,
    /// AMD.
    Amd,
}

/// One GPU model: a chip with one memory size and packaging that matters to
/// a workload.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Gpu {
    /// The name skyhost shows, which is the cloud catalogs' name for this
    /// chip and memory.
    pub name: &'static str,
    /// Maker.
    pub vendor: Vendor,
    /// Memory of one device, GiB (as marketed).
    pub memory_gib: u32,
    /// The model words this GPU is named by, written without separators
    /// (`RTX6000ADA` for `RTX-6000-Ada`).
    models: &'static [&'static str],
    /// `NVL` or `MEGA`: the same chip in different hardware.
    variant: Option<&'static str>,
    /// Memory words (`80GB` → 80) that select this entry; the first entry of
    /// a model and variant is the one meant when a value names no memory.
    memories: &'static [u32],
}

const fn nv(
    name: &'static str,
    memory_gib: u32,
    models: &'static [&'static str],
    variant: Option<&'static str>,
    memories: &'static [u32],
) -> Gpu {
    Gpu { name, vendor: Vendor::Nvidia, memory_gib, models, variant, memories }
}

const fn amd(name: &'static str, memory_gib: u32, models: &'static [&'static str]) -> Gpu {
    Gpu { name, vendor: Vendor::Amd, memory_gib, models, variant: None, memories: &[] }
}

/// Every GPU model skyhost names. Within one model and variant the entry
/// listed first is the one meant when a value names no memory.
pub static GPUS: &[Gpu] = &[
    nv("GB300", 288, &["GB300"], None, &[]),
    nv("GB200", 186, &["GB200"], None, &[]),
    nv("B300", 288, &["B300"], None, &[]),
    nv("B200", 180, &["B200"], None, &[]),
    nv("B100", 192, &["B100"], None, &[]),
    nv("GH200", 96, &["GH200"], None, &[96, 120, 141, 144, 480, 576, 624]),
    nv("H200", 141, &["H200"], None, &[141, 143, 144]),
    nv("H200-NVL", 141, &["H200"], Some("NVL"), &[141, 143, 144]),
    nv("H100", 80, &["H100"], None, &[80, 81]),
    nv("H100-MEGA", 80, &["H100"], Some("MEGA"), &[80, 81]),
    nv("H100-NVL", 94, &["H100"], Some("NVL"), &[94, 95, 96]),
    nv("H800", 80, &["H800"], None, &[80]),
    nv("A100", 40, &["A100"], None, &[40]),
    nv("A100-80GB", 80, &["A100"], None, &[80]),
    nv("A800", 80, &["A800"], None, &[80]),
    nv("A10G", 24, &["A10G"], None, &[]),
    nv("A10", 24, &["A10"], None, &[]),
    nv("A16", 16, &["A16"], None, &[]),
    nv("A30", 24, &["A30"], None, &[]),
    nv("A40", 48, &["A40"], None, &[]),
    nv("A2", 16, &["A2"], None, &[]),
    nv("L40S", 48, &["L40S"], None, &[]),
    nv("L40", 48, &["L40"], None, &[]),
    nv("L4", 24, &["L4"], None, &[]),
    nv("RTX6000-Ada", 48, &["RTX6000ADA", "RTX6000ADAGENERATION"], None, &[]),
    nv("RTXPRO6000", 96, &["RTXPRO6000", "RTXPRO6000S", "RTXPRO6000BLACKWELL"], None, &[]),
    nv("A6000", 48, &["A6000", "RTXA6000"], None, &[]),
    nv("A5000", 24, &["A5000", "RTXA5000"], None, &[]),
    nv("A4000", 16, &["A4000", "RTXA4000"], None, &[]),
    nv("RTX5090", 32, &["RTX5090"], None, &[]),
    nv("RTX4090", 24, &["RTX4090"], None, &[]),
    nv("RTX3090", 24, &["RTX3090"], None, &[]),
    nv("V100", 16, &["V100"], None, &[16]),
    nv("V100-32GB", 32, &["V100"], None, &[32]),
    nv("P100", 16, &["P100"], None, &[]),
    nv("P40", 24, &["P40"], None, &[]),
    nv("P4", 8, &["P4"], None, &[]),
    nv("T4g", 16, &["T4G"], None, &[]),
    nv("T4", 16, &["T4"], None, &[]),
    nv("K80", 12, &["K80"], None, &[]),
    nv("M60", 8, &["M60"], None, &[]),
    amd("MI355X", 288, &["MI355X"]),
    amd("MI325X", 256, &["MI325X"]),
    amd("MI300X", 192, &["MI300X"]),
    amd("MI300A", 128, &["MI300A"]),
    amd("MI250X", 128, &["MI250X"]),
    amd("MI250", 128, &["MI250"]),
    amd("MI210", 64, &["MI210"]),
    amd("MI100", 32, &["MI100"]),
    amd("MI50", 16, &["MI50"]),
    amd("MI25", 16, &["MI25"]),
];

/// Words that say how a chip is packaged or sold, not which chip it is.
const PACKAGING: [&str; 24] = [
    "NVIDIA",
    "TESLA",
    "GEFORCE",
    "QUADRO",
    "AMD",
    "INSTINCT",
    "SXM",
    "SXM2",
    "SXM3",
    "SXM4",
    "SXM5",
    "SXM6",
    "PCIE",
    "HBM2",
    "HBM2E",
    "HBM3",
    "HBM3E",
    "OAM",
    "NVLINK",
    "GPU",
    "GENERATION",
    "EDITION",
    "SERVER",
    "WORKSTATION",
];

/// `80GB`, `80G`, `80GIB` → 80.
fn memory_word(word: &str) -> Option<u32> {
    let digits = word.strip_suffix("GB").or_else(|| word.strip_suffix("GIB")).or_else(|| word.strip_suffix('G'))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A value without its MIG profile and sharing suffix: GPU feature discovery
/// names a MIG device `<model>-MIG-<profile>` and a time-sliced one
/// `<model>-SHARED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The model part.
    pub base: &'a str,
    /// The MIG profile (`1g.10gb`), if the value names a MIG device.
    pub mig_profile: Option<&'a str>,
    /// The value ends `-SHARED`.
    pub shared: bool,
}

/// Splits off `-MIG-<profile>` and `-SHARED` (any case).
pub fn split(raw: &str) -> Parts<'_> {
    let raw = raw.trim();
    let (rest, shared) = match raw.len().checked_sub(7).filter(|at| raw.is_char_boundary(*at)) {
        Some(at) if raw[at..].eq_ignore_ascii_case("-SHARED") => (&raw[..at], true),
        _ => (raw, false),
    };
    let upper = rest.to_ascii_uppercase();
    match upper.find("-MIG-") {
        Some(at) => Parts { base: &rest[..at], mig_profile: Some(&rest[at + 5..]).filter(|p| !p.is_empty()), shared },
        None => Parts { base: rest, mig_profile: None, shared },
    }
}

/// The GPU a value names, in any convention; `None` when it is not in the
/// table (see [`clean_name`] for what to show then). A MIG or `-SHARED`
/// suffix is ignored: the answer is the physical GPU.
pub fn canonical(raw: &str) -> Option<&'static Gpu> {
    let upper = split(raw).base.to_ascii_uppercase();
    let mut memory = None;
    let mut variant = None;
    let mut words: Vec<&str> = Vec::new();
    for word in upper.split(['-', '_', ' ', '/']).filter(|w| !w.is_empty()) {
        if PACKAGING.contains(&word) {
            continue;
        }
        if let Some(m) = memory_word(word) {
            memory = Some(m);
        } else if matches!(word, "NVL" | "MEGA") {
            variant = Some(match word {
                "NVL" => "NVL",
                _ => "MEGA",
            });
        } else {
            words.push(word);
        }
    }
    let joined = words.concat();
    let model = if GPUS.iter().any(|g| g.models.contains(&joined.as_str())) {
        joined.as_str()
    } else {
        // One model word among others (`RTX A6000` is joined above).
        words.iter().copied().find(|w| GPUS.iter().any(|g| g.models.contains(w)))?
    };
    let of_model = || GPUS.iter().filter(move |g| g.models.contains(&model));
    match memory {
        None => of_model().find(|g| g.variant == variant),
        Some(m) => of_model()
            .find(|g| g.variant == variant && (g.memories.contains(&m) || (g.memories.is_empty() && m == g.memory_gib)))
            // `H100-94GB` names the NVL part by its memory alone.
            .or_else(|| variant.is_none().then(|| of_model().find(|g| g.memories.contains(&m))).flatten()),
    }
}

/// The entry of the same chip and variant whose memory is nearest to
/// `memory_gib`, within 10 %; otherwise `gpu` itself. For catalogs that call
/// an 80 GB A100 `A100` and write its memory beside it.
pub fn with_memory(gpu: &'static Gpu, memory_gib: f64) -> &'static Gpu {
    GPUS.iter()
        .filter(|g| g.models == gpu.models && g.variant == gpu.variant)
        .map(|g| (g, (f64::from(g.memory_gib) - memory_gib).abs()))
        .filter(|(g, d)| *d <= f64::from(g.memory_gib) * 0.1)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(gpu, |(g, _)| g)
}

/// A value that names no known GPU, cleaned up for display: upper case,
/// without `NVIDIA-`, `TESLA-`, `GEFORCE-`, `QUADRO-` and `AMD-` prefixes,
/// `_` and spaces as `-`, `RTX-` joined (`NVIDIA-RTX-A2000` → `RTXA2000`).
pub fn clean_name(raw: &str) -> String {
    let mut s = raw.trim().to_uppercase().replace(['_', ' '], "-");
    loop {
        let before = s.len();
        for prefix in ["NVIDIA-", "TESLA-", "GEFORCE-", "QUADRO-", "AMD-"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.to_string();
            }
        }
        if s.len() == before {
            break;
        }
    }
    s.replace("RTX-", "RTX")
}

/// The name to show for a value: the table's name, or the cleaned-up value.
pub fn display_name(raw: &str) -> String {
    canonical(raw).map_or_else(|| clean_name(raw), |g| g.name.to_string())
}

/// The name of a MIG slice of `parent`: `A100-80GB MIG 1g.10gb`.
pub fn mig_name(parent: &str, profile: &str) -> String {
    format!("{parent} MIG {}", profile.to_ascii_lowercase())
}

/// Whether a GPU shown as `shown` is the one a user's filter `filter` names:
/// both name the same GPU of the table (`H100-80GB` and `H100`).
pub fn same_gpu(filter: &'static Gpu, shown: &str) -> bool {
    canonical(shown).is_some_and(|g| std::ptr::eq(g, filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the mapping table in README.md is a test case.
    #[test]
    fn every_documented_mapping_holds() {
        let doc = include_str!("../README.md");
        let table = doc.split("<!-- mappings -->").nth(1).expect("README.md has the mappings table");
        let mut rows = 0;
        for line in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(|c| c.trim().trim_matches('`')).collect();
            let (raw, want) = (cells[1], cells[3]);
            assert_eq!(display_name(raw), want, "README row: {line}");
            rows += 1;
        }
        assert!(rows > 40, "only {rows} mapping rows read from README.md");
    }

    #[test]
    fn every_table_name_reads_back_as_itself() {
        for g in GPUS {
            assert_eq!(canonical(g.name).map(|c| c.name), Some(g.name), "{}", g.name);
        }
    }

    #[test]
    fn mig_and_shared_suffixes_split_off() {
        let p = split("NVIDIA-A100-SXM4-80GB-MIG-1g.10gb-SHARED");
        assert_eq!(p, Parts { base: "NVIDIA-A100-SXM4-80GB", mig_profile: Some("1g.10gb"), shared: true });
        assert_eq!(canonical("NVIDIA-A100-SXM4-80GB-MIG-1g.10gb").unwrap().name, "A100-80GB");
        assert_eq!(split("Tesla-T4-SHARED").base, "Tesla-T4");
        assert_eq!(split("H100").mig_profile, None);
        assert_eq!(mig_name("A100-80GB", "1G.10GB"), "A100-80GB MIG 1g.10gb");
    }

    #[test]
    fn catalog_memory_picks_the_memory_variant() {
        let a100 = canonical("A100").unwrap();
        assert_eq!(with_memory(a100, 80.0).name, "A100-80GB");
        assert_eq!(with_memory(a100, 40.0).name, "A100");
        // A total written as device memory is not near any: keep the name.
        assert_eq!(with_memory(a100, 160.0).name, "A100");
        assert_eq!(with_memory(canonical("V100").unwrap(), 32.0).name, "V100-32GB");
        // Memory never changes the hardware variant.
        assert_eq!(with_memory(canonical("H100").unwrap(), 93.6).name, "H100");
    }

    #[test]
    fn filters_match_by_identity() {
        let h100 = canonical("H100-80GB").unwrap();
        assert!(same_gpu(h100, "H100"));
        assert!(!same_gpu(h100, "H100-MEGA"));
        assert!(!same_gpu(canonical("A100-80GB").unwrap(), "A100"));
    }

    #[test]
    fn odd_values_do_not_panic() {
        for raw in ["", " ", "-", "-MIG-", "x-shared", "é-SHARED", "日本語", "80GB", "NVL", "--MIG--SHARED", "ÉSHARED"]
        {
            let _ = display_name(raw);
            let _ = split(raw);
        }
        assert_eq!(canonical(""), None);
        assert_eq!(clean_name(""), "");
    }
}
