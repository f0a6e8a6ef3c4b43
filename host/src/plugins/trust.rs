//! Whose code a plugin file is. Loading a file runs its code as the current
//! user, so the file must be one that only the user or root could have put
//! there: judged the way OpenSSH's `StrictModes` judges a key's path.
//!
//! * The file belongs to root or to the current user, and neither its group
//!   (unless that is root's group) nor others may write it.
//! * So does every directory on its path, except that a sticky directory
//!   (such as `/tmp`) may be writable by all, as long as the entry below it
//!   belongs to root or to the current user: no one else can rename it.
//! * A symlink is followed: the directories holding the link and those
//!   holding its target are both judged.

use std::{
    fs::Metadata,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Why a path cannot be trusted: one line, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distrust {
    /// What is wrong.
    pub reason: String,
    /// What to do.
    pub hint: String,
}

const S_ISVTX: u32 = 0o1000;

fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn owner_ok(meta: &Metadata) -> bool {
    meta.uid() == 0 || meta.uid() == uid()
}

/// Judges a plugin file (`meta` from its open descriptor) and the
/// directories it is reached through.
pub fn check(path: &Path, meta: &Metadata) -> Result<(), Distrust> {
    let p = path.display();
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(Distrust {
            reason: format!("refusing to load a file that other users can write (mode {mode:o})"),
            hint: format!("run `chmod o-w {p}` if you trust the file, or remove it"),
        });
    }
    if mode & 0o020 != 0 && meta.gid() != 0 {
        return Err(Distrust {
            reason: format!("refusing to load a file that its group (gid {}) can write (mode {mode:o})", meta.gid()),
            hint: format!("run `chmod g-w {p}` if you trust the file, or remove it"),
        });
    }
    if !owner_ok(meta) {
        return Err(Distrust {
            reason: format!("refusing to load a file owned by another user (uid {})", meta.uid()),
            hint: format!("install it as root or as yourself (`chown {} {p}`), or remove it", uid()),
        });
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    check_dirs(&absolute, meta)?;
    if std::fs::symlink_metadata(&absolute).is_ok_and(|m| m.file_type().is_symlink()) {
        let target = std::fs::canonicalize(&absolute).map_err(|e| Distrust {
            reason: format!("cannot follow the symlink: {e}"),
            hint: format!("check that {p} points to a plugin file"),
        })?;
        check_dirs(&target, meta)?;
    }
    Ok(())
}

/// Judges every directory above `file`, from its parent up to `/`.
fn check_dirs(file: &Path, file_meta: &Metadata) -> Result<(), Distrust> {
    let mut below_owner_ok = owner_ok(file_meta);
    let mut below: PathBuf = file.to_path_buf();
    for dir in file.ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            break;
        }
        let meta = std::fs::metadata(dir).map_err(|e| Distrust {
            reason: format!("cannot check the directory {}: {e}", dir.display()),
            hint: "make the plugin directory readable".into(),
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        let d = dir.display();
        if !owner_ok(&meta) {
            return Err(Distrust {
                reason: format!("refusing to load from {d}, a directory owned by another user (uid {})", meta.uid()),
                hint: format!("keep plugins in a directory that belongs to you or to root, or `chown {} {d}`", uid()),
            });
        }
        let sticky = mode & S_ISVTX != 0;
        let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != 0);
        if others_write && !(sticky && below_owner_ok) {
            let who = if mode & 0o002 != 0 { "other users" } else { "its group" };
            let why = if sticky {
                format!("{} inside it belongs to another user", below.display())
            } else {
                format!("{who} can write it (mode {mode:o})")
            };
            return Err(Distrust {
                reason: format!("refusing to load from {d}: {why}"),
                hint: format!(
                    "run `chmod go-w {d}` if only you and root should put plugins there, or move the plugin elsewhere"
                ),
            });
        }
        below_owner_ok = owner_ok(&meta);
        below = dir.to_path_buf();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn set_mode(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn modes_of_the_file_and_its_directories() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("plugins");
        std::fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755);
        let file = dir.join("libskyhost_x.so");
        std::fs::write(&file, b"x").unwrap();
        set_mode(&file, 0o644);
        let meta = || std::fs::metadata(&file).unwrap();
        check(&file, &meta()).unwrap();

        set_mode(&file, 0o646);
        assert!(check(&file, &meta()).unwrap_err().reason.contains("other users can write"));
        set_mode(&file, 0o644);

        set_mode(&dir, 0o777);
        let err = check(&file, &meta()).unwrap_err();
        assert!(err.reason.contains("other users can write it (mode 777)"), "{err:?}");
        assert!(err.hint.contains("chmod go-w"), "{err:?}");

        // Sticky, like /tmp: fine while the entry below belongs to us or root.
        set_mode(&dir, 0o1777);
        check(&file, &meta()).unwrap();
        set_mode(&dir, 0o755);
    }

    #[test]
    fn a_symlink_into_a_writable_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let (safe, open) = (root.path().join("safe"), root.path().join("open"));
        std::fs::create_dir(&safe).unwrap();
        std::fs::create_dir(&open).unwrap();
        set_mode(&safe, 0o755);
        set_mode(&open, 0o777);
        let target = open.join("real.so");
        std::fs::write(&target, b"x").unwrap();
        set_mode(&target, 0o644);
        let link = safe.join("libskyhost_x.so");
        symlink(&target, &link).unwrap();
        let err = check(&link, &std::fs::metadata(&link).unwrap()).unwrap_err();
        assert!(err.reason.contains(&open.display().to_string()), "{err:?}");
    }
}
