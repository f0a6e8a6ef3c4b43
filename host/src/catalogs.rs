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
//!
//! A catalog is code-adjacent input (its numbers decide what users rent), so it
//! is fetched only over https, redirects included; plain http is accepted only
//! from a loopback address (127.0.0.0/8, ::1, localhost), where tests serve it.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use serde::Serialize;
use skyhost_plugin_api::{CatalogSpec, CatalogStats, CatalogStatsRequest, method};

use skyhost_plugin_api::sdk::clip;
use ureq::http::Uri;

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
            max_age: c.max_age_hours.and_then(|h| hours(h.max(0.0))),
            auto_update: !app.offline && c.auto_update.unwrap_or(true),
            timeout: Duration::try_from_secs_f64(c.download_timeout_secs.unwrap_or(30.0).max(0.1))
                .unwrap_or(Duration::from_secs(30)),
        }
    }

    fn cache_path(&self, spec: &CatalogSpec) -> PathBuf {
        self.cache_root.join(SCHEMA).join(&spec.file)
    }

    /// The refresh age: the user's, else the plugin's, else 7 hours. A
    /// plugin's value that is negative, NaN or too large for a duration is
    /// treated as absent (plugin input never panics the host).
    fn max_age(&self, spec: &CatalogSpec) -> Duration {
        self.max_age.or_else(|| spec.refresh_hours.and_then(hours)).unwrap_or(Duration::from_secs(7 * 3600))
    }

    /// The download URL of a catalog file.
    pub fn url_for(&self, spec: &CatalogSpec) -> String {
        format!("{}/{SCHEMA}/{}", self.url.trim_end_matches('/'), spec.file)
    }
}

/// `h` hours as a duration; `None` for a negative, NaN or infinite `h`, or
/// one past what a duration holds.
fn hours(h: f64) -> Option<Duration> {
    if h < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(h * 3600.0).ok()
}

/// Redirects followed before a download gives up.
const MAX_REDIRECTS: u32 = 10;

/// Whether `uri` may be downloaded from: https anywhere, http only from a
/// loopback address. The error says which URL and what to do.
fn check_url(uri: &Uri) -> Result<(), String> {
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if uri.host().is_some_and(is_loopback) => Ok(()),
        _ => Err(format!(
            "refused {}: catalogs are downloaded only over https (plain http only from a loopback address); \
             set SKYHOST_CATALOG_URL or `url` under [catalog] to an https URL",
            clip(&uri.to_string())
        )),
    }
}

/// 127.0.0.0/8, ::1 and `localhost`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where a redirect from `base` to `location` leads.
fn redirect_target(base: &Uri, location: &str) -> Option<Uri> {
    if let Ok(uri) = location.parse::<Uri>()
        && uri.scheme().is_some()
    {
        return Some(uri);
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let target = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{scheme}://{authority}{dir}/{location}")
    };
    target.parse().ok()
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

/// Whether the catalog file a plugin names (`aws/vms.csv`) stays inside the
/// directory it is joined to: a relative path of plain names, no `..`. The
/// host writes downloads there, so a plugin's word is not enough.
fn check_file(spec: &CatalogSpec) -> Result<(), String> {
    let path = Path::new(&spec.file);
    let plain = path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain && path.components().next().is_some() {
        Ok(())
    } else {
        Err(format!(
            "the plugin names its catalog file '{}', which is not a relative path inside the catalog directory; \
             only its embedded catalog is used (report this to the plugin's author)",
            clip(&spec.file)
        ))
    }
}

/// The lock that lets one refresh of the catalog at `cache` run at a time.
fn refresh_lock(cache: &Path) -> Arc<Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = LazyLock::new(Mutex::default);
    LOCKS.lock().unwrap_or_else(|e| e.into_inner()).entry(cache.to_path_buf()).or_default().clone()
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
    if let Err(e) = check_file(spec) {
        resolved.fetch_error = Some(e);
        return resolved;
    }
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
    let needs_refresh = || {
        let stale = age_of(&cache).is_none_or(|a| a > settings.max_age(spec));
        let failed_recently = age_of(&failure_marker(&cache)).is_some_and(|a| a < RETRY_AFTER);
        stale && settings.auto_update && !failed_recently
    };
    if needs_refresh() {
        // One refresh of a catalog at a time (the server answers many
        // requests at once): a request that finds one under way waits for
        // it, then uses its copy instead of downloading again.
        let lock = refresh_lock(&cache);
        let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
        if needs_refresh() {
            on_download(&backend.name);
            if let Err(e) = download(settings, backend, spec) {
                resolved.fetch_error = Some(e);
            }
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
    check_file(spec)?;
    let cache = settings.cache_path(spec);
    let dir = cache.parent().ok_or("bad cache path")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let url = settings.url_for(spec);
    // A refused URL is the user's setting to fix, not a failed download:
    // no failure marker, so the next run says it again.
    let uri: Uri = url.parse().map_err(|e| format!("the catalog URL {} does not parse: {e}", clip(&url)))?;
    check_url(&uri)?;
    // Unique per download, across processes and within one.
    static DOWNLOADS: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(".vms.csv.{}.{}.tmp", std::process::id(), DOWNLOADS.fetch_add(1, Ordering::Relaxed)));
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
    // Redirects are followed here, not by ureq, so that each target is
    // checked before any connection to it.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
        .max_redirects(0)
        .user_agent(concat!("skyhost/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut current: Uri = url.parse().map_err(|e| format!("the catalog URL {} does not parse: {e}", clip(url)))?;
    let mut hops = 0;
    let mut response = loop {
        let response = agent.get(&current).call().map_err(|e| format!("cannot download {url}: {e}"))?;
        if !response.status().is_redirection() {
            break response;
        }
        hops += 1;
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default();
        let target = redirect_target(&current, location)
            .ok_or_else(|| format!("cannot download {url}: {current} redirects to '{}'", clip(location)))?;
        if target.scheme_str() != Some("https") && !(current.scheme_str() == Some("http") && check_url(&target).is_ok())
        {
            return Err(format!(
                "refused {url}: it redirects to {}, which is not https; \
                 set SKYHOST_CATALOG_URL or `url` under [catalog] to an https URL that serves the catalogs",
                clip(&target.to_string())
            ));
        }
        if hops > MAX_REDIRECTS {
            return Err(format!("cannot download {url}: more than {MAX_REDIRECTS} redirects"));
        }
        current = target;
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CatalogSettings {
        CatalogSettings {
            dir: None,
            cache_root: PathBuf::from("/nonexistent"),
            url: DEFAULT_URL.into(),
            max_age: None,
            auto_update: false,
            timeout: Duration::from_secs(1),
        }
    }

    fn spec(refresh_hours: Option<f64>) -> CatalogSpec {
        CatalogSpec { file: "x/vms.csv".into(), refresh_hours, embedded_date: None }
    }

    #[test]
    fn a_plugins_refresh_age_that_no_duration_holds_is_treated_as_absent() {
        let s = settings();
        assert_eq!(s.max_age(&spec(Some(8.0))), Duration::from_secs(8 * 3600));
        assert_eq!(s.max_age(&spec(Some(0.0))), Duration::ZERO);
        for odd in [-1.0, -0.0001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, f64::MAX] {
            assert_eq!(s.max_age(&spec(Some(odd))), Duration::from_secs(7 * 3600), "{odd}");
        }
        let user = CatalogSettings { max_age: Some(Duration::from_secs(60)), ..settings() };
        assert_eq!(user.max_age(&spec(Some(f64::NAN))), Duration::from_secs(60));
    }

    #[test]
    fn https_anywhere_and_http_only_from_loopback() {
        let ok = |u: &str| check_url(&u.parse().unwrap()).is_ok();
        for good in [
            "https://raw.githubusercontent.com/x/v8/aws/vms.csv",
            "http://127.0.0.1:8080/v8/aws/vms.csv",
            "http://127.3.4.5/x",
            "http://[::1]:9/x",
            "http://localhost:9/x",
            "http://LOCALHOST/x",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in ["http://catalogs.invalid/x", "http://10.0.0.1/x", "http://[::2]/x", "ftp://127.0.0.1/x", "/v8/aws"]
        {
            assert!(!ok(bad), "{bad}");
        }
        let e = check_url(&"http://catalogs.invalid/v8/aws/vms.csv".parse().unwrap()).unwrap_err();
        assert!(
            e.starts_with("refused http://catalogs.invalid/v8/aws/vms.csv: catalogs are downloaded only over https")
        );
        assert!(e.ends_with("set SKYHOST_CATALOG_URL or `url` under [catalog] to an https URL"));
    }

    #[test]
    fn a_plugins_catalog_file_must_stay_inside_the_catalog_directory() {
        for good in ["aws/vms.csv", "vms.csv", "a/b/c.csv"] {
            assert!(check_file(&spec_file(good)).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../../.bashrc", "aws/../../x", "./aws/vms.csv"] {
            let e = check_file(&spec_file(bad)).unwrap_err();
            assert!(e.contains("not a relative path inside the catalog directory"), "{bad}: {e}");
        }
    }

    fn spec_file(file: &str) -> CatalogSpec {
        CatalogSpec { file: file.into(), refresh_hours: None, embedded_date: None }
    }

    #[test]
    fn redirect_targets_absolute_and_relative() {
        let base: Uri = "http://127.0.0.1:5/a/b/vms.csv".parse().unwrap();
        let t = |l: &str| redirect_target(&base, l).map(|u| u.to_string());
        assert_eq!(t("https://mirror.example/x").as_deref(), Some("https://mirror.example/x"));
        assert_eq!(t("//mirror.example/x").as_deref(), Some("http://mirror.example/x"));
        assert_eq!(t("/c/vms.csv").as_deref(), Some("http://127.0.0.1:5/c/vms.csv"));
        assert_eq!(t("other.csv").as_deref(), Some("http://127.0.0.1:5/a/b/other.csv"));
    }
}
