//! A headless Chromium driven through `chromedriver` (W3C WebDriver: JSON
//! over HTTP on loopback), with the `ureq` client the tests already build:
//! a few dozen lines instead of a WebDriver crate and its dependency tree.
//! Clicks and typing are real input events, dispatched by the browser.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    agent: ureq::Agent,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn find_program(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (Debian's `chromium` and
    /// `chromium-driver`), `width`×`height` pixels. `Err` says why it cannot
    /// run here: the caller skips.
    pub fn start(width: u32, height: u32) -> Result<Self, String> {
        let driver_bin = find_program(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
            .ok_or("chromedriver is not installed (apt-get install chromium chromium-driver)")?;
        // The real binary, not Debian's /usr/bin/chromium wrapper script.
        let chromium = find_program(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"])
            .ok_or("chromium is not installed (apt-get install chromium chromium-driver)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", driver_bin.display()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let profile = tempfile::Builder::new()
            .prefix("chromium-profile-")
            .tempdir_in(crate::build_dir().parent().expect("target/"))
            .map_err(|e| format!("no profile directory: {e}"))?;
        let mut b = Self { driver, agent, session: format!("http://127.0.0.1:{port}"), _profile: profile };
        let base = b.session.clone();
        let started = std::time::Instant::now();
        loop {
            match b.agent.get(format!("{base}/status")).call() {
                Ok(r) if r.status() == 200 => break,
                _ if started.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("{} did not answer on port {port} within 30 s", driver_bin.display()));
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", b._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let answer = b.post_raw(&format!("{base}/session"), &caps);
        let id = answer["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("{} could not start {}: {answer}", driver_bin.display(), chromium.display()))?;
        b.session = format!("{base}/session/{id}");
        Ok(b)
    }

    fn post_raw(&self, url: &str, body: &Value) -> Value {
        let r = self
            .agent
            .post(url)
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        read(r, url)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let v = self.post_raw(&url, &body);
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.session);
        let r = self.agent.get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        read(r, &url)["value"].clone()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    /// The address of the page shown.
    pub fn url(&self) -> String {
        self.get("/url").as_str().unwrap_or_default().to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Runs `script` with a callback as its last argument and returns what it passes to it.
    pub fn eval_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
    }

    /// Sends a DevTools protocol command (chromedriver's `goog/cdp/execute`).
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
    }

    /// The first element matching CSS `selector`, if any.
    pub fn find(&self, selector: &str) -> Option<Element> {
        let url = format!("{}/element", self.session);
        let v = self.post_raw(&url, &json!({"using": "css selector", "value": selector}));
        v["value"].get(ELEMENT).and_then(Value::as_str).map(|id| Element(id.to_string()))
    }

    /// The first element matching `selector`, waiting for it to appear.
    #[track_caller]
    pub fn wait_for(&self, selector: &str) -> Element {
        let mut found = None;
        crate::wait_until(&format!("an element matching {selector}"), || {
            found = self.find(selector);
            found.is_some()
        });
        found.expect("found")
    }

    /// Clicks `e`, as a user would.
    pub fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({}));
    }

    /// Types `text` into `e`, as a user would.
    pub fn type_into(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }));
    }

    /// Empties the input `e`.
    pub fn clear(&self, e: &Element) {
        self.post(&format!("/element/{}/clear", e.0), json!({}));
    }

    /// The visible text of the elements matching `selector`.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let v = self.eval(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.trim());",
            json!([selector]),
        );
        serde_json::from_value(v).unwrap_or_default()
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let data = self.get("/screenshot");
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().expect("base64")).expect("png");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Resizes the window.
    pub fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }));
    }
}

fn read(mut r: ureq::http::Response<ureq::Body>, url: &str) -> Value {
    let text = r
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .unwrap_or_else(|e| panic!("reading the answer of {url}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.contains("/session/") {
            let _ = self.agent.delete(&self.session).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where the tests put their screenshots: `target/screenshots/`.
pub fn screenshots_dir() -> PathBuf {
    crate::build_dir().parent().expect("target/").join("screenshots")
}
