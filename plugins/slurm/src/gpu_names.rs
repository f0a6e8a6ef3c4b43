//! The Slurm mapping of GPU names: a GRES type as sites and AutoDetect write
//! it (`h100`, `nvidia_h100_80gb_hbm3`, `tesla_v100-sxm2-32gb`) to the name the
//! cloud catalogs use (`H100`, `V100-32GB`).
//!
//! Whole GPUs and MIG slices are named by the shared GPU identity table
//! (`skyhost-gpu-identity`, the one the Kubernetes backend and the catalogs
//! use), so one chip has one name in every section; the spellings below are
//! the fallback for GRES types the table does not know.

/// The catalog name of a GRES GPU type; `None` (no type, `gpu:8`) is `GPU`.
///
/// Lowercase, `-` and `_` alike, vendor prefixes dropped; the model decides the
/// name and the memory (`80gb`, `32gb`) picks the larger variant where the
/// catalogs tell them apart. A MIG slice (`…_3g.40gb`) is not a whole GPU and
/// keeps its profile, named as the table names slices: `H100 MIG 3g.40gb`. Unknown types are upper-cased.
pub fn canonical(gres_type: Option<&str>) -> String {
    let Some(raw) = gres_type.map(str::trim).filter(|t| !t.is_empty() && *t != "(null)") else {
        return "GPU".to_string();
    };
    let mut t = raw.to_ascii_lowercase().replace(['-', ' '], "_");
    loop {
        let before = t.len();
        for prefix in ["nvidia_", "tesla_", "geforce_", "amd_", "instinct_"] {
            if let Some(rest) = t.strip_prefix(prefix) {
                t = rest.to_string();
            }
        }
        if t.len() == before {
            break;
        }
    }
    // A MIG profile: `<gpu>_<N>g.<M>gb`.
    if let Some(pos) = t.rfind('_')
        && is_mig_profile(&t[pos + 1..])
    {
        let whole = canonical(Some(&t[..pos]));
        return skyhost_gpu_identity::mig_name(&whole, &t[pos + 1..]);
    }
    if let Some(gpu) = skyhost_gpu_identity::canonical(raw).or_else(|| skyhost_gpu_identity::canonical(&t)) {
        return gpu.name.to_string();
    }
    let words: Vec<&str> = t.split('_').filter(|w| !w.is_empty()).collect();
    let has = |w: &str| words.contains(&w);
    let memory = words.iter().find_map(|w| w.strip_suffix("gb").and_then(|n| n.parse::<u32>().ok()));
    let first = words.first().copied().unwrap_or_default();
    let name = match first {
        "h100" if has("nvl") => "H100-NVL",
        "h100" if has("mega") => "H100-MEGA",
        "h100" => "H100",
        "h200" => "H200",
        "gh200" => "GH200",
        "b200" => "B200",
        "b300" => "B300",
        "a100" if memory == Some(80) || has("80g") => "A100-80GB",
        "a100" => "A100",
        "v100" if memory == Some(32) => "V100-32GB",
        "v100" => "V100",
        "a10g" => "A10G",
        "a10" => "A10",
        "a30" => "A30",
        "a40" => "A40",
        "l4" => "L4",
        "l40s" => "L40S",
        "l40" => "L40",
        "t4" => "T4",
        "p100" => "P100",
        "p4" => "P4",
        "k80" => "K80",
        "mi300x" => "MI300X",
        "mi250x" => "MI250X",
        "mi250" => "MI250",
        "rtx" => return rtx(&words[1..]),
        _ => return words.join("-").to_ascii_uppercase(),
    };
    name.to_string()
}

/// `rtx_a6000` → `RTXA6000`, `rtx_4090` → `RTX4090`, `rtx_6000_ada` → `RTX6000-Ada`,
/// `rtx_pro_6000` → `RTXPRO6000`, `rtx_6000` → `RTX6000`.
fn rtx(rest: &[&str]) -> String {
    match rest {
        ["pro", model, ..] => format!("RTXPRO{}", model.to_ascii_uppercase()),
        [model, "ada", ..] => format!("RTX{}-Ada", model.to_ascii_uppercase()),
        [model, ..] => format!("RTX{}", model.to_ascii_uppercase()),
        [] => "RTX".to_string(),
    }
}

fn is_mig_profile(word: &str) -> bool {
    let Some((g, mem)) = word.split_once("g.") else { return false };
    !g.is_empty()
        && g.bytes().all(|b| b.is_ascii_digit())
        && mem.strip_suffix("gb").is_some_and(|m| m.parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn common_spellings_map_to_catalog_names() {
        for (raw, want) in [
            ("h100", "H100"),
            ("H100", "H100"),
            ("nvidia_h100_80gb_hbm3", "H100"),
            ("nvidia_h100_pcie", "H100"),
            ("nvidia_h100_nvl", "H100-NVL"),
            ("nvidia_h200", "H200"),
            ("nvidia_h200_nvl", "H200-NVL"),
            ("a100", "A100"),
            ("NVIDIA_A100", "A100"),
            ("a100_80gb", "A100-80GB"),
            ("a100-80gb", "A100-80GB"),
            ("a100-sxm4-80gb", "A100-80GB"),
            ("nvidia_a100-sxm4-80gb", "A100-80GB"),
            ("nvidia_a100_80gb_pcie", "A100-80GB"),
            ("nvidia_a100-sxm4-40gb", "A100"),
            ("nvidia_a100-pcie-40gb", "A100"),
            ("l4", "L4"),
            ("l40s", "L40S"),
            ("nvidia_l40s", "L40S"),
            ("t4", "T4"),
            ("tesla_t4", "T4"),
            ("v100", "V100"),
            ("tesla_v100-sxm2-32gb", "V100-32GB"),
            ("tesla_v100-pcie-16gb", "V100"),
            ("a10g", "A10G"),
            ("nvidia_a10", "A10"),
            ("nvidia_a40", "A40"),
            ("nvidia_a30", "A30"),
            ("nvidia_rtx_a6000", "A6000"),
            ("nvidia_geforce_rtx_4090", "RTX4090"),
            ("nvidia_geforce_rtx_2080_ti", "RTX2080"),
            ("rtx_6000", "RTX6000"),
            ("rtx_6000_ada", "RTX6000-Ada"),
            ("b200", "B200"),
            ("gh200", "GH200"),
            ("mi300x", "MI300X"),
        ] {
            assert_eq!(canonical(Some(raw)), want, "{raw}");
        }
    }

    #[test]
    fn untyped_mig_and_unknown() {
        assert_eq!(canonical(None), "GPU");
        assert_eq!(canonical(Some("(null)")), "GPU");
        assert_eq!(canonical(Some("")), "GPU");
        assert_eq!(canonical(Some("nvidia_h100_80gb_hbm3_3g.40gb")), "H100 MIG 3g.40gb");
        assert_eq!(canonical(Some("nvidia_a100_80gb_pcie_1g.10gb")), "A100-80GB MIG 1g.10gb");
        assert_eq!(canonical(Some("nvidia_h200_2g.35gb")), "H200 MIG 2g.35gb");
        assert_eq!(canonical(Some("quadro_x")), "QUADRO-X");
    }
}
