//! Process isolation: a plugin that crashes, hangs, prints or allocates
//! without end costs its own backend one line; every other backend answers,
//! the CLI finishes and the server keeps serving. The faulty plugins are one
//! fixture library installed under the name of its misbehaviour.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use skyhost_e2e::{Sandbox, entry, fixture, run_with_timeout};

/// Tight limits, so that hangs end quickly: a call may take 2 s, a load 2 s,
/// a worker 256 MiB.
const LIMITS: &str = "[plugins]\ncall_timeout_secs = 2\nload_timeout_secs = 2\nworker_memory_mb = 256\n";

/// A sandbox with AWS and the faulty fixture installed as `libskyhost_<fault>.so`.
fn sandbox_with(faults: &[&str]) -> Sandbox {
    let sb = Sandbox::new().with_plugins(&["aws"]);
    let bytes = std::fs::read(fixture("faulty")).expect("faulty fixture");
    for f in faults {
        sb.write_plugin_file(f, &bytes, 0o755);
    }
    sb.write_config(LIMITS);
    sb
}

/// What each fault is reported as, in one line that names the file.
const CALL_FAULTS: [(&str, &str); 5] = [
    ("segv", "crashed: SIGSEGV in gpus.query"),
    ("abort", "crashed: SIGABRT in gpus.query"),
    ("stackoverflow", "crashed: SIGABRT (stack overflow) in gpus.query"),
    ("loop", "did not answer within 2 s; its worker was stopped (gpus.query)"),
    (
        "alloc",
        "crashed: SIGABRT (out of memory: a worker may use 256 MB, see [plugins] worker_memory_mb) in gpus.query",
    ),
];

#[test]
fn a_fault_in_a_call_costs_its_backend_one_line() {
    for (fault, said) in CALL_FAULTS {
        let sb = sandbox_with(&[fault]);
        let run = sb.run(["show-gpus", "--isolation", "process"]);
        run.expect_code(0).expect_no_panic();
        assert!(run.stdout.contains("A100"), "{fault}: AWS still answers\n{}", run.stdout);
        let file = format!("libskyhost_{fault}.so");
        let lines: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("note:") && l.contains(&file)).collect();
        assert_eq!(lines.len(), 1, "{fault}: one note names the file\n{}", run.stderr);
        assert!(
            lines[0].starts_with(&format!("note: the {fault} backend failed: "))
                && lines[0].ends_with(&format!("{file} {said}")),
            "{fault}: {}",
            lines[0]
        );
        assert!(run.stderr.contains(&format!("--disable {fault}")), "{fault}: the hint\n{}", run.stderr);

        // `plugins` loads it without calling it; `check` calls it and shows the crash.
        let plugins = sb.run(["plugins", "-o", "json"]);
        assert_eq!(entry(&plugins.expect_code(0).json(), fault)["status"], "loaded");
        let check = sb.run(["check", fault]);
        check.expect_code(1).expect_no_panic();
        assert!(check.stdout.contains(&said.replace("gpus.query", "check")), "{fault}: {}", check.stdout);
    }
}

#[test]
fn what_it_printed_is_kept_from_the_terminal_and_shown_with_v() {
    let sb = sandbox_with(&["stackoverflow", "stdout"]);
    let run = sb.run(["show-gpus"]);
    run.expect_code(0);
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains("garbage a plugin printed"), "a worker's prints never reach the terminal:\n{out}");
    }
    assert!(!run.stderr.contains("libskyhost_stdout.so"), "printing to stdout breaks nothing:\n{}", run.stderr);
    let verbose = sb.run(["-v", "show-gpus", "--infra", "stackoverflow"]);
    assert!(
        verbose.stderr.contains("crashed: SIGABRT (stack overflow) in gpus.query; it printed: thread '")
            && verbose.stderr.contains("has overflowed its stack"),
        "{}",
        verbose.stderr
    );
}

#[test]
fn a_plugin_that_dies_or_hangs_while_loading_is_broken_and_the_rest_load() {
    let sb = sandbox_with(&["exitctor", "sleepctor"]);
    let run = sb.run(["plugins", "-o", "json"]);
    run.expect_code(0).expect_no_panic();
    let json = run.json();
    assert_eq!(entry(&json, "aws")["status"], "loaded");
    for (fault, reason) in [
        ("exitctor", "its worker exited with status 0 while loading"),
        ("sleepctor", "it did not load within 2 s (its constructor hangs?)"),
    ] {
        let e = entry(&json, fault);
        assert_eq!(e["status"], "broken", "{fault}: {e}");
        assert_eq!(e["reason"], reason, "{fault}");
    }
    let listing = sb.run(["show-gpus"]);
    listing.expect_code(0).expect_no_panic();
    assert!(listing.stdout.contains("A100"), "{}", listing.stdout);
}

#[test]
fn in_process_mode_is_chosen_by_flag_environment_or_config() {
    let sb = sandbox_with(&[]).with_fixture("callpanic", "callpanic");
    let isolation = |run: &skyhost_e2e::Run| entry(&run.json(), "aws")["isolation"].as_str().map(str::to_string);
    assert_eq!(isolation(&sb.run(["plugins", "-o", "json"])).as_deref(), Some("process"), "the CLI's default");
    assert_eq!(
        isolation(&sb.run(["--isolation", "in-process", "plugins", "-o", "json"])).as_deref(),
        Some("in-process")
    );
    let by_env = sb.command(["plugins", "-o", "json"]).env("SKYHOST_ISOLATION", "in-process").output().unwrap();
    assert_eq!(isolation(&skyhost_e2e::Run::from(by_env)).as_deref(), Some("in-process"));
    sb.write_config(&format!("{LIMITS}isolation = \"in-process\"\n"));
    assert_eq!(isolation(&sb.run(["plugins", "-o", "json"])).as_deref(), Some("in-process"));
    // Contained faults are still contained in process: a panic is an error value.
    let run = sb.run(["show-gpus", "H100"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stderr.contains("the callpanic backend failed: plugin panicked"), "{}", run.stderr);
    let bad = sb.run(["--isolation", "sideways", "plugins"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("invalid value 'sideways'") && bad.stderr.contains("in-process"), "{}", bad.stderr);
}

#[test]
fn bad_numbers_in_config_and_environment_are_usage_errors_naming_the_key() {
    let sb = sandbox_with(&[]);
    for (config, key) in [
        ("[kubernetes]\ntimeout_secs = inf\n", "[kubernetes] timeout_secs = inf is out of range"),
        ("[serve]\nrequest_timeout_secs = 1e300\n", "[serve] request_timeout_secs = 1e300 is out of range"),
        ("[serve]\nmax_backend_calls = 100000\n", "[serve] max_backend_calls = 100000 is out of range"),
        ("[catalog]\nmax_age_hours = -2\n", "[catalog] max_age_hours = -2 is out of range"),
        ("[plugins]\ncall_timeout_secs = nan\n", "[plugins] call_timeout_secs = NaN is out of range"),
    ] {
        sb.write_config(config);
        let run = sb.run(["show-gpus"]);
        run.expect_code(2).expect_no_panic();
        assert!(run.stderr.contains(key), "{config}: {}", run.stderr);
    }
    sb.write_config("");
    for value in ["inf", "-1", "soon", "1e30"] {
        let run = sb.command(["show-gpus"]).env("SKYHOST_KUBE_TIMEOUT", value).output().unwrap();
        let run = skyhost_e2e::Run::from(run);
        run.expect_code(2).expect_no_panic();
        assert!(run.stderr.contains("SKYHOST_KUBE_TIMEOUT"), "{value}: {}", run.stderr);
    }
}

fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).expect("Threads:")
}

/// GETs `path` from ten clients at once, `rounds` times; the bodies.
fn storm(server: &skyhost_e2e::Server, path: &str, rounds: usize) -> Vec<(u16, String)> {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..rounds {
        std::thread::scope(|s| {
            for _ in 0..10 {
                let bodies = bodies.clone();
                s.spawn(move || {
                    let (status, _, body) = server.get(path);
                    bodies.lock().unwrap().push((status, body));
                });
            }
        });
    }
    Arc::try_unwrap(bodies).unwrap().into_inner().unwrap()
}

#[test]
fn the_server_outlives_its_plugins_and_reports_one_that_keeps_crashing() {
    let all: Vec<&str> = CALL_FAULTS.iter().map(|(f, _)| *f).chain(["stdout", "exitctor", "sleepctor"]).collect();
    let sb = sandbox_with(&all);
    sb.write_config(&format!("{LIMITS}[serve]\ncache_ttl_secs = 0\nrequest_timeout_secs = 5\n"));
    let server = sb.serve(&[]);
    let pid = server.child.id();
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(log.contains("backend sleepctor: broken") && log.contains("backend exitctor: broken"), "{log}");

    // One listing with every fault at once: one note each, AWS answers.
    let (status, listing) = server.get_json("/v1/gpus");
    assert_eq!(status, 200, "{listing}");
    assert!(listing["common_gpus"].as_array().is_some_and(|a| !a.is_empty()), "{listing}");
    let notes: Vec<String> =
        listing["notes"].as_array().unwrap().iter().map(|n| n["message"].as_str().unwrap().to_string()).collect();
    for (fault, said) in CALL_FAULTS {
        let about: Vec<&String> = notes.iter().filter(|n| n.contains(&format!("libskyhost_{fault}.so"))).collect();
        assert_eq!(about.len(), 1, "{fault}: {notes:#?}");
        assert!(about[0].ends_with(said), "{fault}: {}", about[0]);
    }
    assert!(!notes.iter().any(|n| n.contains("libskyhost_stdout.so")), "{notes:#?}");

    // Fifty requests to a plugin that loops: each is cut off at the call's
    // deadline, its worker killed; the threads do not pile up.
    for (status, body) in storm(&server, "/v1/gpus?infra=loop", 5) {
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("libskyhost_loop.so"), "{body}");
    }
    let threads = threads_of(pid);
    assert!(threads <= 40, "{threads} threads after 50 stuck calls");
    let (status, aws) = server.get_json("/v1/gpus?infra=aws");
    assert_eq!(status, 200);
    assert!(aws["common_gpus"].as_array().is_some_and(|a| !a.is_empty()), "{aws}");

    // A plugin that keeps crashing is restarted (with a line in the log) and
    // reported as broken until it answers cleanly again.
    let plugin_status = |server: &skyhost_e2e::Server| {
        let (_, json) = server.get_json("/v1/plugins");
        entry(&json, "segv")["status"].as_str().unwrap().to_string()
    };
    let mut crashes = 0;
    while plugin_status(&server) != "broken" {
        let (_, _, body) = server.get("/v1/gpus?infra=segv&name=H100");
        crashes += usize::from(body.contains("crashed: SIGSEGV"));
        assert!(crashes < 50, "never reported as broken");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, json) = server.get_json("/v1/plugins");
    let e = entry(&json, "segv");
    assert!(e["reason"].as_str().unwrap().contains("keeps failing"), "{e}");
    let (_, ready) = server.get_json("/readyz");
    let segv = ready["backends"].as_array().unwrap().iter().find(|b| b["name"] == "segv").unwrap();
    assert_eq!(segv["status"], "broken", "{ready}");
    let mut tries = 0;
    loop {
        let (_, _, body) = server.get("/v1/gpus?infra=segv&name=healthy");
        if !body.contains("libskyhost_segv.so") {
            break;
        }
        tries += 1;
        assert!(tries < 400, "never restarted: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(plugin_status(&server), "loaded", "a clean answer makes it loaded again");
    assert!(
        server
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("restarting the worker of") && l.contains("libskyhost_segv.so")),
        "{:?}",
        server.stderr.lock().unwrap()
    );

    // SIGTERM still ends the server, with every worker.
    let code = server.terminate();
    assert_eq!(code, 0);
    let gone = run_with_timeout(
        {
            let mut c = std::process::Command::new("pgrep");
            c.args(["-f", &format!("__plugin-worker.*{}", sb.path().display())]);
            c
        },
        Duration::from_secs(30),
    )
    .expect("pgrep");
    assert!(gone.stdout.is_empty(), "workers outlived the server: {}", String::from_utf8_lossy(&gone.stdout));
}
