//! The ordered list of directories searched for plugins, and the scan of each.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a directory on the search path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirOrigin {
    /// `--plugin-dir`.
    Flag,
    /// `SKYHOST_PLUGIN_PATH`.
    Env,
    /// `plugin_path` in the config file.
    Config,
    /// The per-user data directory.
    UserData,
    /// `<prefix>/lib/skyhost/plugins` for an executable in `<prefix>/bin`.
    Install,
    /// The cargo target directory the executable was built into.
    BuildDir,
    /// A system-wide directory.
    System,
}

impl DirOrigin {
    /// Directories the user named: reported when they do not exist.
    pub fn is_explicit(self) -> bool {
        matches!(self, Self::Flag | Self::Env | Self::Config)
    }

    /// How `skyhost plugins` names the origin.
    pub fn label(self) -> &'static str {
        match self {
            Self::Flag => "--plugin-dir",
            Self::Env => "SKYHOST_PLUGIN_PATH",
            Self::Config => "config plugin_path",
            Self::UserData => "user data dir",
            Self::Install => "install prefix",
            Self::BuildDir => "build dir",
            Self::System => "system",
        }
    }
}

/// One directory on the search path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchDir {
    /// The directory.
    pub path: PathBuf,
    /// Where it came from.
    pub origin: DirOrigin,
}

/// Inputs to [`search_path`], gathered by the caller.
#[derive(Debug, Default)]
pub struct SearchPathInputs {
    /// `--plugin-dir`, in order.
    pub flag_dirs: Vec<PathBuf>,
    /// `SKYHOST_PLUGIN_PATH`, unsplit.
    pub env_path: Option<String>,
    /// `plugin_path` of the config file.
    pub config_dirs: Vec<PathBuf>,
    /// The running executable.
    pub exe: Option<PathBuf>,
    /// The per-user data directory (`~/.local/share`).
    pub data_dir: Option<PathBuf>,
}

/// Builds the search path: flags, environment, config, then the defaults.
/// A directory appears once, at its first position.
pub fn search_path(inputs: SearchPathInputs) -> Vec<SearchDir> {
    let mut dirs: Vec<SearchDir> = Vec::new();
    let mut push = |path: PathBuf, origin: DirOrigin| {
        if !path.as_os_str().is_empty() && !dirs.iter().any(|d| d.path == path) {
            dirs.push(SearchDir { path, origin });
        }
    };
    for d in inputs.flag_dirs {
        push(d, DirOrigin::Flag);
    }
    for d in inputs.env_path.iter().flat_map(|p| p.split(':')) {
        push(PathBuf::from(d), DirOrigin::Env);
    }
    for d in inputs.config_dirs {
        push(d, DirOrigin::Config);
    }
    if let Some(data) = inputs.data_dir {
        push(data.join("skyhost/plugins"), DirOrigin::UserData);
    }
    if let Some(exe_dir) = inputs.exe.as_deref().and_then(Path::parent) {
        if let Some(prefix) = exe_dir.parent().filter(|_| exe_dir.ends_with("bin")) {
            push(prefix.join("lib/skyhost/plugins"), DirOrigin::Install);
        }
        if is_cargo_target_dir(exe_dir) {
            push(exe_dir.to_path_buf(), DirOrigin::BuildDir);
        }
    }
    for d in system_dirs(std::env::var("SKYHOST_SYSTEM_PLUGIN_DIRS").ok().as_deref()) {
        push(d, DirOrigin::System);
    }
    dirs
}

/// The system-wide directories: `SKYHOST_SYSTEM_PLUGIN_DIRS` (colon-separated;
/// empty for none) when set, for a distribution with another prefix or a
/// sandbox that must not see the machine's plugins; else the usual two.
fn system_dirs(setting: Option<&str>) -> Vec<PathBuf> {
    match setting {
        Some(list) => list.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect(),
        None => vec!["/usr/local/lib/skyhost/plugins".into(), "/usr/lib/skyhost/plugins".into()],
    }
}

/// `target/<profile>/` holds the binary and the plugins that cargo built with
/// it; cargo marks `target/` with a `CACHEDIR.TAG`. (Checking for the tag keeps
/// us from scanning a large directory such as `/usr/bin`.)
fn is_cargo_target_dir(exe_dir: &Path) -> bool {
    exe_dir.parent().is_some_and(|target| target.join("CACHEDIR.TAG").is_file())
}

/// A file that looks like a plugin.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Backend name taken from the file name.
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

/// The backend name of a plugin file name: `libskyhost_<name>.so`.
pub fn backend_name(file_name: &str) -> Option<&str> {
    let name = file_name.strip_prefix("libskyhost_")?.strip_suffix(".so")?;
    let valid = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    valid.then_some(name)
}

/// Lists the plugin-like entries of `dir`, sorted by name. Entries are not
/// opened here: a directory or FIFO with a plugin's name is reported later.
pub fn scan(dir: &Path) -> std::io::Result<Vec<Candidate>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        if let Some(name) = file_name.to_str().and_then(backend_name) {
            found.push(Candidate { name: name.to_string(), path: entry.path() });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_file_names() {
        assert_eq!(backend_name("libskyhost_aws.so"), Some("aws"));
        assert_eq!(backend_name("libskyhost_my-cloud2.so"), Some("my-cloud2"));
        assert_eq!(backend_name("libskyhost_.so"), None);
        assert_eq!(backend_name("libskyhost_aws.so.bak"), None);
        assert_eq!(backend_name("libskyhost_AWS.so"), None);
        assert_eq!(backend_name("libother.so"), None);
    }

    #[test]
    fn system_dirs_can_be_replaced_or_hidden() {
        assert_eq!(
            system_dirs(None),
            [PathBuf::from("/usr/local/lib/skyhost/plugins"), "/usr/lib/skyhost/plugins".into()]
        );
        assert_eq!(system_dirs(Some("/opt/a::/opt/b")), [PathBuf::from("/opt/a"), "/opt/b".into()]);
        assert!(system_dirs(Some("")).is_empty());
    }

    #[test]
    fn order_is_flags_env_config_then_defaults() {
        let dirs = search_path(SearchPathInputs {
            flag_dirs: vec!["/a".into(), "/b".into()],
            env_path: Some("/c::/a".into()),
            config_dirs: vec!["/d".into()],
            exe: Some("/opt/sky/bin/skyhost".into()),
            data_dir: Some("/home/u/.local/share".into()),
        });
        let got: Vec<_> = dirs.iter().map(|d| (d.path.to_str().unwrap(), d.origin)).collect();
        assert_eq!(
            got,
            vec![
                ("/a", DirOrigin::Flag),
                ("/b", DirOrigin::Flag),
                ("/c", DirOrigin::Env),
                ("/d", DirOrigin::Config),
                ("/home/u/.local/share/skyhost/plugins", DirOrigin::UserData),
                ("/opt/sky/lib/skyhost/plugins", DirOrigin::Install),
                ("/usr/local/lib/skyhost/plugins", DirOrigin::System),
                ("/usr/lib/skyhost/plugins", DirOrigin::System),
            ]
        );
    }
}
