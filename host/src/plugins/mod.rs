//! Plugin discovery and loading: from the search path to a [`PluginSet`] that
//! knows, before any command runs, which backends are loaded, disabled,
//! missing, shadowed, incompatible or broken.

pub mod known;
pub mod loader;
pub mod preflight;
pub mod search_path;
pub mod verified;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use skyhost_plugin_api::{BackendModuleRef, ErrorKind, PluginError, PluginInfo, capability};

pub use known::{KNOWN_BACKENDS, KnownBackend};
pub use search_path::SearchDir;

/// What switched a backend off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledBy {
    /// `disable = [...]` in the config file.
    Config,
    /// `SKYHOST_DISABLE`.
    Env,
    /// `--disable`.
    Flag,
}

impl DisabledBy {
    /// How to switch it back on.
    pub fn undo(self, name: &str) -> String {
        match self {
            Self::Config => format!("remove '{name}' from `disable` in the config file"),
            Self::Env => format!("remove '{name}' from SKYHOST_DISABLE"),
            Self::Flag => format!("drop `--disable {name}`"),
        }
    }

    /// Where the switch is.
    pub fn label(self) -> &'static str {
        match self {
            Self::Config => "config file",
            Self::Env => "SKYHOST_DISABLE",
            Self::Flag => "--disable",
        }
    }
}

/// The state of one backend name (or one file, for shadowed ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Loaded and usable.
    Loaded,
    /// Switched off; its file was not opened.
    Disabled,
    /// A first-party backend with no plugin file on the search path.
    Missing,
    /// A second file for a backend already found earlier on the path.
    Shadowed,
    /// Built for another interface version or layout.
    Incompatible,
    /// The file is not a loadable plugin.
    Broken,
}

impl Status {
    /// The word `skyhost plugins` prints.
    pub fn word(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Disabled => "disabled",
            Self::Missing => "missing",
            Self::Shadowed => "shadowed",
            Self::Incompatible => "incompatible",
            Self::Broken => "broken",
        }
    }
}

/// One line of the plugin report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Backend name.
    pub name: String,
    /// See [`Status`].
    pub status: Status,
    /// The plugin file, when there is one.
    pub path: Option<PathBuf>,
    /// Metadata of a loaded plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<PluginInfo>,
    /// Why it is not loaded (one line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The loader's full message, shown with `-v`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Which switches disabled it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_by: Vec<DisabledBy>,
    /// Time to check and load the file, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<f64>,
}

impl Entry {
    fn new(name: &str, status: Status, path: Option<PathBuf>) -> Self {
        Self {
            name: name.to_string(),
            status,
            path,
            info: None,
            reason: None,
            hint: None,
            detail: None,
            disabled_by: Vec::new(),
            load_ms: None,
        }
    }

    /// The first-party backend of this name, if any.
    pub fn known(&self) -> Option<&'static KnownBackend> {
        known::known(&self.name)
    }

    /// Name for people (see [`display_name`]).
    pub fn display_name(&self) -> &str {
        display_name(&self.name, self.info.as_ref())
    }
}

/// Name for people: the plugin's own, else the first-party one, else the name.
fn display_name<'a>(name: &'a str, info: Option<&'a PluginInfo>) -> &'a str {
    match (info, known::known(name)) {
        (Some(info), _) if !info.display_name.is_empty() => &info.display_name,
        (_, Some(k)) => k.display_name,
        _ => name,
    }
}

/// A loaded backend, ready to call.
pub struct Backend {
    /// Backend name.
    pub name: String,
    /// The plugin file.
    pub path: PathBuf,
    /// What the plugin says about this backend.
    pub info: PluginInfo,
    module: BackendModuleRef,
    /// Set for one backend of a plugin that serves several: methods are
    /// called as `<backend>/<method>`.
    member: bool,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("name", &self.name).field("path", &self.path).finish()
    }
}

impl Backend {
    /// Name for people (see [`display_name`]).
    pub fn display_name(&self) -> &str {
        display_name(&self.name, Some(&self.info))
    }

    /// Whether the plugin declares `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.info.capabilities.iter().any(|c| c == capability)
    }

    /// Whether it answers GPU listings: from a catalog or from live clusters.
    pub fn lists_gpus(&self) -> bool {
        self.has_capability(capability::CATALOG) || self.has_capability(capability::CLUSTERS)
    }

    /// Calls `method` with `request`. A method the plugin does not list is
    /// refused here, with a hint to upgrade, instead of being sent.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Resp, PluginError> {
        if !self.info.methods.iter().any(|m| m == method) {
            return Err(PluginError::new(
                ErrorKind::UnknownMethod,
                format!(
                    "the {} plugin (version {}, interface {}) does not implement '{method}'",
                    self.name, self.info.version, self.info.interface_version
                ),
            )
            .with_hint(format!("upgrade {} to a newer build", self.path.display())));
        }
        let request = serde_json::to_string(request)
            .map_err(|e| PluginError::new(ErrorKind::BadRequest, format!("request does not serialise: {e}")))?;
        let text = self.call_raw(method, &request)?;
        serde_json::from_str(&text).map_err(|e| {
            PluginError::new(
                ErrorKind::Other,
                format!("the {} plugin sent a response that does not parse: {e}", self.name),
            )
        })
    }

    /// Calls `method` with a JSON request and returns the JSON response.
    pub fn call_raw(&self, method: &str, request: &str) -> Result<String, PluginError> {
        let qualified;
        let method = if self.member {
            qualified = format!("{}/{method}", self.name);
            qualified.as_str()
        } else {
            method
        };
        match (self.module.call())(method.into(), request.into()).into_result() {
            Ok(text) => Ok(text.into_string()),
            Err(text) => {
                Err(serde_json::from_str(&text)
                    .unwrap_or_else(|_| PluginError::new(ErrorKind::Other, text.into_string())))
            }
        }
    }
}

/// How to build a [`PluginSet`].
#[derive(Debug, Default)]
pub struct LoadOptions {
    /// Directories in search order.
    pub search_path: Vec<SearchDir>,
    /// Backends switched off, with what switched each off.
    pub disabled: BTreeMap<String, Vec<DisabledBy>>,
    /// Where to remember plugin files that passed the layout check.
    pub cache_dir: Option<PathBuf>,
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
    pub loaded: Vec<Arc<Backend>>,
    /// Time to discover and load everything.
    pub elapsed: Duration,
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
        let mut set = PluginSet { search_path: options.search_path, ..Default::default() };
        let mut verified = verified::Verified::load(options.cache_dir.clone());
        let disabled =
            |backend: &str, file: &str| options.disabled.get(backend).or_else(|| options.disabled.get(file)).cloned();
        let mut entries: Vec<Entry> = Vec::new();
        for dir in set.search_path.clone() {
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
                let served: Vec<String> = match known::served_by(&c.name).as_slice() {
                    [] => vec![c.name.clone()],
                    many => many.iter().map(|k| k.name.to_string()).collect(),
                };
                let claimed_by = |name: &str, entries: &[Entry]| {
                    entries.iter().find(|e| e.name == name && e.status != Status::Shadowed).and_then(|e| e.path.clone())
                };
                let wanted: Vec<&String> = served
                    .iter()
                    .filter(|n| claimed_by(n, &entries).is_none() && disabled(n, &c.name).is_none())
                    .collect();
                if wanted.is_empty() {
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
                let loaded = preflight::check(&c.path)
                    .map_err(|e| loader::LoadFailure {
                        incompatible: false,
                        reason: e.to_string(),
                        hint: e.hint(&c.path),
                        detail: String::new(),
                    })
                    .and_then(|meta| {
                        let header = loader::open(&c.path)?;
                        let known_good = verified.contains(&meta, &c.path);
                        let l = loader::init(header, &c.path, &c.name, known_good)?;
                        if !known_good {
                            verified.record(&meta, &c.path);
                        }
                        Ok(l)
                    });
                let ms = Some(file_started.elapsed().as_secs_f64() * 1e3);
                let l = match loaded {
                    Ok(l) => l,
                    Err(f) => {
                        for name in &served {
                            let mut e = Entry::new(name, Status::Broken, Some(c.path.clone()));
                            e.fail(f.clone());
                            e.load_ms = ms;
                            entries.push(e);
                        }
                        continue;
                    }
                };
                for (name, info) in members(&l.info) {
                    if let Some(winner) = claimed_by(&name, &entries) {
                        entries.push(shadowed_entry(&name, &c.path, &winner));
                    } else if let Some(by) = disabled(&name, &c.name) {
                        entries.push(disabled_entry(&name, Some(c.path.clone()), &by));
                    } else {
                        let mut e = Entry::new(&name, Status::Loaded, Some(c.path.clone()));
                        e.info = Some(info.clone());
                        e.load_ms = ms;
                        entries.push(e);
                        let member = !l.info.backends.is_empty();
                        set.loaded.push(Arc::new(Backend {
                            name,
                            path: c.path.clone(),
                            info,
                            module: l.module,
                            member,
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
    pub fn backend(&self, name: &str) -> Option<&Arc<Backend>> {
        self.loaded.iter().find(|b| b.name == name)
    }

    /// Loaded backends that declare `capability`.
    pub fn with_capability<'a>(&'a self, capability: &'a str) -> impl Iterator<Item = &'a Arc<Backend>> + 'a {
        self.loaded.iter().filter(move |b| b.has_capability(capability))
    }
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

fn shadowed_entry(name: &str, path: &std::path::Path, winner: &std::path::Path) -> Entry {
    let mut e = Entry::new(name, Status::Shadowed, Some(path.to_path_buf()));
    e.reason = Some(format!("shadowed by {}", winner.display()));
    e.hint = Some("remove one of the two files, or reorder the plugin path".into());
    e
}

/// The backends a loaded plugin serves, each with its own description.
fn members(info: &PluginInfo) -> Vec<(String, PluginInfo)> {
    if info.backends.is_empty() {
        return vec![(info.name.clone(), info.clone())];
    }
    info.backends
        .iter()
        .map(|b| {
            let member = PluginInfo {
                name: b.name.clone(),
                display_name: b.display_name.clone(),
                description: b.description.clone(),
                capabilities: b.capabilities.clone(),
                methods: b.methods.clone(),
                catalog: b.catalog.clone(),
                backends: Vec::new(),
                ..info.clone()
            };
            (b.name.clone(), member)
        })
        .collect()
}

impl Entry {
    fn fail(&mut self, f: loader::LoadFailure) {
        self.status = if f.incompatible { Status::Incompatible } else { Status::Broken };
        self.reason = Some(f.reason);
        self.hint = Some(f.hint);
        self.detail = (!f.detail.is_empty()).then_some(f.detail);
    }
}
