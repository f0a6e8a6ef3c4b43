//! Trusted plugin files only: what is loaded is the very file that was
//! checked, from a path only root or the user could have written, pinned
//! when the user asks, and remembered only in a memory skyhost wrote itself.

use std::{ffi::CString, os::unix::fs::MetadataExt, path::Path};

use skyhost_e2e::{Run, Sandbox, entry, fixture, plugin};

/// A sandbox with a copy (not a link) of the AWS plugin; its path.
fn with_aws_copy() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    let p = sb.write_plugin_file("aws", &std::fs::read(plugin("aws")).unwrap(), 0o644);
    (sb, p)
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> bool {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: chown reads a NUL-terminated path; u32::MAX (-1) leaves an id as it is.
    unsafe { libc::chown(c.as_ptr(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX)) == 0 }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[track_caller]
fn refused(sb: &Sandbox, name: &str, status: &str, reason: &str, hint: &str) {
    let run = sb.run(["plugins", "-o", "json"]);
    run.expect_code(0).expect_no_panic();
    let json = run.json();
    let e = entry(&json, name);
    assert_eq!(e["status"], status, "{e:#}");
    assert!(e["reason"].as_str().unwrap().contains(reason), "{e:#}");
    assert!(e["hint"].as_str().unwrap().contains(hint), "{e:#}");
}

#[test]
fn a_plugin_directory_others_can_write_is_refused_unless_sticky() {
    let (sb, _) = with_aws_copy();
    chmod(&sb.plugins(), 0o777);
    let dir = sb.plugins().display().to_string();
    refused(
        &sb,
        "aws",
        "broken",
        &format!("refusing to load from {dir}: other users can write it (mode 777)"),
        "chmod go-w",
    );
    // Sticky, like /tmp: only the owner of an entry may rename it.
    chmod(&sb.plugins(), 0o1777);
    assert_eq!(entry(&sb.run(["plugins", "-o", "json"]).json(), "aws")["status"], "loaded");
}

#[test]
fn files_others_could_have_written_are_refused() {
    if !is_root() {
        // Giving a file to another user or group takes root; CI runs as root.
        skyhost_e2e::skip("chown to another user needs root");
        return;
    }
    let (sb, p) = with_aws_copy();
    assert!(chown(&p, None, Some(4242)));
    chmod(&p, 0o664);
    refused(
        &sb,
        "aws",
        "broken",
        "refusing to load a file that its group (gid 4242) can write (mode 664)",
        "chmod g-w",
    );
    chmod(&p, 0o644);
    assert_eq!(
        entry(&sb.run(["plugins", "-o", "json"]).json(), "aws")["status"],
        "loaded",
        "read-only for the group is fine"
    );
    assert!(chown(&p, Some(4242), None));
    refused(&sb, "aws", "broken", "refusing to load a file owned by another user (uid 4242)", "chown");
}

#[test]
fn a_symlink_into_a_directory_others_can_write_is_refused() {
    let sb = Sandbox::new();
    let open = sb.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::copy(plugin("aws"), open.join("aws.so")).unwrap();
    chmod(&open.join("aws.so"), 0o644);
    chmod(&open, 0o777);
    std::os::unix::fs::symlink(open.join("aws.so"), sb.plugins().join("libskyhost_aws.so")).unwrap();
    refused(&sb, "aws", "broken", &format!("refusing to load from {}", open.display()), "chmod go-w");
}

#[test]
fn the_file_checked_is_the_file_loaded_even_if_swapped_in_between() {
    for mode in ["in-process", "process"] {
        let (sb, path) = with_aws_copy();
        // Remembered as checked: a swapped-in file would skip the layout check.
        let first = sb.run(["--isolation", mode, "plugins", "-o", "json"]);
        assert_eq!(entry(&first.json(), "aws")["status"], "loaded");
        let evil = sb.path().join("evil.so");
        std::fs::copy(fixture("layoutchanged"), &evil).unwrap();
        chmod(&evil, 0o644);
        // The audit library renames the other file over the plugin the moment
        // the dynamic loader is asked for it: after skyhost's checks.
        let run = Run::from(
            sb.command(["--isolation", mode, "show-gpus", "--infra", "aws", "A100", "-o", "json"])
                .env("LD_AUDIT", fixture("swapaudit"))
                .env("SWAP_FROM", &evil)
                .env("SWAP_TO", &path)
                .output()
                .unwrap(),
        );
        assert!(!evil.exists(), "{mode}: the swap happened");
        run.expect_code(0).expect_no_panic();
        let rows = run.json()["offerings"][0]["rows"].as_array().cloned().unwrap_or_default();
        assert!(!rows.is_empty(), "{mode}: the checked AWS file answered\n{}\n{}", run.stdout, run.stderr);
        // What is at the path now is refused by a full check.
        refused(&sb, "aws", "incompatible", "interface layout differs", "install a build");
    }
}

/// The memory's line for `path`, split into (identity, mac, description).
fn memory_line(sb: &Sandbox, path: &Path) -> (String, String, String) {
    let text = std::fs::read_to_string(sb.path().join("cache/skyhost/verified-plugins")).unwrap();
    let line = text.lines().find(|l| l.split('\t').next().unwrap().ends_with(path.to_str().unwrap())).unwrap();
    let mut parts = line.splitn(3, '\t');
    (parts.next().unwrap().into(), parts.next().unwrap().into(), parts.next().unwrap_or("").into())
}

#[test]
fn a_forged_memory_line_never_skips_the_layout_check() {
    let (sb, aws) = with_aws_copy();
    sb.run(["plugins"]).expect_code(0);
    let (aws_id, mac, json) = memory_line(&sb, &aws);
    let host = aws_id.split(' ').next().unwrap();
    let lc = sb.write_plugin_file("lc", &std::fs::read(fixture("layoutchanged")).unwrap(), 0o644);
    let m = std::fs::metadata(&lc).unwrap();
    let id = format!(
        "{host} {} {} {} {}.{} {}.{} {}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        lc.display()
    );
    let memory = sb.path().join("cache/skyhost/verified-plugins");
    for forged in [format!("{id}\t{mac}\t{json}\n"), format!("{id}\t{}\t\n", "ab".repeat(32)), format!("{id}\n")] {
        std::fs::write(&memory, format!("{aws_id}\t{mac}\t{json}\n{forged}")).unwrap();
        refused(&sb, "lc", "incompatible", "interface layout differs", "install a build");
    }
    // A memory others can write is not believed at all, and is written anew.
    chmod(&memory, 0o666);
    let json = sb.run(["plugins", "-o", "json"]).json();
    assert_eq!(entry(&json, "aws")["layout_check"], "checked");
    assert_eq!(std::fs::metadata(&memory).unwrap().mode() & 0o777, 0o600);
}

fn layout_check(sb: &Sandbox) -> String {
    entry(&sb.run(["plugins", "-o", "json"]).json(), "aws")["layout_check"].as_str().unwrap().to_string()
}

#[test]
fn the_memory_spares_the_check_only_for_the_same_file_and_host() {
    let (mut sb, aws) = with_aws_copy();
    assert_eq!(layout_check(&sb), "checked", "first run");
    assert_eq!(layout_check(&sb), "remembered", "second run: the check was skipped");

    let bytes = std::fs::read(&aws).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::fs::write(&aws, &bytes).unwrap(); // same inode, same size: new mtime and ctime
    assert_eq!(layout_check(&sb), "checked", "rewritten in place, same size");
    assert_eq!(layout_check(&sb), "remembered");

    let c = CString::new(aws.to_str().unwrap()).unwrap();
    let times = [libc::timespec { tv_sec: 1_000_000, tv_nsec: 0 }; 2];
    // SAFETY: utimensat reads a NUL-terminated path and two timespecs.
    assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) }, 0);
    assert_eq!(layout_check(&sb), "checked", "touched: new mtime (and ctime)");
    assert_eq!(layout_check(&sb), "remembered");

    let tmp = sb.plugins().join(".aws.tmp");
    std::fs::copy(&aws, &tmp).unwrap();
    std::fs::rename(&tmp, &aws).unwrap();
    assert_eq!(layout_check(&sb), "checked", "a new inode");
    assert_eq!(layout_check(&sb), "remembered");

    let new_host = sb.path().join("bin/skyhost-copy");
    std::fs::copy(&sb.bin, &new_host).unwrap();
    sb.bin = new_host;
    assert_eq!(layout_check(&sb), "checked", "a new host binary");
    assert_eq!(layout_check(&sb), "remembered");
}

#[test]
fn pinned_files_only_when_the_lock_is_required() {
    let (sb, aws) = with_aws_copy();
    let sb = sb.with_plugins(&["gcp"]);
    let lock = sb.run(["plugins", "--lock"]);
    lock.expect_code(0);
    let lock_path = sb.path().join("config/skyhost/plugins.lock");
    assert!(lock.stderr.contains(&format!("pinned 2 plugin file(s) in {}", lock_path.display())), "{}", lock.stderr);
    let text = std::fs::read_to_string(&lock_path).unwrap();
    assert!(
        text.contains("libskyhost_aws.so")
            && text.contains("libskyhost_gcp.so")
            && text.contains("interface_version = \"1.3.0\""),
        "{text}"
    );

    sb.write_config("[plugins]\nrequire_lock = true\n");
    let json = sb.run(["plugins", "-o", "json"]).json();
    assert_eq!(entry(&json, "aws")["status"], "loaded");
    let pinned = entry(&json, "aws")["sha256"].as_str().unwrap().to_string();

    // Another build in its place: refused before any of its code runs.
    std::fs::write(&aws, std::fs::read(plugin("azure")).unwrap()).unwrap();
    let json = sb.run(["plugins", "-o", "json"]).json();
    let e = entry(&json, "aws");
    assert_eq!(e["status"], "untrusted", "{e:#}");
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("but {} pins {pinned}", lock_path.display())) && reason.contains("its SHA-256 is "),
        "{reason}"
    );
    assert!(e["hint"].as_str().unwrap().contains("skyhost plugins --lock"), "{e:#}");
    let run = sb.run(["show-gpus", "--infra", "aws"]);
    run.expect_code(3);
    assert!(run.stderr.contains("untrusted"), "{}", run.stderr);

    // A file that was never pinned.
    sb.write_plugin_file("lambda", &std::fs::read(plugin("lambda")).unwrap(), 0o644);
    let json = sb.run(["plugins", "-o", "json"]).json();
    assert!(entry(&json, "lambda")["reason"].as_str().unwrap().contains("libskyhost_lambda.so is not pinned"));
    // Without require_lock, the lock is not consulted: the file loads (and is
    // then found to be Azure's plugin under AWS's name).
    sb.write_config("");
    let json = sb.run(["plugins", "-o", "json"]).json();
    assert!(entry(&json, "aws")["reason"].as_str().unwrap().contains("plugin says it is 'azure'"), "{json:#}");
}
