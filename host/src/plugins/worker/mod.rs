//! Plugins in worker processes: each plugin file runs in a `skyhost` started
//! again in the worker role ([`role`]), and calls travel as [`frame`]s over
//! its pipes. A worker that crashes, exits, hangs past a call's deadline or
//! sends garbage costs its own backends one error naming the file, the
//! method and the cause; the next call starts a fresh worker (after a
//! back-off while it keeps failing).

pub mod frame;
pub mod role;

use std::{
    collections::HashMap,
    fs::File,
    io::{BufReader, Read},
    os::{
        fd::AsRawFd,
        unix::process::{CommandExt, ExitStatusExt},
    },
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    },
    time::{Duration, Instant},
};

use skyhost_plugin_api::{ErrorKind, PluginError, PluginInfo};

use self::{frame::Kind, role::Hello};
use super::{
    connection::{Connection, Health},
    loader::LoadFailure,
};

/// How long a call may overrun its deadline before its worker is killed.
pub const GRACE: Duration = Duration::from_millis(250);
/// How much of a worker's standard error is kept for messages.
const STDERR_TAIL: usize = 16 * 1024;

/// Settings shared by every worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Data the worker may allocate, in MiB (`RLIMIT_DATA`); 0 for no limit.
    pub memory_mb: u64,
    /// Time a plugin has to load and describe itself.
    pub load_timeout: Duration,
    /// Put the worker's last words (its standard error) into messages.
    pub verbose: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One plugin file served by worker processes, one at a time.
pub struct Worker {
    /// The checked plugin file; every worker is handed this descriptor.
    file: File,
    path: PathBuf,
    name: String,
    layout_checked: AtomicBool,
    options: WorkerOptions,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    running: Option<Arc<Running>>,
    failures: u32,
    last_failure: Option<String>,
    retry_at: Option<Instant>,
    restarts: u64,
}

enum Reply {
    Answer(Result<String, PluginError>),
    /// The worker ended; why.
    Gone(String),
}

/// A live worker process.
struct Running {
    pid: i32,
    child: Mutex<Child>,
    stdin: Mutex<ChildStdin>,
    pending: Mutex<HashMap<u64, SyncSender<Reply>>>,
    next_id: AtomicU64,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Set once the worker is gone or being stopped: why.
    ended: Mutex<Option<String>>,
}

impl Running {
    /// Stops the worker and everything it started (its process group).
    fn kill(&self, cause: String) {
        lock(&self.ended).get_or_insert(cause);
        // SAFETY: signals our own child's process group.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
    }

    fn is_ended(&self) -> bool {
        lock(&self.ended).is_some()
    }
}

impl Worker {
    /// A worker for the checked plugin `file` at `path`, serving `name`.
    /// Nothing starts until [`Worker::load`] or the first call.
    pub fn new(file: File, path: &Path, name: &str, layout_checked: bool, options: WorkerOptions) -> Self {
        Self {
            file,
            path: path.to_path_buf(),
            name: name.to_string(),
            layout_checked: AtomicBool::new(layout_checked),
            options,
            slot: Mutex::default(),
        }
    }

    /// Starts a worker now and returns what the plugin says about itself.
    pub fn load(&self) -> Result<PluginInfo, LoadFailure> {
        let mut slot = lock(&self.slot);
        let (running, info) = self.start()?;
        slot.running = Some(running);
        Ok(info)
    }

    /// Stops the running worker, if any.
    pub fn stop(&self) {
        if let Some(r) = lock(&self.slot).running.take() {
            r.kill("stopped".into());
        }
    }

    fn start(&self) -> Result<(Arc<Running>, PluginInfo), LoadFailure> {
        let fail = |reason: String| LoadFailure {
            incompatible: false,
            reason,
            hint: format!("fix what the message names, or remove {}", self.path.display()),
            detail: String::new(),
        };
        // The worker opens this process's descriptor of the checked file
        // through /proc (the same inode, whatever the path names by then);
        // with nothing to run between fork and exec, std spawns it with
        // posix_spawn, which copies no page tables.
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg(role::ROLE_ARG)
            .arg(&self.name)
            .arg(&self.path)
            .arg(if self.layout_checked.load(Ordering::Relaxed) { "1" } else { "0" })
            .arg(self.options.memory_mb.to_string())
            .arg(format!("/proc/{}/fd/{}", std::process::id(), self.file.as_raw_fd()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| fail(format!("cannot start a worker process: {e}")))?;
        let (stdin, stdout, stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        let running = Arc::new(Running {
            pid: child.id() as i32,
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            stderr: Arc::default(),
            ended: Mutex::default(),
        });
        let tail = running.stderr.clone();
        std::thread::Builder::new()
            .name("skyhost-worker-stderr".into())
            .spawn(move || keep_tail(stderr, &tail))
            .map_err(|e| fail(format!("cannot start a thread: {e}")))?;
        let (hello_tx, hello_rx) = mpsc::sync_channel(1);
        let reader = running.clone();
        let memory_mb = self.options.memory_mb;
        std::thread::Builder::new()
            .name("skyhost-worker-reader".into())
            .spawn(move || read_frames(&reader, stdout, hello_tx, memory_mb))
            .map_err(|e| fail(format!("cannot start a thread: {e}")))?;

        let timeout = self.options.load_timeout;
        let hello = match hello_rx.recv_timeout(timeout) {
            Ok(Ok(h)) => h,
            Ok(Err(cause)) => return Err(self.load_failure(&running, format!("its worker {cause} while loading"))),
            Err(_) => {
                running.kill(format!("did not load within {}", seconds(timeout)));
                let cause = format!("it did not load within {} (its constructor hangs?)", seconds(timeout));
                let mut f = self.load_failure(&running, cause);
                f.hint = format!(
                    "raise [plugins] load_timeout_secs if it is merely slow; otherwise report it, or remove {}",
                    self.path.display()
                );
                return Err(f);
            }
        };
        match serde_json::from_str::<Hello>(&hello) {
            Ok(Hello::Loaded(info)) => {
                let info = *info;
                self.layout_checked.store(true, Ordering::Relaxed);
                Ok((running, info))
            }
            Ok(Hello::Failed(f)) => {
                running.kill("did not load".into());
                Err(f)
            }
            Err(e) => {
                running.kill("sent an unreadable greeting".into());
                Err(fail(format!("its worker sent an unreadable greeting: {e}")))
            }
        }
    }

    fn load_failure(&self, running: &Running, reason: String) -> LoadFailure {
        LoadFailure {
            incompatible: false,
            reason,
            hint: format!("report this to the plugin's author, or remove {}", self.path.display()),
            detail: tail_text(running, usize::MAX),
        }
    }

    /// The running worker, or a new one; an error while a failing plugin waits out its back-off.
    fn running(&self) -> Result<Arc<Running>, PluginError> {
        let mut slot = lock(&self.slot);
        if let Some(r) = slot.running.as_ref().filter(|r| !r.is_ended()) {
            return Ok(r.clone());
        }
        if let Some(at) = slot.retry_at.filter(|at| *at > Instant::now()) {
            return Err(PluginError::new(
                ErrorKind::Unavailable,
                format!(
                    "{} failed {} times in a row (last: {}); not restarted for another {} ms",
                    self.path.display(),
                    slot.failures,
                    slot.last_failure.as_deref().unwrap_or("?"),
                    at.saturating_duration_since(Instant::now()).as_millis()
                ),
            )
            .with_hint(self.faulty_hint()));
        }
        if slot.failures > 0 {
            slot.restarts += 1;
            tracing::warn!(
                "restarting the worker of {} (it failed {} time(s) in a row; last: {})",
                self.path.display(),
                slot.failures,
                slot.last_failure.as_deref().unwrap_or("?")
            );
        }
        match self.start() {
            Ok((r, _)) => {
                slot.running = Some(r.clone());
                Ok(r)
            }
            Err(f) => {
                let message = format!("{}: {}", self.path.display(), f.reason);
                Self::note_failure(&mut slot, f.reason);
                Err(PluginError::new(ErrorKind::Other, message).with_hint(f.hint))
            }
        }
    }

    fn note_failure(slot: &mut Slot, what: String) {
        slot.failures += 1;
        slot.last_failure = Some(what);
        slot.running = None;
        // The first restart is immediate; then 100 ms, 400 ms, ... up to 30 s.
        let backoff = match slot.failures {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis(100u64.saturating_mul(4u64.saturating_pow(n - 2))).min(Duration::from_secs(30)),
        };
        slot.retry_at = Some(Instant::now() + backoff);
    }

    fn failed(&self, running: &Arc<Running>, what: String) {
        let mut slot = lock(&self.slot);
        if slot.running.as_ref().is_some_and(|r| Arc::ptr_eq(r, running)) || slot.running.is_none() {
            Self::note_failure(&mut slot, what);
        }
    }

    fn faulty_hint(&self) -> String {
        let more = if self.options.verbose { "" } else { "; run with -v to see what it printed" };
        format!(
            "the plugin is faulty: report it to its author, or remove {} (or run with `--disable {}`){more}",
            self.path.display(),
            self.name
        )
    }

    fn crash_error(&self, running: &Running, method: &str, cause: &str) -> PluginError {
        let mut message = format!("{} {cause} in {method}", self.path.display());
        if self.options.verbose {
            let said = tail_text(running, 2000);
            if !said.is_empty() {
                message.push_str(&format!("; it printed: {said}"));
            }
        }
        PluginError::new(ErrorKind::Other, message).with_hint(self.faulty_hint())
    }
}

impl Connection for Worker {
    fn call(&self, method: &str, request: &str, timeout: Duration) -> Result<String, PluginError> {
        let running = self.running()?;
        let id = running.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx): (SyncSender<Reply>, Receiver<Reply>) = mpsc::sync_channel(1);
        lock(&running.pending).insert(id, tx);
        if running.is_ended() {
            // It ended before the call was registered: nothing will answer.
            lock(&running.pending).remove(&id);
        }
        let sent = frame::write(&mut *lock(&running.stdin), Kind::Call, id, method, request);
        if let Err(e) = sent {
            // A worker that died closes its input; its reader says why.
            if !running.is_ended() && e.kind() != std::io::ErrorKind::BrokenPipe {
                running.kill(format!("could not be sent the call: {e}"));
            }
        }
        let reply = match rx.recv_timeout(timeout.saturating_add(GRACE)) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Disconnected) => {
                Reply::Gone(lock(&running.ended).clone().unwrap_or_else(|| "ended".into()))
            }
            Err(RecvTimeoutError::Timeout) => {
                let cause = format!("did not answer within {}; its worker was stopped", seconds(timeout));
                running.kill(cause.clone());
                lock(&running.pending).remove(&id);
                self.failed(&running, format!("{method} timed out"));
                return Err(PluginError::new(ErrorKind::Unavailable, format!("{} {cause} ({method})", self.path.display()))
                    .with_hint(format!(
                        "the plugin hangs or its service is slow: raise the timeout if it is merely slow, or `--disable {}`",
                        self.name
                    )));
            }
        };
        match reply {
            Reply::Answer(answer) => {
                let mut slot = lock(&self.slot);
                slot.failures = 0;
                slot.retry_at = None;
                answer
            }
            Reply::Gone(cause) => {
                self.failed(&running, format!("{cause} in {method}"));
                Err(self.crash_error(&running, method, &cause))
            }
        }
    }

    fn health(&self) -> Health {
        let slot = lock(&self.slot);
        Health { failures_in_a_row: slot.failures, last_failure: slot.last_failure.clone(), restarts: slot.restarts }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the worker's frames until its output ends, then says why it ended.
fn read_frames(running: &Arc<Running>, stdout: impl Read, hello: SyncSender<Result<String, String>>, memory_mb: u64) {
    let mut input = BufReader::new(stdout);
    let mut greeted = false;
    let problem = loop {
        match frame::read(&mut input) {
            Ok(Some(f)) if f.kind == Kind::Hello && !greeted => {
                greeted = true;
                let _ = hello.send(Ok(f.body));
            }
            Ok(Some(f)) if greeted && matches!(f.kind, Kind::Reply | Kind::Error) => {
                let answer = if f.kind == Kind::Reply {
                    Ok(f.body)
                } else {
                    Err(serde_json::from_str(&f.body).unwrap_or_else(|_| PluginError::new(ErrorKind::Other, f.body)))
                };
                if let Some(tx) = lock(&running.pending).remove(&f.id) {
                    let _ = tx.send(Reply::Answer(answer));
                }
            }
            Ok(Some(_)) => break Some("sent a frame out of turn".to_string()),
            Ok(None) => break None,
            Err(e) => break Some(format!("sent a malformed frame ({e})")),
        }
    };
    if let Some(p) = &problem {
        running.kill(p.clone());
    }
    let cause = end_cause(running, memory_mb);
    lock(&running.ended).get_or_insert(cause.clone());
    let cause = lock(&running.ended).clone().unwrap_or(cause);
    if !greeted {
        let _ = hello.send(Err(cause.clone()));
    }
    for (_, tx) in lock(&running.pending).drain() {
        let _ = tx.send(Reply::Gone(cause.clone()));
    }
}

/// Waits for the worker to end (killing it if it lingers with its output
/// closed) and says how it ended.
fn end_cause(running: &Running, memory_mb: u64) -> String {
    let mut child = lock(&running.child);
    let deadline = Instant::now() + Duration::from_millis(500);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                // SAFETY: signals our own child's process group.
                unsafe { libc::kill(-running.pid, libc::SIGKILL) };
                break child.wait().ok();
            }
            Err(_) => break None,
        }
    };
    // Let the standard-error reader take the last words.
    std::thread::sleep(Duration::from_millis(5));
    let said = String::from_utf8_lossy(&lock(&running.stderr)).into_owned();
    let why = if said.contains("has overflowed its stack") {
        " (stack overflow)".to_string()
    } else if said.contains("memory allocation of") {
        format!(" (out of memory: a worker may use {memory_mb} MB, see [plugins] worker_memory_mb)")
    } else {
        String::new()
    };
    match status {
        Some(s) => match (s.signal(), s.code()) {
            (Some(sig), _) => format!("crashed: {}{why}", signal_name(sig)),
            (None, Some(code)) => format!("exited with status {code}{why}"),
            _ => format!("ended{why}"),
        },
        None => "ended".to_string(),
    }
}

fn keep_tail(mut stderr: impl Read, tail: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut t = lock(tail);
        t.extend_from_slice(&buf[..n]);
        let excess = t.len().saturating_sub(STDERR_TAIL);
        t.drain(..excess);
    }
}

/// The last `max` bytes the worker printed, on one line.
fn tail_text(running: &Running, max: usize) -> String {
    let t = lock(&running.stderr);
    let text = String::from_utf8_lossy(&t[t.len().saturating_sub(max)..]).into_owned();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn seconds(d: Duration) -> String {
    format!("{} s", (d.as_secs_f64() * 10.0).round() / 10.0)
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        other => return format!("signal {other}"),
    };
    name.to_string()
}
