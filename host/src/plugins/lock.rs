//! `plugins.lock`: the plugin files a user has pinned, by file name, SHA-256
//! and interface version. `skyhost plugins --lock` writes it beside the
//! config file; with `[plugins] require_lock = true`, a plugin file that is
//! not listed, or whose contents differ, is refused as untrusted before any
//! of its code runs.

use std::{
    collections::BTreeMap,
    fs::File,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// One pinned file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// File name (`libskyhost_aws.so`).
    pub file: String,
    /// SHA-256 of its contents, in hex.
    pub sha256: String,
    /// The interface version it was built against.
    pub interface_version: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    #[serde(default)]
    plugin: Vec<Pin>,
}

/// The pins, by file name.
#[derive(Debug, Clone, Default)]
pub struct Lock {
    /// Where the lock file is.
    pub path: PathBuf,
    pins: BTreeMap<String, Pin>,
}

/// Where `plugins.lock` is: beside the config file (or where it would be).
pub fn lock_path(config_path: Option<&Path>) -> Option<PathBuf> {
    let config = config_path.map(Path::to_path_buf).or_else(|| crate::config::config_path(None))?;
    Some(config.parent()?.join("plugins.lock"))
}

impl Lock {
    /// Reads the lock file; a missing one pins nothing.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let file: LockFile = toml::from_str(&text)
            .map_err(|e| format!("{} does not parse: {}", path.display(), e.to_string().trim()))?;
        Ok(Self { path: path.to_path_buf(), pins: file.plugin.into_iter().map(|p| (p.file.clone(), p)).collect() })
    }

    /// Checks a file's hash against its pin: `Err((reason, hint))` when it is not pinned or differs.
    pub fn check(&self, file_name: &str, sha256: &str) -> Result<(), (String, String)> {
        let again =
            format!("if you trust this file, run `skyhost plugins --lock` to pin it in {}", self.path.display());
        match self.pins.get(file_name) {
            None => Err((format!("untrusted: {file_name} is not pinned in {}", self.path.display()), again)),
            Some(pin) if pin.sha256 != sha256 => Err((
                format!("untrusted: its SHA-256 is {sha256}, but {} pins {}", self.path.display(), pin.sha256),
                again,
            )),
            Some(_) => Ok(()),
        }
    }

    /// Writes `pins` as the lock file (atomically).
    pub fn write(path: &Path, pins: &[Pin]) -> std::io::Result<()> {
        let body = toml::to_string(&LockFile { plugin: pins.to_vec() })
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let text = format!(
            "# Plugin files pinned by `skyhost plugins --lock`. With [plugins] require_lock = true,\n\
             # a plugin file whose SHA-256 differs from its pin here is refused.\n\n{body}"
        );
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".plugins.lock.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }
}

/// SHA-256 of an open file's whole contents, in hex (read at offsets, so the
/// descriptor's position is untouched).
pub fn sha256_of(file: &File) -> std::io::Result<String> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(crate::hex::encode(ctx.finish().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_pins() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("libskyhost_x.so");
        std::fs::write(&f, b"abc").unwrap();
        let sha = sha256_of(&File::open(&f).unwrap()).unwrap();
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let path = dir.path().join("plugins.lock");
        let pin = Pin { file: "libskyhost_x.so".into(), sha256: sha.clone(), interface_version: "1.2.0".into() };
        Lock::write(&path, std::slice::from_ref(&pin)).unwrap();
        let lock = Lock::read(&path).unwrap();
        lock.check("libskyhost_x.so", &sha).unwrap();
        let (reason, hint) = lock.check("libskyhost_x.so", "00").unwrap_err();
        assert!(reason.contains(&format!("its SHA-256 is 00, but {} pins {sha}", path.display())), "{reason}");
        assert!(hint.contains("skyhost plugins --lock"), "{hint}");
        assert!(lock.check("libskyhost_y.so", &sha).unwrap_err().0.contains("is not pinned"));
        assert!(Lock::read(&dir.path().join("none")).unwrap().check("a", "b").is_err(), "no lock pins nothing");
    }
}
