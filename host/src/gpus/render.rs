//! Renders a [`GpuReport`] as SkyPilot's tables, or its offerings as CSV.

use skyhost_plugin_api::{AcceleratorQuantities, Cluster, ClusterNode, Taint};

use super::report::{ClusterSection, GpuReport, GpuTotal, Mode, OfferingTable};
use crate::table::{render as table, title};

/// A quantity as SkyPilot shows it: `8`, `0.167`.
pub fn quantity(q: f64) -> String {
    if q.fract() == 0.0 && q.abs() < 1e15 { format!("{}", q as i64) } else { format!("{q}") }
}

fn quantities(qs: &[f64]) -> String {
    qs.iter().map(|q| quantity(*q)).collect::<Vec<_>>().join(", ")
}

fn price(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("$ {p:.3}"))
}

fn gigabytes(m: Option<f64>) -> String {
    m.map_or_else(|| "-".into(), |m| format!("{m:.0}GB"))
}

fn vcpus(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 => format!("{}", v as i64),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// `48`, or `3.5` when not whole.
fn amount(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 { format!("{}", x.round() as i64) } else { format!("{x:.1}") }
}

fn of_free(free: Option<f64>, total: Option<f64>) -> String {
    match (free, total) {
        (Some(f), Some(t)) => format!("{} of {} free", amount(f), amount(t)),
        (None, Some(t)) => amount(t),
        _ => "-".into(),
    }
}

fn count_table(header: &str, rows: &[AcceleratorQuantities]) -> String {
    table(&[header, "AVAILABLE_QUANTITIES"], rows.iter().map(|r| vec![r.name.clone(), quantities(&r.quantities)]))
}

fn offering_table(t: &OfferingTable, with_region: bool) -> String {
    let mut headers = vec![
        "GPU",
        "QTY",
        "CLOUD",
        "INSTANCE_TYPE",
        "DEVICE_MEM",
        "vCPUs",
        "HOST_MEM",
        "HOURLY_PRICE",
        "HOURLY_SPOT_PRICE",
    ];
    if with_region {
        headers.push("REGION");
    }
    table(
        &headers,
        t.rows.iter().map(|r| {
            let o = &r.offering;
            let mut row = vec![
                o.accelerator.clone(),
                quantity(o.quantity),
                r.cloud.clone(),
                o.instance_type.clone().unwrap_or_else(|| "(attachable)".into()),
                gigabytes(o.device_memory_gib),
                vcpus(o.vcpus),
                gigabytes(o.host_memory_gib),
                price(o.price),
                price(o.spot_price),
            ];
            if with_region {
                row.push(o.region.clone().unwrap_or_else(|| "-".into()));
            }
            row
        }),
    )
}

fn node_status(n: &ClusterNode) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !n.ready {
        parts.push("NotReady".into());
    }
    if n.cordoned {
        parts.push("Cordoned".into());
    }
    let key_value = |t: &Taint| if t.value.is_empty() { t.key.clone() } else { format!("{}={}", t.key, t.value) };
    let mut effects: Vec<(&str, Vec<String>)> = Vec::new();
    for t in n.taints.iter().filter(|t| !t.tolerated) {
        match effects.iter_mut().find(|(e, _)| *e == t.effect) {
            Some((_, keys)) => keys.push(key_value(t)),
            None => effects.push((&t.effect, vec![key_value(t)])),
        }
    }
    if !effects.is_empty() {
        parts.push(effects.iter().map(|(e, k)| format!("{e} Taint [{}]", k.join(", "))).collect::<Vec<_>>().join(", "));
    }
    let mut status = if parts.is_empty() { "Healthy".to_string() } else { parts.join(", ") };
    let tolerated: Vec<String> =
        n.taints.iter().filter(|t| t.tolerated).map(|t| format!("{}:{}", key_value(t), t.effect)).collect();
    if !tolerated.is_empty() {
        status.push_str(&format!(" (tolerated: {})", tolerated.join(", ")));
    }
    status
}

pub(super) fn utilization(free: Option<u32>, capacity: u32, not_ready: u32) -> String {
    let free = free.map_or_else(|| "<no permissions>".to_string(), |f| f.to_string());
    utilization_of(&free, capacity, not_ready)
}

fn utilization_of(free: &str, capacity: u32, not_ready: u32) -> String {
    let mut s = format!("{free} of {capacity} free");
    if not_ready > 0 {
        s.push_str(&format!(" ({not_ready} not ready)"));
    }
    s
}

/// A total's utilization; `12+ of 40 free` when some clusters' free GPUs
/// are unknown (their pods could not be listed): the known part, at least.
fn total_utilization(t: &GpuTotal) -> String {
    match t.free_unknown_contexts {
        0 => utilization_of(&t.free.to_string(), t.capacity, t.not_ready),
        n => {
            let contexts = if n == 1 { "context" } else { "contexts" };
            let line = utilization_of(&format!("{}+", t.free), t.capacity, t.not_ready);
            format!("{line}; free unknown in {n} {contexts}")
        }
    }
}

/// The start of a cluster section, shared by every kind of cluster backend:
/// its title and the totals over its clusters, with the clusters that have
/// GPUs to show; `None` when none has.
pub(super) fn section_head(section: &ClusterSection, color: bool) -> Option<(String, Vec<&Cluster>)> {
    let shown: Vec<&Cluster> = section.clusters.iter().filter(|c| c.error.is_none() && !c.gpus.is_empty()).collect();
    if shown.is_empty() {
        return None;
    }
    let mut out = title(&format!("{} GPUs", section.display_name), color);
    if !section.totals.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["GPU", "UTILIZATION"],
            section.totals.iter().map(|t| vec![t.name.clone(), total_utilization(t)]),
        ));
        out.push('\n');
    }
    Some((out, shown))
}

fn cluster_section(section: &ClusterSection, mode: Mode, quantity_filter: bool, color: bool) -> Option<String> {
    let (mut out, shown) = section_head(section, color)?;
    let qty_header = if quantity_filter { "QTY_FILTER" } else { "REQUESTABLE_QTY_PER_NODE" };
    for c in &shown {
        out.push_str(&format!("\n{}\n", title(&format!("Context: {}", c.name), color)));
        out.push_str(&table(
            &["GPU", qty_header, "UTILIZATION"],
            c.gpus.iter().map(|g| {
                let qs: Vec<f64> = g.requestable_quantities.iter().map(|q| f64::from(*q)).collect();
                vec![g.name.clone(), quantities(&qs), utilization(g.free, g.capacity, g.not_ready)]
            }),
        ));
        out.push('\n');
    }
    if mode == Mode::Default {
        out.push_str(&format!("\n{}\n", title(&format!("{} per-node GPU availability", section.display_name), color)));
        let rows = shown.iter().flat_map(|c| {
            c.nodes.iter().map(move |n| {
                let gpu = match (&n.gpu, n.unlabeled_gpu) {
                    (Some(g), _) => g.clone(),
                    (None, true) => "(unlabeled)".to_string(),
                    (None, false) => "-".to_string(),
                };
                vec![
                    c.name.clone(),
                    n.name.clone(),
                    of_free(n.cpu_free, n.cpu_total),
                    of_free(n.memory_gb_free, n.memory_gb_total),
                    gpu,
                    utilization(n.gpu_free, n.gpu_total, 0),
                    node_status(n),
                ]
            })
        });
        out.push_str(&table(
            &["CONTEXT", "NODE", "vCPU", "Memory (GB)", "GPU", "GPU UTILIZATION", "NODE STATUS"],
            rows,
        ));
        out.push('\n');
    }
    Some(out)
}

/// The tables, as `skyhost show-gpus` prints them to stdout; `verbose` adds
/// the per-node table of backends with partitions (Slurm).
pub fn tables(report: &GpuReport, color: bool, verbose: bool) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let mode = report.mode;
    for section in &report.clusters {
        let text = if super::partitions::applies(section) {
            super::partitions::section(section, report.query.quantity.is_some(), color, verbose)
        } else {
            cluster_section(section, mode, report.query.quantity.is_some(), color)
        };
        if let Some(s) = text {
            blocks.push(s.trim_end().to_string());
        }
    }
    if !report.clouds_included {
        return join_blocks(blocks);
    }
    let titled = !blocks.is_empty();
    let mut cloud: Vec<String> = Vec::new();
    match mode {
        Mode::Default | Mode::All => {
            cloud.push(count_table("COMMON_GPU", &report.common_gpus));
            if !report.tpus.is_empty() {
                cloud.push(count_table("GOOGLE_TPU", &report.tpus));
            }
            if mode == Mode::All {
                cloud.push(count_table("OTHER_GPU", &report.other_gpus));
                cloud.extend(report.offerings.iter().map(|t| offering_table(t, false)));
            } else {
                cloud
                    .push("Hint: use -a/--all to see all accelerators (including non-common ones) and pricing.".into());
            }
        }
        Mode::Named => match &report.not_found {
            Some(nf) => {
                let mut text = format!("{}\nTo show available accelerators, run: skyhost show-gpus --all", nf.message);
                if !nf.suggestions.is_empty() {
                    text.push_str(&format!("\nDid you mean: {}?", nf.suggestions.join(", ")));
                }
                cloud.push(text);
            }
            None => cloud.extend(report.offerings.iter().map(|t| offering_table(t, true))),
        },
    }
    let mut cloud_text = cloud.join("\n\n");
    if titled {
        cloud_text = format!("{}\n{cloud_text}", title("Cloud GPUs", color));
    }
    blocks.push(cloud_text);
    join_blocks(blocks)
}

fn join_blocks(blocks: Vec<String>) -> String {
    let mut s = blocks.into_iter().filter(|b| !b.is_empty()).collect::<Vec<_>>().join("\n\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// The offering rows as CSV.
pub fn csv(report: &GpuReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "GPU",
        "QTY",
        "CLOUD",
        "INSTANCE_TYPE",
        "DEVICE_MEM_GIB",
        "VCPUS",
        "HOST_MEM_GIB",
        "HOURLY_PRICE",
        "HOURLY_SPOT_PRICE",
        "REGION",
    ]);
    let num = |x: Option<f64>| x.map(|v| format!("{v}")).unwrap_or_default();
    for r in report.offerings.iter().flat_map(|t| &t.rows) {
        let o = &r.offering;
        let _ = w.write_record([
            o.accelerator.clone(),
            quantity(o.quantity),
            r.cloud.clone(),
            o.instance_type.clone().unwrap_or_default(),
            num(o.device_memory_gib),
            num(o.vcpus),
            num(o.host_memory_gib),
            num(o.price),
            num(o.spot_price),
            o.region.clone().unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_skypilot() {
        assert_eq!(quantity(8.0), "8");
        assert_eq!(quantity(0.167), "0.167");
        assert_eq!(price(Some(98.32)), "$ 98.320");
        assert_eq!(price(None), "-");
        assert_eq!(gigabytes(Some(1872.0)), "1872GB");
        assert_eq!(vcpus(Some(8.0)), "8");
        assert_eq!(vcpus(Some(0.5)), "0.5");
        assert_eq!(utilization(None, 8, 2), "<no permissions> of 8 free (2 not ready)");
        let total = |free, free_unknown_contexts| GpuTotal {
            name: "H100".into(),
            capacity: 40,
            free,
            free_unknown_contexts,
            not_ready: 0,
        };
        assert_eq!(total_utilization(&total(12, 0)), "12 of 40 free");
        assert_eq!(total_utilization(&total(12, 1)), "12+ of 40 free; free unknown in 1 context");
        assert_eq!(total_utilization(&total(0, 2)), "0+ of 40 free; free unknown in 2 contexts");
    }
}
