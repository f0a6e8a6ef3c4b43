//! The first-party backends, compiled in so that a missing one is reported
//! with its install instructions before any command runs.

/// What kind of GPU source a backend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Live clusters with realtime availability.
    Clusters,
    /// Priced offerings from a SkyPilot-format catalog.
    Catalog,
}

/// A first-party backend.
#[derive(Debug)]
pub struct KnownBackend {
    /// Backend name (`libskyhost_<name>.so`).
    pub name: &'static str,
    /// Name for people, as SkyPilot shows it.
    pub display_name: &'static str,
    /// Clusters or catalog.
    pub kind: BackendKind,
}

const fn cloud(name: &'static str, display_name: &'static str) -> KnownBackend {
    KnownBackend { name, display_name, kind: BackendKind::Catalog }
}

/// Kubernetes first, then the clouds in SkyPilot's `ALL_CLOUDS` order, which
/// is also the order in which their accelerators first appear in `-a`.
pub const KNOWN_BACKENDS: &[KnownBackend] = &[
    KnownBackend { name: "kubernetes", display_name: "Kubernetes", kind: BackendKind::Clusters },
    cloud("aws", "AWS"),
    cloud("azure", "Azure"),
    cloud("gcp", "GCP"),
    cloud("lambda", "Lambda"),
    cloud("vast", "Vast"),
    cloud("nebius", "Nebius"),
    cloud("hyperbolic", "Hyperbolic"),
    cloud("seeweb", "Seeweb"),
    cloud("yotta", "Yotta"),
    cloud("mithril", "Mithril"),
    cloud("verda", "Verda"),
];

/// Looks a backend up by name.
pub fn known(name: &str) -> Option<&'static KnownBackend> {
    KNOWN_BACKENDS.iter().find(|k| k.name == name)
}

/// Position in [`KNOWN_BACKENDS`]; unknown backends sort after, by name.
pub fn order_key(name: &str) -> (usize, String) {
    let pos = KNOWN_BACKENDS.iter().position(|k| k.name == name).unwrap_or(KNOWN_BACKENDS.len());
    (pos, name.to_string())
}

/// The file a backend's plugin is called.
pub fn file_name(name: &str) -> String {
    format!("libskyhost_{name}.so")
}

/// How to install a backend, for `help:` lines.
pub fn install_hint(name: &str) -> String {
    let file = file_name(name);
    let dest = "~/.local/share/skyhost/plugins/";
    if known(name).is_some() {
        format!(
            "install {file} into {dest} (or any directory on the plugin path): take it from \
             lib/skyhost/plugins/ of the skyhost release archive, or build it with \
             `cargo build --release -p skyhost-{name}` and copy target/release/{file}"
        )
    } else {
        format!("install {file} into {dest} (or any directory on the plugin path)")
    }
}
