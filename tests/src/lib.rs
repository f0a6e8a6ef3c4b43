//! Helpers for the end-to-end tests: locating the binaries and plugins that
//! `tests/run` built, sandboxes that isolate each run from the machine's own
//! configuration, and the servers the tests start (catalog files over HTTP,
//! a Kubernetes API double).

pub mod http_files;
pub mod kube_api;
pub mod proxy;
pub mod slurm;
pub mod webdriver;

use std::{
    ffi::OsStr,
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `target/<profile>/`, where cargo put the binary and the plugins: the test
/// executable runs from `target/<profile>/deps/`.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf()
}

/// A file cargo built; panics with the fix when it is missing.
pub fn artifact(file: &str) -> PathBuf {
    let p = build_dir().join(file);
    assert!(
        p.exists(),
        "{} is missing: run `tests/run`, which builds the binary and every plugin before testing",
        p.display()
    );
    p
}

/// The file where skipped tests are recorded, one line each; `tests/run`
/// removes it before a run and prints it at the end.
pub fn skipped_tests_file() -> PathBuf {
    build_dir().parent().expect("target/").join("skipped-tests.txt")
}

/// Records that the calling test cannot run here, and why; the test then
/// returns. cargo hides the output of passing tests, so the reason goes to
/// [`skipped_tests_file`], which `tests/run` lists at the end of the run.
/// With `CI=true` this panics instead: `.ci/run` installs everything the
/// tests need, so a skip there means a part of the suite silently did not run.
#[track_caller]
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").unwrap_or("(unnamed test)").to_string();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|e| e.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map_or(s.clone(), |(name, _hash)| name.to_string()))
        .unwrap_or_default();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{binary}::{test} cannot run, and CI must run every test: {why}");
    }
    eprintln!("skipped: {why}");
    use std::io::Write;
    let line = format!("{binary}::{test}: {}\n", why.replace('\n', " "));
    // O_APPEND writes of one short line do not interleave between test threads.
    let file = std::fs::OpenOptions::new().create(true).append(true).open(skipped_tests_file());
    if let Err(e) = file.and_then(|mut f| f.write_all(line.as_bytes())) {
        panic!("cannot record the skip of {test} ({why}) in {}: {e}", skipped_tests_file().display());
    }
}

/// A layout `tests/run` built with `dist/layout --profile dev`; panics with
/// the fix when it is missing.
pub fn layout(kind: &str) -> PathBuf {
    let p = build_dir().parent().expect("target/").join("layout").join(kind);
    assert!(
        p.join("bin/skyhost").is_file(),
        "{} is missing: run `tests/run`, which builds it with dist/layout before testing",
        p.display()
    );
    p
}

/// The shared catalog snapshot, when this machine has it.
pub fn shared_catalogs() -> Option<PathBuf> {
    let p = workspace().join("../shared/catalogs/v8");
    p.join("aws/vms.csv").is_file().then_some(p)
}

/// The small clouds, served by one plugin file (`libskyhost_neoclouds.so`).
pub const NEOCLOUDS: [&str; 7] = ["vast", "nebius", "hyperbolic", "seeweb", "yotta", "mithril", "verda"];

/// The file stem of the plugin serving backend `name`.
pub fn plugin_file(name: &str) -> &str {
    if NEOCLOUDS.contains(&name) { "neoclouds" } else { name }
}

/// The first-party plugin file serving backend `name`.
pub fn plugin(name: &str) -> PathBuf {
    artifact(&format!("libskyhost_{}.so", plugin_file(name)))
}

/// A fixture library (`libfixture_<name>.so`).
pub fn fixture(name: &str) -> PathBuf {
    artifact(&format!("libfixture_{name}.so"))
}

/// The cloud backends.
pub const CLOUDS: [&str; 11] =
    ["aws", "azure", "gcp", "lambda", "vast", "nebius", "hyperbolic", "seeweb", "yotta", "mithril", "verda"];

/// A directory of its own for one test: HOME, XDG dirs, a plugin directory,
/// and its own link to the skyhost binary (so the build directory beside the
/// real binary is not on the default plugin path).
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
    /// The skyhost binary commands run.
    pub bin: PathBuf,
    /// Put the sandbox's plugin directory on `SKYHOST_PLUGIN_PATH`.
    pub plugin_path: bool,
}

/// Puts the built `skyhost` at `dest`: a hard link where the file system
/// allows one, else a copy.
fn place_binary(dest: &Path) {
    let real = artifact("skyhost");
    if std::fs::hard_link(&real, dest).is_err() {
        std::fs::copy(&real, dest).expect("copy skyhost");
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// An empty sandbox.
    pub fn new() -> Self {
        // Under target/, on the same file system as the binary, so it can be hard-linked.
        let tmp = build_dir().parent().expect("target/").join("tmp");
        std::fs::create_dir_all(&tmp).expect("target/tmp");
        Self::new_in(&tmp)
    }

    /// An empty sandbox in `parent` (with a copy of the binary when `parent`
    /// is on another file system).
    pub fn new_in(parent: &Path) -> Self {
        let dir = tempfile::Builder::new().prefix("skyhost-e2e-").tempdir_in(parent).expect("tempdir");
        for sub in ["bin", "plugins", "home", "config", "cache", "data"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let bin = dir.path().join("bin/skyhost");
        place_binary(&bin);
        Self { dir, env: Vec::new(), bin, plugin_path: true }
    }

    /// Runs the binary of the distributable layout that `tests/run` built
    /// with `dist/layout` (`target/layout/full` or `target/layout/minimal`,
    /// without the Kubernetes plugin) from now on, with the default plugin
    /// path only: it finds its plugins through `<prefix>/lib/skyhost/plugins`.
    pub fn use_layout(mut self, with_kubernetes: bool) -> Self {
        let root = layout(if with_kubernetes { "full" } else { "minimal" });
        self.bin = root.join("bin/skyhost");
        self.plugin_path = false;
        self
    }

    /// The sandbox root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The plugin directory on `SKYHOST_PLUGIN_PATH`.
    pub fn plugins(&self) -> PathBuf {
        self.path().join("plugins")
    }

    /// Makes `file` available as `libskyhost_<name>.so` in `dir` (a symlink).
    pub fn link_plugin_into(&self, dir: &Path, name: &str, file: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("mkdir");
        let dest = dir.join(format!("libskyhost_{name}.so"));
        let _ = std::fs::remove_file(&dest);
        std::os::unix::fs::symlink(file, &dest).expect("symlink");
        dest
    }

    /// Makes the plugins serving backends `names` available.
    pub fn with_plugins(self, names: &[&str]) -> Self {
        for n in names {
            self.link_plugin_into(&self.plugins(), plugin_file(n), &plugin(n));
        }
        self
    }

    /// Makes fixture `fixture` available as backend `name`.
    pub fn with_fixture(self, name: &str, fixture_name: &str) -> Self {
        self.link_plugin_into(&self.plugins(), name, &fixture(fixture_name));
        self
    }

    /// Writes `bytes` as `libskyhost_<name>.so` in the plugin directory.
    pub fn write_plugin_file(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = self.plugins().join(format!("libskyhost_{name}.so"));
        std::fs::write(&p, bytes).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// Writes the config file.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let p = self.path().join("config/skyhost/config.toml");
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write config");
        p
    }

    /// Adds an environment variable to every command.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.into(), value.as_ref().to_string_lossy().into_owned()));
        self
    }

    /// A `skyhost` command with the sandbox's environment.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("SKYHOST_")
                || k.starts_with("XDG_")
                || k == "KUBECONFIG"
                || k == "SLURM_CONF"
                || k.starts_with("KUBERNETES_SERVICE_")
                || k.to_ascii_uppercase().ends_with("_PROXY")
                || k == "NO_COLOR"
                || k.starts_with("RUST_")
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.path().join("home"))
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_CACHE_HOME", self.path().join("cache"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("SKYHOST_OFFLINE", "1")
            // Plugins installed on this machine must not change the results.
            .env("SKYHOST_SYSTEM_PLUGIN_DIRS", "")
            .env("KUBECONFIG", self.path().join("home/.kube/none"));
        if self.plugin_path {
            cmd.env("SKYHOST_PLUGIN_PATH", self.plugins());
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `skyhost serve --addr 127.0.0.1:0 ARGS` and waits until it listens.
    pub fn serve(&self, args: &[&str]) -> Server {
        let mut cmd = self.command(["serve", "--addr", "127.0.0.1:0"]);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                // `skyhost serve: listening on URL`, or the same as a JSON log line.
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split('"').next().unwrap_or(rest).to_string());
                }
                sink.lock().expect("lines").push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start: {:?}", lines.lock().unwrap()));
        Server { child, url, stderr: lines }
    }

    /// Runs `skyhost ARGS`, failing the test if it takes over a minute.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::from(run_with_timeout(self.command(args), Duration::from_secs(60)).expect("skyhost finished in time"))
    }
}

impl Sandbox {
    /// Runs `skyhost ARGS` as an unprivileged user (`nobody`, through
    /// `setpriv`) when the tests run as root, as CI does: root reads any file
    /// whatever its mode. The sandbox is opened to that user first; that user
    /// must be able to reach it (see [`Sandbox::new_in`]: the system's
    /// temporary directory is reachable, a checkout under `/root` is not),
    /// and its plugins must be files in it, not links into `target/`. `None`
    /// when running as root and `setpriv` (util-linux) is missing.
    pub fn run_unprivileged<I, S>(&self, args: I) -> Option<Run>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some(self.run(args));
        }
        if Command::new("setpriv").arg("--version").output().is_err() {
            return None;
        }
        const NOBODY: u32 = 65534;
        std::fs::set_permissions(self.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod sandbox");
        for sub in ["home", "config", "cache", "data"] {
            std::os::unix::fs::chown(self.path().join(sub), Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        let inner = self.command(args);
        let mut cmd = Command::new("setpriv");
        cmd.args([&format!("--reuid={NOBODY}"), &format!("--regid={NOBODY}"), "--clear-groups", "--"])
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        Some(Run::from(run_with_timeout(cmd, Duration::from_secs(60)).expect("skyhost finished in time")))
    }
}

/// Waits until `condition` holds, checking every few milliseconds; panics
/// naming `what` after a minute (a test waits for a state, never for a sleep
/// to be long enough; the minute only turns a hang into a failure).
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `cmd`; `None` if it did not finish within `timeout` (it is killed).
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Option<Output> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Some(Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() })
}

/// The outcome of one command.
#[derive(Debug)]
pub struct Run {
    /// Exit status code (`-signal` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Self {
            code: o.status.code().unwrap_or_else(|| -o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// Asserts that nothing resembling a panic or backtrace reached the user.
    #[track_caller]
    pub fn expect_no_panic(&self) -> &Self {
        for bad in ["panicked at", "RUST_BACKTRACE", "stack backtrace", "Aborting", "thread '"] {
            assert!(
                !self.stderr.contains(bad) && !self.stdout.contains(bad),
                "'{bad}' reached the user:\n{}\n{}",
                self.stdout,
                self.stderr
            );
        }
        self
    }
}

/// The `plugins -o json` entry of `name` (not a shadowed one).
#[track_caller]
pub fn entry<'a>(plugins_json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plugins_json["plugins"]
        .as_array()
        .expect("plugins array")
        .iter()
        .find(|p| p["name"] == name && p["status"] != "shadowed")
        .unwrap_or_else(|| panic!("no entry for {name} in {plugins_json:#}"))
}

/// A running `skyhost serve`; killed when dropped.
pub struct Server {
    /// The process.
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its stderr lines so far.
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// `host:port`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// GETs `path`: (status, headers lower-cased, body).
    pub fn get(&self, path: &str) -> (u16, String, String) {
        http_request(&self.addr(), &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
    }

    /// GETs `path` with extra header lines (`"Authorization: Bearer x"`):
    /// (status, headers lower-cased, body).
    pub fn get_with(&self, path: &str, headers: &[&str]) -> (u16, String, String) {
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        http_request(
            &self.addr(),
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"),
        )
    }

    /// GETs `path` and parses the JSON body.
    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.get(path);
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> i32 {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill sends a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the server to exit; its exit status.
    pub fn wait(mut self) -> i32 {
        let status = self.child.wait().expect("wait");
        status.code().unwrap_or(-1)
    }

    /// Waits until the server has logged a line containing `needle`.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) {
        wait_until(&format!("the server to log '{needle}'"), || {
            self.stderr.lock().expect("lines").iter().any(|l| l.contains(needle))
        });
    }

    /// Connections to the server whose request the server has read: the
    /// established server-side sockets of its port with nothing left unread
    /// (`/proc/net/tcp`).
    pub fn connections_read(&self) -> usize {
        let port: u16 = self.addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let local_port =
                    f.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
                let established = f.get(3) == Some(&"01");
                let unread = f.get(4).and_then(|q| q.split(':').nth(1)).and_then(|r| usize::from_str_radix(r, 16).ok());
                local_port == Some(port) && established && unread == Some(0)
            })
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw `request` bytes to `addr` and reads the whole answer.
pub fn http_request(addr: &str, request: &str) -> (u16, String, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}
