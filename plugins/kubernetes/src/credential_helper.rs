//! Exec credential helpers (`aws eks get-token`, `gke-gcloud-auth-plugin`,
//! `kubelogin`), run by the plugin itself within the context's deadline.
//!
//! kube runs a kubeconfig's `exec` helper synchronously and without a time
//! limit, on the runtime thread that builds the client (and again for each TLS
//! setup). A helper that never returned therefore blocked the very thread the
//! per-context deadline needs, and the whole listing hung. Here a helper runs
//! once, in a process group of its own, watched by a plain thread that kills
//! the whole group when the deadline passes; what it prints is handed to kube
//! as a plain token or client certificate, so kube runs nothing itself.
//!
//! The legacy `gcp` auth provider's `cmd-path` (`gcloud config config-helper`)
//! is a helper of the same kind and runs the same way.
//!
//! A helper runs without a terminal (standard input is empty and it is told
//! `interactive: false`): one that must ask the user something fails or runs
//! into the deadline, and its own words are shown. The credentials' expiry is
//! not tracked: a listing lasts seconds.

use std::{
    io::Read,
    os::unix::process::CommandExt,
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use base64::Engine;
use kube::config::{ExecAuthCluster, ExecConfig};
use serde::{Deserialize, Serialize};
use skyhost_plugin_api::{ClusterError, sdk::clip};

use crate::contexts::kubectl_hint;

/// The most bytes read from a helper's standard output or error; the rest is
/// discarded (real credentials are a few kilobytes).
const OUTPUT_LIMIT: u64 = 1 << 20;

/// A credential helper that a kubeconfig user runs.
#[derive(Debug, Clone)]
pub struct Helper {
    /// What to run (for the `gcp` provider: built from its `cmd-path`, `cmd-args`, `cmd-drop-env`).
    exec: ExecConfig,
    speaks: Speaks,
}

/// What a helper prints.
#[derive(Debug, Clone)]
enum Speaks {
    /// An `ExecCredential` (an `exec` user).
    ExecCredential,
    /// The `gcp` auth provider's output: the token at `token_key` of a JSON
    /// document (`{.credential.access_token}`), or with no key, the whole output.
    GcpToken { token_key: Option<String> },
}

/// What a helper printed that kube can use.
#[derive(Debug)]
pub enum Credentials {
    /// A bearer token.
    Token(String),
    /// A client certificate and its key, both PEM.
    Certificate { cert: String, key: String },
}

/// Why a helper gave no credentials.
#[derive(Debug)]
pub enum HelperError {
    /// The `exec` section names no command.
    NoCommand,
    /// `provideClusterInfo` is set but the cluster entry could not be passed on.
    MissingClusterInfo,
    /// The helper could not be started (not installed, not executable).
    Start(std::io::Error),
    /// The helper exited unsuccessfully; its standard error.
    Failed { status: ExitStatus, stderr: Vec<u8> },
    /// The helper succeeded but printed nothing usable.
    Unusable,
    /// The deadline passed; the helper's process group was killed.
    TimedOut,
}

impl Helper {
    /// The helper kube would run for `config`, in kube's order: the `gcp`
    /// auth provider's command (unless it has a fixed `id-token`); else, when
    /// no password, token or token file comes first, the `exec` section.
    pub fn of(config: &kube::Config) -> Option<Helper> {
        let a = &config.auth_info;
        if let Some(provider) = &a.auth_provider {
            let c = &provider.config;
            if provider.name != "gcp" || c.contains_key("id-token") {
                return None;
            }
            // A cached access token is not trusted to be fresh: the command
            // runs, as kube would run it once the token expired.
            let command = c.get("cmd-path")?;
            let words = |key: &str| -> Option<Vec<String>> {
                c.get(key).map(|v| v.split_whitespace().map(String::from).collect())
            };
            let exec = ExecConfig {
                api_version: None,
                command: Some(command.clone()),
                args: words("cmd-args"),
                env: None,
                drop_env: words("cmd-drop-env"),
                install_hint: None,
                interactive_mode: None,
                provide_cluster_info: false,
                cluster: None,
                other: Default::default(),
            };
            return Some(Helper { exec, speaks: Speaks::GcpToken { token_key: c.get("token-key").cloned() } });
        }
        if (a.username.is_some() && a.password.is_some()) || a.token.is_some() || a.token_file.is_some() {
            return None;
        }
        a.exec.clone().map(|exec| Helper { exec, speaks: Speaks::ExecCredential })
    }

    /// The command, as the messages name it.
    pub fn command(&self) -> &str {
        self.exec.command.as_deref().unwrap_or_default()
    }

    /// The command line, at most 200 bytes of it: `aws eks get-token --cluster-name prod`.
    pub fn command_line(&self) -> String {
        let mut line = self.command().to_string();
        for arg in self.exec.args.iter().flatten() {
            line.push(' ');
            line.push_str(arg);
        }
        clip(&line).into_owned()
    }

    fn install_hint(&self) -> Option<&str> {
        self.exec.install_hint.as_deref().map(str::trim).filter(|h| !h.is_empty())
    }

    /// The process to run, as kube would set it up, minus the terminal.
    fn process(&self) -> Result<Command, HelperError> {
        let command = self.exec.command.as_deref().filter(|c| !c.is_empty()).ok_or(HelperError::NoCommand)?;
        let mut cmd = Command::new(command);
        cmd.args(self.exec.args.iter().flatten());
        for pair in self.exec.env.iter().flatten() {
            if let (Some(name), Some(value)) = (pair.get("name"), pair.get("value")) {
                cmd.env(name, value);
            }
        }
        let cluster = match (self.exec.provide_cluster_info, &self.exec.cluster) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => return Err(HelperError::MissingClusterInfo),
        };
        if let Speaks::ExecCredential = self.speaks {
            let info = ExecInfo {
                api_version: self.exec.api_version.as_deref(),
                kind: "ExecCredential",
                spec: ExecInfoSpec { interactive: false, cluster },
            };
            cmd.env("KUBERNETES_EXEC_INFO", serde_json::to_string(&info).unwrap_or_default());
        }
        for name in self.exec.drop_env.iter().flatten() {
            cmd.env_remove(name);
        }
        // Its own process group, so that a deadline stops the helper and
        // everything it started (a shell script's children too).
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        Ok(cmd)
    }

    /// Runs the helper on a thread of its own, killing it at `deadline`.
    /// Never blocks the calling runtime.
    pub async fn run(&self, deadline: Instant) -> Result<Credentials, HelperError> {
        let cmd = self.process()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("skyhost-credential-helper".into())
            .spawn(move || {
                let _ = tx.send(run_until(cmd, deadline));
            })
            .map_err(HelperError::Start)?;
        // The watcher always answers; a dropped sender would mean it died.
        let (status, stdout, stderr) = rx.await.map_err(|_| HelperError::TimedOut)??;
        if !status.success() {
            return Err(HelperError::Failed { status, stderr });
        }
        match &self.speaks {
            Speaks::ExecCredential => credentials(&stdout),
            Speaks::GcpToken { token_key } => gcp_token(&stdout, token_key.as_deref()).map(Credentials::Token),
        }
        .ok_or(HelperError::Unusable)
    }

    /// What the user is told, with the same words whichever way it failed.
    pub fn explain(&self, error: &HelperError, context: &str, timeout: Duration) -> ClusterError {
        let cmd = clip(self.command()).into_owned();
        let reason = match error {
            HelperError::NoCommand => {
                "the `exec` section of the context's user in the kubeconfig names no command".into()
            }
            HelperError::MissingClusterInfo => {
                format!(
                    "the credential helper `{cmd}` asks for the cluster's details (provideClusterInfo), which the kubeconfig lacks"
                )
            }
            HelperError::Start(io) => {
                format!("the credential helper `{cmd}` that the kubeconfig runs could not be started: {io}")
            }
            HelperError::Failed { status, stderr } => {
                let said = String::from_utf8_lossy(stderr);
                let said = said.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message");
                format!("the credential helper `{cmd}` failed ({status}): {}", clip(said))
            }
            HelperError::Unusable => format!("the credential helper `{cmd}` printed no usable credentials"),
            HelperError::TimedOut => return self.timed_out(context, timeout),
        };
        let hint = match self.install_hint() {
            Some(h) => format!("{} ({})", clip(h), kubectl_hint(context)),
            None => format!(
                "install `{cmd}` or fix the `{}` section of the context's user in the kubeconfig; then {}",
                match self.speaks {
                    Speaks::ExecCredential => "exec",
                    Speaks::GcpToken { .. } => "auth-provider",
                },
                kubectl_hint(context)
            ),
        };
        ClusterError { reason, hint: Some(hint) }
    }

    /// The helper did not finish within the context's deadline.
    pub fn timed_out(&self, context: &str, timeout: Duration) -> ClusterError {
        ClusterError {
            reason: format!(
                "the credential helper `{}` did not finish within {} s and was stopped",
                self.command_line(),
                timeout.as_secs_f64()
            ),
            hint: Some(format!(
                "run it by hand to see what it waits for (a login, a prompt, the network), or raise `timeout_secs` under [kubernetes]; then {}",
                kubectl_hint(context)
            )),
        }
    }
}

/// `KUBERNETES_EXEC_INFO`, as client-go passes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'a str>,
    kind: &'static str,
    spec: ExecInfoSpec<'a>,
}

#[derive(Serialize)]
struct ExecInfoSpec<'a> {
    interactive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a ExecAuthCluster>,
}

/// The part of the `ExecCredential` a helper prints that is read.
#[derive(Deserialize)]
struct ExecCredential {
    status: Option<ExecStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
}

/// The credentials in a helper's output: JSON, or YAML as client-go also accepts.
fn credentials(stdout: &[u8]) -> Option<Credentials> {
    let parsed: ExecCredential =
        serde_json::from_slice(stdout).ok().or_else(|| serde_saphyr::from_slice(stdout).ok())?;
    let status = parsed.status?;
    if let (Some(cert), Some(key)) = (status.client_certificate_data, status.client_key_data) {
        return Some(Credentials::Certificate { cert, key });
    }
    status.token.filter(|t| !t.is_empty()).map(Credentials::Token)
}

/// The token in the `gcp` provider command's output: at `token_key`, a
/// JSONPath such as `{.credential.access_token}` (dotted names only), or the
/// whole output without one.
fn gcp_token(stdout: &[u8], token_key: Option<&str>) -> Option<String> {
    let token = match token_key {
        None => std::str::from_utf8(stdout).ok()?.trim().to_string(),
        Some(key) => {
            let json: serde_json::Value = serde_json::from_slice(stdout).ok()?;
            let path = key.trim_matches(|c| c == '"' || c == '{' || c == '}').trim_start_matches('$');
            let pointer: String = path.trim_start_matches('.').split('.').map(|k| format!("/{k}")).collect();
            json.pointer(&pointer)?.as_str()?.to_string()
        }
    };
    (!token.is_empty()).then_some(token)
}

/// Gives kube `credentials` in place of the helper, so it runs nothing itself.
pub fn apply(config: &mut kube::Config, credentials: Credentials) {
    let auth = &mut config.auth_info;
    auth.exec = None;
    auth.auth_provider = None;
    match credentials {
        Credentials::Token(token) => auth.token = Some(token.into()),
        Credentials::Certificate { cert, key } => {
            // The kubeconfig fields hold base64 of the PEM.
            let b64 = base64::engine::general_purpose::STANDARD;
            auth.client_certificate = None;
            auth.client_key = None;
            auth.client_certificate_data = Some(b64.encode(cert));
            auth.client_key_data = Some(b64.encode(key).into());
        }
    }
}

type Finished = (ExitStatus, Vec<u8>, Vec<u8>);

/// Runs `cmd` to its end or to `deadline`, whichever comes first. Blocks: call
/// it from a thread of its own.
fn run_until(mut cmd: Command, deadline: Instant) -> Result<Finished, HelperError> {
    let mut child = cmd.spawn().map_err(HelperError::Start)?;
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>)>();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (i, pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.by_ref().take(OUTPUT_LIMIT).read_to_end(&mut bytes);
                // Keep draining so the helper never blocks on a full pipe.
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            }
            let _ = tx.send((i, bytes));
        });
    }
    drop(tx);
    let mut outputs: [Option<Vec<u8>>; 2] = [None, None];
    while outputs.iter().any(Option::is_none) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((i, bytes)) => outputs[i] = Some(bytes),
            Err(_) => return Err(stop(&mut child)),
        }
    }
    // Both pipes are closed; the helper is exiting. Still bounded.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return Err(stop(&mut child)),
        }
    };
    let [stdout, stderr] = outputs.map(Option::unwrap_or_default);
    Ok((status, stdout, stderr))
}

/// Kills the helper's whole process group and reaps the helper.
fn stop(child: &mut std::process::Child) -> HelperError {
    // The helper leads its group (process_group(0)) and is not reaped yet,
    // so the group id cannot have been reused.
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill only sends a signal; a negative pid names a process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    HelperError::TimedOut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper(script: &str) -> Helper {
        Helper {
            speaks: Speaks::ExecCredential,
            exec: ExecConfig {
                api_version: Some("client.authentication.k8s.io/v1beta1".into()),
                command: Some("sh".into()),
                args: Some(vec!["-c".into(), script.into()]),
                env: None,
                drop_env: None,
                install_hint: None,
                interactive_mode: None,
                provide_cluster_info: false,
                cluster: None,
                other: Default::default(),
            },
        }
    }

    fn run(h: &Helper, within: Duration) -> Result<Credentials, HelperError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(h.run(Instant::now() + within))
    }

    #[test]
    fn tokens_and_certificates_in_json_or_yaml() {
        let token = helper(r#"echo '{"kind":"ExecCredential","status":{"token":"abc"}}'"#);
        assert!(matches!(run(&token, Duration::from_secs(30)), Ok(Credentials::Token(t)) if t == "abc"));
        let yaml = helper("printf 'kind: ExecCredential\\nstatus:\\n  token: from-yaml\\n'");
        assert!(matches!(run(&yaml, Duration::from_secs(30)), Ok(Credentials::Token(t)) if t == "from-yaml"));
        let cert = helper(r#"echo '{"status":{"clientCertificateData":"C","clientKeyData":"K"}}'"#);
        assert!(
            matches!(run(&cert, Duration::from_secs(30)), Ok(Credentials::Certificate { cert, key }) if cert == "C" && key == "K")
        );
        assert!(matches!(run(&helper("echo '{}'"), Duration::from_secs(30)), Err(HelperError::Unusable)));
    }

    #[test]
    fn gcp_provider_output_by_token_key_or_whole() {
        let out = br#"{"credential": {"access_token": "ya29.x", "token_expiry": "2030-01-01T00:00:00Z"}}"#;
        assert_eq!(gcp_token(out, Some("{.credential.access_token}")).as_deref(), Some("ya29.x"));
        assert_eq!(gcp_token(out, Some("$.credential.access_token")).as_deref(), Some("ya29.x"));
        assert_eq!(gcp_token(out, Some("credential.token_expiry")).as_deref(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(gcp_token(out, Some("{.credential.missing}")), None);
        assert_eq!(gcp_token(b"plain-token\n", None).as_deref(), Some("plain-token"));
        assert_eq!(gcp_token(b"  \n", None), None);
    }

    #[test]
    fn the_info_variable_says_non_interactive() {
        let h = helper(
            r#"case "$KUBERNETES_EXEC_INFO" in *'"interactive":false'*) echo '{"status":{"token":"ok"}}';; *) exit 3;; esac"#,
        );
        assert!(matches!(run(&h, Duration::from_secs(30)), Ok(Credentials::Token(_))));
    }

    #[test]
    fn a_failure_keeps_the_helpers_words() {
        let h = helper("echo 'error: the SSO session has expired' >&2; exit 255");
        let e = run(&h, Duration::from_secs(30)).unwrap_err();
        let said = h.explain(&e, "prod", Duration::from_secs(2));
        assert_eq!(
            said.reason,
            "the credential helper `sh` failed (exit status: 255): error: the SSO session has expired"
        );
    }

    #[test]
    fn a_helper_that_never_ends_is_killed_with_its_children_at_the_deadline() {
        // The shell's child holds the output pipe open: killing the shell alone
        // would leave the reader waiting.
        let marker = std::env::temp_dir().join(format!("skyhost-helper-test-{}", std::process::id()));
        let h = helper(&format!("sleep 1000 & echo $! > {}; wait", marker.display()));
        let e = run(&h, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, HelperError::TimedOut), "{e:?}");
        let pid: i32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
        let _ = std::fs::remove_file(&marker);
        // The grandchild got the signal too: it is gone, or a zombie for init
        // to reap. (Signal delivery is asynchronous: look a few times.)
        let gone = || {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            state.is_empty() || state.contains(") Z ")
        };
        for _ in 0..500 {
            if gone() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(), "sleep {pid} still runs");
        let said = h.timed_out("prod", Duration::from_secs(2));
        assert!(said.reason.starts_with("the credential helper `sh -c sleep 1000 & echo"), "{}", said.reason);
        assert!(said.reason.ends_with("did not finish within 2 s and was stopped"), "{}", said.reason);
    }
}
