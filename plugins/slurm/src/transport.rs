//! Running the Slurm client commands on a cluster: here, or through the
//! system `ssh` (batch mode, no terminal, a connect timeout, and one reused
//! connection per cluster through a control socket in skyhost's runtime
//! directory). Arguments are never passed through a local shell; the remote
//! command is one of a few fixed strings.

use std::{
    path::PathBuf,
    process::Command,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use skyhost_plugin_api::ClusterError;

use crate::{
    clusters::{ClusterDef, SshTarget, Transport},
    nodes::{self, Listing, ParseError},
    run::{Outcome, run, run_until},
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
    /// slurmrestd's `/slurm/v0.0.NN/nodes/`.
    Rest,
}

impl Form {
    fn args(self) -> &'static [&'static str] {
        match self {
            Form::ScontrolJson => &["scontrol", "show", "node", "--json"],
            Form::SinfoJson => &["sinfo", "--json"],
            Form::Text | Form::Rest => &["scontrol", "--oneliner", "--details", "show", "node"],
        }
    }
}

/// The form that worked last time, per cluster: in memory (a server asks
/// again and again) and in the runtime directory (each CLI run is a new
/// process), keyed by the cluster's name and how it is reached.
static FORMS: Mutex<Vec<(String, Form)>> = Mutex::new(Vec::new());

fn form_key(cluster: &ClusterDef) -> String {
    // FNV-1a: a stable file name for any name and destination.
    let text = format!("{}\0{:?}", cluster.name, cluster.transport);
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("slurm-form-{hash:016x}")
}

impl Form {
    fn word(self) -> &'static str {
        match self {
            Form::ScontrolJson => "scontrol-json",
            Form::SinfoJson => "sinfo-json",
            Form::Text => "text",
            Form::Rest => "rest",
        }
    }

    fn from_word(w: &str) -> Option<Self> {
        [Form::ScontrolJson, Form::SinfoJson, Form::Text].into_iter().find(|f| f.word() == w.trim())
    }
}

fn remembered(cluster: &ClusterDef) -> Option<Form> {
    let key = form_key(cluster);
    if let Some(f) = FORMS.lock().ok()?.iter().find(|(c, _)| *c == key).map(|(_, f)| *f) {
        return Some(f);
    }
    Form::from_word(&std::fs::read_to_string(runtime_dir()?.join(key)).ok()?)
}

fn remember(cluster: &ClusterDef, form: Form) {
    let key = form_key(cluster);
    if let Ok(mut f) = FORMS.lock() {
        f.retain(|(c, _)| *c != key);
        f.push((key.clone(), form));
    }
    if let Some(dir) = runtime_dir() {
        // Written whole under another name, then renamed: never half a word.
        let tmp = dir.join(format!(".{key}.{}", std::process::id()));
        if std::fs::write(&tmp, form.word()).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(&key));
        }
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
        // REST clusters run no command (read_nodes goes to rest.rs first);
        // should one be asked anyway, it fails plainly.
        Transport::Rest(_) => Command::new("/bin/false"),
    }
}

fn where_(cluster: &ClusterDef) -> String {
    match &cluster.transport {
        Transport::Local { .. } => "this machine".to_string(),
        Transport::Ssh(t) => format!("'{}' (over ssh)", t.destination),
        Transport::Rest(t) => format!("slurmrestd at {}", t.url),
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
            Transport::Local { .. } | Transport::Rest(_) => String::new(),
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
    /// Given up on (the controller is down).
    Cancelled,
    /// `scontrol ping`, run first in the same ssh session, said the
    /// controller is DOWN (its first line).
    Down(String),
}

/// Printed between `scontrol ping` and the listing in one ssh session.
const PINGED: &str = "@@skyhost-ping-ok@@";

fn unsupported(stderr: &str) -> bool {
    let l = stderr.to_ascii_lowercase();
    l.contains("unrecognized option")
        || l.contains("invalid option")
        || l.contains("unknown option")
        || l.contains("serializer")
        || l.contains("data_parser")
        || l.contains("plugin")
}

/// Runs the listing `form` on `cluster`. Over ssh with `with_ping`, one
/// session runs `scontrol ping && echo MARK && LISTING` (fixed words only): a
/// session costs a round trip or two, and two at once on one connection are
/// not faster than one after the other.
fn attempt(
    cluster: &ClusterDef,
    form: Form,
    deadline: Instant,
    timeout: Duration,
    cancel: &AtomicBool,
    with_ping: bool,
) -> Attempt {
    let args = form.args();
    let with_ping = with_ping && matches!(cluster.transport, Transport::Ssh(_));
    let cmd = if with_ping {
        let mut words = vec!["scontrol", "ping", "&&", "echo", PINGED, "&&"];
        words.extend(args);
        command(cluster, timeout, &words)
    } else {
        command(cluster, timeout, args)
    };
    let outcome = match run_until(cmd, deadline, cancel) {
        Outcome::Exited { code, stdout, stderr } if with_ping => match stdout.split_once(PINGED) {
            Some((_, rest)) => Outcome::Exited { code, stdout: rest.trim_start_matches('\n').to_string(), stderr },
            None if code != 255 && stdout.contains(" is DOWN") => {
                return Attempt::Down(stdout.lines().next().unwrap_or_default().trim().to_string());
            }
            None => return Attempt::Failed(failure(cluster, &["scontrol", "ping"], code, &stderr)),
        },
        other => other,
    };
    match outcome {
        Outcome::TimedOut => Attempt::Failed(timed_out(cluster, timeout)),
        Outcome::Cancelled => Attempt::Cancelled,
        Outcome::NotStarted(std::io::ErrorKind::NotFound, _) => Attempt::Failed(ClusterError {
            reason: match &cluster.transport {
                Transport::Local { .. } | Transport::Rest(_) => {
                    format!("`{}` is not installed on this machine", args[0])
                }
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
                        && let Attempt::Failed(e) = attempt(cluster, Form::Text, deadline, timeout, cancel, false)
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

/// What `scontrol ping` said.
enum Ping {
    Up,
    /// Its first line (`Slurmctld(primary) at vm is DOWN`).
    Down(String),
    Failed(ClusterError),
}

/// `scontrol ping` answers at once, where a listing waits ~9 s for a
/// controller that is down.
fn ping(cluster: &ClusterDef, deadline: Instant, timeout: Duration, cancel: &AtomicBool) -> Ping {
    let args = ["scontrol", "ping"];
    match run_until(command(cluster, timeout, &args), deadline, cancel) {
        Outcome::Exited { code: 0, .. } => Ping::Up,
        Outcome::Exited { code: 1, stdout, .. } if stdout.contains(" is DOWN") => {
            Ping::Down(stdout.lines().next().unwrap_or_default().trim().to_string())
        }
        Outcome::Exited { code, stderr, .. } => Ping::Failed(failure(cluster, &args, code, &stderr)),
        Outcome::TimedOut => Ping::Failed(timed_out(cluster, timeout)),
        Outcome::Cancelled | Outcome::NotStarted(..) => Ping::Up,
    }
}

/// Why no listing came.
enum NoListing {
    Failed(ClusterError),
    Cancelled,
    Down(String),
}

/// The listing forms in order, the remembered one first.
fn list(
    cluster: &ClusterDef,
    deadline: Instant,
    timeout: Duration,
    cancel: &AtomicBool,
    with_ping: bool,
) -> Result<(Listing, Form), NoListing> {
    let mut forms = vec![Form::ScontrolJson, Form::SinfoJson, Form::Text];
    if let Some(f) = remembered(cluster) {
        forms.retain(|x| *x != f);
        forms.insert(0, f);
    }
    for form in forms {
        match attempt(cluster, form, deadline, timeout, cancel, with_ping) {
            Attempt::Read(l) => {
                remember(cluster, form);
                return Ok((l, form));
            }
            Attempt::Unsupported => continue,
            Attempt::Failed(e) => return Err(NoListing::Failed(e)),
            Attempt::Cancelled => return Err(NoListing::Cancelled),
            Attempt::Down(said) => return Err(NoListing::Down(said)),
        }
    }
    Err(NoListing::Failed(ClusterError {
        reason: "none of `scontrol show node --json`, `sinfo --json`, `scontrol -o -d show node` worked".into(),
        hint: Some(format!("run `scontrol -o -d show node` on {} to see why", where_(cluster))),
    }))
}

/// The controller is DOWN by `scontrol ping`: the plain listing says why
/// (no controller, or munge) within the deadline; else ping's own words.
fn explain_down(cluster: &ClusterDef, said: &str, deadline: Instant, timeout: Duration) -> ClusterError {
    match attempt(cluster, Form::Text, deadline, timeout, &AtomicBool::new(false), false) {
        Attempt::Failed(e) if !e.reason.starts_with("no answer") => e,
        _ => ClusterError {
            reason: format!("Unable to contact slurm controller (`scontrol ping`: {said})"),
            hint: Some(format!(
                "check that slurmctld is running and that munged answers (`munge -n | unmunge`) on {}",
                where_(cluster)
            )),
        },
    }
}

/// Reads every node of `cluster` within `timeout`, in the best form its Slurm
/// prints (the form that worked is remembered for the next call), with
/// `scontrol ping` first, which answers at once when the controller is down
/// where a listing waits ~9 s. Over ssh the two share one session; here, the
/// ping runs beside the listing and stops it when it says DOWN.
pub fn read_nodes(cluster: &ClusterDef, timeout: Duration) -> Result<(Listing, Form), ClusterError> {
    if let Transport::Rest(t) = &cluster.transport {
        return crate::rest::read_nodes(t, &cluster.origin, timeout).map(|l| (l, Form::Rest));
    }
    let deadline = Instant::now() + timeout;
    if matches!(cluster.transport, Transport::Ssh(_)) {
        return match list(cluster, deadline, timeout, &AtomicBool::new(false), true) {
            Ok(read) => Ok(read),
            Err(NoListing::Failed(e)) => Err(e),
            Err(NoListing::Down(said)) => Err(explain_down(cluster, &said, deadline, timeout)),
            Err(NoListing::Cancelled) => Err(timed_out(cluster, timeout)),
        };
    }
    let cancel = AtomicBool::new(false);
    let (pinged, listed) = std::thread::scope(|s| {
        let pinger = s.spawn(|| {
            let p = ping(cluster, deadline, timeout, &AtomicBool::new(false));
            if matches!(p, Ping::Down(_)) {
                cancel.store(true, Ordering::Relaxed);
            }
            p
        });
        let listed = list(cluster, deadline, timeout, &cancel, false);
        (pinger.join().unwrap_or(Ping::Up), listed)
    });
    match (listed, pinged) {
        (Ok(read), _) => Ok(read),
        (Err(_), Ping::Down(said)) => Err(explain_down(cluster, &said, deadline, timeout)),
        (Err(NoListing::Failed(e)), _) => Err(e),
        (Err(NoListing::Down(said)), _) => Err(explain_down(cluster, &said, deadline, timeout)),
        (Err(NoListing::Cancelled), Ping::Failed(e)) => Err(e),
        (Err(NoListing::Cancelled), Ping::Up) => Err(timed_out(cluster, timeout)),
    }
}

/// `scontrol --version` → `22.05.8` (not for REST clusters: their answer names it).
pub fn version(cluster: &ClusterDef, timeout: Duration) -> Option<String> {
    if matches!(cluster.transport, Transport::Rest(_)) {
        return None;
    }
    match run(command(cluster, timeout, &["scontrol", "--version"]), Instant::now() + timeout) {
        Outcome::Exited { code: 0, stdout, .. } => stdout.split_whitespace().last().map(str::to_string),
        _ => None,
    }
}

/// Number of partitions (`scontrol show partition -o` lines).
pub fn partitions(cluster: &ClusterDef, timeout: Duration) -> Option<usize> {
    if matches!(cluster.transport, Transport::Rest(_)) {
        // Counted from the nodes by the caller.
        return None;
    }
    match run(command(cluster, timeout, &["scontrol", "--oneliner", "show", "partition"]), Instant::now() + timeout) {
        Outcome::Exited { code: 0, stdout, .. } => {
            Some(stdout.lines().filter(|l| l.starts_with("PartitionName=")).count())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_gets_every_value_as_its_own_argument() {
        let t = SshTarget {
            config_file: None,
            destination: "me@login; rm -rf /".into(),
            port: Some(2222),
            identity_file: Some("/k ey".into()),
            proxy_jump: Some("jump".into()),
            options: vec!["StrictHostKeyChecking=accept-new".into()],
        };
        let c = ssh_command(&t, Duration::from_secs(7), Form::SinfoJson.args());
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(c.get_program(), "ssh");
        for want in ["-T", "BatchMode=yes", "ConnectTimeout=7", "ControlMaster=auto", "-p", "2222", "-J", "jump"] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        assert!(args.iter().any(|a| a == "/k ey"), "{args:?}");
        let dash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&args[dash + 1..], ["me@login; rm -rf /", "sinfo", "--json"]);
    }

    #[test]
    fn form_memory_is_keyed_by_name_and_target() {
        let a =
            ClusterDef { name: "a".into(), transport: Transport::Local { slurm_conf: None }, origin: String::new() };
        let b = ClusterDef { transport: Transport::Local { slurm_conf: Some("/x".into()) }, ..a.clone() };
        assert_ne!(form_key(&a), form_key(&b));
        assert_eq!(Form::from_word(Form::SinfoJson.word()), Some(Form::SinfoJson));
    }
}
