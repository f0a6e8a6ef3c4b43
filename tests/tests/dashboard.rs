//! The web dashboard of `skyhost serve`, in a real headless Chromium driven
//! through chromedriver: the real server on loopback, the Kubernetes API
//! double, the catalog fixtures. Every number on the page is compared with
//! the server's own `/v1/*` answer. Screenshots go to `target/screenshots/`.
//! Where Chromium or chromedriver cannot run, the tests say why and skip.

use std::{sync::Mutex, time::Instant};

use serde_json::{Value, json};
use skyhost_e2e::{
    Sandbox, Server,
    kube_api::{ClusterSpec, KubeApi, generated, kubeconfig, node, pod},
    skip, wait_until,
    webdriver::{Browser, screenshots_dir},
    workspace,
};

/// One browser at a time: the machines running this have few cores.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn browser(width: u32, height: u32) -> Option<Browser> {
    match Browser::start(width, height) {
        Ok(b) => Some(b),
        Err(why) => {
            skip(&format!("no headless Chromium here: {why}"));
            None
        }
    }
}

fn quirks() -> std::path::PathBuf {
    workspace().join("tests/fixtures/catalogs/quirks/v8")
}

/// Two clusters on the API double (`lab` with every node state, `prod`), a
/// third context whose API server is gone, every plugin, the catalog fixtures.
fn cluster_server(extra_config: &str) -> (KubeApi, KubeApi, Sandbox, Server) {
    let lab = KubeApi::start(ClusterSpec {
        nodes: vec![
            node("a100-1").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "a100").0,
            node("a100-2").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "a100").not_ready().0,
            node("h100-1").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").cordoned().0,
            node("h100-2")
                .gpus("nvidia.com/gpu", 4)
                .label("skypilot.co/accelerator", "h100")
                .taint("dedicated", "NoSchedule")
                .0,
            node("h100-3").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0,
            node("cpu-1").0,
        ],
        pods: vec![
            pod("train", "ml", Some("a100-1")).requests(&[("nvidia.com/gpu", "3")]).0,
            pod("infer", "ml", Some("h100-3")).requests(&[("nvidia.com/gpu", "5")]).0,
        ],
        token: None,
    });
    let prod = KubeApi::start(ClusterSpec {
        nodes: (0..3)
            .map(|i| node(&format!("p-{i}")).gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0)
            .collect(),
        pods: vec![pod("big", "prod", Some("p-0")).requests(&[("nvidia.com/gpu", "8")]).0],
        token: None,
    });
    let gone = format!("http://{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap());
    let sb = Sandbox::new().with_plugins(&["kubernetes", "aws", "azure", "gcp", "lambda", "vast"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(
        &kc,
        kubeconfig(&[("lab", &lab.url(), "t"), ("prod", &prod.url(), "t"), ("gone", &gone, "t")], Some("lab")),
    )
    .unwrap();
    sb.write_config(&format!(
        "[kubernetes]\nallowed_contexts = \"all\"\n\n[serve]\ncache_ttl_secs = 0.5\n{extra_config}"
    ));
    let sb = sb.env("KUBECONFIG", &kc).env("SKYHOST_CATALOG_DIR", quirks());
    let server = sb.serve(&[]);
    (lab, prod, sb, server)
}

/// The words the overview shows for one GPU model of one context.
fn words(g: &Value) -> String {
    let capacity = g["capacity"].as_u64().unwrap();
    let not_ready = g["not_ready"].as_u64().unwrap();
    let (free, used) = match g["free"].as_u64() {
        Some(f) => (f.to_string(), capacity.saturating_sub(f).to_string()),
        None => ("?".into(), "?".into()),
    };
    format!("{free} free · {used} in use · {not_ready} not ready · {} total", capacity + not_ready)
}

/// `(context, gpu, words, bar's text alternative)` of every bar on the overview.
fn bars_on_page(b: &Browser) -> Vec<(String, String, String, String)> {
    let v = b.eval(
        "return [...document.querySelectorAll('.gpu-row')].map(r => [r.dataset.context, r.dataset.gpu, \
         r.querySelector('.nums').innerText, r.querySelector('.bar').getAttribute('aria-label')]);",
        json!([]),
    );
    let mut rows: Vec<(String, String, String, String)> = serde_json::from_value(v).unwrap();
    rows.sort();
    rows
}

fn bars_expected(listing: &Value) -> Vec<(String, String, String, String)> {
    let mut rows = Vec::new();
    for b in listing["clusters"].as_array().unwrap() {
        for c in b["clusters"].as_array().unwrap() {
            for g in c["gpus"].as_array().unwrap() {
                let (ctx, name) = (c["name"].as_str().unwrap().to_string(), g["name"].as_str().unwrap().to_string());
                rows.push((ctx, name.clone(), words(g), format!("{name}: {}", words(g))));
            }
        }
    }
    rows.sort();
    rows
}

fn shot(b: &Browser, name: &str) {
    b.screenshot(&screenshots_dir().join(format!("dashboard-{name}.png")));
}

fn column(b: &Browser, table: &str, n: usize) -> Vec<String> {
    b.texts(&format!("{table} tbody tr > :nth-child({n})"))
}

#[test]
fn overview_cluster_view_and_offerings_show_the_apis_numbers() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let (_lab, prod, _sb, server) = cluster_server("");
    let Some(b) = browser(1280, 900) else { return };

    // The page and its files: only the server's own code runs, nothing is sniffed or framed.
    let (status, head, body) = server.get("/");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self';"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(body.contains("<script src=\"/ui/app.js\" defer></script>"), "{body}");
    for (path, kind) in [("/ui/app.js", "text/javascript"), ("/ui/style.css", "text/css")] {
        let (status, head, _) = server.get(path);
        assert_eq!(status, 200, "{path}");
        assert!(head.contains(&format!("content-type: {kind}")), "{path}: {head}");
    }

    // Overview: every backend with its status, as /v1/plugins says.
    b.goto(&format!("{}/", server.url));
    let (_, plugins) = server.get_json("/v1/plugins");
    let entries = plugins["plugins"].as_array().unwrap();
    wait_until("a card per backend", || b.texts("#backends .card").len() == entries.len());
    let shown: Vec<(String, String)> = serde_json::from_value(b.eval(
        "return [...document.querySelectorAll('#backends .card')].map(c => [c.dataset.backend, c.querySelector('.badge').innerText]);",
        json!([]),
    ))
    .unwrap();
    let expected: Vec<(String, String)> =
        entries.iter().map(|e| (e["name"].as_str().unwrap().into(), e["status"].as_str().unwrap().into())).collect();
    assert_eq!(shown, expected);

    // Every bar's numbers are those of /v1/gpus for the same query, words and text alternative alike.
    wait_until("the bars", || !b.texts(".gpu-row").is_empty());
    let (status, listing) = server.get_json("/v1/gpus?all_contexts=true");
    assert_eq!(status, 200);
    let expected = bars_expected(&listing);
    assert!(
        expected.iter().any(|r| r.0 == "lab" && r.1 == "A100" && r.2 == "5 free · 3 in use · 8 not ready · 16 total"),
        "{expected:?}"
    );
    assert_eq!(bars_on_page(&b), expected);
    // The context whose API server is gone shows its reason.
    let gone = listing["clusters"][0]["clusters"].as_array().unwrap().iter().find(|c| c["name"] == "gone").unwrap();
    let reason = gone["error"]["reason"].as_str().unwrap();
    let card = b.texts(".context.failed");
    assert_eq!(card.len(), 1, "{card:?}");
    assert!(card[0].starts_with("gone") && card[0].contains(reason), "{card:?} vs {reason}");
    assert!(b.texts("#age")[0].starts_with("refreshed "), "{:?}", b.texts("#age"));
    assert_eq!(b.eval("return window.cspViolations;", json!([])), json!([]));
    shot(&b, "overview");

    // A change in a cluster appears without a reload: the page refreshes on its timer.
    b.eval("window.stillTheSamePage = true;", json!([]));
    prod.set_faults(|f| f.pods_forbidden = true);
    wait_until("prod's free GPUs to become unknown on the page", || {
        bars_on_page(&b).iter().any(|r| r.0 == "prod" && r.2.starts_with("? free"))
    });
    assert_eq!(b.eval("return window.stillTheSamePage === true;", json!([])), json!(true));
    prod.set_faults(|f| f.pods_forbidden = false);

    // Cluster view: the GPU table and the node table of `lab`.
    b.goto(&format!("{}/#/cluster/kubernetes/lab", server.url));
    let lab =
        listing["clusters"][0]["clusters"].as_array().unwrap().iter().find(|c| c["name"] == "lab").unwrap().clone();
    let nodes = lab["nodes"].as_array().unwrap();
    wait_until("the node table", || column(&b, "#node-table", 1).len() == nodes.len());
    let gpu_rows = b.texts("#gpu-table tbody tr");
    let expected_gpus: Vec<String> = lab["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let qs: Vec<String> =
                g["requestable_quantities"].as_array().unwrap().iter().map(|q| q.to_string()).collect();
            format!(
                "{}\t{}\t{} of {}\t{}",
                g["name"].as_str().unwrap(),
                qs.join(", "),
                g["free"],
                g["capacity"],
                g["not_ready"]
            )
        })
        .collect();
    assert_eq!(gpu_rows, expected_gpus);
    let free_of = |n: &Value| n["gpu_free"].as_i64().unwrap_or(-1);
    let mut by_name: Vec<&Value> = nodes.iter().collect();
    by_name.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let names = |v: &[&Value]| -> Vec<String> { v.iter().map(|n| n["name"].as_str().unwrap().to_string()).collect() };
    assert_eq!(column(&b, "#node-table", 1), names(&by_name));
    shot(&b, "cluster");

    // Sorting: by free GPUs, then the other way round.
    let header = b.find("#node-table th[data-key=gpu_free] button").unwrap();
    b.click(&header);
    let mut by_free = by_name.clone();
    by_free.sort_by_key(|n| free_of(n));
    assert_eq!(column(&b, "#node-table", 1), names(&by_free));
    assert_eq!(b.texts("#node-table th[aria-sort=ascending]"), ["Free / total"]);
    b.click(&header);
    let mut by_free_desc = by_name.clone();
    by_free_desc.sort_by_key(|n| std::cmp::Reverse(free_of(n)));
    assert_eq!(column(&b, "#node-table", 1), names(&by_free_desc));
    for (row, n) in column(&b, "#node-table", 3).iter().zip(&by_free_desc) {
        let want =
            if n["gpu_total"] == 0 { "—".to_string() } else { format!("{} / {}", n["gpu_free"], n["gpu_total"]) };
        assert_eq!(row, &want, "{n}");
    }

    // By keyboard: Enter on the focused "Node" header sorts by name.
    b.type_into(&b.find("#node-table th[data-key=name] button").unwrap(), "\u{E007}");
    assert_eq!(column(&b, "#node-table", 1), names(&by_name));
    assert_eq!(b.texts("#node-table th[aria-sort=ascending]"), ["Node"]);

    // Filtering by GPU name, then by state.
    let filter = b.find("#filter-gpu").unwrap();
    b.type_into(&filter, "h100");
    let h100: Vec<&Value> = by_name.iter().copied().filter(|n| n["gpu"] == "H100").collect();
    wait_until("the H100 filter", || column(&b, "#node-table", 1) == names(&h100));
    assert_eq!(b.texts("#node-count"), [format!("{} of {} nodes", h100.len(), nodes.len())]);
    b.click(&b.find("#filter-state option[value=cordoned]").unwrap());
    let cordoned: Vec<&Value> = h100.iter().copied().filter(|n| n["cordoned"] == true).collect();
    assert_eq!(cordoned.len(), 1);
    wait_until("the cordoned filter", || column(&b, "#node-table", 1) == names(&cordoned));
    b.clear(&filter);
    b.click(&b.find("#filter-state option[value=not-ready]").unwrap());
    let not_ready: Vec<&Value> = by_name.iter().copied().filter(|n| n["ready"] == false).collect();
    wait_until("the not-ready filter", || column(&b, "#node-table", 1) == names(&not_ready));
    b.click(&b.find("#filter-state option[value=tainted]").unwrap());
    assert_eq!(column(&b, "#node-table", 8), ["dedicated:NoSchedule"]);
    shot(&b, "cluster-filtered");

    // Offerings: a name with a typo shows the CLI's suggestions; one click searches for it.
    b.goto(&format!("{}/#/offerings", server.url));
    let name = b.wait_for("#offer-name");
    b.type_into(&name, "A1OO");
    b.click(&b.find("#offer-form button[type=submit]").unwrap());
    let (_, typo) = server.get_json("/v1/gpus?name=A1OO");
    let suggestions: Vec<String> = serde_json::from_value(typo["not_found"]["suggestions"].clone()).unwrap();
    assert!(suggestions.contains(&"A100".to_string()), "{typo:#}");
    wait_until("the suggestions", || b.texts("#offer-notfound .suggestion") == suggestions);
    assert!(b.texts("#offer-notfound")[0].contains(typo["not_found"]["message"].as_str().unwrap()));
    shot(&b, "offerings-typo");
    b.click(&b.find("#offer-notfound .suggestion[data-name=A100]").unwrap());
    let (_, a100) = server.get_json("/v1/gpus?name=A100");
    let rows: Vec<&Value> =
        a100["offerings"].as_array().unwrap().iter().flat_map(|t| t["rows"].as_array().unwrap()).collect();
    assert!(rows.len() > 3);
    wait_until("the A100 offerings", || column(&b, "#offer-table", 1).len() == rows.len());
    // In the API's order first; then sorted by price.
    let clouds: Vec<String> = rows.iter().map(|r| r["cloud"].as_str().unwrap().to_string()).collect();
    assert_eq!(column(&b, "#offer-table", 1), clouds);
    b.click(&b.find("#offer-table th[data-key=price] button").unwrap());
    let prices: Vec<f64> =
        column(&b, "#offer-table", 8).iter().map(|p| p.trim_start_matches('$').parse().unwrap()).collect();
    let mut want: Vec<f64> = rows.iter().map(|r| (r["price"].as_f64().unwrap() * 100.0).round() / 100.0).collect();
    want.sort_by(f64::total_cmp);
    assert_eq!(prices, want);
    let regions = column(&b, "#offer-table", 10);
    let mut got_regions = regions.clone();
    got_regions.sort();
    let mut want_regions: Vec<String> = rows.iter().map(|r| r["region"].as_str().unwrap().to_string()).collect();
    want_regions.sort();
    assert_eq!(got_regions, want_regions);
    let spot = column(&b, "#offer-table", 9);
    assert_eq!(spot.iter().filter(|s| *s == "—").count(), rows.iter().filter(|r| r["spot_price"].is_null()).count());
    shot(&b, "offerings");

    // A quantity narrows it as `show-gpus A100:8` does.
    let qty = b.find("#offer-qty").unwrap();
    b.type_into(&qty, "8");
    b.click(&b.find("#offer-form button[type=submit]").unwrap());
    let (_, a100x8) = server.get_json("/v1/gpus?name=A100&quantity=8");
    let n8 = a100x8["offerings"].as_array().unwrap().iter().map(|t| t["rows"].as_array().unwrap().len()).sum::<usize>();
    assert!(n8 > 0 && n8 < rows.len());
    wait_until("the A100:8 offerings", || column(&b, "#offer-table", 3) == vec!["8".to_string(); n8]);
    // The search is in the address (no token ever is): a link to it shows the same rows.
    assert!(b.url().ends_with("#/offerings/A100/8"), "{}", b.url());
    b.goto("about:blank");
    b.goto(&format!("{}/#/offerings/A100/8", server.url));
    wait_until("the A100:8 offerings from a link", || column(&b, "#offer-table", 3) == vec!["8".to_string(); n8]);

    // 375 px wide: nothing sticks out of the page, and the dark theme follows the system.
    b.resize(375, 800);
    for (name, hash, drawn) in [
        ("overview", "#/overview", "#page-overview:not([hidden]) .gpu-row"),
        ("cluster", "#/cluster/kubernetes/lab", "#page-cluster:not([hidden]) #node-table tbody tr"),
        ("offerings", "#/offerings/A100", "#page-offerings:not([hidden]) #offer-table tbody tr"),
    ] {
        b.goto("about:blank");
        b.goto(&format!("{}/{hash}", server.url));
        wait_until(&format!("the {name} page at 375 px"), || !b.texts(drawn).is_empty());
        let width = b.eval(
            "return [document.documentElement.scrollWidth, window.innerWidth, [...document.querySelectorAll('body *')] \
             .filter(e => e.getBoundingClientRect().right > window.innerWidth && !e.closest('.scroll')) \
             .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 10)];",
            json!([]),
        );
        assert!(width[0].as_u64() <= width[1].as_u64(), "the {name} page is wider than the window: {width}");
        shot(&b, &format!("{name}-375px"));
    }
    b.goto(&format!("{}/#/overview", server.url));
    wait_until("the overview", || !b.texts("#page-overview:not([hidden]) .gpu-row").is_empty());
    b.resize(1280, 900);
    b.cdp("Emulation.setEmulatedMedia", json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}));
    let bg = b.eval("return getComputedStyle(document.body).backgroundColor;", json!([]));
    assert_eq!(bg, json!("rgb(13, 17, 23)"));
    shot(&b, "overview-dark");
}

#[test]
fn with_tokens_the_page_asks_for_one_and_keeps_it_for_the_session() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new().with_plugins(&["aws", "gcp"]);
    let tokens = sb.path().join("tokens");
    std::fs::write(&tokens, "s3cret-token\n").unwrap();
    sb.write_config(&format!("[serve]\ntokens_file = {:?}\n", tokens.display().to_string()));
    let sb = sb.env("SKYHOST_CATALOG_DIR", quirks());
    let server = sb.serve(&[]);
    // The page's files hold no data and load without a token; the API does not.
    assert_eq!(server.get("/").0, 200);
    assert_eq!(server.get("/ui/app.js").0, 200);
    assert_eq!(server.get("/v1/plugins").0, 401);
    let (status, _, plugins) = server.get_with("/v1/plugins", &["Authorization: Bearer s3cret-token"]);
    assert_eq!(status, 200);
    let backends = serde_json::from_str::<Value>(&plugins).unwrap()["plugins"].as_array().unwrap().len();
    let Some(b) = browser(1280, 900) else { return };

    b.goto(&format!("{}/", server.url));
    b.wait_for("#token-form:not([hidden])");
    assert!(b.texts("#backends .card").is_empty());
    shot(&b, "token");
    let input = b.find("#token").unwrap();
    b.type_into(&input, "wrong");
    b.click(&b.find("#token-form button[type=submit]").unwrap());
    wait_until("the refusal", || b.texts("#token-why").first().is_some_and(|t| t.contains("not accepted")));
    assert!(b.texts("#backends .card").is_empty());

    b.type_into(&input, "s3cret-token");
    b.click(&b.find("#token-form button[type=submit]").unwrap());
    wait_until("the backends", || b.texts("#backends .card").len() == backends);
    b.wait_for("#token-form[hidden]");
    assert!(!b.url().contains("s3cret"), "{}", b.url());
    // Kept for the session: a reload asks no more.
    b.goto(&format!("{}/#/overview", server.url));
    wait_until("the backends after a reload", || b.texts("#backends .card").len() == backends);
    assert_eq!(b.eval("return document.getElementById('token-form').hidden;", json!([])), json!(true));
    assert_eq!(b.eval("return sessionStorage.getItem('skyhost-token');", json!([])), json!("s3cret-token"));
    assert!(!b.url().contains("s3cret"), "{}", b.url());
    // Forgotten: the data goes and the page asks again.
    b.click(&b.find("#forget").unwrap());
    b.wait_for("#token-form:not([hidden])");
    assert!(b.texts("#backends .card").is_empty());
    assert_eq!(b.eval("return sessionStorage.getItem('skyhost-token');", json!([])), Value::Null);
}

#[test]
fn a_missing_kubernetes_plugin_shows_its_hint_in_full() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new()
        .with_plugins(&["aws", "azure", "gcp", "lambda", "vast"])
        .env("SKYHOST_CATALOG_DIR", quirks())
        .env("SKYHOST_DISABLE", "lambda");
    let server = sb.serve(&[]);
    let (_, plugins) = server.get_json("/v1/plugins");
    let k8s = plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "kubernetes").unwrap();
    assert_eq!(k8s["status"], "missing");
    let hint = k8s["hint"].as_str().unwrap();
    assert!(hint.contains("libskyhost_kubernetes.so"), "{hint}");
    let Some(b) = browser(1280, 900) else { return };
    b.goto(&format!("{}/", server.url));
    b.wait_for("#backends .card[data-backend=kubernetes][data-status=missing]");
    assert_eq!(b.texts("#backends .card[data-backend=kubernetes] .badge"), ["missing"]);
    assert_eq!(b.texts("#backends .card[data-backend=kubernetes] .hint code"), [hint]);
    // A disabled backend says so, and why.
    let lambda = plugins["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "lambda").unwrap();
    assert_eq!(lambda["status"], "disabled");
    assert_eq!(b.texts("#backends .card[data-backend=lambda] .badge"), ["disabled"]);
    assert_eq!(b.texts("#backends .card[data-backend=lambda] .reason"), [lambda["reason"].as_str().unwrap()]);
    // The listing still answers for the clouds, and its note says why Kubernetes is not there.
    wait_until("the notes", || !b.texts("#notes li").is_empty());
    let notes = b.texts("#notes li[data-kind=skipped_backends]");
    assert!(notes.iter().any(|n| n.contains("kubernetes")), "{notes:?}");
    shot(&b, "overview-missing-kubernetes");
}

#[test]
fn no_ui_and_ui_false_leave_the_dashboard_out() {
    let sb = Sandbox::new().with_plugins(&["aws"]).env("SKYHOST_CATALOG_DIR", quirks());
    let server = sb.serve(&["--no-ui"]);
    for path in ["/", "/ui/app.js", "/ui/style.css"] {
        let (status, _, body) = server.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains("\"not_found\""), "{body}");
    }
    assert_eq!(server.get("/v1/plugins").0, 200);
    drop(server);
    sb.write_config("[serve]\nui = false\n");
    let server = sb.serve(&[]);
    assert_eq!(server.get("/").0, 404);
    drop(server);
    sb.write_config("[serve]\nui = true\n");
    let server = sb.serve(&[]);
    assert_eq!(server.get("/").0, 200);
    drop(server);
    sb.write_config("[serve]\nui = \"yes\"\n");
    sb.run(["serve", "--addr", "127.0.0.1:0"]).expect_code(2);
}

/// Four contexts of 5,000 nodes: the overview's first paint with data and the
/// time the page's JavaScript takes to apply an update of that size. Reported
/// (in target/screenshots/dashboard-timing.txt and on stderr), not asserted.
#[test]
fn timing_with_four_contexts_of_5000_nodes() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let api = KubeApi::start(generated(5000, 2));
    let mut urls = vec![api.url()];
    for _ in 1..4 {
        urls.push(format!("http://{}", api.also_listen()));
    }
    let names: Vec<String> = (0..4).map(|i| format!("ctx-{i}")).collect();
    let entries: Vec<(&str, &str, &str)> =
        names.iter().zip(&urls).map(|(n, u)| (n.as_str(), u.as_str(), "t")).collect();
    let sb = Sandbox::new().with_plugins(&["kubernetes", "aws", "gcp"]);
    let kc = sb.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&entries, Some("ctx-0"))).unwrap();
    sb.write_config("[kubernetes]\nallowed_contexts = \"all\"\n\n[serve]\ncache_ttl_secs = 600\n");
    let sb = sb.env("KUBECONFIG", &kc).env("SKYHOST_CATALOG_DIR", quirks());
    let server = sb.serve(&[]);
    let Some(b) = browser(1280, 900) else { return };

    // Warm the server's cache, so the figure is the page's, not the clusters'.
    let started = Instant::now();
    let (status, listing) = server.get_json("/v1/gpus?all_contexts=true");
    let gather = started.elapsed();
    assert_eq!(status, 200);
    let nodes: usize = listing["clusters"][0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["nodes"].as_array().unwrap().len())
        .sum();
    assert_eq!(nodes, 20_000);
    let bytes = serde_json::to_vec(&listing).unwrap().len();

    let mut report =
        format!("listing: 4 contexts, {nodes} nodes, {bytes} bytes of JSON; server's first answer {gather:?}\n");
    for round in 0..3 {
        b.goto(&format!("{}/", server.url));
        wait_until("the overview's bars", || b.texts(".gpu-row").len() == 4);
        let t = b.eval(
            "const p = performance.getEntriesByName('first-contentful-paint')[0]; \
             const d = performance.getEntriesByName('skyhost-data')[0]; \
             return [p ? p.startTime : null, d ? d.startTime : null, window.skyhostTiming];",
            json!([]),
        );
        let f = |v: &Value| format!("{:.0}", v.as_f64().unwrap_or(f64::NAN));
        report.push_str(&format!(
            "overview load {round}: first contentful paint {} ms; bars drawn with data {} ms after navigation start \
             (fetch + parse + render {} ms)\n",
            f(&t[0]),
            f(&t[1]),
            f(&t[2]["load_ms"])
        ));
    }
    assert_eq!(bars_on_page(&b), bars_expected(&listing));
    shot(&b, "overview-20000-nodes");

    // An update of that size: parse the document and redraw, as a live update would.
    let apply = "const done = arguments[arguments.length - 1]; \
                 fetch('/v1/gpus?all_contexts=true').then(r => r.text()).then(text => { \
                 const ms = []; for (let i = 0; i < 5; i++) ms.push(window.skyhost.apply(text)); done(ms); });";
    for (page, hash, drawn) in [
        ("overview", "#/overview", "#page-overview:not([hidden]) .gpu-row"),
        (
            "cluster view (500 of 5,000 rows drawn)",
            "#/cluster/kubernetes/ctx-0",
            "#page-cluster:not([hidden]) #node-table tbody tr",
        ),
    ] {
        b.goto(&format!("{}/{hash}", server.url));
        wait_until("the page", || !b.texts(drawn).is_empty());
        let runs = b.eval_async(apply, json!([]));
        let ms = |key: &str| -> String {
            let v: Vec<String> = runs
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{:.1}", r[key].as_f64().unwrap_or(f64::NAN)))
                .collect();
            v.join(", ")
        };
        report.push_str(&format!(
            "update applied on the {page}, 5 runs: JSON.parse {} ms; render {} ms\n",
            ms("parse_ms"),
            ms("render_ms")
        ));
    }
    shot(&b, "cluster-5000-nodes");
    eprint!("{report}");
    std::fs::create_dir_all(screenshots_dir()).unwrap();
    std::fs::write(screenshots_dir().join("dashboard-timing.txt"), &report).unwrap();
}
