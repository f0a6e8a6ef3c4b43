//! The tables of a cluster backend that reports partitions (Slurm), as
//! SkyPilot shows its `Slurm GPUs` section: per cluster `GPU |
//! REQUESTABLE_QTY_PER_NODE | UTILIZATION`, then the per-partition breakdown,
//! and the per-node detail with `-v`.

use skyhost_plugin_api::{Cluster, ClusterNode};

use super::{render::utilization, report::ClusterSection};
use crate::table::{render as table, title};

/// Whether `section` is drawn here rather than as Kubernetes contexts.
pub fn applies(section: &ClusterSection) -> bool {
    section.clusters.iter().any(|c| !c.partitions.is_empty() || c.nodes.iter().any(|n| n.state.is_some()))
}

fn quantities(qs: &[u32]) -> String {
    qs.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// One row per GPU type of a node (a node with no GPUs gets one `-` row).
fn node_rows(c: &Cluster, n: &ClusterNode) -> Vec<Vec<String>> {
    let state = n.state.clone().unwrap_or_else(|| "-".into());
    let partition = if n.partitions.is_empty() { "-".to_string() } else { n.partitions.join(",") };
    let base =
        |gpu: String, util: String| vec![c.name.clone(), n.name.clone(), partition.clone(), state.clone(), gpu, util];
    if n.gpus.is_empty() {
        return vec![base(n.gpu.clone().unwrap_or_else(|| "-".into()), utilization(n.gpu_free, n.gpu_total, 0))];
    }
    n.gpus.iter().map(|g| base(g.name.clone(), utilization(g.free, g.total, 0))).collect()
}

/// The section's text, or `None` when no cluster has GPUs.
pub fn section(section: &ClusterSection, quantity_filter: bool, color: bool, verbose: bool) -> Option<String> {
    let (mut out, shown) = super::render::section_head(section, color)?;
    let qty_header = if quantity_filter { "QTY_FILTER" } else { "REQUESTABLE_QTY_PER_NODE" };
    for c in &shown {
        out.push_str(&format!("\n{}\n", title(&format!("{} Cluster: {}", section.display_name, c.name), color)));
        out.push_str(&table(
            &["GPU", qty_header, "UTILIZATION"],
            c.gpus.iter().map(|g| {
                vec![
                    g.name.clone(),
                    quantities(&g.requestable_quantities),
                    utilization(g.free, g.capacity, g.not_ready),
                ]
            }),
        ));
        out.push('\n');
    }
    out.push_str(&format!("\n{}\n", title(&format!("{} per-partition GPU availability", section.display_name), color)));
    let rows = shown.iter().flat_map(|c| {
        c.partitions.iter().flat_map(move |p| {
            p.gpus.iter().map(move |g| {
                vec![c.name.clone(), p.name.clone(), g.name.clone(), utilization(g.free, g.capacity, g.not_ready)]
            })
        })
    });
    out.push_str(&table(&["CLUSTER", "PARTITION", "GPU", "UTILIZATION"], rows));
    out.push('\n');
    if verbose {
        out.push_str(&format!("\n{}\n", title(&format!("{} per-node GPU availability", section.display_name), color)));
        let rows = shown.iter().flat_map(|c| c.nodes.iter().flat_map(move |n| node_rows(c, n)));
        out.push_str(&table(&["CLUSTER", "NODE", "PARTITION", "STATE", "GPU", "UTILIZATION"], rows));
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use skyhost_plugin_api::{Cluster, ClusterGpu};

    use super::section;
    use crate::gpus::report::{ClusterSection, GpuTotal};

    // The Slurm section's totals say when some clusters' free GPUs are
    // unknown, as the Kubernetes section's do (it once printed the known sum
    // as if it were all).
    #[test]
    fn totals_say_when_free_gpus_are_unknown() {
        let cluster = |name: &str| Cluster {
            name: name.into(),
            gpus: vec![ClusterGpu { name: "H100".into(), capacity: 8, free: Some(3), ..Default::default() }],
            ..Default::default()
        };
        let s = ClusterSection {
            backend: "slurm".into(),
            display_name: "Slurm".into(),
            totals: vec![GpuTotal {
                name: "H100".into(),
                capacity: 16,
                free: 3,
                free_unknown_contexts: 1,
                not_ready: 0,
            }],
            clusters: vec![cluster("a"), cluster("b")],
        };
        let text = section(&s, false, false, false).expect("a section");
        assert!(text.contains("3+ of 16 free; free unknown in 1 context"), "{text}");
    }
}
