//! `skyhost serve` from the minimal layout (no Kubernetes plugin), the
//! client mode against it, and the server under bad input and load.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use skyhost_e2e::{
    Sandbox,
    kube_api::{ClusterSpec, KubeApi, kubeconfig, node},
};

#[test]
fn a_minimal_image_serves_the_clouds_and_explains_the_missing_kubernetes_plugin() {
    let sb = Sandbox::new().use_layout(false);
    let server = sb.serve(&[]);
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(log.contains("skyhost serve: backend kubernetes: missing; install libskyhost_kubernetes.so"), "{log}");
    assert!(log.contains("skyhost serve: backend aws: loaded (version 0.1.0"), "{log}");

    let (status, head, body) = server.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ok\"}"));
    assert!(head.contains("skyhost-api-version: 1"), "{head}");

    let (status, ready) = server.get_json("/readyz");
    assert_eq!(status, 200);
    assert_eq!(ready["ready"], true);
    let k8s = ready["backends"].as_array().unwrap().iter().find(|b| b["name"] == "kubernetes").unwrap();
    assert_eq!(k8s["status"], "missing");
    assert!(k8s["hint"].as_str().unwrap().contains("libskyhost_kubernetes.so"));

    let (status, plugins) = server.get_json("/v1/plugins");
    assert_eq!(status, 200);
    let aws = plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "aws").unwrap();
    assert_eq!(aws["status"], "loaded");
    assert!(aws["path"].as_str().unwrap().ends_with("layout/minimal/lib/skyhost/plugins/libskyhost_aws.so"), "{aws:#}");

    let (status, gpus) = server.get_json("/v1/gpus");
    assert_eq!(status, 200);
    assert_eq!(gpus["schema_version"], 1);
    assert_eq!(gpus["clusters"].as_array().unwrap().len(), 0);
    assert!(gpus["common_gpus"].as_array().unwrap().iter().any(|g| g["name"] == "H100"));
    let note = gpus["notes"].as_array().unwrap().iter().find(|n| n["kind"] == "skipped_backends").expect("a note");
    assert_eq!(note["message"], "skipped kubernetes (not installed)");

    let (status, err) = server.get_json("/v1/gpus?infra=k8s");
    assert_eq!(status, 424);
    assert_eq!(err["error"]["kind"], "backend_missing");
    assert_eq!(err["error"]["backend"], "kubernetes");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("needs the Kubernetes backend, which is not installed"),
        "{err:#}"
    );
    assert!(err["error"]["hint"].as_str().unwrap().contains("libskyhost_kubernetes.so"), "{err:#}");

    // The client needs no plugins at all, and prints what the local command prints.
    let client = Sandbox::new().env("SKYHOST_SERVER", &server.url);
    assert!(std::fs::read_dir(client.plugins()).unwrap().next().is_none());
    for args in [
        &["show-gpus"][..],
        &["show-gpus", "H100:8"],
        &["show-gpus", "-a"],
        &["gpus", "list", "a100", "--all-regions"],
        &["show-gpus", "A100", "-o", "csv"],
    ] {
        let remote = client.run(args);
        let local = sb.run(args);
        remote.expect_code(0).expect_no_panic();
        assert_eq!(remote.stdout, local.stdout, "{args:?}");
        assert_eq!(remote.stderr, local.stderr, "{args:?}");
    }
    let nothing = client.run(["show-gpus", "NOSUCHGPU"]);
    nothing.expect_code(4);
    let remote = client.run(["show-gpus", "--infra", "k8s"]);
    remote.expect_code(3);
    assert!(
        remote.stderr.contains("needs the Kubernetes backend, which is not installed (from the server at"),
        "{}",
        remote.stderr
    );
    assert!(remote.stderr.contains("help: install libskyhost_kubernetes.so"), "{}", remote.stderr);
    let bad = client.run(["show-gpus", "A100", "-a"]);
    bad.expect_code(2);

    // `plugins` and `check` describe the server's backends, not the client's (none).
    for args in [&["plugins"][..], &["check"], &["check", "aws", "-o", "json"]] {
        let remote = client.run(args);
        let local = sb.run(args);
        remote.expect_code(local.code).expect_no_panic();
        assert_eq!(remote.stdout, local.stdout, "{args:?}");
    }
    let remote = client.run(["plugins"]);
    assert!(remote.stdout.contains("kubernetes  missing"), "{}", remote.stdout);
    assert!(
        remote.stderr.contains(&format!("note: these are the plugins of the skyhost server at {}", server.url)),
        "{}",
        remote.stderr
    );
    let remote = client.run(["plugins", "-o", "json"]).json();
    let local = sb.run(["plugins", "-o", "json"]).json();
    let names = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["plugins"].as_array().unwrap().iter().map(|p| (p["name"].to_string(), p["status"].to_string())).collect()
    };
    assert_eq!(names(&remote), names(&local));
    // Catalogs are each machine's own, and the client says so.
    let catalogs = client.run(["catalog", "status"]);
    catalogs.expect_code(0);
    assert!(catalogs.stderr.contains("catalog commands act on this machine's catalogs"), "{}", catalogs.stderr);
    let remote = client.run(["check", "kubernetes"]);
    remote.expect_code(3);
    assert!(remote.stderr.contains("(from the server at"), "{}", remote.stderr);
    assert!(remote.stderr.contains("libskyhost_kubernetes.so"), "{}", remote.stderr);
    assert_eq!(server.terminate(), 0);
}

#[test]
fn the_client_names_an_unreachable_or_foreign_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = Sandbox::new();
    let run = client.run(["--server", &format!("http://127.0.0.1:{port}"), "show-gpus"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!("error: cannot reach the skyhost server at http://127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: check the URL"), "{}", run.stderr);

    // Something that is not a skyhost server (no API version header).
    let files = skyhost_e2e::http_files::HttpFiles::start(client.path().to_path_buf());
    let run = client.run(["--server", &files.url(), "show-gpus"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("speaks skyhost API version none (is it a skyhost server?); this client speaks 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_requests_get_their_status_and_the_server_keeps_serving() {
    let sb = Sandbox::new().use_layout(false);
    sb.write_config("[serve]\nheader_timeout_secs = 1\n");
    let server = sb.serve(&[]);
    let addr = server.addr();
    let expect = |path: &str, status: u16, kind: &str| {
        let (s, json) = server.get_json(path);
        assert_eq!(s, status, "{path}: {json}");
        assert_eq!(json["error"]["kind"], kind, "{path}: {json}");
    };
    expect("/v2/nothing", 404, "not_found");
    expect("/v1/gpus?name=A100:0", 400, "bad_request");
    expect("/v1/gpus?all=maybe", 400, "bad_request");
    expect("/v1/gpus?name=A100&name=H100", 400, "bad_request");
    expect("/v1/gpus?infra=nosuchcloud", 400, "bad_request");
    expect("/v1/gpus?name=%E0%A4%A", 400, "bad_request");
    expect(&format!("/v1/gpus?name={}", "A".repeat(9000)), 414, "bad_request");
    let (status, head, body) =
        skyhost_e2e::http_request(&addr, "DELETE /v1/gpus HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 405, "{body}");
    assert!(head.contains("allow: get, head") && body.contains("method_not_allowed"), "{head}{body}");
    // More headers than the server takes: refused with 431, not a crash. (A
    // small request, all of it read, so the answer is not lost to a reset.)
    let many: String = (0..200).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
    let (status, _, _) = skyhost_e2e::http_request(
        &addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\n{many}Connection: close\r\n\r\n"),
    );
    assert_eq!(status, 431);
    assert_eq!(server.get("/healthz").0, 200, "and it keeps serving");

    // A slow client that never finishes its request is cut off after the
    // header timeout; meanwhile others are served.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    assert_eq!(server.get("/healthz").0, 200);
    // Ended by the server (end of file), not by this side giving up waiting.
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    assert!(slow.read_to_end(&mut buf).is_ok(), "the slow connection was closed by the server");

    // A client that leaves in the middle of a large answer.
    for _ in 0..5 {
        let mut gone = TcpStream::connect(&addr).unwrap();
        gone.write_all(b"GET /v1/gpus?all=true HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        drop(gone);
    }

    // A thousand connections at once.
    let conns: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
            c
        })
        .collect();
    let ok = conns
        .into_iter()
        .filter(|c| {
            let mut c = c.try_clone().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut s = String::new();
            let _ = c.read_to_string(&mut s);
            s.starts_with("HTTP/1.1 200")
        })
        .count();
    assert_eq!(ok, 1000);
    assert_eq!(server.get_json("/v1/gpus?name=H100").0, 200);
    assert_eq!(server.terminate(), 0);
}

#[test]
fn identical_requests_share_one_backend_call_and_shutdown_finishes_them() {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t")], Some("lab"))).unwrap();
    let sb = sb.env("KUBECONFIG", &kc);
    let server = sb.serve(&[]);
    let addr = server.addr();
    // The cluster holds its answer until the test lets it go, so the twenty
    // requests are certainly in flight when SIGTERM comes.
    api.hold();
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                skyhost_e2e::http_request(
                    &addr,
                    "GET /v1/gpus?infra=k8s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                )
            })
        })
        .collect();
    api.wait_for_requests(1);
    skyhost_e2e::wait_until("the server to read all twenty requests", || server.connections_read() >= 20);
    // SIGTERM while the 20 requests wait on the held cluster: they finish first.
    server.signal(libc::SIGTERM);
    server.wait_for_log("shutting down; finishing requests in flight");
    assert!(clients.iter().all(|c| !c.is_finished()), "no answer before the cluster's");
    api.release();
    for c in clients {
        let (status, _, body) = c.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"free\":8"), "{body}");
    }
    assert_eq!(server.wait(), 0);
    let node_lists = api.requests().iter().filter(|r| r.starts_with("NodeList")).count();
    assert_eq!(node_lists, 1, "one backend call for twenty identical requests");
}

#[test]
fn check_over_http_and_a_request_past_its_deadline() {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    // The cluster never answers: the request deadline (0.5 s) must end the request.
    api.hold();
    let sb = Sandbox::new().with_plugins(&["kubernetes", "aws"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t")], Some("lab"))).unwrap();
    sb.write_config("[serve]\nrequest_timeout_secs = 0.5\n");
    let sb = sb.env("KUBECONFIG", &kc);
    let server = sb.serve(&[]);

    let (status, json) = server.get_json("/v1/gpus?infra=k8s");
    assert_eq!(status, 504, "{json}");
    assert_eq!(json["error"]["kind"], "timeout");
    assert!(json["error"]["hint"].as_str().unwrap().contains("request_timeout_secs"));
    // Meanwhile the clouds answer at once; a region may come as its own parameter.
    let (status, json) = server.get_json("/v1/gpus?name=H100&infra=aws&region=us-east-1");
    assert_eq!(status, 200, "{json}");
    let rows = json["offerings"][0]["rows"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["region"] == "us-east-1"), "{rows:?}");

    let (status, json) = server.get_json("/v1/check?backend=aws");
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["backends"][0]["name"], "aws");
    assert_eq!(json["backends"][0]["ok"], true);
    let (status, json) = server.get_json("/v1/check?backend=gcp");
    assert_eq!(status, 424, "{json}");
    assert_eq!(json["error"]["kind"], "backend_missing");
    let (status, json) = server.get_json("/v1/check?verbose=1");
    assert_eq!((status, json["error"]["kind"].as_str()), (400, Some("bad_request")));
}

/// A one-request-at-a-time HTTP server on 127.0.0.1 that answers every
/// request with `response`; its URL.
fn canned_server(response: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut c in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn the_client_prints_what_the_local_command_prints_for_every_exit_status() {
    // A server with a cluster backend whose second context is unreachable.
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    let sb = Sandbox::new().with_plugins(&["aws", "lambda", "kubernetes"]).env("SKYHOST_DISABLE", "lambda");
    let kc = sb.path().join("kubeconfig");
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t"), ("gone", &dead, "t")], Some("lab"))).unwrap();
    // A server answers only for the contexts its operator allows; the client
    // may then name any of them, as the local command may (same config).
    let config = sb.path().join("server.toml");
    std::fs::write(&config, "[kubernetes]\nallowed_contexts = \"all\"\n").unwrap();
    let sb = sb.env("KUBECONFIG", &kc).env("SKYHOST_CONFIG", &config);
    let server = sb.serve(&[]);
    let client = Sandbox::new().env("SKYHOST_SERVER", &server.url).env("SKYHOST_CONFIG", &config);
    for (args, code) in [
        (&["show-gpus", "H100"][..], 0),
        (&["show-gpus", "--infra", "k8s", "--all-contexts"], 0),
        (&["show-gpus", "--all-contexts", "-o", "json"], 0),
        (&["show-gpus", "--infra", "k8s", "--context", "gone"], 0),
        (&["show-gpus", "A100", "-a"], 2),
        (&["show-gpus", "A100:0"], 2),
        (&["show-gpus", "NOSUCHGPU"], 4),
        (&["show-gpus", "H200:3", "--infra", "aws"], 4),
    ] {
        let local = sb.run(args);
        let remote = client.run(args);
        local.expect_code(code);
        remote.expect_code(code).expect_no_panic();
        assert_eq!(remote.stdout, local.stdout, "{args:?}");
        // clap's usage line of a usage error also names the arguments that
        // came from the environment, SKYHOST_SERVER's among them.
        assert_eq!(remote.stderr.replace(" --server <URL>", ""), local.stderr, "{args:?}");
    }
    // Context errors reach the client as they reach a local user.
    let remote = client.run(["show-gpus", "--infra", "k8s", "--all-contexts"]);
    assert!(remote.stdout.contains("Context: lab"), "{}", remote.stdout);
    assert!(
        remote.stderr.contains("note: Kubernetes context 'gone' failed: cannot reach the API server"),
        "{}",
        remote.stderr
    );
    // Exit 3: the same error, said to come from the server.
    for args in [&["show-gpus", "--infra", "lambda"][..], &["check", "gcp"]] {
        let local = sb.run(args);
        let remote = client.run(args);
        local.expect_code(3);
        remote.expect_code(3).expect_no_panic();
        // The same reason and help; the command is named as the server got it.
        let from_server = format!(" (from the server at {})", server.url);
        // (A local `check` adds where it looked, which is this machine's path, not the server's.)
        let reason = |s: &str| {
            let two: Vec<&str> = s.lines().take(2).collect();
            two.join("\n").replacen(&from_server, "", 1).split_once("` needs ").map(|(_, r)| r.to_string())
        };
        assert!(reason(&local.stderr).is_some(), "{}", local.stderr);
        assert_eq!(reason(&remote.stderr), reason(&local.stderr), "{args:?}");
        assert!(remote.stderr.contains(&format!("(from the server at {}", server.url)), "{}", remote.stderr);
    }
    // Exit 1: a check that fails.
    api.set_faults(|f| f.nodes_status = Some(500));
    let local = sb.run(["check", "kubernetes", "--context", "lab"]);
    let remote = client.run(["check", "kubernetes", "--context", "lab"]);
    local.expect_code(1);
    remote.expect_code(1).expect_no_panic();
    assert_eq!(remote.stdout, local.stdout);
    // `serve` is never sent to a server.
    let refused = client.run(["serve"]);
    refused.expect_code(2).expect_no_panic();
    assert!(
        refused.stderr.contains("`serve` runs a server; it cannot be sent to one with --server"),
        "{}",
        refused.stderr
    );
    assert_eq!(server.terminate(), 0);
}

#[test]
fn the_client_turns_a_server_timeout_into_exit_1_and_refuses_another_api_version() {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    api.hold();
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t")], Some("lab"))).unwrap();
    sb.write_config("[serve]\nrequest_timeout_secs = 0.5\n");
    let sb = sb.env("KUBECONFIG", &kc);
    let server = sb.serve(&[]);
    let run = Sandbox::new().env("SKYHOST_SERVER", &server.url).run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(1).expect_no_panic();
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(run.stderr.contains("request_timeout_secs"), "the server's hint reaches the user: {}", run.stderr);
    api.release();
    drop(server);

    let other = canned_server(
        "HTTP/1.1 200 OK\r\nskyhost-api-version: 2\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    );
    let run = Sandbox::new().run(["--server", &other, "show-gpus"]);
    run.expect_code(1).expect_no_panic();
    assert!(
        run.stderr.contains(&format!("the server at {other} speaks skyhost API version 2; this client speaks 1")),
        "{}",
        run.stderr
    );
}

fn held_cluster_server(config: &str) -> (KubeApi, Sandbox, skyhost_e2e::Server) {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t")], Some("lab"))).unwrap();
    sb.write_config(config);
    let sb = sb.env("KUBECONFIG", &kc);
    let server = sb.serve(&[]);
    (api, sb, server)
}

fn node_lists(api: &KubeApi) -> usize {
    api.requests().iter().filter(|r| r.starts_with("NodeList")).count()
}

#[test]
fn answers_are_cached_for_cache_ttl_secs() {
    let (api, _sb, server) = held_cluster_server("[serve]\ncache_ttl_secs = 3600\n");
    assert_eq!(server.get_json("/v1/gpus?infra=k8s").0, 200);
    assert_eq!(server.get_json("/v1/gpus?infra=k8s").0, 200);
    assert_eq!(node_lists(&api), 1, "the second answer came from the cache");
    assert_eq!(server.get_json("/v1/gpus?infra=k8s&name=H100").0, 200);
    assert_eq!(node_lists(&api), 2, "another query is another answer");

    let (api, _sb, server) = held_cluster_server("[serve]\ncache_ttl_secs = 0\n");
    assert_eq!(server.get_json("/v1/gpus?infra=k8s").0, 200);
    assert_eq!(server.get_json("/v1/gpus?infra=k8s").0, 200);
    assert_eq!(node_lists(&api), 2, "nothing is kept with a lifetime of 0");
}

#[test]
fn at_most_max_backend_calls_run_at_once() {
    let ask = |addr: String, path: &'static str| {
        std::thread::spawn(move || {
            skyhost_e2e::http_request(
                &addr,
                &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
            )
        })
    };
    for limit in [2, 1] {
        let (api, _sb, server) = held_cluster_server(&format!("[serve]\nmax_backend_calls = {limit}\n"));
        api.hold();
        let a = ask(server.addr(), "/v1/gpus?infra=k8s");
        let b = ask(server.addr(), "/v1/gpus?infra=k8s&name=H100");
        skyhost_e2e::wait_until("the server to read both requests", || server.connections_read() >= 2);
        api.wait_for_requests(1);
        if limit == 2 {
            api.wait_for_requests(2);
        } else {
            assert_eq!(node_lists(&api), 1, "the second backend call waits for the first");
        }
        api.release();
        for c in [a, b] {
            let (status, _, body) = c.join().unwrap();
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(node_lists(&api), 2);
    }
}

#[test]
fn head_openapi_sigint_and_424_for_each_unusable_backend() {
    let sb = Sandbox::new()
        .with_plugins(&["aws", "azure"])
        .with_fixture("lambda", "nextmajor")
        .env("SKYHOST_DISABLE", "azure");
    sb.write_plugin_file("gcp", b"not a library", 0o644);
    let server = sb.serve(&[]);
    for (infra, kind) in [
        ("azure", "backend_disabled"),
        ("gcp", "backend_broken"),
        ("lambda", "backend_incompatible"),
        ("vast", "backend_missing"),
    ] {
        let (status, json) = server.get_json(&format!("/v1/gpus?infra={infra}"));
        assert_eq!(status, 424, "{infra}: {json}");
        assert_eq!(json["error"]["kind"], kind, "{infra}: {json}");
        assert_eq!(json["error"]["backend"], infra, "{infra}: {json}");
        assert!(json["error"]["hint"].as_str().is_some_and(|h| !h.is_empty()), "{infra}: {json}");
    }
    assert_eq!(server.get_json("/v1/gpus?infra=aws").0, 200);

    // The OpenAPI document is the one in the repository.
    let (status, api) = server.get_json("/v1/openapi.json");
    assert_eq!(status, 200);
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(skyhost_e2e::workspace().join("host/src/server/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(api, file);

    // HEAD: the GET's status and headers, no body.
    let (status, head, body) = skyhost_e2e::http_request(
        &server.addr(),
        "HEAD /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((status, body.as_str()), (200, ""), "{head}");
    assert!(head.contains("skyhost-api-version: 1") && head.contains("content-type: application/json"), "{head}");

    // Ctrl-C stops it as SIGTERM does.
    server.signal(libc::SIGINT);
    server.wait_for_log("shutting down; finishing requests in flight");
    assert_eq!(server.wait(), 0);
}
