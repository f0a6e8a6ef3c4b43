//! What skyhost remembers of plugin files that already passed abi_stable's
//! full layout check, and what each said about itself.
//!
//! The check compares the whole type graph of the root module and costs more
//! than mapping a small plugin. Its answer cannot change while neither the
//! file nor the host changes, so a file that passed is remembered by its
//! identity (device, inode, size, modification and change times, path, all
//! read from the descriptor that was loaded) and by the host binary's
//! identity; on later starts such a file is loaded with abi_stable's
//! `init_root_module_with_unchecked_layout`, which still checks the interface
//! version. Any change to the file (a new inode, or a new ctime, which no
//! user can set back) or to the host means a full check. With process
//! isolation, the remembered description also spares starting a worker just
//! to ask a plugin what it is.
//!
//! The memory is trusted only when it is the current user's and no one else
//! can write it; otherwise it is ignored and written anew. Each line also
//! carries an HMAC-SHA256 under a random key kept beside it (owner-only), so
//! a line skyhost did not write itself (forged, or copied from elsewhere)
//! never skips a check. `SKYHOST_VERIFY_ALWAYS=1` turns the memory off.

use std::{
    collections::{HashMap, HashSet},
    fs::Metadata,
    io::Write,
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use ring::hmac;
use skyhost_plugin_api::PluginInfo;

/// The remembered checks, and the ones made in this run.
#[derive(Debug, Default)]
pub struct Verified {
    file: Option<PathBuf>,
    /// Signs this host's lines; `None` when no key could be had.
    key: Option<hmac::Key>,
    host: String,
    /// This host's lines: key → the description remembered with it.
    known: HashMap<String, Option<PluginInfo>>,
    /// Lines of other skyhost binaries sharing the cache, kept as they are.
    others: Vec<String>,
    added: Vec<(String, PluginInfo)>,
    /// The file on disk was not trustworthy: write it anew.
    rewrite: bool,
}

fn host_identity() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| std::fs::metadata(p).ok());
    let (ino, size, mtime) = exe.map_or((0, 0, 0), |m| (m.ino(), m.size(), m.mtime_nsec() + m.mtime() * 1_000_000_000));
    format!("{}/{}/{ino}/{size}/{mtime}", env!("CARGO_PKG_VERSION"), skyhost_plugin_api::INTERFACE_VERSION)
}

/// Whether only the current user (or root) could have written `meta`'s file.
fn trustworthy(meta: &Metadata) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    meta.uid() == me && meta.permissions().mode() & 0o022 == 0
}

impl Verified {
    /// Reads the remembered checks from `dir` (the user's cache directory).
    pub fn load(dir: Option<PathBuf>) -> Self {
        if std::env::var_os("SKYHOST_VERIFY_ALWAYS").is_some_and(|v| !v.is_empty() && v != "0") {
            return Self::default();
        }
        let Some(dir) = dir.map(|d| d.join("skyhost")) else { return Self::default() };
        let file = dir.join("verified-plugins");
        let Some(key) = signing_key(&dir) else { return Self::default() };
        let host = host_identity();
        let meta = std::fs::symlink_metadata(&file).ok();
        let rewrite = meta.as_ref().is_some_and(|m| !m.is_file() || !trustworthy(m));
        let text = if rewrite { String::new() } else { std::fs::read_to_string(&file).unwrap_or_default() };
        let mut known = HashMap::new();
        let mut others = Vec::new();
        for line in text.lines() {
            if !line.starts_with(&host) {
                others.push(line.to_string());
                continue;
            }
            // `<identity>\t<mac>\t<description>`; a line whose MAC does not
            // verify was not written by skyhost under this key: dropped.
            let mut parts = line.splitn(3, '\t');
            let (Some(id), Some(mac), json) = (parts.next(), parts.next(), parts.next().unwrap_or("")) else {
                continue;
            };
            let Some(mac) = crate::hex::decode(mac) else { continue };
            if hmac::verify(&key, signed(id, json).as_bytes(), &mac).is_err() {
                continue;
            }
            known.insert(id.to_string(), serde_json::from_str(json).ok());
        }
        Self { file: Some(file), key: Some(key), known, others, host, added: Vec::new(), rewrite }
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

    /// Whether this exact file passed the full check before: `Some`, with
    /// the description remembered with it, if any.
    pub fn lookup(&self, meta: &Metadata, path: &Path) -> Option<Option<&PluginInfo>> {
        let key = self.key(meta, path)?;
        self.known.get(&key).map(Option::as_ref)
    }

    /// Remembers that this file passed the full check, and its description.
    pub fn record(&mut self, meta: &Metadata, path: &Path, info: &PluginInfo) {
        if let Some(k) = self.key(meta, path) {
            self.added.push((k, info.clone()));
        }
    }

    /// Writes the memory back when this run added to it or found it
    /// untrustworthy (atomically, owner-only; failures only cost a full
    /// check next time).
    pub fn save(&self) {
        let Some(file) = self.file.as_ref().filter(|_| !self.added.is_empty() || self.rewrite) else { return };
        let Some(mac_key) = &self.key else { return };
        let line = |id: &str, info: Option<&PluginInfo>| {
            let json = info.and_then(|i| serde_json::to_string(i).ok()).unwrap_or_default();
            let mac = hmac::sign(mac_key, signed(id, &json).as_bytes());
            format!("{id}\t{}\t{json}", crate::hex::encode(mac.as_ref()))
        };
        // Other binaries' lines, then this host's, then this run's; the file
        // keeps the last 2000 lines (an entry dropped costs one full check).
        let mut lines: Vec<String> = self.others.clone();
        lines.extend(
            self.known
                .iter()
                .filter(|(k, _)| !self.added.iter().any(|(a, _)| a == *k))
                .map(|(k, i)| line(k, i.as_ref())),
        );
        lines.extend(self.added.iter().map(|(k, i)| line(k, Some(i))));
        let mut seen = HashSet::new();
        lines.retain(|l| seen.insert(l.clone()));
        let skip = lines.len().saturating_sub(2000);
        let write = || -> std::io::Result<()> {
            let dir = file.parent().expect("has a parent");
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".verified-plugins.{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            for l in &lines[skip..] {
                writeln!(f, "{l}")?;
            }
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(tmp, file)
        };
        let _ = write();
    }
}

fn signed(id: &str, json: &str) -> String {
    format!("{id}\t{json}")
}

/// The key that signs the memory's lines: `verified-plugins.key` in `dir`,
/// made (32 random bytes, owner-only) when it does not exist. A key file
/// that others can read or write is replaced, which voids every line.
fn signing_key(dir: &Path) -> Option<hmac::Key> {
    let path = dir.join("verified-plugins.key");
    let usable = |m: &Metadata| {
        // SAFETY: geteuid has no preconditions.
        m.is_file() && m.uid() == unsafe { libc::geteuid() } && m.permissions().mode() & 0o077 == 0 && m.len() == 32
    };
    if std::fs::symlink_metadata(&path).is_ok_and(|m| usable(&m))
        && let Ok(bytes) = std::fs::read(&path)
    {
        return Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes));
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    std::fs::create_dir_all(dir).ok()?;
    let tmp = dir.join(format!(".verified-plugins.key.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).ok()?;
    f.write_all(&bytes).ok()?;
    std::fs::rename(&tmp, &path).ok()?;
    Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> PluginInfo {
        serde_json::from_value(serde_json::json!({"name": name, "version": "1", "interface_version": "1.2.0"})).unwrap()
    }

    #[test]
    fn remembers_files_and_keeps_other_binaries_lines() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("skyhost/verified-plugins");
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        std::fs::write(&cache, "another-skyhost-binary 1 2 3 4.5 6.7 /x/libskyhost_a.so\tab\t\n").unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
        let plugin = dir.path().join("libskyhost_b.so");
        std::fs::write(&plugin, b"x").unwrap();
        let meta = std::fs::metadata(&plugin).unwrap();

        let mut first = Verified::load(Some(dir.path().to_path_buf()));
        assert!(first.lookup(&meta, &plugin).is_none());
        first.record(&meta, &plugin, &info("b"));
        first.save();

        let second = Verified::load(Some(dir.path().to_path_buf()));
        assert_eq!(second.lookup(&meta, &plugin), Some(Some(&info("b"))));
        let text = std::fs::read_to_string(&cache).unwrap();
        assert!(text.contains("another-skyhost-binary"), "{text}");
        assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);

        // A change to the file (size, times) is a different file.
        std::fs::write(&plugin, b"xy").unwrap();
        assert!(second.lookup(&std::fs::metadata(&plugin).unwrap(), &plugin).is_none());
    }

    #[test]
    fn a_memory_others_can_write_is_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("libskyhost_b.so");
        std::fs::write(&plugin, b"x").unwrap();
        let meta = std::fs::metadata(&plugin).unwrap();
        let mut v = Verified::load(Some(dir.path().to_path_buf()));
        v.record(&meta, &plugin, &info("b"));
        v.save();
        let cache = dir.path().join("skyhost/verified-plugins");
        assert!(Verified::load(Some(dir.path().to_path_buf())).lookup(&meta, &plugin).is_some());

        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o666)).unwrap();
        let forged = Verified::load(Some(dir.path().to_path_buf()));
        assert!(forged.lookup(&meta, &plugin).is_none(), "a group- or world-writable memory is not believed");
        forged.save();
        assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600, "written anew");
        assert_eq!(std::fs::read_to_string(&cache).unwrap(), "", "without the lines it could not vouch for");
    }

    #[test]
    fn a_line_skyhost_did_not_sign_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("libskyhost_b.so");
        std::fs::write(&plugin, b"x").unwrap();
        let meta = std::fs::metadata(&plugin).unwrap();
        let mut v = Verified::load(Some(dir.path().to_path_buf()));
        v.record(&meta, &plugin, &info("b"));
        v.save();
        let cache = dir.path().join("skyhost/verified-plugins");
        let good = std::fs::read_to_string(&cache).unwrap();
        let (id, rest) = good.trim_end().split_once('\t').unwrap();
        let (_, json) = rest.split_once('\t').unwrap();
        for forged in [format!("{id}\t{}\t{json}\n", "00".repeat(32)), format!("{id}\n"), format!("{id}\t\t{json}\n")] {
            std::fs::write(&cache, &forged).unwrap();
            assert!(Verified::load(Some(dir.path().to_path_buf())).lookup(&meta, &plugin).is_none(), "{forged}");
        }
        std::fs::write(&cache, &good).unwrap();
        assert!(Verified::load(Some(dir.path().to_path_buf())).lookup(&meta, &plugin).is_some());
        // A new key (the old one was readable by others) voids every line.
        let key = dir.path().join("skyhost/verified-plugins.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Verified::load(Some(dir.path().to_path_buf())).lookup(&meta, &plugin).is_none());
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "replaced");
    }
}
