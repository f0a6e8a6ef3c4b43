//! The GPU listing as data: one [`GpuReport`] holds everything the tables
//! show. `-o json` prints it as is, the tables are rendered from it, and the
//! server sends it, so all three always agree. The schema is documented in
//! the README; bump [`SCHEMA_VERSION`] on any incompatible change.

use std::{cmp::Ordering, collections::BTreeMap};

use serde::{Deserialize, Serialize};
use skyhost_plugin_api::{AcceleratorQuantities, Cluster, Offering};

use super::request::GpuRequest;

/// Version of the JSON document.
pub const SCHEMA_VERSION: u32 = 1;

/// SkyPilot's list of common GPUs (0.14.1), shown by default.
pub const COMMON_GPUS: [&str; 14] = [
    "A10",
    "A10G",
    "A100",
    "A100-80GB",
    "B200",
    "H100",
    "H200",
    "L4",
    "L40S",
    "RTX5090",
    "RTXPRO6000",
    "T4",
    "V100",
    "V100-32GB",
];

/// SkyPilot's list of small TPU slices, shown by default.
pub const TPUS: [&str; 14] = [
    "tpu-v2-8",
    "tpu-v3-8",
    "tpu-v4-8",
    "tpu-v4-16",
    "tpu-v4-32",
    "tpu-v5litepod-1",
    "tpu-v5litepod-4",
    "tpu-v5litepod-8",
    "tpu-v5p-8",
    "tpu-v5p-16",
    "tpu-v5p-32",
    "tpu-v6e-1",
    "tpu-v6e-4",
    "tpu-v6e-8",
];

/// Which listing this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No name: counts of common GPUs and TPUs.
    #[default]
    Default,
    /// `-a`: counts of everything, then every offering.
    All,
    /// A GPU name: its offerings.
    Named,
}

/// The whole listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The query answered.
    pub query: GpuRequest,
    /// See [`Mode`].
    pub mode: Mode,
    /// Whether the cloud part was asked for (false with `--infra k8s`).
    pub clouds_included: bool,
    /// Live clusters, one section per cluster backend (Kubernetes).
    pub clusters: Vec<ClusterSection>,
    /// `COMMON_GPU` table (default and `-a`).
    pub common_gpus: Vec<AcceleratorQuantities>,
    /// `GOOGLE_TPU` table (default and `-a`).
    pub tpus: Vec<AcceleratorQuantities>,
    /// `OTHER_GPU` table (`-a`).
    pub other_gpus: Vec<AcceleratorQuantities>,
    /// Offering tables, one per accelerator (or TPU generation), in display order.
    pub offerings: Vec<OfferingTable>,
    /// Set when a named query found nothing in the catalogs.
    pub not_found: Option<NotFound>,
    /// Notes printed after the tables.
    pub notes: Vec<Note>,
}

/// One cluster backend's part of the listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSection {
    /// Backend name.
    pub backend: String,
    /// Title word (`Kubernetes`).
    pub display_name: String,
    /// Totals over clusters, when more than one cluster has GPUs.
    pub totals: Vec<GpuTotal>,
    /// Each cluster queried; failed ones carry `error`.
    pub clusters: Vec<Cluster>,
}

/// Totals of one GPU type over clusters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuTotal {
    /// GPU name.
    pub name: String,
    /// GPUs on schedulable nodes.
    pub capacity: u32,
    /// Free GPUs in the clusters where that is known: a lower bound when
    /// `free_unknown_contexts` is not 0.
    pub free: u32,
    /// Clusters with this GPU whose pods could not be listed, so whose free
    /// GPUs are not in `free`.
    #[serde(default)]
    pub free_unknown_contexts: u32,
    /// GPUs on nodes that are not ready.
    pub not_ready: u32,
}

/// One offering table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferingTable {
    /// Accelerator (or TPU generation).
    pub name: String,
    /// Rows in display order.
    pub rows: Vec<OfferingRow>,
}

/// One offering row: what the cloud's backend answered, and which cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferingRow {
    /// Cloud, as people name it.
    pub cloud: String,
    /// Backend name.
    pub backend: String,
    /// The offering (its fields sit beside `cloud` in the JSON).
    #[serde(flatten)]
    pub offering: Offering,
}

/// A named query that found nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotFound {
    /// The sentence printed.
    pub message: String,
    /// Names that do exist and look alike.
    pub suggestions: Vec<String>,
}

/// A note printed after the tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// `skipped_backends`, `backend_error`, `context_error`, `catalog`, `cluster`.
    pub kind: String,
    /// The backend concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The note.
    pub message: String,
    /// What to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Note {
    /// A note of `kind`.
    pub fn new(kind: &str, backend: Option<&str>, message: impl Into<String>, hint: Option<String>) -> Self {
        Self { kind: kind.into(), backend: backend.map(str::to_string), message: message.into(), hint }
    }
}

/// Missing values last.
fn cmp_opt(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn min_opt(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.flatten().min_by(f64::total_cmp)
}

/// Merges the offerings of each cloud (given in cloud order) into tables, in
/// order of first appearance, then orders each table as SkyPilot does: by the
/// cloud's cheapest on-demand and spot price, then by the row's.
pub fn offering_tables(per_cloud: Vec<(String, String, Vec<Offering>)>) -> Vec<OfferingTable> {
    let mut tables: Vec<OfferingTable> = Vec::new();
    for (backend, cloud, offerings) in per_cloud {
        for o in offerings {
            let name = o.group.clone().unwrap_or_else(|| o.accelerator.clone());
            let row = OfferingRow { cloud: cloud.clone(), backend: backend.clone(), offering: o };
            match tables.iter_mut().find(|t| t.name == name) {
                Some(t) => t.rows.push(row),
                None => tables.push(OfferingTable { name, rows: vec![row] }),
            }
        }
    }
    for table in &mut tables {
        let mut cloud_min: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
        for backend in table.rows.iter().map(|r| r.backend.clone()) {
            cloud_min.entry(backend.clone()).or_insert_with(|| {
                let rows = table.rows.iter().filter(|r| r.backend == backend).map(|r| &r.offering);
                (min_opt(rows.clone().map(|o| o.price)), min_opt(rows.map(|o| o.spot_price)))
            });
        }
        table.rows.sort_by(|a, b| {
            let (ap, asp) = cloud_min[&a.backend];
            let (bp, bsp) = cloud_min[&b.backend];
            cmp_opt(ap, bp)
                .then(cmp_opt(asp, bsp))
                .then(cmp_opt(a.offering.price, b.offering.price))
                .then(cmp_opt(a.offering.spot_price, b.offering.spot_price))
        });
    }
    tables
}

/// Splits merged counts into the common, TPU and other tables.
pub fn count_tables(
    counts: BTreeMap<String, Vec<f64>>,
) -> (Vec<AcceleratorQuantities>, Vec<AcceleratorQuantities>, Vec<AcceleratorQuantities>) {
    let take = |names: &[&str]| -> Vec<AcceleratorQuantities> {
        names
            .iter()
            .filter_map(|n| {
                counts.get(*n).map(|q| AcceleratorQuantities { name: n.to_string(), quantities: q.clone() })
            })
            .collect()
    };
    let common = take(&COMMON_GPUS);
    let tpus = take(&TPUS);
    let other = counts
        .iter()
        .filter(|(n, _)| !COMMON_GPUS.contains(&n.as_str()) && !TPUS.contains(&n.as_str()))
        .map(|(n, q)| AcceleratorQuantities { name: n.clone(), quantities: q.clone() })
        .collect();
    (common, tpus, other)
}

/// Adds `quantities` to the union for `name`, keeping it sorted.
pub fn merge_counts(into: &mut BTreeMap<String, Vec<f64>>, name: &str, quantities: &[f64]) {
    let set = into.entry(name.to_string()).or_default();
    for q in quantities {
        if !set.contains(q) {
            set.push(*q);
        }
    }
    set.sort_by(f64::total_cmp);
}

/// Totals over clusters, for the aggregate table.
pub fn cluster_totals(clusters: &[Cluster]) -> Vec<GpuTotal> {
    let with_gpus: Vec<&Cluster> = clusters.iter().filter(|c| c.error.is_none() && !c.gpus.is_empty()).collect();
    if with_gpus.len() < 2 {
        return Vec::new();
    }
    let mut totals: Vec<GpuTotal> = Vec::new();
    for g in with_gpus.iter().flat_map(|c| &c.gpus) {
        let t = match totals.iter_mut().find(|t| t.name == g.name) {
            Some(t) => t,
            None => {
                totals.push(GpuTotal { name: g.name.clone(), ..Default::default() });
                totals.last_mut().expect("just pushed")
            }
        };
        t.capacity += g.capacity;
        match g.free {
            Some(free) => t.free += free,
            None => t.free_unknown_contexts += 1,
        }
        t.not_ready += g.not_ready;
    }
    totals.sort_by(|a, b| a.name.cmp(&b.name));
    totals
}

/// Up to three existing names that look like `wanted`: names containing it
/// or contained in it (ignoring case and punctuation) first, then by
/// Jaro-Winkler similarity, which suits short names with a typo (`A1OO`).
pub fn suggestions<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    // Case, punctuation and the letter O typed for a zero do not count.
    let norm = |s: &str| {
        s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase().replace('o', "0")
    };
    let w = norm(wanted);
    let mut scored: Vec<(f64, String)> = names
        .map(|n| {
            let m = norm(n);
            let score = if !w.is_empty() && (m.contains(&w) || w.contains(&m)) {
                1.0 + 1.0 / (1.0 + (m.len() as f64 - w.len() as f64).abs())
            } else {
                strsim::jaro_winkler(&w, &m)
            };
            (score, n.to_string())
        })
        .filter(|(s, _)| *s >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, gpus: &[(&str, u32, Option<u32>)]) -> Cluster {
        Cluster {
            name: name.into(),
            gpus: gpus
                .iter()
                .map(|(gpu, capacity, free)| skyhost_plugin_api::ClusterGpu {
                    name: (*gpu).into(),
                    capacity: *capacity,
                    free: *free,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn totals_count_unknown_free_apart_and_never_as_zero() {
        let clusters = [
            cluster("prod", &[("H100", 16, Some(12)), ("A100", 8, Some(8))]),
            cluster("locked", &[("H100", 16, None)]),
            cluster("lab", &[("H100", 8, Some(0))]),
        ];
        let totals = cluster_totals(&clusters);
        let h100 = totals.iter().find(|t| t.name == "H100").unwrap();
        assert_eq!((h100.capacity, h100.free, h100.free_unknown_contexts), (40, 12, 1));
        let a100 = totals.iter().find(|t| t.name == "A100").unwrap();
        assert_eq!((a100.capacity, a100.free, a100.free_unknown_contexts), (8, 8, 0));
    }

    fn offering(name: &str, price: Option<f64>, spot: Option<f64>) -> Offering {
        Offering {
            group: None,
            accelerator: name.into(),
            quantity: 8.0,
            instance_type: Some("x".into()),
            device_memory_gib: None,
            vcpus: None,
            host_memory_gib: None,
            price,
            spot_price: spot,
            region: None,
        }
    }

    #[test]
    fn clouds_are_ordered_by_their_cheapest_prices() {
        let tables = offering_tables(vec![
            (
                "aws".into(),
                "AWS".into(),
                vec![offering("H100", Some(98.32), Some(9.8)), offering("H100", None, Some(1.0))],
            ),
            ("gcp".into(), "GCP".into(), vec![offering("H100", Some(46.0), Some(20.2))]),
            ("lambda".into(), "Lambda".into(), vec![offering("H100", Some(23.92), None)]),
        ]);
        let order: Vec<(&str, Option<f64>)> =
            tables[0].rows.iter().map(|r| (r.cloud.as_str(), r.offering.price)).collect();
        assert_eq!(order, vec![("Lambda", Some(23.92)), ("GCP", Some(46.0)), ("AWS", Some(98.32)), ("AWS", None)]);
    }

    #[test]
    fn suggestions_prefer_containing_names() {
        let names = ["A100", "A100-80GB", "H100", "L4", "L40S"];
        assert_eq!(suggestions("a10", names.iter().copied()), vec!["A100", "A100-80GB"]);
        assert_eq!(suggestions("H10", names.iter().copied())[0], "H100");
        assert!(suggestions("zzzzzz", names.iter().copied()).is_empty());
    }
}
