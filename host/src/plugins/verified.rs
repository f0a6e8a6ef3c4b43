//! Plugin files that already passed abi_stable's full layout check.
//!
//! The check compares the whole type graph of the root module and costs more
//! than mapping a small plugin. Its answer cannot change while neither the
//! file nor the host changes, so a file that passed is remembered by its
//! identity (device, inode, size, modification and change times, path) and
//! by the host binary's identity; on later starts such a file is loaded with
//! abi_stable's `init_root_module_with_unchecked_layout`, which still checks
//! the interface version. Any change to the file (a new inode, or a new
//! ctime, which no user can set back) or to the host means a full check.
//! `SKYHOST_VERIFY_ALWAYS=1` turns the memory off.

use std::{
    collections::HashSet,
    fs::Metadata,
    io::Write,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// The remembered checks, and the ones made in this run.
#[derive(Debug, Default)]
pub struct Verified {
    file: Option<PathBuf>,
    host: String,
    known: HashSet<String>,
    /// Lines of other skyhost binaries sharing the cache, kept as they are.
    others: Vec<String>,
    added: Vec<String>,
}

fn host_identity() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| std::fs::metadata(p).ok());
    let (ino, size, mtime) = exe.map_or((0, 0, 0), |m| (m.ino(), m.size(), m.mtime_nsec() + m.mtime() * 1_000_000_000));
    format!("{}/{}/{ino}/{size}/{mtime}", env!("CARGO_PKG_VERSION"), skyhost_plugin_api::INTERFACE_VERSION)
}

impl Verified {
    /// Reads the remembered checks from `dir` (the user's cache directory).
    pub fn load(dir: Option<PathBuf>) -> Self {
        if std::env::var_os("SKYHOST_VERIFY_ALWAYS").is_some_and(|v| !v.is_empty() && v != "0") {
            return Self::default();
        }
        let Some(file) = dir.map(|d| d.join("skyhost/verified-plugins")) else { return Self::default() };
        let host = host_identity();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let (mine, others): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with(&host));
        Self {
            file: Some(file),
            known: mine.into_iter().map(str::to_string).collect(),
            others: others.into_iter().map(str::to_string).collect(),
            host,
            added: Vec::new(),
        }
    }

    fn key(&self, meta: &Metadata, path: &Path) -> Option<String> {
        self.file.as_ref()?;
        Some(format!(
            "{} {} {} {} {}.{} {}.{} {}",
            self.host,
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            path.display()
        ))
    }

    /// Whether this exact file passed the full check before.
    pub fn contains(&self, meta: &Metadata, path: &Path) -> bool {
        self.key(meta, path).is_some_and(|k| self.known.contains(&k))
    }

    /// Remembers that this file passed the full check.
    pub fn record(&mut self, meta: &Metadata, path: &Path) {
        if let Some(k) = self.key(meta, path) {
            self.added.push(k);
        }
    }

    /// Writes the memory back when this run added to it (atomically; failures
    /// only cost a full check next time).
    pub fn save(&self) {
        let Some(file) = self.file.as_ref().filter(|_| !self.added.is_empty()) else { return };
        // Other binaries' lines, then this host's, then this run's; the file
        // keeps the last 2000 lines (an entry dropped costs one full check).
        let mut lines: Vec<&String> = self.others.iter().chain(self.known.iter()).chain(&self.added).collect();
        let mut seen = HashSet::new();
        lines.retain(|l| seen.insert(*l));
        let skip = lines.len().saturating_sub(2000);
        let write = || -> std::io::Result<()> {
            let dir = file.parent().expect("has a parent");
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".verified-plugins.{}", std::process::id()));
            let mut f = std::fs::File::create(&tmp)?;
            for l in &lines[skip..] {
                writeln!(f, "{l}")?;
            }
            std::fs::rename(tmp, file)
        };
        let _ = write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_files_and_keeps_other_binaries_lines() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("skyhost/verified-plugins");
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        std::fs::write(&cache, "another-skyhost-binary 1 2 3 4.5 6.7 /x/libskyhost_a.so\n").unwrap();
        let plugin = dir.path().join("libskyhost_b.so");
        std::fs::write(&plugin, b"x").unwrap();
        let meta = std::fs::metadata(&plugin).unwrap();

        let mut first = Verified::load(Some(dir.path().to_path_buf()));
        assert!(!first.contains(&meta, &plugin));
        first.record(&meta, &plugin);
        first.save();

        let second = Verified::load(Some(dir.path().to_path_buf()));
        assert!(second.contains(&meta, &plugin));
        let text = std::fs::read_to_string(&cache).unwrap();
        assert!(text.contains("another-skyhost-binary"), "{text}");

        // A change to the file (size, times) is a different file.
        std::fs::write(&plugin, b"xy").unwrap();
        assert!(!second.contains(&std::fs::metadata(&plugin).unwrap(), &plugin));
    }
}
