//! The Slurm plugin against a real Slurm 22.05 started by the test (munged,
//! slurmctld, one slurmd on loopback) and an OpenSSH server on 127.0.0.1:
//! free counts with jobs of two users, drained, down and CPU-only nodes, two
//! partitions, two GPU types on one node, a cluster over SSH beside a host
//! that refuses, the controller and munge stopped, and a host without the plugin.

use skyhost_e2e::{
    Sandbox, skip,
    slurm::{Slurm, Sshd, free_port},
};

/// A sandbox with the Slurm plugin, `local` pointed at `slurm`, and a
/// `~/.slurm/config` holding `ssh_config`.
fn sandbox(slurm: &Slurm, ssh_config: &str) -> Sandbox {
    let sb = Sandbox::new().with_plugins(&["slurm"]);
    std::fs::create_dir_all(sb.path().join("home/.slurm")).unwrap();
    std::fs::write(sb.path().join("home/.slurm/config"), ssh_config).unwrap();
    // A runtime directory of its own (control sockets), removed with the
    // cluster's directory; short, as socket paths must be.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let runtime = slurm.dir().join(format!("run{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::create_dir_all(&runtime).unwrap();
    sb.env("SLURM_CONF", slurm.conf()).env("XDG_RUNTIME_DIR", runtime)
}

#[test]
fn a_real_slurm_locally_and_over_ssh() {
    let slurm = match Slurm::start() {
        Ok(s) => s,
        Err(why) => return skip(&why),
    };
    let sshd = match Sshd::start(&slurm.conf()) {
        Ok(s) => Some(s),
        Err(why) => {
            skip(&format!("the SSH part: {why}"));
            None
        }
    };
    // Jobs of two users hold 5 of the 6 H100 and 1 L4.
    slurm.hold("gpu:h100:3", "root");
    slurm.hold("gpu:h100:2", "nobody");
    slurm.hold("gpu:l4:1", "nobody");
    slurm.wait_gres_used("gpu:h100:5(IDX:0-4),gpu:l4:1(IDX:6)");
    slurm.scontrol(&["update", "nodename=gpu-b1", "state=down", "reason=broken"]);
    slurm.scontrol(&["update", "nodename=gpu-b2", "state=drain", "reason=maint"]);

    let known_hosts = slurm.dir().join("known_hosts");
    let mut ssh_config = String::new();
    if let Some(s) = &sshd {
        ssh_config.push_str(&s.host_block("viassh", &known_hosts));
        ssh_config.push_str(&format!(
            "Host refuses\n  HostName 127.0.0.1\n  Port {}\n  User root\n  UserKnownHostsFile {}\n",
            free_port(),
            known_hosts.display()
        ));
    }
    let sb = sandbox(&slurm, &ssh_config);

    let node = slurm.node.clone();
    let run = sb.run(["show-gpus", "--infra", "slurm/local", "-v"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(
        cells(&run.stdout),
        [
            vec!["Slurm GPUs"],
            vec!["Slurm Cluster: local"],
            vec!["GPU", "REQUESTABLE_QTY_PER_NODE", "UTILIZATION"],
            vec!["A100", "1, 2, 4", "0 of 0 free (8 not ready)"],
            vec!["H100", "1, 2, 4, 6", "1 of 6 free"],
            vec!["L4", "1, 2", "1 of 2 free"],
            vec!["Slurm per-partition GPU availability"],
            vec!["CLUSTER", "PARTITION", "GPU", "UTILIZATION"],
            vec!["local", "gpu", "A100", "0 of 0 free (8 not ready)"],
            vec!["local", "gpu", "H100", "1 of 6 free"],
            vec!["local", "gpu", "L4", "1 of 2 free"],
            vec!["local", "all", "A100", "0 of 0 free (8 not ready)"],
            vec!["local", "all", "H100", "1 of 6 free"],
            vec!["local", "all", "L4", "1 of 2 free"],
            vec!["Slurm per-node GPU availability"],
            vec!["CLUSTER", "NODE", "PARTITION", "STATE", "GPU", "UTILIZATION"],
            vec!["local", "cpu1", "all", "UNKNOWN", "-", "0 of 0 free"],
            vec!["local", "gpu-b1", "gpu,all", "DOWN", "A100", "0 of 4 free"],
            vec!["local", "gpu-b2", "gpu,all", "UNKNOWN+DRAIN", "A100", "0 of 4 free"],
            vec!["local", &node, "gpu,all", "MIXED", "H100", "1 of 6 free"],
            vec!["local", &node, "gpu,all", "MIXED", "L4", "1 of 2 free"],
        ]
    );
    // The default listing: the Slurm section before the clouds.
    let with_aws = sandbox(&slurm, "").with_plugins(&["aws"]);
    let run = with_aws.run(["show-gpus"]);
    run.expect_code(0).expect_no_panic();
    let (slurm_part, cloud_part) = run.stdout.split_once("\n\nCloud GPUs\n").expect("a Cloud GPUs title after Slurm");
    assert!(slurm_part.starts_with("Slurm GPUs\nSlurm Cluster: local\n"), "{}", run.stdout);
    assert!(cloud_part.starts_with("COMMON_GPU"), "{}", run.stdout);

    // Without -v: no per-node table. A name and a quantity filter.
    let run = sb.run(["show-gpus", "--infra", "slurm/local"]);
    assert!(!run.expect_code(0).stdout.contains("per-node"), "{}", run.stdout);
    let run = sb.run(["show-gpus", "h100:4", "--infra", "slurm/local"]);
    assert_eq!(
        cells(&run.expect_code(0).stdout)[2..4],
        [vec!["GPU", "QTY_FILTER", "UTILIZATION"], vec!["H100", "1, 2, 4, 6", "1 of 6 free"]]
    );

    let Some(sshd) = sshd else { return };
    // Every cluster at once: local, over SSH, and one that refuses; the
    // listing goes on, with one note for the one that failed.
    let run = sb.run(["show-gpus", "--infra", "slurm", "-o", "json"]);
    run.expect_code(0).expect_no_panic();
    let doc = run.json();
    let section = &doc["clusters"][0];
    assert_eq!(section["backend"], "slurm");
    let clusters = section["clusters"].as_array().unwrap();
    let names: Vec<&str> = clusters.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["viassh", "refuses", "local"]);
    for c in [&clusters[0], &clusters[2]] {
        assert!(c["error"].is_null(), "{c}");
        let h100 = c["gpus"].as_array().unwrap().iter().find(|g| g["name"] == "H100").unwrap();
        assert_eq!((h100["capacity"].as_u64(), h100["free"].as_u64()), (Some(6), Some(1)), "{c}");
        assert_eq!(c["nodes"].as_array().unwrap().len(), 4);
        assert_eq!(c["partitions"].as_array().unwrap().len(), 2);
    }
    let reason = clusters[1]["error"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("ssh: ") && reason.contains("Connection refused"), "{reason}");
    // Totals over both readable clusters.
    let totals = section["totals"].as_array().unwrap();
    let h100 = totals.iter().find(|t| t["name"] == "H100").unwrap();
    assert_eq!((h100["capacity"].as_u64(), h100["free"].as_u64()), (Some(12), Some(2)));
    let notes: Vec<&str> = doc["notes"].as_array().unwrap().iter().map(|n| n["message"].as_str().unwrap()).collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].starts_with("Slurm cluster 'refuses' failed: ssh: "), "{notes:?}");

    // The server's /v1/gpus: the same clusters, all of them.
    let server = sb.serve(&[]);
    let (status, served) = server.get_json("/v1/gpus?infra=slurm");
    assert_eq!(status, 200, "{served}");
    let served_names: Vec<&str> =
        served["clusters"][0]["clusters"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(served_names, vec!["viassh", "refuses", "local"]);
    assert_eq!(served["clusters"][0]["totals"], section["totals"]);
    drop(server);

    // The table form: the note with its hint on stderr.
    let run = sb.run(["show-gpus", "--infra", "slurm"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stdout.contains("Slurm Cluster: viassh") && run.stdout.contains("Slurm Cluster: local"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("Slurm cluster 'refuses' failed: ssh: ") && run.stderr.contains("BatchMode=yes"),
        "{}",
        run.stderr
    );

    // The connection is reused: a control socket in the runtime directory.
    let runtime = sb.env.iter().find(|(k, _)| k == "XDG_RUNTIME_DIR").unwrap().1.clone();
    let sockets: Vec<_> = std::fs::read_dir(format!("{runtime}/skyhost")).unwrap().flatten().collect();
    assert!(
        sockets.iter().any(|e| e.file_name().to_string_lossy().starts_with("ssh-")),
        "no control socket in {runtime}"
    );
    // And the form 22.05 answers in is remembered, so the next run asks for it first.
    let forms: Vec<String> = sockets
        .iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-form-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(forms, vec!["sinfo-json"; 2], "one per readable cluster");

    // check: per cluster, reachable, version, nodes, GPU nodes, partitions.
    let run = sb.run(["check", "slurm"]);
    run.expect_code(1).expect_no_panic();
    assert!(run.stdout.contains("viassh: ok. reachable; Slurm 22.05"), "{}", run.stdout);
    assert!(run.stdout.contains("4 nodes, 3 with GPUs (A100 ×8, H100 ×6, L4 ×2); 2 partitions"), "{}", run.stdout);
    assert!(run.stdout.contains("refuses: failed. unreachable: ssh: "), "{}", run.stdout);

    // [slurm] allowed_clusters and a cluster from the config file over ssh.
    sb.write_config(&format!(
        "[slurm]\nallowed_clusters = [\"cfg\"]\ntimeout_secs = 20\n[[slurm.clusters]]\nname = \"cfg\"\nssh = \"root@127.0.0.1\"\nport = {}\nidentity_file = \"{}\"\nssh_options = [\"UserKnownHostsFile={}\", \"StrictHostKeyChecking=accept-new\"]\n",
        sshd.port,
        sshd.key().display(),
        known_hosts.display()
    ));
    let run = sb.run(["show-gpus", "--infra", "slurm", "-o", "json"]);
    let doc = run.expect_code(0).json();
    let names: Vec<&str> =
        doc["clusters"][0]["clusters"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["cfg"], "{doc}");
    assert!(doc["clusters"][0]["clusters"][0]["error"].is_null(), "{doc}");
    // slurmrestd's REST API over its Unix socket (rest_auth/local), and one
    // whose socket is not there.
    match slurm.start_rest() {
        Err(why) => skip(&format!("the REST part: {why}")),
        Ok(rest) => {
            sb.write_config(&format!(
                "[slurm]\n[[slurm.clusters]]\nname = \"rest\"\nrest_url = \"unix:{}\"\n\
                 [[slurm.clusters]]\nname = \"norest\"\nrest_url = \"unix:{}/none.sock\"\n",
                rest.socket.display(),
                slurm.dir().display()
            ));
            let run = sb.run(["show-gpus", "--infra", "slurm/rest", "-o", "json"]);
            let doc = run.expect_code(0).json();
            let c = &doc["clusters"][0]["clusters"][0];
            assert!(c["error"].is_null(), "{c}");
            assert_eq!(c["gpus"], clusters[0]["gpus"], "REST and ssh read the same GPUs");
            assert_eq!(c["nodes"].as_array().unwrap().len(), 4);
            let run = sb.run(["check", "slurm", "--context", "rest"]);
            run.expect_code(0).expect_no_panic();
            assert!(run.stdout.contains("rest: ok. reachable; Slurm 22.05"), "{}", run.stdout);
            assert!(run.stdout.contains("2 partitions") && run.stdout.contains("slurmrestd"), "{}", run.stdout);
            let run = sb.run(["show-gpus", "--infra", "slurm/norest"]);
            run.expect_no_panic();
            assert!(
                run.stderr.contains("Slurm cluster 'norest' failed: slurmrestd at unix:")
                    && run.stderr.contains("cannot connect"),
                "{}",
                run.stderr
            );
        }
    }

    sb.write_config("[slurm]\n[[slurm.clusters]]\nname = \"x\"\nsssh = \"a@b\"\n");
    let run = sb.run(["show-gpus", "--infra", "slurm"]);
    run.expect_code(1).expect_no_panic();
    assert!(run.stderr.contains("config [slurm]") && run.stderr.contains("unknown field `sssh`"), "{}", run.stderr);
    sb.write_config("");

    // munge stopped: the authentication error, named.
    slurm.stop("munged");
    let run = sb.run(["show-gpus", "--infra", "slurm/viassh"]);
    run.expect_no_panic();
    println!("munge: {}", run.stderr);
    assert!(run.stderr.contains("Slurm cluster 'viassh' failed:") && run.stderr.contains("munge"), "{}", run.stderr);
    // The controller stopped too: one note naming it.
    slurm.stop("slurmctld");
    let run = sb.run(["show-gpus", "--infra", "slurm/local"]);
    run.expect_no_panic();
    println!("ctld: {}", run.stderr);
    assert!(
        run.stderr.contains("Slurm cluster 'local' failed:")
            && run.stderr.contains("Unable to contact slurm controller"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("slurmctld is running"), "{}", run.stderr);
}

/// Table rows as cells (split on two or more spaces), blank lines dropped.
fn cells(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect())
        .collect()
}

#[test]
fn without_the_plugin_the_rest_works_and_says_how_to_add_it() {
    let sb = Sandbox::new().with_plugins(&["aws"]);
    let run = sb.run(["show-gpus", "--infra", "slurm"]);
    run.expect_code(3).expect_no_panic();
    assert!(
        run.stderr.contains("libskyhost_slurm.so") && run.stderr.contains("cargo build --release -p skyhost-slurm"),
        "{}",
        run.stderr
    );
    let run = sb.run(["show-gpus"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("COMMON_GPU"), "{}", run.stdout);
    let plugins = sb.run(["plugins", "-o", "json"]).json();
    assert_eq!(skyhost_e2e::entry(&plugins, "slurm")["status"], "missing");
}

#[test]
fn no_clusters_anywhere_is_not_a_failure_of_the_listing() {
    let sb = Sandbox::new().with_plugins(&["slurm", "aws"]).env("PATH", "/nonexistent");
    // A listing that could use Slurm: nothing about it, no note.
    let run = sb.run(["show-gpus"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("COMMON_GPU") && !run.stdout.contains("Slurm"), "{}", run.stdout);
    assert!(!run.stderr.to_lowercase().contains("slurm"), "{}", run.stderr);
    // One that asks for it: not set up, and what to do.
    let run = sb.run(["show-gpus", "--infra", "slurm"]);
    run.expect_code(1).expect_no_panic();
    assert!(run.stderr.contains("no Slurm clusters") && run.stderr.contains("~/.slurm/config"), "{}", run.stderr);
    let run = sb.run(["check", "slurm"]);
    run.expect_code(1).expect_no_panic();
    assert!(run.stdout.contains("setup: failed. no Slurm clusters"), "{}", run.stdout);
}
