//! The worker role: `skyhost __plugin-worker NAME PATH LAYOUT_CHECKED
//! MEMORY_MB /proc/HOST/fd/N`, the last naming the host's open descriptor of
//! the plugin file it checked. The worker opens that (the same file, not the
//! path again), checks and loads it, says whether it loaded (a `Hello`
//! frame), then answers calls from its standard input on its standard output,
//! each call on a thread of its own (idle ones wait for the next call). It
//! ends when the host closes its input.
//!
//! The plugin's own prints cannot corrupt the frames: before the plugin is
//! loaded, the frame streams move to private descriptors, standard output
//! becomes standard error (which the host captures) and standard input
//! becomes `/dev/null`.

use std::{
    ffi::OsString,
    fs::File,
    io::{BufReader, BufWriter},
    os::fd::FromRawFd,
    path::Path,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use skyhost_plugin_api::PluginInfo;

use super::frame::{self, Kind};
use crate::plugins::{connection::call_module, loader, loader::LoadFailure, preflight};

/// The hidden first argument that selects this role.
pub const ROLE_ARG: &str = "__plugin-worker";

/// The body of the `Hello` frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hello {
    /// The plugin loaded and described itself.
    Loaded(Box<PluginInfo>),
    /// It did not.
    Failed(LoadFailure),
}

/// Runs the worker role when `args` ask for it; `None` otherwise.
pub fn run_if_worker(args: &[OsString]) -> Option<u8> {
    if args.get(1).is_none_or(|a| a != ROLE_ARG) {
        return None;
    }
    let arg = |i: usize| args.get(i).map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
    Some(run(&arg(2), Path::new(&arg(3)), arg(4) == "1", arg(5).parse().unwrap_or(0), Path::new(&arg(6))))
}

fn run(name: &str, path: &Path, layout_checked: bool, memory_mb: u64, checked: &Path) -> u8 {
    limit_resources(memory_mb);
    // SAFETY: plain descriptor operations on this process's own descriptors.
    let (frames_in, frames_out) = unsafe {
        let out = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 10);
        let input = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 10);
        if out < 0 || input < 0 {
            return 2;
        }
        libc::dup2(2, 1);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
        (File::from_raw_fd(input), File::from_raw_fd(out))
    };
    let out = Arc::new(Mutex::new(BufWriter::new(frames_out)));
    let send = |kind: Kind, id: u64, body: &str| {
        let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
        // A host that is gone reads nothing; the input's end stops us.
        let _ = frame::write(&mut *w, kind, id, "", body);
    };

    let loaded = File::open(checked)
        .map_err(|e| LoadFailure {
            incompatible: false,
            reason: format!("the worker cannot open the checked file: {e}"),
            hint: "report this as a skyhost bug".into(),
            detail: String::new(),
        })
        .and_then(|plugin| {
            preflight::check_file(plugin).map_err(|e| LoadFailure {
                incompatible: false,
                reason: e.to_string(),
                hint: e.hint(path),
                detail: String::new(),
            })
        })
        .and_then(|checked| loader::open(checked, path))
        .and_then(|header| loader::init(header, path, name, layout_checked));
    let module = match loaded {
        Ok(l) => {
            send(Kind::Hello, 0, &serde_json::to_string(&Hello::Loaded(Box::new(l.info))).unwrap_or_default());
            l.module
        }
        Err(failure) => {
            send(Kind::Hello, 0, &serde_json::to_string(&Hello::Failed(failure)).unwrap_or_default());
            return 0;
        }
    };

    let (calls, queue) = std::sync::mpsc::channel::<frame::Frame>();
    let queue = Arc::new(Mutex::new(queue));
    let idle = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut input = BufReader::new(frames_in);
    loop {
        match frame::read(&mut input) {
            Ok(Some(f)) if f.kind == Kind::Call => {
                // An idle thread takes it; else a new one joins them.
                if idle.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    let (queue, idle, out) = (queue.clone(), idle.clone(), out.clone());
                    std::thread::spawn(move || answer_calls(module, &queue, &idle, &out));
                }
                let _ = calls.send(f);
            }
            // The host closed our input (it is done, or gone): leave at once,
            // without running the plugin's exit handlers.
            Ok(None) => quick_exit(0),
            Ok(Some(_)) | Err(_) => quick_exit(2),
        }
    }
}

/// Answers calls from `queue` until the worker ends, counting itself idle
/// while it waits.
fn answer_calls(
    module: skyhost_plugin_api::BackendModuleRef,
    queue: &Mutex<std::sync::mpsc::Receiver<frame::Frame>>,
    idle: &std::sync::atomic::AtomicUsize,
    out: &Mutex<BufWriter<File>>,
) {
    use std::sync::atomic::Ordering::SeqCst;
    idle.fetch_add(1, SeqCst);
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(f) = next else { return };
        idle.fetch_sub(1, SeqCst);
        let (kind, body) = match call_module(module, &f.method, &f.body) {
            Ok(text) => (Kind::Reply, text),
            Err(e) => (Kind::Error, serde_json::to_string(&e).unwrap_or_default()),
        };
        let _ = frame::write(&mut *out.lock().unwrap_or_else(|e| e.into_inner()), kind, f.id, "", &body);
        idle.fetch_add(1, SeqCst);
    }
}

fn quick_exit(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing is touched afterwards.
    unsafe { libc::_exit(code) }
}

/// No core files from a crashing plugin; at most `memory_mb` of data.
fn limit_resources(memory_mb: u64) {
    let set = |resource, value: u64| {
        let lim = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
        // SAFETY: setrlimit reads the struct we pass.
        unsafe { libc::setrlimit(resource, &lim) };
    };
    set(libc::RLIMIT_CORE, 0);
    if memory_mb > 0 {
        set(libc::RLIMIT_DATA, memory_mb.saturating_mul(1 << 20));
    }
}
