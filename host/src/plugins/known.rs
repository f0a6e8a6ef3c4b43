//! The first-party backends, compiled in so that a missing one is reported
//! with its install instructions before any command runs.

/// A first-party backend.
#[derive(Debug)]
pub struct KnownBackend {
    /// Backend name.
    pub name: &'static str,
    /// Name for people, as SkyPilot shows it.
    pub display_name: &'static str,
    /// The plugin file that serves it: `libskyhost_<file>.so`.
    pub file: &'static str,
}

const fn cloud(name: &'static str, display_name: &'static str) -> KnownBackend {
    KnownBackend { name, display_name, file: name }
}

/// A small cloud, served by the `neoclouds` plugin.
const fn neocloud(name: &'static str, display_name: &'static str) -> KnownBackend {
    KnownBackend { name, display_name, file: "neoclouds" }
}

/// Kubernetes and Slurm first (their sections come before the clouds), then the clouds in SkyPilot's `ALL_CLOUDS` order, which
/// is also the order in which their accelerators first appear in `-a`.
pub const KNOWN_BACKENDS: &[KnownBackend] = &[
    KnownBackend { name: "kubernetes", display_name: "Kubernetes", file: "kubernetes" },
    KnownBackend { name: "slurm", display_name: "Slurm", file: "slurm" },
    cloud("aws", "AWS"),
    cloud("azure", "Azure"),
    cloud("gcp", "GCP"),
    cloud("lambda", "Lambda"),
    neocloud("vast", "Vast"),
    neocloud("nebius", "Nebius"),
    neocloud("hyperbolic", "Hyperbolic"),
    neocloud("seeweb", "Seeweb"),
    neocloud("yotta", "Yotta"),
    neocloud("mithril", "Mithril"),
    neocloud("verda", "Verda"),
];

/// The first-party backends a plugin file (`libskyhost_<file>.so`) serves.
pub fn served_by(file: &str) -> Vec<&'static KnownBackend> {
    KNOWN_BACKENDS.iter().filter(|k| k.file == file).collect()
}

/// Looks a backend up by name.
pub fn known(name: &str) -> Option<&'static KnownBackend> {
    KNOWN_BACKENDS.iter().find(|k| k.name == name)
}

/// Position in [`KNOWN_BACKENDS`]; unknown backends sort after, by name.
pub fn order_key(name: &str) -> (usize, String) {
    let pos = KNOWN_BACKENDS.iter().position(|k| k.name == name).unwrap_or(KNOWN_BACKENDS.len());
    (pos, name.to_string())
}

/// The file stem of the plugin that serves backend `name`.
pub fn file_of(name: &str) -> &str {
    known(name).map_or(name, |k| k.file)
}

/// The file a backend's plugin is called.
pub fn file_name(name: &str) -> String {
    format!("libskyhost_{}.so", file_of(name))
}

/// How to install a backend, for `help:` lines.
pub fn install_hint(name: &str) -> String {
    let file = file_name(name);
    let dest = "~/.local/share/skyhost/plugins/";
    let Some(k) = known(name) else {
        return format!("install {file} into {dest} (or any directory on the plugin path)");
    };
    let serves = served_by(k.file);
    let also = if serves.len() > 1 {
        format!(" (it serves {})", serves.iter().map(|k| k.name).collect::<Vec<_>>().join(", "))
    } else {
        String::new()
    };
    format!(
        "install {file}{also} into {dest} (or any directory on the plugin path): take it from \
         lib/skyhost/plugins/ of the skyhost release archive, or build it with \
         `cargo build --release -p skyhost-{}` and copy target/release/{file}",
        k.file
    )
}
