//! The plugin report: `skyhost plugins -o json` and `GET /v1/plugins`.

use serde::{Deserialize, Serialize};

use crate::plugins::{Entry, PluginSet, SearchDir};

/// A directory of the search path, and whether it exists.
#[derive(Debug, Serialize, Deserialize)]
pub struct SearchDirReport {
    /// The directory and where it came from.
    #[serde(flatten)]
    pub dir: SearchDir,
    /// Whether it exists.
    pub exists: bool,
}

/// The document of `skyhost plugins -o json` and `GET /v1/plugins`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PluginsReport {
    /// The search path.
    pub search_path: Vec<SearchDirReport>,
    /// Problems with the search path.
    pub warnings: Vec<String>,
    /// One entry per backend (and per shadowed file).
    pub plugins: Vec<Entry>,
    /// Time to discover and load everything.
    pub load_ms: f64,
}

/// The report of a loaded plugin set.
pub fn report(set: &PluginSet) -> PluginsReport {
    PluginsReport {
        search_path: set
            .search_path
            .iter()
            .map(|dir| SearchDirReport { dir: dir.clone(), exists: dir.path.is_dir() })
            .collect(),
        warnings: set.path_warnings.clone(),
        plugins: set.entries_now(),
        load_ms: set.elapsed.as_secs_f64() * 1e3,
    }
}
