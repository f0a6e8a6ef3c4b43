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

/// A small validator for the OpenAPI schema subset the document uses.
fn validate(value: &Value, schema: &Value, root: &Value, path: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        return validate(value, &root["components"]["schemas"][name], root, path);
    }
    if value.is_null() {
        return if schema["nullable"] == true || schema.get("type").is_none() {
            Ok(())
        } else {
            Err(format!("{path}: null is not allowed"))
        };
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_u64() || value.is_i64(),
            "boolean" => value.is_boolean(),
            _ => false,
        };
        if !ok {
            return Err(format!("{path}: expected {t}, found {value}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array).filter(|o| !o.contains(value)) {
        return Err(format!("{path}: {value} is not one of {options:?}"));
    }
    for req in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let key = req.as_str().unwrap();
        if value.get(key).is_none() {
            return Err(format!("{path}: missing '{key}'"));
        }
    }
    if let (Some(props), Some(obj)) = (schema.get("properties").and_then(Value::as_object), value.as_object()) {
        for (k, v) in obj {
            if let Some(s) = props.get(k) {
                validate(v, s, root, &format!("{path}.{k}"))?;
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(v, items, root, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn openapi() -> Value {
    serde_json::from_str(&std::fs::read_to_string(workspace().join("host/src/server/openapi.json")).unwrap()).unwrap()
}

#[track_caller]
fn assert_matches_schema(doc: &Value) {
    let api = openapi();
    if let Err(e) = validate(doc, &api["components"]["schemas"]["GpuReport"], &api, "$") {
        panic!("the JSON does not match the documented schema: {e}\n{doc:#}");
    }
}

#[test]
fn json_follows_the_documented_schema_and_holds_what_the_tables_show() {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![
            node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0,
            node("u").gpus("nvidia.com/gpu", 1).0,
        ],
        pods: vec![pod("p", "x", Some("g")).requests(&[("nvidia.com/gpu", "2")]).0],
        ..Default::default()
    });
    let sb = clouds().with_plugins(&["kubernetes"]);
    let kc = sb.path().join("kubeconfig");
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t"), ("gone", &dead, "t")], Some("lab"))).unwrap();
    let sb = sb.env("KUBECONFIG", &kc);
    for args in [
        &["show-gpus"][..],
        &["show-gpus", "-a"],
        &["show-gpus", "H100"],
        &["show-gpus", "NOPE"],
        &["show-gpus", "--infra", "k8s", "--all-contexts"],
    ] {
        let mut json_args = args.to_vec();
        json_args.extend(["-o", "json"]);
        let run = sb.run(&json_args);
        let doc = run.json();
        assert_matches_schema(&doc);
        // Notes are in the document, not on stderr.
        assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
        // Every offering row of the table is in the JSON, in the same order.
        let table = sb.run(args);
        let rows: Vec<(String, String)> =
            doc["offerings"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|t| {
                    t["rows"].as_array().unwrap().iter().map(|r| {
                        (r["accelerator"].as_str().unwrap().to_string(), r["cloud"].as_str().unwrap().to_string())
                    })
                })
                .collect();
        let table_rows: Vec<(String, String)> = table
            .stdout
            .lines()
            .filter(|l| l.contains("  $ ") || l.contains("  -  "))
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols.len() > 3).then(|| (cols[0].to_string(), cols[2].to_string()))
            })
            .collect();
        assert_eq!(rows, table_rows, "{args:?}");
    }
    // All contexts at once, the failed one as data (SkyPilot's JSON has only the current one).
    let json = sb.run(["show-gpus", "--infra", "k8s", "--all-contexts", "-o", "json"]).json();
    let clusters = json["clusters"][0]["clusters"].as_array().unwrap();
    assert_eq!(clusters.iter().map(|c| c["name"].as_str().unwrap()).collect::<Vec<_>>(), ["lab", "gone"]);
    assert_eq!(
        clusters[0]["gpus"][0],
        serde_json::json!({"name": "H100", "requestable_quantities": [1, 2, 4, 8], "capacity": 8, "free": 6, "not_ready": 0})
    );
    assert!(clusters[1]["error"]["reason"].as_str().unwrap().contains("cannot reach"));
    assert!(json["notes"].as_array().unwrap().iter().any(|n| n["kind"] == "context_error"));
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
    let run = sb.run(["show-gpus", "H10"]);
    run.expect_code(0);
    let run = sb.run(["show-gpus", "RTX509"]);
    run.expect_code(0);
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
    let mut cmd = sb.command(std::iter::empty::<&str>());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &format!("{program} {args}"), "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    if no_color {
        script.env("NO_COLOR", "1");
    }
    cmd.env_clear();
    String::from_utf8_lossy(&script.output().expect("script runs").stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
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
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 1).label("skypilot.co/accelerator", "t4").0],
        ..Default::default()
    });
    api.set_faults(|f| f.delay = Some(std::time::Duration::from_millis(700)));
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t")], Some("lab"))).unwrap();
    let sb = sb.env("KUBECONFIG", &kc);
    let tty = in_a_terminal(&sb, "show-gpus --infra k8s", false);
    assert!(tty.contains("waiting for Kubernetes clusters"), "{tty:?}");
    assert!(tty.contains("Context: lab"), "{tty:?}");
    let no_color = in_a_terminal(&sb, "show-gpus --infra k8s", true);
    assert!(!no_color.contains("waiting for") && no_color.contains("Context: lab"), "{no_color:?}");
    let piped = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(!piped.stderr.contains("waiting for") && !piped.stdout.contains("waiting for"));
}
