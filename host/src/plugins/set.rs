//! [`PluginSet::load`]: scans the search path, checks and loads every plugin
//! file that serves a wanted backend, and reports every backend name.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use skyhost_plugin_api::PluginInfo;

use super::{
    BackendHandle, Isolation, KNOWN_BACKENDS, SearchDir, bundle,
    connection::{Connection, InProcess},
    entry::{DisabledBy, Entry, LayoutCheck, Status},
    known, loader,
    lock::{self, Lock},
    preflight, search_path, verified,
    worker::{Worker, WorkerOptions},
};

/// How to build a [`PluginSet`].
#[derive(Debug)]
pub struct LoadOptions {
    /// Directories in search order.
    pub search_path: Vec<SearchDir>,
    /// Backends switched off, with what switched each off.
    pub disabled: BTreeMap<String, Vec<DisabledBy>>,
    /// Where to remember plugin files that passed the layout check.
    pub cache_dir: Option<PathBuf>,
    /// Where plugins run.
    pub isolation: Isolation,
    /// Settings of worker processes.
    pub worker: WorkerOptions,
    /// Deadline of a call that names none.
    pub call_timeout: Duration,
    /// Hash every plugin file opened (for `plugins --lock`).
    pub hash_files: bool,
    /// Refuse files that differ from their pin (`require_lock`).
    pub lock: Option<Lock>,
}

/// Every backend the host knows of after startup.
#[derive(Debug, Default)]
pub struct PluginSet {
    /// The search path used.
    pub search_path: Vec<SearchDir>,
    /// One entry per backend name, plus one per shadowed file; known backends
    /// first (in [`KNOWN_BACKENDS`] order), then the others by name.
    pub entries: Vec<Entry>,
    /// Problems with the search path itself (an explicit directory that does not exist).
    pub path_warnings: Vec<String>,
    /// The loaded backends, in entry order.
    pub loaded: Vec<Arc<BackendHandle>>,
    /// Time to discover and load everything.
    pub elapsed: Duration,
}

/// A plugin file that loaded: how to reach it and what it is.
struct Opened {
    connection: Arc<dyn Connection>,
    info: PluginInfo,
    layout_check: LayoutCheck,
    sha256: Option<String>,
}

/// Why a plugin file was not loaded.
enum Refused {
    /// It could not be loaded (broken or incompatible).
    Failed(loader::LoadFailure),
    /// Its contents are not the ones pinned in `plugins.lock`.
    Untrusted { reason: String, hint: String },
}

impl From<loader::LoadFailure> for Refused {
    fn from(f: loader::LoadFailure) -> Self {
        Self::Failed(f)
    }
}

impl PluginSet {
    /// Scans the search path and loads every plugin found that is not
    /// disabled or shadowed. Never fails: every problem becomes an entry.
    ///
    /// A file serves one backend, named by the file, or several (a
    /// first-party bundle known by its file name, or any plugin that lists
    /// `backends`). The first file on the path to serve a backend name wins;
    /// a file is opened only when some backend it serves is wanted.
    pub fn load(options: LoadOptions) -> Self {
        let started = Instant::now();
        let mut set = PluginSet { search_path: options.search_path.clone(), ..Default::default() };
        let mut verified = verified::Verified::load(options.cache_dir.clone());
        let disabled =
            |backend: &str, file: &str| options.disabled.get(backend).or_else(|| options.disabled.get(file)).cloned();
        let mut entries: Vec<Entry> = Vec::new();
        for dir in &options.search_path {
            let candidates = match search_path::scan(&dir.path) {
                Ok(c) => c,
                Err(e) => {
                    if dir.origin.is_explicit() {
                        set.path_warnings.push(format!(
                            "plugin directory {} (from {}) cannot be read: {}",
                            dir.path.display(),
                            dir.origin.label(),
                            io_reason(&e)
                        ));
                    }
                    continue;
                }
            };
            for c in candidates {
                let served = bundle::expected_names(&c.name);
                let claimed_by = |name: &str, entries: &[Entry]| {
                    entries.iter().find(|e| e.name == name && e.status != Status::Shadowed).and_then(|e| e.path.clone())
                };
                let wanted = served.iter().any(|n| claimed_by(n, &entries).is_none() && disabled(n, &c.name).is_none());
                if !wanted {
                    for name in &served {
                        entries.push(match claimed_by(name, &entries) {
                            Some(winner) => shadowed_entry(name, &c.path, &winner),
                            None => {
                                disabled_entry(name, Some(c.path.clone()), &disabled(name, &c.name).unwrap_or_default())
                            }
                        });
                    }
                    continue;
                }
                let file_started = Instant::now();
                let opened = open(&c.path, &c.name, &options, &mut verified);
                let ms = Some(file_started.elapsed().as_secs_f64() * 1e3);
                let opened = match opened {
                    Ok(o) => o,
                    Err(refused) => {
                        for name in &served {
                            let mut e = Entry::new(name, Status::Broken, Some(c.path.clone()));
                            match &refused {
                                Refused::Failed(f) => e.fail(f.clone()),
                                Refused::Untrusted { reason, hint } => {
                                    e.status = Status::Untrusted;
                                    e.reason = Some(reason.clone());
                                    e.hint = Some(hint.clone());
                                }
                            }
                            e.load_ms = ms;
                            entries.push(e);
                        }
                        continue;
                    }
                };
                let member = !opened.info.backends.is_empty();
                for (name, info) in bundle::members(&opened.info) {
                    if let Some(winner) = claimed_by(&name, &entries) {
                        entries.push(shadowed_entry(&name, &c.path, &winner));
                    } else if let Some(by) = disabled(&name, &c.name) {
                        entries.push(disabled_entry(&name, Some(c.path.clone()), &by));
                    } else {
                        let mut e = Entry::new(&name, Status::Loaded, Some(c.path.clone()));
                        e.info = Some(info.clone());
                        e.load_ms = ms;
                        e.layout_check = Some(opened.layout_check);
                        e.sha256.clone_from(&opened.sha256);
                        e.isolation = Some(options.isolation);
                        entries.push(e);
                        set.loaded.push(Arc::new(BackendHandle {
                            name,
                            path: c.path.clone(),
                            info,
                            connection: opened.connection.clone(),
                            member,
                            call_timeout: options.call_timeout,
                        }));
                    }
                }
            }
        }
        verified.save();
        for k in KNOWN_BACKENDS {
            if !entries.iter().any(|e| e.name == k.name) {
                entries.push(match disabled(k.name, k.file) {
                    Some(by) => disabled_entry(k.name, None, &by),
                    None => {
                        let mut e = Entry::new(k.name, Status::Missing, None);
                        e.reason = Some(format!("{} is not on the plugin path", known::file_name(k.name)));
                        e.hint = Some(known::install_hint(k.name));
                        e
                    }
                });
            }
        }
        entries.sort_by_key(|e| (known::order_key(&e.name), e.status == Status::Shadowed));
        set.loaded.sort_by_key(|b| known::order_key(&b.name));
        set.entries = entries;
        set.elapsed = started.elapsed();
        set
    }

    /// The entry (not a shadowed one) for backend `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name && e.status != Status::Shadowed)
    }

    /// The loaded backend `name`.
    pub fn backend(&self, name: &str) -> Option<&Arc<BackendHandle>> {
        self.loaded.iter().find(|b| b.name == name)
    }

    /// Loaded backends that declare `capability`.
    pub fn with_capability<'a>(&'a self, capability: &'a str) -> impl Iterator<Item = &'a Arc<BackendHandle>> + 'a {
        self.loaded.iter().filter(move |b| b.has_capability(capability))
    }

    /// The entries as they stand now: a loaded backend whose worker keeps
    /// crashing is reported as broken, with its last failure.
    pub fn entries_now(&self) -> Vec<Entry> {
        let mut entries = self.entries.clone();
        for e in entries.iter_mut().filter(|e| e.status == Status::Loaded) {
            let Some(b) = self.backend(&e.name) else { continue };
            let health = b.health();
            if health.is_broken() {
                e.status = Status::Broken;
                e.reason = Some(format!(
                    "its worker keeps failing ({} times in a row; last: {})",
                    health.failures_in_a_row,
                    health.last_failure.as_deref().unwrap_or("?")
                ));
                e.hint = Some(format!(
                    "it is reported as loaded again once a call succeeds; report it to its author, or remove {}",
                    b.path.display()
                ));
            }
            if health != Default::default() {
                e.health = Some(health);
            }
        }
        entries
    }
}

/// Checks and opens one plugin file: in this process, or in a worker
/// (started now only when the file's description is not remembered).
fn open(path: &Path, name: &str, options: &LoadOptions, verified: &mut verified::Verified) -> Result<Opened, Refused> {
    let checked = preflight::check(path).map_err(|e| loader::LoadFailure {
        incompatible: false,
        reason: e.to_string(),
        hint: e.hint(path),
        detail: String::new(),
    })?;
    let meta = checked.meta.clone();
    let sha256 = if options.hash_files || options.lock.is_some() {
        Some(lock::sha256_of(&checked.file).map_err(|e| loader::LoadFailure {
            incompatible: false,
            reason: format!("cannot read it: {e}"),
            hint: format!("check that {} is readable", path.display()),
            detail: String::new(),
        })?)
    } else {
        None
    };
    if let (Some(lock), Some(sha)) = (&options.lock, &sha256) {
        let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        lock.check(&file_name, sha).map_err(|(reason, hint)| Refused::Untrusted { reason, hint })?;
    }
    let remembered = verified.lookup(&meta, path);
    let layout_check = if remembered.is_some() { LayoutCheck::Remembered } else { LayoutCheck::Checked };
    let remembered_info = remembered.flatten().cloned();
    let (connection, info): (Arc<dyn Connection>, PluginInfo) = match options.isolation {
        Isolation::InProcess => {
            let header = loader::open(checked, path)?;
            let l = loader::init(header, path, name, remembered.is_some())?;
            (Arc::new(InProcess { module: l.module }), l.info)
        }
        Isolation::Process => {
            let worker = Worker::new(checked.file, path, name, remembered.is_some(), options.worker.clone());
            let info = match remembered_info.clone() {
                Some(info) => info,
                None => worker.load()?,
            };
            (Arc::new(worker), info)
        }
    };
    if remembered_info.as_ref() != Some(&info) {
        verified.record(&meta, path, &info);
    }
    Ok(Opened { connection, info, layout_check, sha256 })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn disabled_entry(name: &str, path: Option<PathBuf>, by: &[DisabledBy]) -> Entry {
    let mut e = Entry::new(name, Status::Disabled, path);
    e.reason = Some(format!("disabled by {}", by.iter().map(|b| b.label()).collect::<Vec<_>>().join(", ")));
    e.hint = Some(by.iter().map(|b| b.undo(name)).collect::<Vec<_>>().join("; "));
    e.disabled_by = by.to_vec();
    e
}

fn shadowed_entry(name: &str, path: &Path, winner: &Path) -> Entry {
    let mut e = Entry::new(name, Status::Shadowed, Some(path.to_path_buf()));
    e.reason = Some(format!("shadowed by {}", winner.display()));
    e.hint = Some("remove one of the two files, or reorder the plugin path".into());
    e
}
