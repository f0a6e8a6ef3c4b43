//! Loads one plugin file through abi_stable and turns every failure into a
//! one-line reason (the full loader text is kept for `-v`).

use std::{os::fd::AsRawFd, path::Path};

use abi_stable::library::{LibHeader, LibraryError, RootModuleError, lib_header_from_path};
use skyhost_plugin_api::{BackendModuleRef, ErrorKind, INTERFACE_VERSION, PluginError, PluginInfo};

/// Why a plugin did not load.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoadFailure {
    /// Incompatible (version or layout) rather than broken.
    pub incompatible: bool,
    /// One line.
    pub reason: String,
    /// What to do.
    pub hint: String,
    /// Everything the loader said.
    pub detail: String,
}

/// A loaded plugin: its module and what it says about itself.
pub struct Loaded {
    /// The root module. The library stays mapped for the life of the process.
    pub module: BackendModuleRef,
    /// The plugin's description.
    pub info: PluginInfo,
}

/// Maps the checked file with the dynamic loader and finds its abi_stable
/// header. The loader is handed the descriptor that was checked
/// (`/proc/self/fd/N`), not the path again. Each file is opened on its own
/// (`lib_header_from_path`), never through `RootModule::load_from*`, which
/// would hand back the first plugin for every later file. The library is
/// never unloaded, and neither is its descriptor closed: the loader knows the
/// library by that `/proc/self/fd/N` name, which must never name another file.
pub fn open(checked: super::preflight::Checked, path: &Path) -> Result<&'static LibHeader, LoadFailure> {
    let by_fd = format!("/proc/self/fd/{}", checked.file.as_raw_fd());
    match lib_header_from_path(Path::new(&by_fd)) {
        Ok(header) => {
            std::mem::forget(checked.file);
            Ok(header)
        }
        Err(e) => {
            let mut failure = explain(&e, path);
            let real = path.display().to_string();
            failure.reason = failure.reason.replace(&by_fd, &real);
            failure.detail = failure.detail.replace(&by_fd, &real);
            Err(failure)
        }
    }
}

/// Checks the interface version and (unless `layout_checked`) the layout of
/// an opened plugin, runs its constructor, and reads its description. `name`
/// comes from the file name.
pub fn init(header: &'static LibHeader, path: &Path, name: &str, layout_checked: bool) -> Result<Loaded, LoadFailure> {
    let module = if layout_checked {
        // SAFETY: this very file (same inode, size and times) passed the full
        // layout check against this very host before; see `verified.rs`.
        unsafe { header.init_root_module_with_unchecked_layout::<BackendModuleRef>() }
    } else {
        header.init_root_module::<BackendModuleRef>()
    }
    .map_err(|e| explain(&e, path))?;
    let info = describe(module, path)?;
    if info.name != name && info.backends.is_empty() {
        return Err(LoadFailure {
            incompatible: false,
            reason: format!("the file is named for backend '{name}' but the plugin says it is '{}'", info.name),
            hint: format!("rename it to {}", super::known::file_name(&info.name)),
            detail: String::new(),
        });
    }
    Ok(Loaded { module, info })
}

fn describe(module: BackendModuleRef, path: &Path) -> Result<PluginInfo, LoadFailure> {
    let text = (module.describe())();
    if let Ok(info) = serde_json::from_str::<PluginInfo>(&text) {
        return Ok(info);
    }
    #[derive(serde::Deserialize)]
    struct Failed {
        error: PluginError,
    }
    let reason = match serde_json::from_str::<Failed>(&text) {
        Ok(f) => format!("describe failed: {}", f.error.message),
        Err(_) => "describe returned something that is not plugin metadata".to_string(),
    };
    Err(LoadFailure {
        incompatible: false,
        reason,
        hint: format!("report this to the plugin's author, or remove {}", path.display()),
        detail: text.to_string(),
    })
}

fn explain(error: &LibraryError, path: &Path) -> LoadFailure {
    let detail = error.to_string().trim().to_string();
    let p = path.display();
    let broken =
        |reason: String, hint: String| LoadFailure { incompatible: false, reason, hint, detail: detail.clone() };
    let incompatible =
        |reason: String, hint: String| LoadFailure { incompatible: true, reason, hint, detail: detail.clone() };
    let rebuild = format!(
        "install a build of this plugin made for skyhost interface {INTERFACE_VERSION} (the same major version), or remove {p}"
    );
    match error {
        LibraryError::OpenError { err, .. } => broken(
            format!("the dynamic loader refused it: {}", first_line(&err.to_string())),
            format!("remove or reinstall {p}"),
        ),
        LibraryError::GetSymbolError { .. } => broken(
            "not a skyhost plugin (no abi_stable root module)".into(),
            format!("remove {p}, or rename it so it does not start with libskyhost_"),
        ),
        LibraryError::InvalidAbiHeader(_) => {
            incompatible("built with an incompatible abi_stable version".into(), rebuild)
        }
        LibraryError::InvalidCAbi { .. } => {
            incompatible("built by a compiler whose C ABI differs from the host's".into(), rebuild)
        }
        LibraryError::ParseVersionError(e) => broken(format!("unreadable interface version: {e}"), rebuild),
        LibraryError::IncompatibleVersionNumber { actual_version, expected_version, .. } => incompatible(
            format!("incompatible interface version: plugin speaks {actual_version}, host speaks {expected_version}"),
            rebuild,
        ),
        LibraryError::AbiInstability(_) => {
            incompatible(format!("interface layout differs from the host's: {}", layout_summary(&detail)), rebuild)
        }
        LibraryError::RootModule { err, .. } => constructor_failure(err, &detail, path),
        LibraryError::Many(errors) => match errors.iter().next() {
            Some(first) => explain(first, path),
            None => broken("unknown loader error".into(), format!("remove {p}")),
        },
    }
}

fn constructor_failure(err: &RootModuleError, detail: &str, path: &Path) -> LoadFailure {
    let (panicked, message) = match err {
        RootModuleError::Unwound => (true, String::new()),
        RootModuleError::Returned(e) => match serde_json::from_str::<PluginError>(&e.to_string()) {
            Ok(pe) => (pe.kind == ErrorKind::Panic, pe.message),
            Err(_) => (false, first_line(&e.to_string()).to_string()),
        },
    };
    let reason = match (panicked, message.is_empty()) {
        (true, true) => "its constructor panicked".to_string(),
        (true, false) => format!("its constructor panicked: {}", message.trim_start_matches("plugin panicked: ")),
        (false, _) => format!("its constructor failed: {message}"),
    };
    LoadFailure {
        incompatible: false,
        reason,
        hint: format!("fix what the message names, or remove {}", path.display()),
        detail: detail.to_string(),
    }
}

fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or("").trim()
}

/// abi_stable's layout errors are hundreds of lines; the last `Error:` line
/// with its `Expected`/`Found` values says what differs.
fn layout_summary(detail: &str) -> String {
    let lines: Vec<&str> = detail.lines().map(str::trim).collect();
    let Some(at) = lines.iter().rposition(|l| l.starts_with("Error:")) else {
        return first_line(detail).to_string();
    };
    let kind = lines[at].trim_start_matches("Error:").trim();
    let mut values = lines[at + 1..].iter().filter(|l| !l.is_empty());
    let mut take = |label: &str| -> Option<String> {
        let l = values.next()?;
        if l.starts_with(label) {
            let v = l.trim_start_matches(label).trim();
            Some(if v.is_empty() { values.next()?.to_string() } else { v.to_string() })
        } else {
            None
        }
    };
    match (take("Expected:"), take("Found:")) {
        (Some(e), Some(f)) => format!("{kind} (host {e}, plugin {f})"),
        _ => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::layout_summary;

    #[test]
    fn layout_summary_reads_the_last_error() {
        let detail = "\nlots of layout\n Error:mismatched type\n Expected:\n    u32\n Found:\n    u64\n";
        assert_eq!(layout_summary(detail), "mismatched type (host u32, plugin u64)");
        assert_eq!(layout_summary("Error:too many fields\nExpected:5\nFound:4"), "too many fields (host 5, plugin 4)");
    }
}
