//! GCP prices most GPUs as the GPU plus a host VM, chosen per zone the way
//! SkyPilot's `gcp_catalog.list_accelerators` chooses it:
//!
//! * A100, A100-80GB, L4, H100, H100-MEGA, H200 and B200 only run on fixed
//!   machine types (`a2-highgpu-1g` for A100:1, ...): the cheapest of those in
//!   the zone;
//! * other GPUs attach to N1 machines: the cheapest `n1-standard`,
//!   `n1-highmem` or `n1-highcpu` VM in the zone with at least the vCPUs SkyPilot
//!   assigns per GPU count and 4 GiB of memory per vCPU;
//! * a zone without a suitable host drops out; TPUs are priced alone.
//!
//! The offering then shows the host's type, vCPUs and memory, and price =
//! GPU + host (on-demand and spot alike).

use std::collections::HashMap;

use crate::{
    parse::{Catalog, HostRow},
    query::{Candidate, Filter, candidates},
};

/// GPU → (count → machine types).
type HostTable = &'static [(&'static str, &'static [(u32, &'static [&'static str])])];

const FIXED_HOSTS: HostTable = &[
    (
        "A100",
        &[
            (1, &["a2-highgpu-1g"]),
            (2, &["a2-highgpu-2g"]),
            (4, &["a2-highgpu-4g"]),
            (8, &["a2-highgpu-8g"]),
            (16, &["a2-megagpu-16g"]),
        ],
    ),
    (
        "A100-80GB",
        &[(1, &["a2-ultragpu-1g"]), (2, &["a2-ultragpu-2g"]), (4, &["a2-ultragpu-4g"]), (8, &["a2-ultragpu-8g"])],
    ),
    (
        "L4",
        &[
            (1, &["g2-standard-4", "g2-standard-8", "g2-standard-12", "g2-standard-16", "g2-standard-32"]),
            (2, &["g2-standard-24"]),
            (4, &["g2-standard-48"]),
            (8, &["g2-standard-96"]),
        ],
    ),
    ("H100", &[(1, &["a3-highgpu-1g"]), (2, &["a3-highgpu-2g"]), (4, &["a3-highgpu-4g"]), (8, &["a3-highgpu-8g"])]),
    ("H100-MEGA", &[(8, &["a3-megagpu-8g"])]),
    ("H200", &[(8, &["a3-ultragpu-8g"])]),
    ("B200", &[(8, &["a4-highgpu-8g"])]),
];

const N1_FAMILIES: [&str; 3] = ["n1-standard-", "n1-highmem-", "n1-highcpu-"];

/// vCPUs SkyPilot gives N1 hosts per GPU model and count.
fn n1_vcpus(name: &str, count: u32) -> Option<f64> {
    let table: &[(u32, u32)] = match name {
        "K80" => &[(1, 4), (2, 8), (4, 16), (8, 32), (16, 64)],
        "V100" | "P100" => &[(1, 8), (2, 16), (4, 32), (8, 64)],
        "T4" => &[(1, 4), (2, 8), (4, 48)],
        _ => &[(1, 8), (2, 16), (4, 32), (8, 64), (16, 128)],
    };
    table.iter().find(|(c, _)| *c == count).map(|(_, v)| f64::from(*v))
}

fn fixed_hosts(name: &str) -> Option<&'static [(u32, &'static [&'static str])]> {
    FIXED_HOSTS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Which VM rows the parser must keep for the join.
pub fn is_host_type(instance_type: &str) -> bool {
    N1_FAMILIES.iter().any(|f| instance_type.starts_with(f))
        || FIXED_HOSTS
            .iter()
            .flat_map(|(_, t)| t.iter())
            .flat_map(|(_, types)| types.iter())
            .any(|t| *t == instance_type)
}

/// The host VM for `count` × `name` in a zone, or `None`.
fn choose_host<'a>(zone_hosts: &[&'a HostRow], name: &str, count: f64) -> Option<&'a HostRow> {
    let whole = count as u32;
    let fits: Box<dyn Fn(&HostRow) -> bool> = match fixed_hosts(name) {
        Some(table) => {
            let types = table.iter().find(|(c, _)| f64::from(*c) == count)?.1;
            Box::new(move |h: &HostRow| types.contains(&&*h.instance_type))
        }
        None => {
            let cpus = n1_vcpus(name, whole)?;
            Box::new(move |h: &HostRow| {
                N1_FAMILIES.iter().any(|f| h.instance_type.starts_with(f))
                    && h.vcpus.is_some_and(|v| v >= cpus)
                    && h.memory_gib.is_some_and(|m| m >= cpus * 4.0)
            })
        }
    };
    let mut best: Option<&HostRow> = None;
    for h in zone_hosts.iter().copied().filter(|h| h.price.is_some() && fits(h)) {
        if best.is_none_or(|b| h.price < b.price) {
            best = Some(h);
        }
    }
    best
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? + b?)
}

/// GPU rows joined with their hosts, followed by the TPU rows.
pub fn joined_candidates(catalog: &Catalog, filter: &Filter) -> Vec<Candidate> {
    let mut by_zone: HashMap<(String, String), Vec<&HostRow>> = HashMap::new();
    for h in &catalog.hosts {
        if let Some(zone) = &h.zone {
            by_zone.entry((h.region.to_lowercase(), zone.to_lowercase())).or_default().push(h);
        }
    }
    let tpus = candidates(catalog, filter).into_iter().filter(|c| c.name.starts_with("tpu-"));
    let rows =
        catalog.accelerators.iter().filter(|r| r.has_gpu_info && filter.accepts(r) && !r.name.starts_with("tpu-"));
    let mut joined = Vec::new();
    // (GPU, count, region, zone) → the host chosen there, if any.
    type Choice = (Box<str>, u64, String, String);
    let mut chosen: HashMap<Choice, Option<Box<str>>> = HashMap::new();
    for row in rows {
        let (Some(zone), Some(_)) = (row.zone.as_deref(), row.price) else { continue };
        let key = (row.region.to_lowercase(), zone.to_lowercase());
        let zone_hosts = by_zone.get(&key).map(Vec::as_slice).unwrap_or_default();
        let host_type = chosen
            .entry((row.name.clone(), row.count.to_bits(), key.0.clone(), key.1.clone()))
            .or_insert_with(|| choose_host(zone_hosts, &row.name, row.count).map(|h| h.instance_type.clone()))
            .clone();
        let Some(host_type) = host_type else { continue };
        for host in zone_hosts.iter().filter(|h| h.instance_type == host_type) {
            joined.push(Candidate {
                instance_type: Some(host.instance_type.clone()),
                name: row.name.clone(),
                count: row.count,
                vcpus: host.vcpus,
                device_memory_gib: row.device_memory_gib,
                memory_gib: host.memory_gib,
                price: add(row.price, host.price),
                spot_price: add(row.spot_price, host.spot_price),
                region: row.region.clone(),
            });
        }
    }
    joined.extend(tpus);
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use skyhost_plugin_api::GpuQuery;

    const CSV: &str =
        "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice
a2-highgpu-1g,12.0,85.0,,,,europe-west4,europe-west4-a,0.81406,0.33413
,,,A100,1,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]},europe-west4,europe-west4-a,1.61365,1.2276
,,,A100,1,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]},asia-east1,asia-east1-a,1.7,1.3
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.38,0.08
n1-highmem-8,8.0,52.0,,,,us-central1,us-central1-a,0.47,0.1
n1-standard-16,16.0,60.0,,,,us-central1,us-central1-a,0.76,0.16
,,,V100,1,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 16384}}]},us-central1,us-central1-a,2.48,0.99
,,,tpu-v5p-8,1,tpu-v5p-8,europe-west1,europe-west1-b,17.83782,6.77837
";

    #[test]
    fn gpus_are_priced_with_their_host_and_tpus_alone() {
        let rules = crate::parse::ReadRules { keep_host: Some(is_host_type), device_memory_is_total: false };
        let catalog = Catalog::parse(CSV.as_bytes(), rules).unwrap();
        let filter = Filter::new(&GpuQuery::default()).unwrap();
        let rows = joined_candidates(&catalog, &filter);
        let got: Vec<_> = rows
            .iter()
            .map(|c| (&*c.name, c.instance_type.as_deref(), c.price.map(|p| (p * 1e5).round() / 1e5)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A100", Some("a2-highgpu-1g"), Some(2.42771)),
                // V100:1 needs 8 vCPUs and 32 GiB: n1-standard-8 has 30 GiB, so n1-highmem-8.
                ("V100", Some("n1-highmem-8"), Some(2.95)),
                ("tpu-v5p-8", None, Some(17.83782)),
            ]
        );
        assert_eq!(rows[0].spot_price.map(|p| (p * 1e5).round() / 1e5), Some(1.56173));
    }
}
