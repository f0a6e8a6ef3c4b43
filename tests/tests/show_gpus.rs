//! `show-gpus` as a user meets it: refused options, the JSON document against
//! its published schema, notes, suggestions, colour only on a terminal,
//! CSV, completions and the man page.

use serde_json::Value;
use skyhost_e2e::{
    CLOUDS, Sandbox,
    kube_api::{ClusterSpec, KubeApi, kubeconfig, node, pod},
    workspace,
};

fn quirks() -> std::path::PathBuf {
    workspace().join("tests/fixtures/catalogs/quirks/v8")
}

fn clouds() -> Sandbox {
    Sandbox::new()
        .with_plugins(&["aws", "gcp", "azure", "lambda", "vast", "verda", "yotta"])
        .env("SKYHOST_CATALOG_DIR", quirks())
        .env("SKYHOST_DISABLE", "nebius,hyperbolic,seeweb,mithril")
}

#[test]
fn refused_options_and_combinations_are_usage_errors_before_any_backend_runs() {
    // No plugins at all: a refusal must come before the backend check (exit 3).
    let sb = Sandbox::new();
    for (args, message) in [
        (&["show-gpus", "A100", "-a"][..], "cannot be used with"),
        (&["show-gpus", "--all-regions"], "required arguments were not provided"),
        (&["show-gpus", "-a", "--all-regions"], "--all-regions is only allowed with a GPU name"),
        (
            &["show-gpus", "A100", "--all-regions", "--infra", "aws/us-east-1"],
            "--all-regions cannot be combined with a region",
        ),
        (&["show-gpus", "A100", "--all-regions", "--cloud", "aws", "--region", "us-east-1"], "cannot be used with"),
        (&["show-gpus", "--region", "us-east-1"], "required arguments were not provided"),
        (&["show-gpus", "--infra", "aws", "--cloud", "gcp"], "cannot be used with"),
        (&["show-gpus", "A100:0"], "invalid accelerator quantity '0': expected a positive integer"),
        (&["show-gpus", "A100:x"], "invalid accelerator quantity 'x'"),
        (&["show-gpus", "A100:1:2"], "expected NAME or NAME:QTY"),
        (&["show-gpus", "A100("], "invalid GPU name pattern 'A100('"),
        (&["show-gpus", "--infra", "aws", "--context", "x"], "--context and --all-contexts apply to Kubernetes"),
        (
            &["show-gpus", "--infra", "k8s/a", "--context", "b"],
            "either in --infra kubernetes/CONTEXT or with --context",
        ),
        (&["show-gpus", "--context", "a", "--all-contexts"], "cannot be used with"),
        (&["show-gpus", "-o", "yaml"], "invalid value 'yaml'"),
        (&["gpus", "list", "-a", "H100"], "cannot be used with"),
        (&["show-gpus", "--nosuchflag"], "unexpected argument '--nosuchflag'"),
    ] {
        let run = sb.run(args);
        run.expect_code(2).expect_no_panic();
        assert!(run.stderr.starts_with("error: "), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.trim_end().ends_with("For more information, try '--help'."),
            "{args:?}: clap's style: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("Usage: show-gpus"), "{args:?}: the usage line names the program: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

fn openapi() -> Value {
    serde_json::from_str(&std::fs::read_to_string(workspace().join("host/src/server/openapi.json")).unwrap()).unwrap()
}

/// Objects that list their properties get `additionalProperties: false`:
/// the published schema lets clients accept fields a minor version adds, but
/// skyhost's own output must be fully described by it.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Validates `doc` against `components/schemas/<name>` of openapi.json (an
/// OpenAPI 3.1 document, whose schemas are JSON Schema 2020-12).
#[track_caller]
fn assert_matches_schema(doc: &Value, name: &str) {
    let api = openapi();
    assert_eq!(api["openapi"], "3.1.0", "the validator reads JSON Schema 2020-12, as OpenAPI 3.1 writes it");
    let mut components = api["components"].clone();
    strict(&mut components);
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": components,
    });
    let validator = jsonschema::draft202012::new(&schema).expect("openapi.json's schemas are valid JSON Schema");
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the JSON does not match the documented schema:\n{}\n{doc:#}", errors.join("\n"));
}

#[test]
fn the_schema_check_refuses_what_the_schema_forbids() {
    // The validator the next test relies on fails where it must.
    let sb = clouds();
    let doc = sb.run(["show-gpus", "H100", "-o", "json"]).json();
    assert_matches_schema(&doc, "GpuReport");
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        std::panic::catch_unwind(|| assert_matches_schema(&d, "GpuReport")).is_err()
    };
    assert!(broken(&|d| {
        d["offerings"][0]["rows"][0].as_object_mut().unwrap().remove("price");
    }));
    assert!(broken(&|d| d["offerings"][0]["rows"][0]["surprise"] = 1.into()));
    assert!(broken(&|d| d["offerings"][0]["rows"][0]["vcpus"] = (-1).into()));
    assert!(broken(&|d| d["offerings"][0]["rows"][0]["cloud"] = Value::Null));
    assert!(broken(&|d| d["notes"] = serde_json::json!([{"kind": "gossip", "message": "m"}])));
    assert!(!broken(&|d| d["offerings"][0]["rows"][0]["price"] = Value::Null));
}

/// Rows of the table headed by a line starting with `header`, up to the next blank line.
fn table_rows(stdout: &str, header: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn quantities(q: &Value) -> String {
    q.as_array().unwrap().iter().map(|n| n.as_f64().unwrap().to_string()).collect::<Vec<_>>().join(", ")
}

/// A sandbox whose default listing has offering rows with nulls, a cluster
/// whose free GPUs are unknown and every kind of note.
fn everything() -> (Sandbox, [KubeApi; 2]) {
    let lab = KubeApi::start(ClusterSpec {
        nodes: vec![
            node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0,
            node("u").gpus("nvidia.com/gpu", 1).0,
        ],
        pods: vec![pod("p", "x", Some("g")).requests(&[("nvidia.com/gpu", "2")]).0],
        ..Default::default()
    });
    let locked = KubeApi::start(ClusterSpec {
        nodes: vec![node("h").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    locked.set_faults(|f| f.pods_forbidden = true);
    // nebius is enabled but the catalog directory has no file for it: a catalog note.
    let sb = Sandbox::new()
        .with_plugins(&["aws", "gcp", "azure", "lambda", "vast", "verda", "yotta", "kubernetes"])
        .with_fixture("callpanic", "callpanic")
        .env("SKYHOST_CATALOG_DIR", quirks())
        .env("SKYHOST_DISABLE", "hyperbolic,seeweb,mithril");
    let kc = sb.path().join("kubeconfig");
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let contexts = [("lab", lab.url()), ("locked", locked.url()), ("gone", dead)];
    let contexts: Vec<(&str, &str, &str)> = contexts.iter().map(|(n, u)| (*n, u.as_str(), "t")).collect();
    std::fs::write(&kc, kubeconfig(&contexts, Some("lab"))).unwrap();
    let sb = sb.env("KUBECONFIG", &kc);
    sb.write_config("[kubernetes]\nallowed_contexts = \"all\"\n");
    (sb, [lab, locked])
}

#[test]
fn json_follows_the_documented_schema_and_holds_what_the_tables_show() {
    let (sb, _apis) = everything();

    // The default listing: every note kind, a context with unknown free GPUs.
    let doc = sb.run(["show-gpus", "-o", "json"]).json();
    assert_matches_schema(&doc, "GpuReport");
    let kinds: std::collections::BTreeSet<&str> =
        doc["notes"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["backend_error", "catalog", "cluster", "context_error", "skipped_backends"].into(),
        "{:#}",
        doc["notes"]
    );
    let table = sb.run(["show-gpus"]);
    table.expect_code(0).expect_no_panic();
    let common: Vec<String> = doc["common_gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{} {}", g["name"].as_str().unwrap(), quantities(&g["quantities"])))
        .collect();
    assert!(!common.is_empty());
    assert_eq!(table_rows(&table.stdout, "COMMON_GPU"), common);
    let tpus: Vec<String> = doc["tpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{} {}", g["name"].as_str().unwrap(), quantities(&g["quantities"])))
        .collect();
    assert!(!tpus.is_empty());
    assert_eq!(table_rows(&table.stdout, "GOOGLE_TPU"), tpus);

    // Kubernetes: per context and the totals, the unknown part said so.
    let k8s = &doc["clusters"][0];
    let clusters = k8s["clusters"].as_array().unwrap();
    assert_eq!(clusters.iter().map(|c| c["name"].as_str().unwrap()).collect::<Vec<_>>(), ["lab", "locked", "gone"]);
    assert_eq!(
        clusters[0]["gpus"][0],
        serde_json::json!({"name": "H100", "requestable_quantities": [1, 2, 4, 8], "capacity": 8, "free": 6, "not_ready": 0})
    );
    assert_eq!(clusters[1]["gpus"][0]["free"], Value::Null);
    assert!(clusters[2]["error"]["reason"].as_str().unwrap().contains("cannot reach"));
    let h100 = k8s["totals"].as_array().unwrap().iter().find(|t| t["name"] == "H100").unwrap();
    assert_eq!(
        *h100,
        serde_json::json!({"name": "H100", "capacity": 16, "free": 6, "free_unknown_contexts": 1, "not_ready": 0})
    );
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")
                == "H100 6+ of 16 free; free unknown in 1 context"),
        "{}",
        table.stdout
    );
    let locked = table_rows(&table.stdout, "Context: locked");
    assert!(locked.iter().any(|r| r == "H100 1, 2, 4, 8 <no permissions> of 8 free"), "{locked:?}\n{}", table.stdout);

    // A named listing: every offering row of the tables, in order, with the nulls of the catalog.
    for args in [&["show-gpus", "H100"][..], &["show-gpus", "-a"]] {
        let mut json_args = args.to_vec();
        json_args.extend(["-o", "json"]);
        let run = sb.run(&json_args);
        let doc = run.json();
        assert_matches_schema(&doc, "GpuReport");
        assert!(run.stderr.is_empty(), "{args:?}: notes are in the document: {}", run.stderr);
        let rows: Vec<(String, String, String)> = doc["offerings"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["rows"].as_array().unwrap().iter())
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap().to_string();
                // GCP's TPUs and attachable GPUs have no instance type of their own.
                let instance = r["instance_type"].as_str().unwrap_or("(attachable)").to_string();
                (s("accelerator"), s("cloud"), instance)
            })
            .collect();
        assert!(rows.len() >= 4, "{args:?}: {rows:?}");
        let table = sb.run(args);
        let table_rows: Vec<(String, String, String)> = table
            .stdout
            .lines()
            .filter(|l| l.contains(" $ ") || l.ends_with(" -") || l.contains(" - "))
            .filter(|l| !l.starts_with("GPU "))
            .map(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                (c[0].to_string(), c[2].to_string(), c[3].to_string())
            })
            .collect();
        assert_eq!(rows, table_rows, "{args:?}\n{}", table.stdout);
        assert!(
            doc["offerings"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|t| t["rows"].as_array().unwrap())
                .any(|r| r["price"].is_null() || r["spot_price"].is_null() || r["device_memory_gib"].is_null()),
            "{args:?}: a row with a null"
        );
    }

    // Nothing found: the message and suggestions are the table's.
    let run = sb.run(["show-gpus", "NOPE", "-o", "json"]);
    run.expect_code(4);
    let doc = run.json();
    assert_matches_schema(&doc, "GpuReport");
    let table = sb.run(["show-gpus", "NOPE"]);
    table.expect_code(4);
    assert!(table.stdout.starts_with(doc["not_found"]["message"].as_str().unwrap()), "{}", table.stdout);
}

#[test]
fn notes_for_missing_and_disabled_backends_come_once_after_the_tables() {
    let sb = Sandbox::new().with_plugins(&CLOUDS).with_plugins(&["slurm"]);
    let run = sb.run(["--disable", "gcp,lambda", "show-gpus", "H100"]);
    run.expect_code(0);
    assert_eq!(
        run.stderr,
        "note: skipped kubernetes (not installed); gcp, lambda (disabled by --disable)\n\
         help: run `skyhost plugins` to see how to install, enable or fix them\n"
    );
    assert!(!run.stdout.contains("GCP") && !run.stdout.contains("Lambda"), "{}", run.stdout);
    let one = sb.run(["show-gpus", "H100"]);
    assert!(
        one.stderr.starts_with("note: skipped kubernetes (not installed)\nhelp: install libskyhost_kubernetes.so"),
        "{}",
        one.stderr
    );
}

#[test]
fn a_name_nothing_offers_exits_4_with_the_closest_names() {
    let sb = clouds();
    // A name matches as a pattern, as SkyPilot's does: H10 lists the H100
    // tables (and no H200), RTX509 the RTX5090 ones; no suggestion then.
    for (pattern, gpu) in [("H10", "H100"), ("RTX509", "RTX5090")] {
        let run = sb.run(["show-gpus", pattern]);
        run.expect_code(0);
        let gpus: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| !l.starts_with("GPU ") && !l.trim().is_empty())
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert!(gpus.len() >= 2 && gpus.iter().all(|g| *g == gpu), "{pattern}: {}", run.stdout);
        assert!(!run.stdout.contains("Did you mean") && !run.stdout.contains("not found"), "{}", run.stdout);
    }
    let run = sb.run(["show-gpus", "A1OO"]);
    run.expect_code(4);
    assert_eq!(
        run.stdout,
        "Resources 'A1OO' not found in cloud catalogs.\nTo show available accelerators, run: skyhost show-gpus --all\nDid you mean: A100, A10, H100?\n"
    );
    let qty = sb.run(["show-gpus", "H200:3"]);
    qty.expect_code(4);
    assert!(
        qty.stdout.starts_with("Resources 'H200' with requested quantity 3 not found in cloud catalogs."),
        "{}",
        qty.stdout
    );
    assert!(qty.stdout.contains("Did you mean: H200:1, H200:8"), "{}", qty.stdout);
}

#[test]
fn csv_lists_the_offering_rows() {
    let run = clouds().run(["show-gpus", "H200", "-o", "csv"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "GPU,QTY,CLOUD,INSTANCE_TYPE,DEVICE_MEM_GIB,VCPUS,HOST_MEM_GIB,HOURLY_PRICE,HOURLY_SPOT_PRICE,REGION\n\
         H200,1,Verda,1H200.141S.44V,141,44,185,3.59,1.257,FIN-01\n\
         H200,8,AWS,p5e.48xlarge,140.4013671875,192,2048,,19.4254,us-east-1\n"
    );
}

fn in_a_terminal(sb: &Sandbox, args: &str, no_color: bool) -> String {
    in_a_terminal_until(sb, args, no_color, |_| true, || ())
}

/// Runs `skyhost ARGS` in a terminal (`script`); once what it has written so
/// far satisfies `seen`, calls `then` (e.g. to let a held cluster answer).
/// All it wrote.
fn in_a_terminal_until(
    sb: &Sandbox,
    args: &str,
    no_color: bool,
    seen: impl Fn(&str) -> bool,
    then: impl FnOnce(),
) -> String {
    let cmd = sb.command(std::iter::empty::<&str>());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let typescript = sb.path().join(format!("typescript-{}", std::process::id()));
    let _ = std::fs::remove_file(&typescript);
    let mut script = std::process::Command::new("script");
    // -f: the typescript is written as the output comes.
    script.args(["-qefc", &format!("{program} {args}")]).arg(&typescript);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    if no_color {
        script.env("NO_COLOR", "1");
    }
    let child = script
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script runs");
    skyhost_e2e::wait_until("the terminal output", || {
        seen(&String::from_utf8_lossy(&std::fs::read(&typescript).unwrap_or_default()))
    });
    then();
    let out = child.wait_with_output().expect("script ends");
    assert!(out.status.success(), "script failed: {out:?}");
    String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        return skyhost_e2e::skip("`script` (bsdutils) is not installed");
    }
    let sb = clouds();
    let piped = sb.run(["show-gpus"]);
    assert!(!piped.stdout.contains('\x1b') && !piped.stderr.contains('\x1b'), "piped output has no escape codes");
    let tty = in_a_terminal(&sb, "show-gpus", false);
    assert!(tty.contains("\x1b[1;36mnote\x1b[0m"), "{tty:?}");
    let no_color = in_a_terminal(&sb, "show-gpus", true);
    assert!(no_color.contains("note: skipped") && !no_color.contains('\x1b'), "{no_color:?}");
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = sb.run(["completions", shell]);
        run.expect_code(0);
        for word in ["show-gpus", "all-regions", "plugin-dir"] {
            assert!(run.stdout.contains(word), "{shell}: {word}");
        }
    }
    let man = sb.run(["man"]);
    man.expect_code(0);
    assert!(
        man.stdout.starts_with(".ie \\n(.g .ds Aq") || man.stdout.contains(".TH skyhost"),
        "{}",
        &man.stdout[..200]
    );
    assert!(man.stdout.contains("show\\-gpus"), "the man page lists the commands");
}

#[test]
fn a_spinner_says_what_it_waits_for_on_a_terminal_only() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        return skyhost_e2e::skip("`script` (bsdutils) is not installed");
    }
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 1).label("skypilot.co/accelerator", "t4").0],
        ..Default::default()
    });
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t")], Some("lab"))).unwrap();
    let sb = sb.env("KUBECONFIG", &kc);
    // The cluster answers only once the spinner is on the terminal.
    api.hold();
    let tty = in_a_terminal_until(
        &sb,
        "show-gpus --infra k8s",
        false,
        |out| out.contains("waiting for Kubernetes clusters"),
        || api.release(),
    );
    assert!(tty.contains("Context: lab"), "{tty:?}");
    // NO_COLOR: the cluster is held until it has been asked; no spinner then either.
    api.hold();
    let asked = api.requests().len();
    let no_color =
        in_a_terminal_until(&sb, "show-gpus --infra k8s", true, |_| api.requests().len() > asked, || api.release());
    assert!(!no_color.contains("waiting for") && no_color.contains("Context: lab"), "{no_color:?}");
    let piped = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(!piped.stderr.contains("waiting for") && !piped.stdout.contains("waiting for"));
}
