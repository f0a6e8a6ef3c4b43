//! Running the Slurm client commands on a cluster: here, or through the
//! system `ssh` (batch mode, no terminal, a connect timeout, and one reused
//! connection per cluster through a control socket in skyhost's runtime
//! directory). Arguments are never passed through a local shell; the remote
//! command is one of a few fixed strings.

use std::{
    path::PathBuf,
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use skyhost_plugin_api::ClusterError;

use crate::{
    clusters::{ClusterDef, SshTarget, Transport},
    nodes::{self, Listing, ParseError},
    run::{Outcome, run},
};

/// The forms a node listing can be read in, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `scontrol show node --json` (23.02+).
    ScontrolJson,
    /// `sinfo --json` (22.05: one record per node).
    SinfoJson,
    /// `scontrol --oneliner --details show node`.
    Text,
}

impl Form {
    fn args(self) -> &'static [&'static str] {
        match self {
            Form::ScontrolJson => &["scontrol", "show", "node", "--json"],
            Form::SinfoJson => &["sinfo", "--json"],
            Form::Text => &["scontrol", "--oneliner", "--details", "show", "node"],
        }
    }
}

/// The form that worked last time, per cluster (a server asks again and again).
static FORMS: Mutex<Vec<(String, Form)>> = Mutex::new(Vec::new());

fn remembered(cluster: &str) -> Option<Form> {
    FORMS.lock().ok()?.iter().find(|(c, _)| c == cluster).map(|(_, f)| *f)
}

fn remember(cluster: &str, form: Form) {
    if let Ok(mut f) = FORMS.lock() {
        f.retain(|(c, _)| c != cluster);
        f.push((cluster.to_string(), form));
    }
}

/// skyhost's runtime directory, for control sockets: `$XDG_RUNTIME_DIR/skyhost`,
/// else `/tmp/skyhost-<uid>`, created owner-only. A path too long for a
/// socket name falls back to the latter.
fn runtime_dir() -> Option<PathBuf> {
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    let fallback = PathBuf::from(format!("/tmp/skyhost-{uid}"));
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("skyhost"))
        .filter(|d| d.as_os_str().len() < 50)
        .unwrap_or(fallback);
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    // Never put a socket in a directory someone else controls.
    (meta.is_dir() && meta.uid() == uid && meta.mode() & 0o022 == 0).then_some(dir)
}

fn ssh_command(t: &SshTarget, timeout: Duration, remote: &[&str]) -> Command {
    let mut c = Command::new("ssh");
    if let Some(f) = &t.config_file {
        c.arg("-F").arg(f);
    }
    let connect = timeout.as_secs().clamp(1, 60);
    c.args(["-T", "-o", "BatchMode=yes", "-o", &format!("ConnectTimeout={connect}")]);
    c.args(["-o", "ServerAliveInterval=5", "-o", "LogLevel=ERROR"]);
    if let Some(dir) = runtime_dir() {
        c.arg("-o").arg(format!("ControlPath={}/ssh-%C", dir.display()));
        c.args(["-o", "ControlMaster=auto", "-o", "ControlPersist=300"]);
    }
    if let Some(p) = t.port {
        c.arg("-p").arg(p.to_string());
    }
    if let Some(i) = &t.identity_file {
        c.arg("-i").arg(i).args(["-o", "IdentitiesOnly=yes"]);
    }
    if let Some(j) = &t.proxy_jump {
        c.arg("-J").arg(j);
    }
    for o in &t.options {
        c.arg("-o").arg(o);
    }
    // `--` ends the options: the destination can never be read as one.
    c.arg("--").arg(&t.destination);
    // ssh joins these with spaces for the remote shell: fixed words only.
    c.args(remote);
    c
}

/// The command that runs `args` on `cluster`.
pub fn command(cluster: &ClusterDef, timeout: Duration, args: &[&str]) -> Command {
    match &cluster.transport {
        Transport::Local { slurm_conf } => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            if let Some(conf) = slurm_conf {
                c.env("SLURM_CONF", conf);
            }
            c
        }
        Transport::Ssh(t) => ssh_command(t, timeout, args),
    }
}

fn where_(cluster: &ClusterDef) -> String {
    match &cluster.transport {
        Transport::Local { .. } => "this machine".to_string(),
        Transport::Ssh(t) => format!("'{}' (over ssh)", t.destination),
    }
}

fn last_line(text: &str) -> String {
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default().to_string()
}

/// Turns a failed command into a reason and a hint, by what failed.
fn failure(cluster: &ClusterDef, args: &[&str], code: i32, stderr: &str) -> ClusterError {
    let ssh = matches!(cluster.transport, Transport::Ssh(_));
    let line = last_line(stderr);
    let lower = stderr.to_ascii_lowercase();
    let place = where_(cluster);
    let (reason, hint) = if ssh && code == 255 {
        let ssh_line = if line.is_empty() { format!("ssh exited with status {code}") } else { line.clone() };
        let dest = match &cluster.transport {
            Transport::Ssh(t) => t.destination.clone(),
            Transport::Local { .. } => String::new(),
        };
        (
            format!("ssh: {ssh_line}"),
            format!(
                "check that `ssh {dest}` logs in without a password prompt (key in ssh-agent or IdentityFile, host key known): skyhost runs it with BatchMode=yes"
            ),
        )
    } else if lower.contains("unable to contact slurm controller")
        || lower.contains("connection refused") && lower.contains("slurm")
    {
        (
            format!("{}: {line}", args[0]),
            format!(
                "the Slurm controller does not answer: check `scontrol ping` on {place} and that slurmctld is running"
            ),
        )
    } else if lower.contains("munge") || lower.contains("authentication error") {
        (
            format!("{}: {line}", args[0]),
            format!(
                "munge authentication failed: check that munged runs on {place} (`munge -n | unmunge`) with the cluster's key"
            ),
        )
    } else if code == 127 || lower.contains("command not found") {
        (
            format!("`{}` is not installed on {place}", args[0]),
            "install the Slurm client commands (Debian: slurm-client) there, or point the cluster at a login node that has them".to_string(),
        )
    } else {
        let line = if line.is_empty() { format!("exited with status {code}") } else { line };
        (format!("`{}` failed: {line}", args.join(" ")), format!("run `{}` on {place} to see why", args.join(" ")))
    };
    ClusterError { reason, hint: Some(hint) }
}

fn timed_out(cluster: &ClusterDef, timeout: Duration) -> ClusterError {
    ClusterError {
        reason: format!("no answer within {} s", timeout.as_secs_f64()),
        hint: Some(format!(
            "check that {} answers (`scontrol ping`); raise `timeout_secs` under [slurm] if the cluster is just slow",
            where_(cluster)
        )),
    }
}

/// What one attempt gave.
enum Attempt {
    Read(Listing),
    /// This Slurm cannot print the form; try the next.
    Unsupported,
    Failed(ClusterError),
}

fn unsupported(stderr: &str) -> bool {
    let l = stderr.to_ascii_lowercase();
    l.contains("unrecognized option")
        || l.contains("invalid option")
        || l.contains("unknown option")
        || l.contains("serializer")
        || l.contains("data_parser")
        || l.contains("plugin")
}

fn attempt(cluster: &ClusterDef, form: Form, deadline: Instant, timeout: Duration) -> Attempt {
    let args = form.args();
    match run(command(cluster, timeout, args), deadline) {
        Outcome::TimedOut => Attempt::Failed(timed_out(cluster, timeout)),
        Outcome::NotStarted(std::io::ErrorKind::NotFound, _) => Attempt::Failed(ClusterError {
            reason: match &cluster.transport {
                Transport::Local { .. } => format!("`{}` is not installed on this machine", args[0]),
                Transport::Ssh(_) => "the `ssh` client is not installed on this machine".to_string(),
            },
            hint: Some("install the Slurm client commands (Debian: slurm-client) or OpenSSH's client".into()),
        }),
        Outcome::NotStarted(_, e) => {
            Attempt::Failed(ClusterError { reason: format!("cannot run `{}`: {e}", args[0]), hint: None })
        }
        Outcome::Exited { code, stdout, stderr } => {
            if code != 0 {
                if form != Form::Text
                    && !(code == 255 && matches!(cluster.transport, Transport::Ssh(_)))
                    && unsupported(&stderr)
                {
                    return Attempt::Unsupported;
                }
                return Attempt::Failed(failure(cluster, args, code, &stderr));
            }
            let parsed = match form {
                Form::Text => nodes::parse_text(&stdout),
                _ => nodes::parse_json(&stdout),
            };
            match parsed {
                Ok(l) => Attempt::Read(l),
                // 23.02+ `sinfo --json` groups nodes: not usable.
                Err(ParseError::Malformed(_)) if form == Form::SinfoJson => Attempt::Unsupported,
                Err(ParseError::Malformed(m)) => Attempt::Failed(ClusterError {
                    reason: format!("`{}` answered something unreadable: {m}", args.join(" ")),
                    hint: Some(format!("run `{}` on {} to see it", args.join(" "), where_(cluster))),
                }),
                Err(ParseError::Slurm(m)) => {
                    // 22.05's `sinfo --json` hides the cause ("Unspecified error"):
                    // the plain command says it, when there is time left.
                    if form == Form::SinfoJson
                        && deadline > Instant::now()
                        && let Attempt::Failed(e) = attempt(cluster, Form::Text, deadline, timeout)
                    {
                        return Attempt::Failed(e);
                    }
                    Attempt::Failed(ClusterError {
                        reason: format!("`{}` reported an error: {m}", args.join(" ")),
                        hint: Some(format!("check `scontrol ping` on {}", where_(cluster))),
                    })
                }
            }
        }
    }
}

/// `scontrol ping` answers at once, where a listing waits ~9 s for a
/// controller that is down. When it says DOWN, the plain listing (within
/// the deadline) tells why: no controller, or munge.
fn ping(cluster: &ClusterDef, deadline: Instant, timeout: Duration) -> Result<(), ClusterError> {
    let args = ["scontrol", "ping"];
    match run(command(cluster, timeout, &args), deadline) {
        Outcome::TimedOut => Err(timed_out(cluster, timeout)),
        Outcome::Exited { code: 0, .. } => Ok(()),
        Outcome::Exited { code: 1, stdout, .. } if stdout.contains(" is DOWN") => {
            let said = stdout.lines().next().unwrap_or_default().trim().to_string();
            match attempt(cluster, Form::Text, deadline, timeout) {
                Attempt::Read(_) | Attempt::Unsupported => Ok(()),
                Attempt::Failed(e) if !e.reason.starts_with("no answer") => Err(e),
                Attempt::Failed(_) => Err(ClusterError {
                    reason: format!("Unable to contact slurm controller (`scontrol ping`: {said})"),
                    hint: Some(format!(
                        "check that slurmctld is running and that munged answers (`munge -n | unmunge`) on {}",
                        where_(cluster)
                    )),
                }),
            }
        }
        Outcome::Exited { code, stderr, .. } => Err(failure(cluster, &args, code, &stderr)),
        Outcome::NotStarted(..) => match attempt(cluster, Form::Text, deadline, timeout) {
            Attempt::Failed(e) => Err(e),
            _ => Ok(()),
        },
    }
}

/// Reads every node of `cluster` within `timeout`, in the best form its Slurm
/// prints; the form that worked is remembered for the next call.
pub fn read_nodes(cluster: &ClusterDef, timeout: Duration) -> Result<(Listing, Form), ClusterError> {
    let deadline = Instant::now() + timeout;
    ping(cluster, deadline, timeout)?;
    let mut forms = vec![Form::ScontrolJson, Form::SinfoJson, Form::Text];
    if let Some(f) = remembered(&cluster.name) {
        forms.retain(|x| *x != f);
        forms.insert(0, f);
    }
    for form in forms {
        match attempt(cluster, form, deadline, timeout) {
            Attempt::Read(l) => {
                remember(&cluster.name, form);
                return Ok((l, form));
            }
            Attempt::Unsupported => continue,
            Attempt::Failed(e) => return Err(e),
        }
    }
    Err(ClusterError {
        reason: "none of `scontrol show node --json`, `sinfo --json`, `scontrol -o -d show node` worked".into(),
        hint: Some(format!("run `scontrol -o -d show node` on {} to see why", where_(cluster))),
    })
}

/// `scontrol --version` → `22.05.8`.
pub fn version(cluster: &ClusterDef, timeout: Duration) -> Option<String> {
    match run(command(cluster, timeout, &["scontrol", "--version"]), Instant::now() + timeout) {
        Outcome::Exited { code: 0, stdout, .. } => stdout.split_whitespace().last().map(str::to_string),
        _ => None,
    }
}

/// Number of partitions (`scontrol show partition -o` lines).
pub fn partitions(cluster: &ClusterDef, timeout: Duration) -> Option<usize> {
    match run(command(cluster, timeout, &["scontrol", "--oneliner", "show", "partition"]), Instant::now() + timeout) {
        Outcome::Exited { code: 0, stdout, .. } => {
            Some(stdout.lines().filter(|l| l.starts_with("PartitionName=")).count())
        }
        _ => None,
    }
}
