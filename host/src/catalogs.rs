//! Where each cloud's catalog file comes from, in this order:
//!
//! 1. `--catalog-dir` / `SKYHOST_CATALOG_DIR` / `[catalog] dir`: a directory
//!    laid out like SkyPilot's `~/.sky/catalogs/v8`, used as is;
//! 2. the cache (`~/.cache/skyhost/catalogs/v8/<cloud>/vms.csv`), downloaded
//!    from `<url>/v8/<cloud>/vms.csv` when missing or older than the cloud's
//!    refresh age (SkyPilot's: 7 hours), written atomically and only after the
//!    plugin has parsed the new file: a failed or partial download never
//!    replaces a good copy;
//! 3. the catalog compiled into the plugin.
//!
//! The host does the fetching so that plugins stay free of network code and
//! every cloud shares one cache, one downloader and one progress display.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde::Serialize;
use skyhost_plugin_api::{CatalogSpec, CatalogStats, CatalogStatsRequest, method};

use crate::{app::App, plugins::BackendHandle};

/// SkyPilot's hosted catalogs.
pub const DEFAULT_URL: &str = "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs";
/// The schema version read.
pub const SCHEMA: &str = "v8";
/// After a failed download, wait this long before trying again on its own.
const RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Catalog settings, from flags, environment and config.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    /// A SkyPilot-style catalog directory given by the user.
    pub dir: Option<PathBuf>,
    /// Root of the cache (`<root>/v8/<cloud>/vms.csv`).
    pub cache_root: PathBuf,
    /// Base URL of hosted catalogs.
    pub url: String,
    /// Refresh age overriding each cloud's own.
    pub max_age: Option<Duration>,
    /// Download stale catalogs when a command needs them.
    pub auto_update: bool,
    /// Deadline of one download.
    pub timeout: Duration,
}

impl CatalogSettings {
    /// Settings from flags (`--catalog-dir`, `--offline`), `SKYHOST_CATALOG_URL` and the config.
    pub fn from_app(app: &App) -> Self {
        let c = &app.config.catalog;
        Self {
            dir: app.catalog_dir.clone().or_else(|| c.dir.clone()),
            cache_root: c
                .cache_dir
                .clone()
                .or_else(|| Some(dirs::cache_dir()?.join("skyhost/catalogs")))
                .unwrap_or_else(|| PathBuf::from(".skyhost-catalogs")),
            url: std::env::var("SKYHOST_CATALOG_URL")
                .ok()
                .or_else(|| c.url.clone())
                .unwrap_or_else(|| DEFAULT_URL.into()),
            max_age: c.max_age_hours.map(|h| Duration::from_secs_f64(h.max(0.0) * 3600.0)),
            auto_update: !app.offline && c.auto_update.unwrap_or(true),
            timeout: Duration::from_secs_f64(c.download_timeout_secs.unwrap_or(30.0).max(0.1)),
        }
    }

    fn cache_path(&self, spec: &CatalogSpec) -> PathBuf {
        self.cache_root.join(SCHEMA).join(&spec.file)
    }

    fn max_age(&self, spec: &CatalogSpec) -> Duration {
        self.max_age.unwrap_or_else(|| Duration::from_secs_f64(spec.refresh_hours.unwrap_or(7.0) * 3600.0))
    }

    /// The download URL of a catalog file.
    pub fn url_for(&self, spec: &CatalogSpec) -> String {
        format!("{}/{SCHEMA}/{}", self.url.trim_end_matches('/'), spec.file)
    }
}

/// Where a catalog came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The user's catalog directory.
    Dir,
    /// The download cache.
    Cache,
    /// Compiled into the plugin.
    Embedded,
}

impl Origin {
    /// How `catalog status` and the notes name it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Dir => "dir",
            Self::Cache => "cache",
            Self::Embedded => "embedded",
        }
    }
}

/// The catalog a backend will read.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// File to read; `None` for the embedded catalog.
    pub path: Option<PathBuf>,
    /// Where it came from.
    pub origin: Origin,
    /// Age of the file.
    pub age: Option<Duration>,
    /// A download was tried and failed (the reason).
    pub fetch_error: Option<String>,
    /// The catalog directory lacks this cloud's file.
    pub dir_missing: Option<PathBuf>,
}

impl Resolved {
    /// The catalog compiled into the plugin.
    pub fn embedded() -> Self {
        Self { path: None, origin: Origin::Embedded, age: None, fetch_error: None, dir_missing: None }
    }

    /// The path as the plugin request carries it.
    pub fn request_path(&self) -> Option<String> {
        self.path.as_ref().map(|p| p.display().to_string())
    }
}

fn age_of(path: &Path) -> Option<Duration> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(SystemTime::now().duration_since(modified).unwrap_or_default())
}

/// Touched when a download fails, removed when one succeeds: skyhost does not
/// retry on its own (nor warn again) for [`RETRY_AFTER`].
fn failure_marker(cache: &Path) -> PathBuf {
    let mut name = cache.file_name().unwrap_or_default().to_os_string();
    name.push(".failed");
    cache.with_file_name(name)
}

/// Finds the catalog for `backend`, downloading a stale one when allowed.
/// `on_download` is told before a download starts (for the spinner).
pub fn resolve(
    settings: &CatalogSettings,
    backend: &BackendHandle,
    spec: &CatalogSpec,
    on_download: &dyn Fn(&str),
) -> Resolved {
    let mut resolved = Resolved::embedded();
    if let Some(dir) = &settings.dir {
        let path = dir.join(&spec.file);
        if path.is_file() {
            resolved.age = age_of(&path);
            resolved.path = Some(path);
            resolved.origin = Origin::Dir;
            return resolved;
        }
        resolved.dir_missing = Some(path);
    }
    let cache = settings.cache_path(spec);
    let age = age_of(&cache);
    let stale = age.is_none_or(|a| a > settings.max_age(spec));
    let failed_recently = age_of(&failure_marker(&cache)).is_some_and(|a| a < RETRY_AFTER);
    if stale && settings.auto_update && !failed_recently {
        on_download(&backend.name);
        if let Err(e) = download(settings, backend, spec) {
            resolved.fetch_error = Some(e);
        }
    }
    if cache.is_file() {
        resolved.age = age_of(&cache);
        resolved.path = Some(cache);
        resolved.origin = Origin::Cache;
    }
    resolved
}

/// Downloads `spec`'s file into the cache and returns what the plugin read
/// in it. The bytes go to a temporary file beside the cache copy; the plugin
/// must parse it; only then is it renamed over the old copy.
pub fn download(
    settings: &CatalogSettings,
    backend: &BackendHandle,
    spec: &CatalogSpec,
) -> Result<CatalogStats, String> {
    let cache = settings.cache_path(spec);
    let dir = cache.parent().ok_or("bad cache path")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let url = settings.url_for(spec);
    let tmp = dir.join(format!(".vms.csv.{}.tmp", std::process::id()));
    let result = fetch_to(&url, &tmp, settings.timeout).and_then(|()| {
        let stats: CatalogStats = backend
            .call(method::CATALOG_STATS, &CatalogStatsRequest { catalog_path: Some(tmp.display().to_string()) })
            .map_err(|e| {
                format!("{url} is not a usable catalog: {}", e.message.replace(&tmp.display().to_string(), "download"))
            })?;
        if stats.rows == 0 {
            return Err(format!("{url} holds no rows"));
        }
        std::fs::rename(&tmp, &cache).map_err(|e| format!("cannot write {}: {e}", cache.display()))?;
        Ok(stats)
    });
    match &result {
        Ok(_) => {
            let _ = std::fs::remove_file(failure_marker(&cache));
        }
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::File::create(failure_marker(&cache));
        }
    }
    result
}

fn fetch_to(url: &str, path: &Path, timeout: Duration) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
        .user_agent(concat!("skyhost/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| format!("cannot download {url}: {e}"))?;
    let mut file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::io::copy(&mut response.body_mut().with_config().limit(256 << 20).reader(), &mut file)
        .map_err(|e| format!("download of {url} broke off: {e}"))?;
    file.sync_all().map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// "3 h", "2 d", for ages.
pub fn human_age(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..172_800 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{} d", s / 86_400),
    }
}
