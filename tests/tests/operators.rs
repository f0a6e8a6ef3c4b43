//! `skyhost serve` as an operator runs it for a team: behind bearer tokens,
//! answering only for the contexts it allows, bounded under load, over
//! HTTPS, and watched by Prometheus.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use skyhost_e2e::{
    Run, Sandbox, Server,
    kube_api::{ClusterSpec, KubeApi, kubeconfig, node, tls_fixture},
    skip, wait_until,
};

const TOKEN: &str = "team-token-5f1e";

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// A server with the Kubernetes plugin over two contexts of one cluster
/// (8 H100 on `lab`), AWS, and `config` (plus the tokens file, when given).
fn server_with(config: &str, tokens: Option<&str>) -> (KubeApi, Sandbox, Server) {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    let sb = Sandbox::new().with_plugins(&["aws", "kubernetes"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("lab", &api.url(), "t"), ("prod", &api.url(), "t")], Some("lab"))).unwrap();
    let mut text = config.to_string();
    if let Some(t) = tokens {
        let file = sb.path().join("tokens");
        std::fs::write(&file, t).unwrap();
        text = format!("{text}\n[serve]\ntokens_file = \"{}\"\n", file.display());
    }
    sb.write_config(&text);
    let sb = sb.env("KUBECONFIG", &kc);
    let server = sb.serve(&[]);
    (api, sb, server)
}

#[test]
fn tokens_are_required_accepted_refused_and_reloaded() {
    let (_api, sb, server) = server_with("", Some(&format!("# the team\n{TOKEN}\n")));
    for path in ["/v1/gpus?infra=aws", "/v1/plugins", "/v1/check", "/metrics"] {
        let (status, head, body) = server.get(path);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        assert!(body.contains("\"kind\":\"unauthorized\"") && body.contains("no token was sent"), "{body}");
        let (status, _, body) = server.get_with(path, &[&bearer("wrong")]);
        assert_eq!(status, 401, "{path}");
        assert!(body.contains("the token sent is not accepted") && !body.contains("wrong"), "no echo: {body}");
        assert_eq!(server.get_with(path, &[&bearer(TOKEN)]).0, 200, "{path}");
    }
    // Probes need no token.
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.get("/readyz").0, 200);

    // A new token file takes effect without a restart (as the hashed form).
    use ring_free_sha256::hex_sha256;
    std::fs::write(sb.path().join("tokens"), format!("sha256:{}\n", hex_sha256("rotated"))).unwrap();
    wait_until("the new tokens file to be read", || server.get_with("/v1/plugins", &[&bearer("rotated")]).0 == 200);
    assert_eq!(server.get_with("/v1/plugins", &[&bearer(TOKEN)]).0, 401, "the old token no longer works");

    // The client sends SKYHOST_TOKEN, or says which setting is missing or wrong.
    let client = Sandbox::new().env("SKYHOST_SERVER", &server.url);
    let none = client.run(["plugins"]);
    none.expect_code(1).expect_no_panic();
    assert!(
        none.stderr.contains("needs a token, and none was sent") && none.stderr.contains("SKYHOST_TOKEN"),
        "{}",
        none.stderr
    );
    let wrong = Run::from(client.command(["plugins"]).env("SKYHOST_TOKEN", "nope").output().unwrap());
    wrong.expect_code(1);
    assert!(wrong.stderr.contains("does not accept the token from SKYHOST_TOKEN"), "{}", wrong.stderr);
    let ok = Run::from(
        client.command(["show-gpus", "--infra", "aws", "H100"]).env("SKYHOST_TOKEN", "rotated").output().unwrap(),
    );
    ok.expect_code(0);
    assert!(ok.stdout.contains("p5.48xlarge"), "{}", ok.stdout);
    let file = client.path().join("token");
    std::fs::write(&file, "rotated\n").unwrap();
    client.write_config(&format!("[client]\ntoken_file = \"{}\"\n", file.display()));
    client.run(["plugins"]).expect_code(0);
}

#[test]
fn a_public_address_needs_tokens_and_loopback_answers_only_loopback_names() {
    let sb = Sandbox::new().with_plugins(&["aws"]);
    // Refused before anything listens (no test server may listen off loopback).
    let run = sb.run(["serve", "--addr", "0.0.0.0:0"]);
    run.expect_code(2).expect_no_panic();
    assert!(run.stderr.contains("refusing to serve 0.0.0.0:0 without authentication"), "{}", run.stderr);
    assert!(run.stderr.contains("tokens_file") && run.stderr.contains("--allow-unauthenticated"), "{}", run.stderr);

    let server = sb.serve(&[]);
    let (status, _, body) = skyhost_e2e::http_request(
        &server.addr(),
        "GET /v1/gpus HTTP/1.1\r\nHost: rebind.attacker.example:46590\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("misdirected_request") && body.contains("rebind.attacker.example"), "{body}");
    for host in ["localhost", "127.0.0.1:46590", "[::1]:46590"] {
        let (status, _, _) = skyhost_e2e::http_request(
            &server.addr(),
            &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{host}");
    }
}

#[test]
fn clients_may_narrow_the_allowed_contexts_never_widen_them() {
    let (api, _sb, server) = server_with("[kubernetes]\nallowed_contexts = [\"lab\"]\n", None);
    let (status, body) = server.get_json("/v1/gpus?infra=k8s&context=prod");
    assert_eq!(status, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("'prod'") && !message.contains("lab"), "names only the context asked for: {message}");
    // all_contexts means all the allowed ones.
    let (status, body) = server.get_json("/v1/gpus?infra=k8s&all_contexts=true");
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> =
        body["clusters"][0]["clusters"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lab"]);
    // 400 repetitions of one context are one context: one cluster call.
    let before = api.requests().iter().filter(|r| r.starts_with("NodeList")).count();
    let many = vec!["context=lab"; 400].join("&");
    let (status, body) = server.get_json(&format!("/v1/gpus?infra=k8s&name=H100&{many}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["clusters"][0]["clusters"].as_array().unwrap().len(), 1);
    let after = api.requests().iter().filter(|r| r.starts_with("NodeList")).count();
    assert_eq!(after - before, 1, "one cluster call");
    // Distinct names are capped.
    let distinct: String = (0..65).map(|i| format!("context=c{i}")).collect::<Vec<_>>().join("&");
    let (status, body) = server.get_json(&format!("/v1/gpus?{distinct}"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at most 64"), "{body}");

    // Without allowed_contexts, the server answers for its default context only.
    let (_api, _sb, server) = server_with("", None);
    assert_eq!(server.get_json("/v1/gpus?infra=k8s&context=prod").0, 403);
    assert_eq!(server.get_json("/v1/gpus?infra=k8s&all_contexts=true").0, 403);
    assert_eq!(server.get_json("/v1/gpus?infra=k8s").0, 200);
}

fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).expect("Threads:")
}

#[test]
fn a_slow_cluster_gets_503_or_504_and_the_server_stays_bounded() {
    let (api, _sb, server) = server_with(
        "[kubernetes]\ntimeout_secs = 30\n[serve]\nrequest_timeout_secs = 1\nmax_backend_calls = 1\nmax_queued = 4\ncache_ttl_secs = 0\nerror_ttl_secs = 0\n",
        None,
    );
    api.hold();
    let baseline = threads_of(server.child.id());
    let rss = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
    };
    let memory_before = rss(server.child.id());
    // 1,000 distinct requests (distinct names, so none shares another's call).
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|t| {
                let server = &server;
                s.spawn(move || {
                    (0..50).map(|i| server.get(&format!("/v1/gpus?infra=k8s&name=G{t}x{i}")).0).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.len(), 1000);
    assert!(statuses.iter().all(|s| *s == 503 || *s == 504), "{statuses:?}");
    assert!(statuses.contains(&503) && statuses.contains(&504), "both the full queue and the deadline: {statuses:?}");
    let (status, head, _) = server.get("/v1/gpus?infra=k8s&name=ONE-MORE");
    assert!(status == 503 || status == 504);
    if status == 503 {
        assert!(head.contains("retry-after: 1"), "{head}");
    }
    let threads = threads_of(server.child.id());
    assert!(threads <= baseline + 8, "{threads} threads, {baseline} before");
    // Refusals and errors are not kept beyond their short lifetime: the
    // memory the storm took comes back (within 16 MB of where it started).
    let memory_after = rss(server.child.id());
    assert!(memory_after <= memory_before + 16 * 1024, "{memory_before} kB before, {memory_after} kB after");
    api.release();
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn idle_connections_do_not_starve_the_probes_and_the_cap_answers_503() {
    // Enough descriptors in this test process for the idle clients.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    if lim.rlim_cur < 6000 {
        return skip(&format!("this process may open only {} files; 5,000 idle connections need more", lim.rlim_cur));
    }
    let (_api, _sb, server) = server_with("", None);
    let idle: Vec<TcpStream> = (0..5000).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
    assert_eq!(server.get("/healthz").0, 200, "answers with 5,000 idle connections open");
    drop(idle);

    let (_api, _sb, capped) = server_with("[serve]\nmax_connections = 20\n", None);
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(capped.addr()).unwrap()).collect();
    let mut extra = TcpStream::connect(capped.addr()).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = String::new();
    let _ = extra.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("max_connections"), "{answer}");
    drop(held);
    wait_until("a free connection", || capped.get("/healthz").0 == 200);
}

#[test]
fn https_with_the_configured_certificate_and_a_client_that_trusts_its_ca() {
    let (_api, sb, _plain) = server_with("", None);
    sb.write_config(&format!(
        "[serve]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        tls_fixture("server.crt").display(),
        tls_fixture("server.key").display()
    ));
    let server = sb.serve(&[]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let client = Sandbox::new().env("SKYHOST_SERVER", &server.url);
    let untrusted = client.run(["plugins"]);
    untrusted.expect_code(1);
    assert!(untrusted.stderr.contains("cannot reach the skyhost server"), "{}", untrusted.stderr);
    client.write_config(&format!("[client]\nca_file = \"{}\"\n", tls_fixture("ca.crt").display()));
    let run = client.run(["show-gpus", "--infra", "aws", "H100"]);
    run.expect_code(0);
    assert!(run.stdout.contains("p5.48xlarge"), "{}", run.stdout);
    // Plain HTTP on the TLS port gets no answer.
    let mut s = TcpStream::connect(server.url.trim_start_matches("https://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    assert!(!String::from_utf8_lossy(&back).contains("\"status\":\"ok\""));
}

/// Minimal hex SHA-256 for the hashed-token line, from `sha256sum`.
mod ring_free_sha256 {
    pub fn hex_sha256(text: &str) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
    }
}

/// A process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn has(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_them() {
    if !has("promtool") || !has("prometheus") {
        return skip("Prometheus is not installed (apt-get install prometheus; .ci/run does)");
    }
    let (_api, sb, server) = server_with("", Some(&format!("{TOKEN}\n")));
    // A request first, so the request metrics have something to say.
    assert_eq!(server.get_with("/v1/gpus?infra=aws&name=H100", &[&bearer(TOKEN)]).0, 200);
    let (status, head, text) = server.get_with("/metrics", &[&bearer(TOKEN)]);
    assert_eq!(status, 200, "{text}");
    assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
    for series in [
        "skyhost_gpus_capacity{backend=\"kubernetes\",context=\"lab\",gpu=\"H100\"} 8",
        "skyhost_gpus_free{backend=\"kubernetes\",context=\"lab\",gpu=\"H100\"} 8",
        "skyhost_context_up{backend=\"kubernetes\",context=\"lab\"} 1",
        "skyhost_backend_status{backend=\"aws\",status=\"loaded\"} 1",
        "skyhost_backend_status{backend=\"gcp\",status=\"missing\"} 1",
        "skyhost_http_requests_total{route=\"/v1/gpus\",status=\"200\"} 1",
        "skyhost_plugin_call_duration_seconds_count{backend=\"aws\",method=\"gpus.query\"}",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
    let lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_input(text.as_bytes());
    assert!(lint.0.success(), "promtool: {}{}", lint.1, lint.2);

    // A real Prometheus on loopback scrapes it with the token.
    let dir = sb.path().join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        dir.join("prom.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: skyhost\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['{}']\n",
            sb.path().join("tokens").display(),
            server.addr()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let _prometheus = Killed(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prom.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus"),
    );
    let query = format!("127.0.0.1:{port}");
    wait_until("Prometheus to return skyhost's GPU series", || {
        if TcpStream::connect(&query).is_err() {
            return false;
        }
        let (status, _, body) = skyhost_e2e::http_request(
            &query,
            "GET /api/v1/query?query=skyhost_gpus_capacity HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        status == 200 && body.contains("\"gpu\":\"H100\"") && body.contains("\"8\"")
    });
}

/// `Command::output` with bytes on standard input: (status, stdout, stderr).
trait OutputWithInput {
    fn output_with_input(&mut self, input: &[u8]) -> (std::process::ExitStatus, String, String);
}

impl OutputWithInput for std::process::Command {
    fn output_with_input(&mut self, input: &[u8]) -> (std::process::ExitStatus, String, String) {
        let mut child =
            self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(input).expect("write");
        let out = child.wait_with_output().expect("wait");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn error_texts_reaching_a_client_carry_no_secrets() {
    let api = KubeApi::start(ClusterSpec { token: Some(TOKEN.into()), ..Default::default() });
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    // A helper that fails with a token in its first line and more below.
    let helper = sb.path().join("bin/leaky-auth-helper");
    std::fs::write(
        &helper,
        "#!/bin/sh\necho 'error: token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlMTIz was rejected' >&2\necho 'session: hunter2-keep-this-secret' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kc = sb.path().join("kubeconfig");
    let text = kubeconfig(&[("lab", &api.url(), TOKEN)], Some("lab")).replace(
        &format!("  user:\n    token: {TOKEN}\n"),
        &format!(
            "  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: Never\n",
            helper.display()
        ),
    );
    assert!(text.contains("leaky-auth-helper"), "{text}");
    std::fs::write(&kc, text).unwrap();
    let sb = sb.env("KUBECONFIG", &kc);
    // The local command shows the user their own helper's words.
    let local = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(local.stderr.contains("eyJhbGciOiJSUzI1NiJ9"), "{}", local.stderr);
    // A client of the server sees the failure, not the secrets.
    let server = sb.serve(&[]);
    let (status, _, body) = server.get("/v1/gpus?infra=k8s");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("was rejected") && body.contains("token ***"), "{body}");
    for secret in ["eyJhbGciOiJSUzI1NiJ9", "c2lnbmF0dXJlMTIz", "hunter2", TOKEN] {
        assert!(!body.contains(secret), "{secret} reached the client: {body}");
    }
    let (_, _, check) = server.get("/v1/check?backend=kubernetes");
    assert!(check.contains("was rejected") && !check.contains("eyJhbGci") && !check.contains("hunter2"), "{check}");
}

#[test]
fn one_answer_per_parsed_request_an_access_log_and_readiness() {
    let (_api, sb, server) = server_with("[serve]\ncache_ttl_secs = 3600\n", None);
    // The same request spelt two ways is computed once. (A scrape computes
    // the default listing, one AWS call of its own, kept for the hour.)
    assert_eq!(server.get("/metrics").0, 200);
    assert_eq!(server.get("/v1/gpus?infra=aws&name=A100").0, 200);
    assert_eq!(server.get("/v1/gpus?name=A1%30%30&infra=aws").0, 200);
    let (_, _, metrics) = server.get("/metrics");
    let calls = metrics
        .lines()
        .find(|l| l.starts_with("skyhost_plugin_call_duration_seconds_count{backend=\"aws\",method=\"gpus.query\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(calls.ends_with(" 2"), "the listing's call, and one for both spellings: {calls}");
    // One access-log line per request.
    server.wait_for_log("method=GET path=/v1/gpus status=200");
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(log.lines().any(|l| l.starts_with("skyhost serve: request id=") && l.contains("path=/metrics")), "{log}");

    // JSON lines for a log pipeline.
    let json = sb.serve(&["--log-format", "json"]);
    assert_eq!(json.get("/healthz").0, 200);
    json.wait_for_log("\"path\":\"/healthz\"");
    for line in json.stderr.lock().unwrap().iter() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }

    // Not ready until the backends it requires answer.
    let (api, sb, _) = server_with("", None);
    api.hold();
    sb.write_config("[serve]\nready_requires = [\"kubernetes\"]\n");
    let waiting = sb.serve(&[]);
    let (status, body) = waiting.get_json("/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    api.release();
    wait_until("ready once Kubernetes answers", || waiting.get("/readyz").0 == 200);
}
