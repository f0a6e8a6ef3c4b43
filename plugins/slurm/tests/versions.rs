//! The JSON documents of the Slurm versions this machine does not run, as
//! the data parsers write them (v0.0.38 captured from 22.05.8; v0.0.39,
//! v0.0.41 and v0.0.43 written from their parsers' field lists), read
//! through the same functions as a live answer.

use skyhost_slurm::{
    nodes::{ParseError, parse_json},
    summary::{Filter, summarise},
};

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `(name, capacity, free, not_ready)` per GPU type.
fn gpus(doc: &str) -> Vec<(String, u32, Option<u32>, u32)> {
    let l = parse_json(&data(doc)).unwrap();
    summarise("c", &l.nodes, &Filter::default())
        .gpus
        .into_iter()
        .map(|g| (g.name, g.capacity, g.free, g.not_ready))
        .collect()
}

#[test]
fn slurm_22_05_sinfo_json() {
    let l = parse_json(&data("sinfo-22.05.8-v0.0.38.json")).unwrap();
    assert_eq!(l.version.as_deref(), Some("22.05.8"));
    let states: Vec<String> = l.nodes.iter().map(|n| format!("{}={}", n.name, n.state.display())).collect();
    assert_eq!(states, vec!["cpu1=UNKNOWN", "gpu-b1=UNKNOWN", "gpu-b2=UNKNOWN+DRAIN", "vm=MIXED"]);
    let vm = &l.nodes[3];
    assert_eq!((vm.cpus, vm.alloc_cpus, vm.memory_mb), (Some(8.0), Some(1.0), Some(2000.0)));
    assert_eq!(
        gpus("sinfo-22.05.8-v0.0.38.json"),
        vec![("A100".to_string(), 0, Some(0), 8), ("H100".to_string(), 8, Some(5), 0)]
    );
}

#[test]
fn slurm_22_05_controller_down_is_an_error_despite_exit_0() {
    let e = parse_json(&data("sinfo-22.05.8-controller-down.json")).unwrap_err();
    assert_eq!(e, ParseError::Slurm("Unspecified error (error -1)".into()));
}

#[test]
fn slurm_23_02_scontrol_json() {
    let l = parse_json(&data("scontrol-23.02-v0.0.39.json")).unwrap();
    assert_eq!(l.version.as_deref(), Some("23.02.2"));
    assert_eq!(l.nodes[0].state.display(), "MIXED+DRAIN");
    assert_eq!(l.nodes[0].alloc_tres_gpus, Some(3));
    assert_eq!(
        gpus("scontrol-23.02-v0.0.39.json"),
        vec![
            ("A100-80GB".to_string(), 4, Some(3), 0),
            ("GPU".to_string(), 0, Some(0), 8),
            ("H100".to_string(), 0, Some(0), 8),
            ("L4".to_string(), 2, Some(2), 0),
        ]
    );
}

#[test]
fn slurm_24_05_scontrol_json() {
    let l = parse_json(&data("scontrol-24.05-v0.0.41.json")).unwrap();
    assert_eq!(l.version.as_deref(), Some("24.05.3"));
    // Allocated (all 8 held), powered down and maintenance (not ready), reserved (ready).
    assert_eq!(gpus("scontrol-24.05-v0.0.41.json"), vec![("H100".to_string(), 16, Some(8), 16)]);
    let c = summarise("c", &l.nodes, &Filter::default());
    let cloud = c.partitions.iter().find(|p| p.name == "cloud").unwrap();
    assert_eq!((cloud.gpus[0].capacity, cloud.gpus[0].not_ready), (0, 8));
}

#[test]
fn slurm_25_05_scontrol_json() {
    let l = parse_json(&data("scontrol-25.05-v0.0.43.json")).unwrap();
    assert_eq!(l.version.as_deref(), Some("25.05.0"));
    // Shards are not GPUs; the drained node's GPUs are not ready.
    assert_eq!(gpus("scontrol-25.05-v0.0.43.json"), vec![("H100".to_string(), 8, Some(6), 8)]);
}

#[test]
fn slurmrestd_errors_and_grouped_sinfo() {
    let e = parse_json(&data("slurmrestd-v0.0.40-error.json")).unwrap_err();
    assert_eq!(
        e,
        ParseError::Slurm(
            "Failure to query nodes: Unable to contact slurm controller (connect failure) (error 1007)".into()
        )
    );
    assert!(matches!(parse_json(&data("sinfo-23.02-grouped.json")), Err(ParseError::Malformed(_))));
}
