//! Checks a file before the dynamic loader sees it.
//!
//! `dlopen` trusts its input: a FIFO makes it block forever and a truncated
//! shared object makes it die with SIGBUS when it touches a page past the end
//! of the file. So before loading, we check that the file is a regular,
//! readable, not world-writable ELF shared object for this machine whose
//! program and section headers, and every loadable segment, lie inside it.
//! The file is opened once: the checks run on the open descriptor, and the
//! loader maps that descriptor (`/proc/self/fd/N`), so a file renamed into
//! place between the check and the load is never the one loaded.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::Path,
};

/// Why a file was not handed to the loader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    /// The path is a directory, FIFO, socket or device.
    #[error("not a regular file (it is a {0})")]
    NotAFile(&'static str),
    /// Opening or reading failed.
    #[error("cannot read it: {0}")]
    Unreadable(String),
    /// Someone other than root or the current user could have put it there.
    #[error("{}", .0.reason)]
    Untrusted(super::trust::Distrust),
    /// Not an ELF file at all.
    #[error("not an ELF shared object ({0})")]
    NotElf(String),
    /// ELF, but for another machine or not a shared object.
    #[error("wrong kind of ELF file: {0}")]
    WrongElf(String),
    /// The headers point past the end of the file.
    #[error("truncated: {0}")]
    Truncated(String),
}

impl PreflightError {
    /// What the user should do about it.
    pub fn hint(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            Self::Untrusted(d) => d.hint.clone(),
            Self::Truncated(_) => {
                format!("the copy is incomplete: reinstall {p} (copy to a temporary name, then rename)")
            }
            Self::NotAFile(_) => format!("remove {p} or rename it so it does not look like a plugin"),
            Self::Unreadable(_) => format!("check that {p} exists (a symlink may point nowhere) and is readable"),
            _ => format!("remove {p}: it is not a skyhost plugin for this machine"),
        }
    }
}

const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;

#[cfg(target_arch = "x86_64")]
const HOST_MACHINE: u16 = 62;
#[cfg(target_arch = "aarch64")]
const HOST_MACHINE: u16 = 183;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const HOST_MACHINE: u16 = 0;

/// A plugin file that passed the checks, still open: load this descriptor.
#[derive(Debug)]
pub struct Checked {
    /// The open file.
    pub file: File,
    /// Its metadata, read from the descriptor.
    pub meta: std::fs::Metadata,
}

/// Checks `path`; see the module docs. Returns the open file that was checked.
pub fn check(path: &Path) -> Result<Checked, PreflightError> {
    let meta = std::fs::metadata(path).map_err(|e| PreflightError::Unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(PreflightError::NotAFile(file_kind(&meta)));
    }
    // O_NONBLOCK: should the path have become a FIFO since the stat above,
    // opening it still returns at once.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| PreflightError::Unreadable(e.to_string()))?;
    let meta = file.metadata().map_err(|e| PreflightError::Unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(PreflightError::NotAFile(file_kind(&meta)));
    }
    super::trust::check(path, &meta).map_err(PreflightError::Untrusted)?;
    check_file(file)
}

/// Checks an already open file (a worker process gets its plugin this way).
pub fn check_file(mut file: File) -> Result<Checked, PreflightError> {
    let meta = file.metadata().map_err(|e| PreflightError::Unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(PreflightError::NotAFile(file_kind(&meta)));
    }
    check_elf(&mut file, meta.size())?;
    Ok(Checked { file, meta })
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> Result<(), PreflightError> {
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(buf))
        .map_err(|e| PreflightError::Unreadable(e.to_string()))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn check_elf(file: &mut File, len: u64) -> Result<(), PreflightError> {
    const EHDR: usize = 64;
    if len < EHDR as u64 {
        return Err(PreflightError::NotElf(format!("{len} bytes, too short")));
    }
    let mut ehdr = [0u8; EHDR];
    read_at(file, 0, &mut ehdr)?;
    if &ehdr[..4] != b"\x7fELF" {
        return Err(PreflightError::NotElf("bad magic".into()));
    }
    if ehdr[4] != 2 || ehdr[5] != 1 {
        return Err(PreflightError::WrongElf("not 64-bit little-endian".into()));
    }
    let e_type = u16_at(&ehdr, 16);
    if e_type != ET_DYN {
        return Err(PreflightError::WrongElf(format!("ELF type {e_type}, not a shared object")));
    }
    let machine = u16_at(&ehdr, 18);
    if machine != HOST_MACHINE {
        return Err(PreflightError::WrongElf(format!(
            "built for machine {machine}, this host is {HOST_MACHINE} ({})",
            std::env::consts::ARCH
        )));
    }
    let phoff = u64_at(&ehdr, 32);
    let shoff = u64_at(&ehdr, 40);
    let phentsize = u64::from(u16_at(&ehdr, 54));
    let phnum = u64::from(u16_at(&ehdr, 56));
    let shentsize = u64::from(u16_at(&ehdr, 58));
    let shnum = u64::from(u16_at(&ehdr, 60));

    let ph_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    if phnum == 0 || phentsize < 56 || ph_end > len {
        return Err(PreflightError::Truncated(format!("program headers end at {ph_end}, file has {len} bytes")));
    }
    let sh_end = shoff.saturating_add(shentsize.saturating_mul(shnum));
    if sh_end > len {
        return Err(PreflightError::Truncated(format!("section headers end at {sh_end}, file has {len} bytes")));
    }
    let mut phdrs = vec![0u8; (phentsize * phnum) as usize];
    read_at(file, phoff, &mut phdrs)?;
    for ph in phdrs.chunks_exact(phentsize as usize) {
        if u32_at(ph, 0) != PT_LOAD {
            continue;
        }
        let end = u64_at(ph, 8).saturating_add(u64_at(ph, 32));
        if end > len {
            return Err(PreflightError::Truncated(format!("loadable segment ends at {end}, file has {len} bytes")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{io::Write, os::unix::fs::PermissionsExt};

    fn temp_file(bytes: &[u8], mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    /// The running test binary is an ELF executable (ET_DYN when PIE).
    fn own_image() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn empty_and_text_files_are_not_elf() {
        for bytes in [&b""[..], b"this is text, not a library\n"] {
            let f = temp_file(bytes, 0o644);
            assert!(matches!(check(f.path()), Err(PreflightError::NotElf(_))));
        }
    }

    #[test]
    fn world_writable_is_refused() {
        let f = temp_file(b"anything", 0o666);
        let err = check(f.path()).unwrap_err();
        assert!(matches!(&err, PreflightError::Untrusted(d) if d.reason.contains("mode 666")), "{err:?}");
    }

    #[test]
    fn directory_is_not_a_file() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(check(d.path()).err(), Some(PreflightError::NotAFile("directory")));
    }

    #[test]
    fn truncated_image_is_caught() {
        let image = own_image();
        let f = temp_file(&image[..image.len() / 2], 0o644);
        assert!(matches!(check(f.path()), Err(PreflightError::Truncated(_))), "{:?}", check(f.path()).err());
    }

    #[test]
    fn wrong_machine_is_caught() {
        let mut image = own_image();
        image[18] ^= 0xff;
        let f = temp_file(&image, 0o644);
        assert!(matches!(check(f.path()), Err(PreflightError::WrongElf(_))));
    }
}
