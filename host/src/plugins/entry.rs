//! The plugin report: one [`Entry`] per backend name (and per shadowed
//! file), with its [`Status`] and, when it is not usable, why and what to do.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use skyhost_plugin_api::PluginInfo;

use super::{known, known::KnownBackend, loader};

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
    /// Not pinned in `plugins.lock`, or its contents differ from the pin.
    Untrusted,
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
            Self::Untrusted => "untrusted",
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
    /// For a loaded plugin: whether its layout was checked in this run or
    /// the file is remembered as checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout_check: Option<LayoutCheck>,
    /// SHA-256 of the file, when it was hashed (`plugins --lock`, `require_lock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For a loaded plugin: where it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<super::Isolation>,
    /// For a loaded plugin in a worker: failures in a row, and the last one
    /// (the server reports a plugin that keeps crashing as broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::connection::Health>,
}

/// How a loaded plugin's layout was vouched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutCheck {
    /// abi_stable compared the whole layout in this run.
    Checked,
    /// This very file passed the check before (see `verified.rs`).
    Remembered,
}

impl Entry {
    pub(super) fn new(name: &str, status: Status, path: Option<PathBuf>) -> Self {
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
            layout_check: None,
            sha256: None,
            isolation: None,
            health: None,
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
pub(super) fn display_name<'a>(name: &'a str, info: Option<&'a PluginInfo>) -> &'a str {
    match (info, known::known(name)) {
        (Some(info), _) if !info.display_name.is_empty() => &info.display_name,
        (_, Some(k)) => k.display_name,
        _ => name,
    }
}

impl Entry {
    pub(super) fn fail(&mut self, f: loader::LoadFailure) {
        self.status = if f.incompatible { Status::Incompatible } else { Status::Broken };
        self.reason = Some(f.reason);
        self.hint = Some(f.hint);
        self.detail = (!f.detail.is_empty()).then_some(f.detail);
    }
}
