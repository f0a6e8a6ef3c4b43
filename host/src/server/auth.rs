//! Who may ask: bearer tokens from `[serve] tokens_file`, and the `Host`
//! header a loopback server answers for.
//!
//! The tokens file holds one token per line, plain or as `sha256:<hex>` of
//! the token (so the file need not hold the secret itself); blank lines and
//! `#` comments are skipped. It is read again when it changes (checked at
//! most once a second). Tokens are compared by their SHA-256 digests in
//! constant time.

use std::{
    net::IpAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use ring::digest;

/// The tokens a server accepts, from its tokens file.
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    loaded: RwLock<Loaded>,
    /// When the file was last looked at, in ms since the epoch.
    checked_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct Loaded {
    stamp: (u64, i64, i64, u64),
    digests: Vec<[u8; 32]>,
}

/// How often the file is looked at for changes.
const RELOAD_MS: u64 = 1000;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, bytes).as_ref().try_into().expect("32 bytes")
}

/// Equal in time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read(path: &Path) -> Result<Loaded, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
    let mut digests = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let digest = match line.strip_prefix("sha256:") {
            Some(hex) => crate::hex::decode(hex).and_then(|d| <[u8; 32]>::try_from(d).ok()).ok_or_else(|| {
                format!("the tokens file {} line {}: sha256: wants 64 hex digits", path.display(), n + 1)
            })?,
            None => sha256(line.as_bytes()),
        };
        digests.push(digest);
    }
    Ok(Loaded { stamp: (meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size()), digests })
}

impl Tokens {
    /// Reads the tokens file; an unreadable or empty file is an error.
    pub fn load(path: &Path) -> Result<Self, String> {
        let loaded = read(path)?;
        if loaded.digests.is_empty() {
            return Err(format!("the tokens file {} holds no token", path.display()));
        }
        Ok(Self { path: path.to_path_buf(), loaded: RwLock::new(loaded), checked_ms: AtomicU64::new(now_ms()) })
    }

    /// Whether `presented` (the `Authorization` header's value) carries a
    /// valid bearer token.
    pub fn accepts(&self, presented: Option<&str>) -> bool {
        self.reload_if_changed();
        let Some(token) = presented.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) else { return false };
        let digest = sha256(token.as_bytes());
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        // Every digest is compared, so the time says nothing of which matched.
        loaded.digests.iter().fold(false, |hit, d| hit | same(d, &digest))
    }

    fn reload_if_changed(&self) {
        let now = now_ms();
        let last = self.checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < RELOAD_MS
            || self.checked_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let Ok(meta) = std::fs::metadata(&self.path) else { return };
        let stamp = (meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size());
        if stamp == self.loaded.read().unwrap_or_else(|e| e.into_inner()).stamp {
            return;
        }
        match read(&self.path) {
            Ok(fresh) if !fresh.digests.is_empty() => {
                tracing::info!(file = %self.path.display(), tokens = fresh.digests.len(), "tokens file reloaded");
                *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
            // A broken or emptied file keeps the tokens that were valid.
            Ok(_) => {
                tracing::warn!(file = %self.path.display(), "tokens file holds no token; keeping the previous tokens")
            }
            Err(e) => tracing::warn!("{e}; keeping the previous tokens"),
        }
    }
}

/// Whether the `Host` header names this machine's loopback: `localhost`,
/// `127.x.y.z` or `[::1]`, with or without a port. A loopback server answers
/// nothing else, so a web page cannot reach it by DNS rebinding.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_tokens_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let hashed = crate::hex::encode(&sha256(b"second"));
        std::fs::write(&path, format!("# team tokens\nfirst\n\nsha256:{hashed}\n")).unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert!(tokens.accepts(Some("Bearer first")));
        assert!(tokens.accepts(Some("Bearer second")));
        for bad in [None, Some("Bearer third"), Some("first"), Some("Basic Zmlyc3Q="), Some("Bearer ")] {
            assert!(!tokens.accepts(bad), "{bad:?}");
        }
        std::fs::write(&path, "third\n").unwrap();
        tokens.checked_ms.store(0, Ordering::Relaxed);
        assert!(tokens.accepts(Some("Bearer third")) && !tokens.accepts(Some("Bearer first")));
        assert!(Tokens::load(&dir.path().join("none")).is_err());
        std::fs::write(&path, "sha256:12\n").unwrap();
        assert!(Tokens::load(&path).unwrap_err().contains("64 hex digits"));
    }

    #[test]
    fn loopback_hosts() {
        for ok in ["localhost", "localhost:8080", "127.0.0.1:46590", "127.3.2.1", "[::1]:80", "[::1]", "LOCALHOST"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in ["evil.example:46590", "10.0.0.1", "localhost.evil.example", "[::2]:1", ""] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
