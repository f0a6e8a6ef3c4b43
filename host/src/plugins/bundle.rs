//! Plugin files that serve several backends (the `neoclouds` bundle, or any
//! plugin that lists `backends`): which names a file serves, and each
//! member's own description.

use skyhost_plugin_api::PluginInfo;

use super::known;

/// The backend names a file (`libskyhost_<file>.so`) is expected to serve
/// before it is opened: a first-party bundle's members, else its own name.
pub fn expected_names(file: &str) -> Vec<String> {
    match known::served_by(file).as_slice() {
        [] => vec![file.to_string()],
        many => many.iter().map(|k| k.name.to_string()).collect(),
    }
}

/// The backends a loaded plugin serves, each with its own description.
pub fn members(info: &PluginInfo) -> Vec<(String, PluginInfo)> {
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
