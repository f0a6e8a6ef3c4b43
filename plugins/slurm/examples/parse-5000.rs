//! Times reading a generated `scontrol show node --json` document of 5,000
//! nodes (v0.0.41 shapes): the plugin's parse and summary against parsing
//! the same text into a `serde_json::Value` only. Used by `bench/run slurm`.
//!
//! Prints `BASELINE_MS PARSE_MS NODES` (medians of `runs`).

use std::time::Instant;

fn document(nodes: usize) -> String {
    let mut out = String::from("{\"nodes\":[");
    for i in 0..nodes {
        if i > 0 {
            out.push(',');
        }
        let (state, used) = match i % 5 {
            0 => ("[\"IDLE\"]", 0),
            1 => ("[\"MIXED\"]", 3),
            2 => ("[\"ALLOCATED\"]", 8),
            3 => ("[\"MIXED\",\"DRAIN\"]", 1),
            _ => ("[\"DOWN\",\"NOT_RESPONDING\"]", 0),
        };
        let kind = ["nvidia_h100_80gb_hbm3", "a100", "l40s", "nvidia_a100-sxm4-80gb"][i % 4];
        out.push_str(&format!(
            "{{\"architecture\":\"x86_64\",\"boards\":1,\"boot_time\":{{\"set\":true,\"infinite\":false,\"number\":1714557600}},\
             \"cores\":32,\"cpu_load\":310,\"free_mem\":{{\"set\":true,\"infinite\":false,\"number\":400000}},\"cpus\":64,\
             \"features\":[\"gpu\",\"ib\"],\"active_features\":[\"gpu\",\"ib\"],\"gres\":\"gpu:{kind}:8(S:0-1)\",\"gres_drained\":\"N/A\",\
             \"gres_used\":\"gpu:{kind}:{used}(IDX:0-{})\",\"name\":\"node{i:05}\",\"address\":\"10.0.{}.{}\",\"hostname\":\"node{i:05}\",\
             \"state\":{state},\"operating_system\":\"Linux 5.14.0 #1 SMP PREEMPT_DYNAMIC\",\"partitions\":[\"gpu\",\"all\",\"p{}\"],\
             \"port\":6818,\"real_memory\":515000,\"reason\":\"\",\"alloc_memory\":131072,\"alloc_cpus\":16,\"alloc_idle_cpus\":48,\
             \"tres\":\"cpu=64,mem=515000M,billing=64,gres/gpu=8\",\"tres_used\":\"cpu=16,mem=128G,gres/gpu={used}\",\
             \"last_busy\":{{\"set\":true,\"infinite\":false,\"number\":1714557600}},\"sockets\":2,\"threads\":1,\"version\":\"24.05.3\"}}",
            used.max(1) - 1,
            i / 250,
            i % 250,
            i % 7
        ));
    }
    out.push_str("],\"meta\":{\"slurm\":{\"version\":{\"major\":\"24\",\"micro\":\"3\",\"minor\":\"05\"},\"release\":\"24.05.3\"}},\"errors\":[],\"warnings\":[]}");
    out
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(15);
    let text = document(5000);
    let (mut base, mut ours) = (Vec::new(), Vec::new());
    let mut nodes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid");
        std::hint::black_box(&v);
        base.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let listing = skyhost_slurm::nodes::parse_json(&text).expect("parses");
        let cluster = skyhost_slurm::summary::summarise("bench", &listing.nodes, &Default::default());
        nodes = cluster.nodes.len();
        std::hint::black_box(&cluster);
        ours.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("{:.2} {:.2} {nodes}", median(base), median(ours));
}
