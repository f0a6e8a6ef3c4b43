//! From nodes to what the host shows: GPU totals per cluster and per
//! partition, and one row per node. Free GPUs come from what every job holds
//! (`GresUsed`, else `AllocTRES` `gres/gpu`), never from one user's jobs.

use skyhost_plugin_api::{Cluster, ClusterGpu, ClusterNode, ClusterPartition, NodeGpu};

use crate::{gpu_names, nodes::Node};

/// What a listing keeps: a GPU name pattern and a quantity per node.
#[derive(Debug, Default)]
pub struct Filter {
    /// Anchored, case-insensitive pattern on the canonical name.
    pub name: Option<regex_lite::Regex>,
    /// Only nodes with at least this many GPUs of the type.
    pub quantity: Option<u32>,
}

/// One GPU type on one node, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// Canonical name.
    pub name: String,
    /// GPUs of the type.
    pub total: u32,
    /// GPUs of the type held by jobs.
    pub used: u32,
}

/// Per type on `node`: total and in use. The same type written twice
/// (`gpu:h100:4,gpu:h100:4`) counts once per entry but is one row.
pub fn count(node: &Node) -> Vec<Counted> {
    let mut out: Vec<Counted> = Vec::new();
    let mut tres_left = match &node.gres_used {
        Some(_) => None,
        None => node.alloc_tres_gpus,
    };
    let allocated = node.state.base == "ALLOCATED";
    for g in &node.gres {
        let used = match &node.gres_used {
            Some(list) => list.iter().filter(|u| u.kind == g.kind).map(|u| u.count).sum::<u32>(),
            None => match tres_left.as_mut() {
                Some(left) => {
                    let take = (*left).min(g.count);
                    *left -= take;
                    take
                }
                // Nothing says which GPUs jobs hold: an allocated node is taken as full.
                None if allocated => g.count,
                None => 0,
            },
        };
        let name = gpu_names::canonical(g.kind.as_deref());
        match out.iter_mut().find(|c| c.name == name) {
            Some(c) => {
                c.total += g.count;
                c.used += used;
            }
            None => out.push(Counted { name, total: g.count, used }),
        }
    }
    for c in &mut out {
        c.used = c.used.min(c.total);
    }
    out
}

/// Powers of two up to `n`, and `n`.
fn requestable(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = std::iter::successors(Some(1u32), |x| x.checked_mul(2)).take_while(|x| *x <= n).collect();
    if n > 0 && !v.contains(&n) {
        v.push(n);
    }
    v
}

#[derive(Default)]
struct Totals(Vec<ClusterGpu>);

impl Totals {
    fn add(&mut self, c: &Counted, ready: bool) {
        let i = match self.0.iter().position(|g| g.name == c.name) {
            Some(i) => i,
            None => {
                self.0.push(ClusterGpu { name: c.name.clone(), free: Some(0), ..Default::default() });
                self.0.len() - 1
            }
        };
        let g = &mut self.0[i];
        if ready {
            g.capacity += c.total;
            *g.free.get_or_insert(0) += c.total - c.used;
        } else {
            g.not_ready += c.total;
        }
        for q in requestable(c.total) {
            if !g.requestable_quantities.contains(&q) {
                g.requestable_quantities.push(q);
            }
        }
    }

    fn done(mut self) -> Vec<ClusterGpu> {
        for g in &mut self.0 {
            g.requestable_quantities.sort_unstable();
        }
        self.0.sort_by(|a, b| a.name.cmp(&b.name));
        self.0
    }
}

fn keep(filter: &Filter, c: &Counted) -> bool {
    filter.name.as_ref().is_none_or(|re| re.is_match(&c.name)) && filter.quantity.is_none_or(|q| c.total >= q)
}

/// The cluster as the host shows it.
pub fn summarise(name: &str, nodes: &[Node], filter: &Filter) -> Cluster {
    let mut totals = Totals::default();
    let mut partitions: Vec<(String, Totals)> = Vec::new();
    let mut rows = Vec::with_capacity(nodes.len());
    let filtering = filter.name.is_some() || filter.quantity.is_some();
    for node in nodes {
        let ready = node.state.ready();
        let counted: Vec<Counted> = count(node).into_iter().filter(|c| keep(filter, c)).collect();
        if filtering && counted.is_empty() {
            continue;
        }
        for c in &counted {
            totals.add(c, ready);
            for p in &node.partitions {
                let i = match partitions.iter().position(|(n, _)| n == p) {
                    Some(i) => i,
                    None => {
                        partitions.push((p.clone(), Totals::default()));
                        partitions.len() - 1
                    }
                };
                partitions[i].1.add(c, ready);
            }
        }
        let free_of = |c: &Counted| if ready { c.total - c.used } else { 0 };
        rows.push(ClusterNode {
            name: node.name.clone(),
            cpu_total: node.cpus,
            cpu_free: node.cpus.zip(node.alloc_cpus).map(|(t, a)| (t - a).max(0.0)),
            memory_gb_total: node.memory_mb.map(|m| m / 1024.0),
            memory_gb_free: node.memory_mb.zip(node.alloc_memory_mb).map(|(t, a)| ((t - a) / 1024.0).max(0.0)),
            gpu: counted.first().map(|c| c.name.clone()),
            gpu_total: counted.iter().map(|c| c.total).sum(),
            gpu_free: Some(counted.iter().map(free_of).sum()),
            ready,
            cordoned: false,
            taints: Vec::new(),
            unlabeled_gpu: false,
            state: Some(node.state.display()),
            partitions: node.partitions.clone(),
            gpus: counted
                .iter()
                .map(|c| NodeGpu { name: c.name.clone(), total: c.total, free: Some(free_of(c)) })
                .collect(),
        });
    }
    Cluster {
        name: name.to_string(),
        error: None,
        gpus: totals.done(),
        nodes: rows,
        notes: Vec::new(),
        partitions: partitions
            .into_iter()
            .map(|(name, t)| ClusterPartition { name, gpus: t.done() })
            .filter(|p| !p.gpus.is_empty())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::parse_text;

    #[test]
    fn free_ready_and_partitions() {
        let l = parse_text(
            "NodeName=a Gres=gpu:h100:8(S:0-1) GresUsed=gpu:h100:3(IDX:0-2) State=MIXED Partitions=gpu,all\n\
             NodeName=b Gres=gpu:h100:8 GresUsed=gpu:h100:0(IDX:N/A) State=IDLE+DRAIN Partitions=gpu\n\
             NodeName=c Gres=gpu:a100:4,gpu:l4:2 GresUsed=gpu:a100:1(IDX:0),gpu:l4:0(IDX:N/A) State=IDLE Partitions=all\n\
             NodeName=d Gres=gpu:4 AllocTRES=cpu=1,gres/gpu=3 State=MIXED Partitions=all\n\
             NodeName=e Gres=gpu:a100:4 State=ALLOCATED Partitions=all\n\
             NodeName=f Gres=(null) State=IDLE Partitions=all\n\
             NodeName=g Gres=gpu:nvidia_h100_80gb_hbm3:12 GresUsed=gpu:nvidia_h100_80gb_hbm3:2(IDX:0-1) State=DOWN+NOT_RESPONDING Partitions=gpu\n",
        )
        .unwrap();
        let c = summarise("hpc", &l.nodes, &Filter::default());
        let row = |n: &str| {
            let g = c.gpus.iter().find(|g| g.name == n).unwrap();
            (g.requestable_quantities.clone(), g.capacity, g.free, g.not_ready)
        };
        assert_eq!(row("H100"), (vec![1, 2, 4, 8, 12], 8, Some(5), 20));
        assert_eq!(row("A100"), (vec![1, 2, 4], 8, Some(3), 0));
        assert_eq!(row("L4"), (vec![1, 2], 2, Some(2), 0));
        assert_eq!(row("GPU"), (vec![1, 2, 4], 4, Some(1), 0));
        assert_eq!(c.nodes.len(), 7);
        assert_eq!(c.nodes[2].gpus.len(), 2);
        assert_eq!(c.nodes[6].gpu_free, Some(0));
        let gpu = &c.partitions.iter().find(|p| p.name == "gpu").unwrap().gpus;
        assert_eq!((gpu.len(), gpu[0].capacity, gpu[0].free, gpu[0].not_ready), (1, 8, Some(5), 20));
        assert_eq!(c.partitions.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["gpu", "all"]);
    }

    #[test]
    fn filters() {
        let l = parse_text("NodeName=a Gres=gpu:h100:8 State=IDLE\nNodeName=b Gres=gpu:l4:2 State=IDLE\n").unwrap();
        let f = Filter {
            name: Some(regex_lite::RegexBuilder::new("^(?:h1)").case_insensitive(true).build().unwrap()),
            quantity: None,
        };
        let c = summarise("x", &l.nodes, &f);
        assert_eq!((c.gpus.len(), c.nodes.len()), (1, 1));
        let c = summarise("x", &l.nodes, &Filter { name: None, quantity: Some(4) });
        assert_eq!(c.gpus.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), vec!["H100"]);
    }

    #[test]
    fn quantities_have_no_repeats() {
        assert_eq!(requestable(8), vec![1, 2, 4, 8]);
        assert_eq!(requestable(12), vec![1, 2, 4, 8, 12]);
        assert_eq!(requestable(0), Vec::<u32>::new());
    }
}
