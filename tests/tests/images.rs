//! The server images, built and run for real: a Docker engine from Debian's
//! `docker.io`, started here with its own data root (no bridge, no iptables;
//! containers on the host's network only), builds `dist/Dockerfile` from the
//! layouts `tests/run` made with `dist/layout`. No registry is reachable, so
//! the base image is made here: the libraries `ldd` names and the dynamic
//! loader, imported with `docker import`; users elsewhere pass a public base.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

use skyhost_e2e::{
    kube_api::{ClusterSpec, KubeApi, kubeconfig, node},
    layout, skip, wait_until,
};

/// A Docker engine of the test's own; stopped (with its containers) on drop.
struct Engine {
    dir: tempfile::TempDir,
    dockerd: Child,
}

impl Engine {
    fn start() -> Result<Self, String> {
        for tool in ["dockerd", "docker"] {
            if !Command::new("sh").args(["-c", &format!("command -v {tool}")]).status().is_ok_and(|s| s.success()) {
                return Err(format!("{tool} is not installed (apt-get install docker.io; .ci/run does)"));
            }
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("a Docker engine needs root".into());
        }
        // Under /tmp: the socket's path must stay short.
        let dir = tempfile::Builder::new().prefix("skyhost-docker-").tempdir().map_err(|e| e.to_string())?;
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).map_err(|e| e.to_string())?;
        let dockerd = Command::new("dockerd")
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .arg(format!("--data-root={}", d.join("data").display()))
            .arg(format!("--exec-root={}", d.join("exec").display()))
            .arg(format!("--pidfile={}", d.join("docker.pid").display()))
            .arg(format!("--host=unix://{}", d.join("docker.sock").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("dockerd did not start: {e}"))?;
        let mut engine = Self { dir, dockerd };
        for _ in 0..600 {
            if engine.docker(&["version"]).status.success() {
                return Ok(engine);
            }
            if let Ok(Some(status)) = engine.dockerd.try_wait() {
                let log = std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default();
                return Err(format!(
                    "dockerd exited ({status}): {}",
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err("dockerd did not answer within 30 s".into())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.arg(format!("--host=unix://{}", self.dir.path().join("docker.sock").display())).args(args);
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().expect("docker")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.dockerd.id() as i32, libc::SIGTERM) };
        let _ = self.dockerd.wait();
    }
}

/// The shared libraries (and the loader) the binary and plugins of `layouts` need.
fn libraries(layouts: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for l in layouts {
        files.push(l.join("bin/skyhost"));
        for p in std::fs::read_dir(l.join("lib/skyhost/plugins")).unwrap() {
            files.push(p.unwrap().path());
        }
    }
    let mut libs: Vec<PathBuf> = Vec::new();
    for f in files {
        let out = Command::new("ldd").arg(&f).output().expect("ldd");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`
            let path = line.split("=>").last().unwrap().split_whitespace().next().unwrap_or("");
            if path.starts_with('/') && !libs.iter().any(|l| l == Path::new(path)) {
                libs.push(PathBuf::from(path));
            }
        }
    }
    libs
}

/// A base image holding only what `ldd` names: `skyhost-base:test`.
fn make_base(engine: &Engine, layouts: &[PathBuf]) {
    let root = engine.dir.path().join("base");
    for lib in libraries(layouts) {
        let dest = root.join(lib.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&lib, &dest).unwrap();
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    // As in the public bases (distroless/cc, debian with ca-certificates):
    // kube's TLS client refuses to start without system roots.
    let roots = Path::new("/etc/ssl/certs/ca-certificates.crt");
    assert!(roots.is_file(), "the host has no {} (apt-get install ca-certificates)", roots.display());
    std::fs::create_dir_all(root.join("etc/ssl/certs")).unwrap();
    std::fs::copy(roots, root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    let mut tar =
        Command::new("tar").args(["-C", root.to_str().unwrap(), "-c", "."]).stdout(Stdio::piped()).spawn().unwrap();
    let out = engine.command(&["import", "-", "skyhost-base:test"]).stdin(tar.stdout.take().unwrap()).output().unwrap();
    assert!(tar.wait().unwrap().success(), "tar of the base");
    assert!(out.status.success(), "docker import: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `image` as the server on 127.0.0.1:`port` (host network), read-only,
/// unprivileged; waits until it answers.
fn serve(engine: &Engine, image: &str, port: u16, extra: &[&str]) -> Client {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["run", "-d", "--network=host", "--read-only", "--tmpfs", "/tmp", "-e", "SKYHOST_OFFLINE=1"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "serve", "--addr", &addr]);
    let id = engine.ok(&args);
    wait_until(&format!("{image} to answer on {addr}"), || {
        std::net::TcpStream::connect(&addr).is_ok() || {
            let state = engine.ok(&["inspect", "-f", "{{.State.Running}}", &id]);
            assert_eq!(state, "true", "{image} stopped: {}", engine.ok(&["logs", &id]));
            false
        }
    });
    Client(addr)
}

/// The server in a container, at `host:port`.
struct Client(String);

impl Client {
    fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = skyhost_e2e::http_request(
            &self.0,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        );
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")))
    }
}

#[test]
fn both_images_build_and_serve_as_an_unprivileged_user_on_a_read_only_root() {
    let engine = match Engine::start() {
        Ok(e) => e,
        Err(why) => return skip(&format!("no Docker engine: {why}")),
    };
    let (minimal, full) = (layout("minimal"), layout("full"));
    make_base(&engine, &[minimal.clone(), full.clone()]);
    for (tag, dir) in [("skyhost:minimal", &minimal), ("skyhost:full", &full)] {
        engine.ok(&["build", "-q", "--build-arg", "BASE=skyhost-base:test", "-t", tag, dir.to_str().unwrap()]);
        let size: u64 = engine.ok(&["image", "inspect", "-f", "{{.Size}}", tag]).parse().unwrap();
        // `tests/run` prints this file at the end of the run.
        let line = format!(
            "{tag}: {:.1} MB (dev-profile layout; `dist/layout` builds smaller release ones)\n",
            size as f64 / 1e6
        );
        let sizes = skyhost_e2e::build_dir().parent().unwrap().join("image-sizes.txt");
        std::fs::OpenOptions::new().create(true).append(true).open(sizes).unwrap().write_all(line.as_bytes()).unwrap();
        assert_eq!(engine.ok(&["image", "inspect", "-f", "{{.Config.User}}", tag]), "65532:65532");
    }

    // Minimal: the clouds answer; Kubernetes is missing, with the hint.
    let port = free_port();
    let server = serve(&engine, "skyhost:minimal", port, &[]);
    let (status, ready) = server.get_json("/readyz");
    assert_eq!(status, 200, "{ready}");
    let k8s = ready["backends"].as_array().unwrap().iter().find(|b| b["name"] == "kubernetes").unwrap();
    assert_eq!(k8s["status"], "missing", "{ready}");
    let (status, aws) = server.get_json("/v1/gpus?infra=aws&name=H100");
    assert_eq!(status, 200, "{aws}");
    assert!(!aws["offerings"].as_array().unwrap().is_empty(), "{aws}");
    let (status, err) = server.get_json("/v1/gpus?infra=k8s");
    assert_eq!(status, 424, "{err}");
    assert_eq!(err["error"]["kind"], "backend_missing");
    assert!(err["error"]["hint"].as_str().unwrap().contains("libskyhost_kubernetes.so"), "{err}");
    // Its process runs as the unprivileged user, with plugins in workers.
    let (_, plugins) = server.get_json("/v1/plugins");
    assert!(plugins["plugins"].as_array().unwrap().iter().any(|p| p["isolation"] == "process"), "{plugins}");
    let container = engine.ok(&["ps", "-q", "--filter", "ancestor=skyhost:minimal"]);
    let top = engine.ok(&["top", &container, "-o", "pid,uid,args"]);
    let uids: Vec<&str> = top.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert!(uids.len() >= 2 && uids.iter().all(|u| *u == "65532"), "the server and its workers: {top}");

    // Full: the clusters of a kubeconfig mounted where the Dockerfile says.
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("gpu-1").gpus("nvidia.com/gpu", 8).label("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3").0],
        token: Some("image-token".into()),
        ..Default::default()
    });
    let kc = engine.dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&[("prod", &api.url(), "image-token")], Some("prod"))).unwrap();
    std::fs::set_permissions(&kc, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let port = free_port();
    let mount = format!("{}:/etc/skyhost/kubeconfig:ro", kc.display());
    let server = serve(&engine, "skyhost:full", port, &["-v", &mount]);
    let (status, gpus) = server.get_json("/v1/gpus?infra=k8s");
    assert_eq!(status, 200, "{gpus}");
    let cluster = &gpus["clusters"][0]["clusters"][0];
    assert_eq!(cluster["name"], "prod", "{gpus}");
    assert_eq!(cluster["gpus"][0]["capacity"], 8, "{gpus}");
}
