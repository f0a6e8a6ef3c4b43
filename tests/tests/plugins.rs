//! Discovery, loading, switches and the requirement check, with real plugin
//! files built from this workspace and real broken files.

use std::os::unix::fs::PermissionsExt;

use skyhost_e2e::{CLOUDS, Sandbox, artifact, entry, fixture, plugin, run_with_timeout};

#[test]
fn first_party_plugins_load_with_their_metadata() {
    let sb = Sandbox::new().with_plugins(&CLOUDS);
    let run = sb.run(["plugins", "-o", "json"]);
    run.expect_code(0).expect_no_panic();
    let json = run.json();
    for cloud in CLOUDS {
        let e = entry(&json, cloud);
        assert_eq!(e["status"], "loaded", "{e:#}");
        assert_eq!(e["info"]["interface_version"], "1.3.0");
        assert_eq!(e["info"]["name"], cloud);
        // Derived from the typed declarations, in their order.
        assert_eq!(e["info"]["methods"], serde_json::json!(["gpus.query", "catalog.stats", "check"]), "{e:#}");
        assert!(e["info"]["build"]["rustc"].as_str().unwrap().starts_with("rustc "), "{e:#}");
        assert!(!e["info"]["build"]["target"].as_str().unwrap().is_empty());
        assert!(e["info"]["catalog"]["file"].as_str().unwrap().ends_with("/vms.csv"));
    }
    let k = entry(&json, "kubernetes");
    assert_eq!(k["status"], "missing");
    assert!(k["hint"].as_str().unwrap().contains("libskyhost_kubernetes.so"), "{k:#}");
}

#[test]
fn every_kind_of_bad_file_gets_one_line_and_the_others_still_load() {
    let sb = Sandbox::new().with_plugins(&["aws", "gcp"]);
    let real = std::fs::read(plugin("lambda")).unwrap();
    sb.write_plugin_file("empty", b"", 0o644);
    sb.write_plugin_file("text", b"this is not a library\n", 0o644);
    let random: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    sb.write_plugin_file("random", &random, 0o644);
    sb.write_plugin_file("truncated", &real[..real.len() / 3], 0o644);
    sb.write_plugin_file("writable", &real, 0o666);
    std::fs::create_dir(sb.plugins().join("libskyhost_dir.so")).unwrap();
    let fifo = std::ffi::CString::new(sb.plugins().join("libskyhost_fifo.so").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(sb.path().join("nowhere.so"), sb.plugins().join("libskyhost_dangling.so")).unwrap();
    let sb = sb
        .with_fixture("notaplugin", "notaplugin")
        .with_fixture("ctorerror", "ctorerror")
        .with_fixture("ctorpanic", "ctorpanic")
        .with_fixture("callpanic", "callpanic")
        .with_fixture("nextmajor", "nextmajor")
        .with_fixture("layoutchanged", "layoutchanged");

    // A FIFO would block dlopen forever: the whole run must finish.
    let run = skyhost_e2e::Run::from(
        run_with_timeout(sb.command(["plugins", "-o", "json"]), std::time::Duration::from_secs(30))
            .expect("no hang on the FIFO"),
    );
    run.expect_code(0).expect_no_panic();
    let json = run.json();
    let expect = [
        ("empty", "broken", "not an ELF shared object (0 bytes"),
        ("text", "broken", "not an ELF shared object"),
        ("random", "broken", "not an ELF shared object (bad magic)"),
        ("truncated", "broken", "truncated:"),
        ("writable", "broken", "refusing to load a file that other users can write"),
        ("dir", "broken", "not a regular file (it is a directory)"),
        ("fifo", "broken", "not a regular file (it is a FIFO)"),
        ("dangling", "broken", "cannot read it"),
        ("notaplugin", "broken", "not a skyhost plugin"),
        ("ctorerror", "broken", "its constructor failed: no credentials configured for ctorerror"),
        ("ctorpanic", "broken", "its constructor panicked: ctorpanic could not start: settings missing"),
        ("nextmajor", "incompatible", "incompatible interface version: plugin speaks 2.0.0, host speaks 1.3.0"),
        ("layoutchanged", "incompatible", "interface layout differs from the host's: mismatched type"),
    ];
    for (name, status, reason) in expect {
        let e = entry(&json, name);
        assert_eq!(e["status"], status, "{name}: {e:#}");
        let r = e["reason"].as_str().unwrap();
        assert!(r.contains(reason), "{name}: reason {r:?} lacks {reason:?}");
        assert!(!r.contains('\n'), "{name}: the reason is one line: {r:?}");
        assert!(e["hint"].as_str().is_some_and(|h| !h.is_empty()), "{name} has a hint");
        assert_eq!(e["path"], sb.plugins().join(format!("libskyhost_{name}.so")).to_str().unwrap());
    }
    for good in ["aws", "gcp", "callpanic"] {
        assert_eq!(entry(&json, good)["status"], "loaded", "{good}");
    }

    // The table says the same, one line per file, naming it.
    let table = sb.run(["plugins"]);
    table.expect_code(0).expect_no_panic();
    for (name, status, _) in expect {
        let line =
            table.stdout.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} row"));
        assert!(line.contains(status) && line.contains(&format!("libskyhost_{name}.so")), "{line}");
    }
}

#[test]
fn the_loader_detail_is_shown_only_with_verbose() {
    let sb = Sandbox::new().with_fixture("layoutchanged", "layoutchanged");
    let quiet = sb.run(["plugins"]);
    assert!(!quiet.stdout.contains("Layout of expected type"), "{}", quiet.stdout);
    let verbose = sb.run(["-v", "plugins"]);
    verbose.expect_code(0);
    assert!(verbose.stdout.contains("layoutchanged loader said:"), "{}", verbose.stdout);
    assert!(verbose.stdout.contains("Search path:"));
}

#[test]
fn unreadable_files_are_reported() {
    // Root reads a file whatever its mode, so this runs as an unprivileged
    // user, in a sandbox that user can reach wherever the checkout is, with
    // copies of the plugins.
    let sb = Sandbox::new_in(&std::env::temp_dir());
    sb.write_plugin_file("aws", &std::fs::read(plugin("aws")).unwrap(), 0o755);
    let p = sb.write_plugin_file("secret", &std::fs::read(plugin("azure")).unwrap(), 0o000);
    let Some(run) = sb.run_unprivileged(["plugins", "-o", "json"]) else {
        return skyhost_e2e::skip("running as root without `setpriv` (util-linux) to drop privileges");
    };
    run.expect_code(0).expect_no_panic();
    let json = run.json();
    let e = entry(&json, "secret");
    assert_eq!(e["status"], "broken", "{e:#}");
    assert!(e["reason"].as_str().unwrap().contains("cannot read it"), "{e:#}");
    assert!(e["hint"].as_str().is_some_and(|h| !h.is_empty()), "{e:#}");
    // The readable one beside it still loads for the same user.
    assert_eq!(entry(&json, "aws")["status"], "loaded", "{json:#}");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn a_plugin_directory_that_does_not_exist_is_named() {
    let sb = Sandbox::new().with_plugins(&["aws"]);
    let missing = sb.path().join("no-such-dir");
    let run = sb.run(["--plugin-dir", missing.to_str().unwrap(), "plugins"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!(
            "warning: plugin directory {} (from --plugin-dir) cannot be read: it does not exist",
            missing.display()
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.lines().any(|l| l.starts_with("aws ") && l.contains("loaded")));
}

#[test]
fn the_first_file_on_the_path_wins_and_later_ones_are_shadowed() {
    let sb = Sandbox::new();
    let first = sb.path().join("first");
    let second = sb.path().join("second");
    let config_dir = sb.path().join("from-config");
    sb.link_plugin_into(&first, "aws", &plugin("aws"));
    sb.link_plugin_into(&second, "aws", &plugin("aws"));
    sb.link_plugin_into(&second, "gcp", &plugin("gcp"));
    sb.link_plugin_into(&config_dir, "gcp", &plugin("gcp"));
    sb.write_config(&format!("plugin_path = [\"{}\"]\n", config_dir.display()));
    // flag first, then SKYHOST_PLUGIN_PATH, then the config file.
    let env_path = format!("{}:{}", sb.path().join("nowhere").display(), second.display());
    let sb = sb.env("SKYHOST_PLUGIN_PATH", env_path);
    let run = sb.run(["--plugin-dir", first.to_str().unwrap(), "plugins", "-o", "json"]);
    run.expect_code(0);
    let json = run.json();
    assert_eq!(entry(&json, "aws")["path"], first.join("libskyhost_aws.so").to_str().unwrap());
    assert_eq!(entry(&json, "gcp")["path"], second.join("libskyhost_gcp.so").to_str().unwrap());
    let shadowed: Vec<(String, String)> = json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "shadowed")
        .map(|p| (p["path"].as_str().unwrap().to_string(), p["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        shadowed,
        vec![
            (
                second.join("libskyhost_aws.so").display().to_string(),
                format!("shadowed by {}", first.join("libskyhost_aws.so").display())
            ),
            (
                config_dir.join("libskyhost_gcp.so").display().to_string(),
                format!("shadowed by {}", second.join("libskyhost_gcp.so").display())
            ),
        ]
    );
    let origins: Vec<&str> =
        json["search_path"].as_array().unwrap().iter().map(|d| d["origin"].as_str().unwrap()).collect();
    assert_eq!(&origins[..4], ["flag", "env", "env", "config"]);
}

#[test]
fn a_cargo_build_finds_its_plugins_beside_the_binary() {
    // The real binary in target/<profile>/ (not the sandbox's copy).
    let sb = Sandbox::new();
    let mut cmd = sb.command(["plugins", "-o", "json"]);
    cmd.env_remove("SKYHOST_PLUGIN_PATH");
    let run = skyhost_e2e::Run::from(
        std::process::Command::new(artifact("skyhost"))
            .args(["plugins", "-o", "json"])
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env_remove("SKYHOST_PLUGIN_PATH")
            .output()
            .unwrap(),
    );
    run.expect_code(0);
    let json = run.json();
    assert_eq!(entry(&json, "aws")["status"], "loaded");
    assert!(json["search_path"].as_array().unwrap().iter().any(|d| d["origin"] == "build_dir"));
    // Fixtures are named libfixture_*.so, so a build never loads them by accident.
    assert!(!json.to_string().contains("ctorpanic"));
}

#[test]
fn disabled_backends_are_never_opened() {
    let sb = Sandbox::new().with_plugins(&["vast", "lambda"]);
    // Files that would hang or break the loader, named for disabled backends.
    let fifo = std::ffi::CString::new(sb.plugins().join("libskyhost_aws.so").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    sb.write_plugin_file("gcp", b"garbage", 0o644);
    sb.write_plugin_file("azure", b"garbage", 0o644);
    sb.write_config("disable = [\"azure\"]\n");
    let sb = sb.env("SKYHOST_DISABLE", "aws,lambda");
    let run = skyhost_e2e::Run::from(
        run_with_timeout(sb.command(["--disable", "gcp", "plugins", "-o", "json"]), std::time::Duration::from_secs(30))
            .expect("no hang"),
    );
    run.expect_code(0);
    let json = run.json();
    for (name, by) in [("aws", "env"), ("lambda", "env"), ("gcp", "flag"), ("azure", "config")] {
        let e = entry(&json, name);
        assert_eq!(e["status"], "disabled", "{e:#}");
        assert_eq!(e["disabled_by"][0], by, "{e:#}");
        assert!(e.get("info").is_none());
    }
    assert_eq!(entry(&json, "vast")["status"], "loaded");
    // A disabled backend that is not installed is still reported as disabled.
    let run = sb.run(["--disable", "kubernetes", "plugins", "-o", "json"]);
    assert_eq!(entry(&run.json(), "kubernetes")["status"], "disabled");
}

#[test]
fn a_needed_backend_that_is_missing_disabled_or_broken_stops_the_command() {
    let sb = Sandbox::new().with_plugins(&["aws"]);
    let missing = sb.run(["show-gpus", "--infra", "k8s"]);
    missing.expect_code(3).expect_no_panic();
    assert!(missing.stderr.starts_with("error: `show-gpus --infra kubernetes` needs the Kubernetes backend, which is not installed\nhelp: install libskyhost_kubernetes.so"), "{}", missing.stderr);
    assert!(missing.stdout.is_empty());

    let disabled = sb.run(["--disable", "aws", "show-gpus", "--infra", "aws"]);
    disabled.expect_code(3);
    assert!(disabled.stderr.contains("needs the AWS backend, which is disabled by --disable"), "{}", disabled.stderr);
    assert!(disabled.stderr.contains("help: drop `--disable aws`"), "{}", disabled.stderr);

    sb.write_plugin_file("gcp", b"not a plugin", 0o644);
    let broken = sb.run(["gpus", "list", "--infra", "gcp"]);
    broken.expect_code(3);
    assert!(
        broken.stderr.contains("`gpus list --infra gcp` needs the GCP backend, but its plugin"),
        "{}",
        broken.stderr
    );
    assert!(broken.stderr.contains("is broken: not an ELF shared object"), "{}", broken.stderr);

    let unknown = sb.run(["show-gpus", "--infra", "nosuchcloud"]);
    unknown.expect_code(2);
    assert!(unknown.stderr.contains("there is no backend named 'nosuchcloud'"), "{}", unknown.stderr);
}

#[test]
fn a_usable_backend_that_is_absent_gets_one_short_note() {
    let sb = Sandbox::new().with_plugins(&CLOUDS).with_plugins(&["slurm"]);
    let run = sb.run(["show-gpus"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with("COMMON_GPU"), "{}", run.stdout);
    assert_eq!(run.stderr.matches("skipped").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("note: skipped kubernetes (not installed)"), "{}", run.stderr);
}

#[test]
fn with_no_backend_at_all_show_gpus_says_how_to_get_one() {
    let run = Sandbox::new().run(["show-gpus"]);
    run.expect_code(3);
    assert!(run.stderr.contains("error: `show-gpus` needs a GPU backend, and none is loaded"), "{}", run.stderr);
}

#[test]
fn a_plugin_built_against_the_previous_interface_version_loads_and_answers() {
    // In either isolation mode: a worker speaks to it as the host would.
    for mode in ["process", "in-process"] {
        let sb =
            Sandbox::new().with_plugins(&["aws"]).with_fixture("prevminor", "prevminor").env("SKYHOST_ISOLATION", mode);
        let json = sb.run(["plugins", "-o", "json"]).json();
        let e = entry(&json, "prevminor");
        assert_eq!(e["status"], "loaded", "{mode}: {e:#}");
        assert_eq!(e["isolation"], mode);
        assert_eq!(e["info"]["interface_version"], "1.0.0");
        // It answers a 1.1 host's query, though its responses lack 1.1's fields.
        let run = sb.run(["show-gpus", "OLDGPU"]);
        run.expect_code(0);
        assert!(run.stdout.contains("OLDGPU  2    PrevMinor  old.2x"), "{mode}: {}", run.stdout);
        // And a method it does not have is refused with an upgrade hint.
        let check = sb.run(["check", "prevminor"]);
        assert!(
            check.stdout.contains("does not implement 'check'") || check.stderr.contains("does not implement 'check'"),
            "{mode}: {check:?}"
        );
    }
}

/// 1.3 added typed methods to the SDK; a plugin built against the frozen
/// 1.2 contract with a hand-written `Backend` loads, lists and checks.
#[test]
fn a_plugin_built_against_interface_1_2_loads_and_answers() {
    let sb = Sandbox::new().with_plugins(&["aws"]).with_fixture("lastminor", "lastminor");
    let json = sb.run(["plugins", "-o", "json"]).json();
    let e = entry(&json, "lastminor");
    assert_eq!(e["status"], "loaded", "{e:#}");
    assert_eq!(e["info"]["interface_version"], "1.2.0");
    assert_eq!(e["info"]["methods"], serde_json::json!(["gpus.query", "check"]));
    let run = sb.run(["show-gpus", "LASTGPU"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("LASTGPU  4    LastMinor  last.4x"), "{}", run.stdout);
    let check = sb.run(["check", "lastminor"]);
    check.expect_code(0).expect_no_panic();
    assert!(check.stdout.contains("built against 1.2 and answering"), "{}", check.stdout);
}

#[test]
fn a_panic_inside_a_call_becomes_a_note_and_the_others_answer() {
    let sb = Sandbox::new().with_plugins(&["aws"]).with_fixture("callpanic", "callpanic");
    let run = sb.run(["show-gpus", "H100"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("p5.48xlarge"), "{}", run.stdout);
    assert!(
        run.stderr.contains("note: the callpanic backend failed: plugin panicked: index out of bounds"),
        "{}",
        run.stderr
    );
}

#[test]
fn fifty_plugins_of_one_interface_each_load_on_their_own() {
    let sb = Sandbox::new();
    for i in 0..50 {
        // Distinct files (not links), so the loader maps fifty libraries.
        std::fs::copy(fixture("echo"), sb.plugins().join(format!("libskyhost_echo{i:02}.so"))).unwrap();
    }
    let run = sb.run(["plugins", "-o", "json"]);
    run.expect_code(0);
    let json = run.json();
    for i in 0..50 {
        let e = entry(&json, &format!("echo{i:02}"));
        assert_eq!(e["status"], "loaded", "{e:#}");
        assert_eq!(e["info"]["name"], format!("echo{i:02}"), "each file answers for itself");
    }
}

#[test]
fn a_bad_config_file_is_a_usage_error_naming_the_file() {
    let sb = Sandbox::new().with_plugins(&["aws"]);
    let path = sb.write_config("plugin_dirs = [\"/x\"]\n");
    let run = sb.run(["plugins"]);
    run.expect_code(2);
    assert!(run.stderr.starts_with(&format!("error: config file {}:", path.display())), "{}", run.stderr);
    assert!(run.stderr.contains("plugin_dirs"), "{}", run.stderr);
    let missing = sb.run(["--config", "/no/such/config.toml", "plugins"]);
    missing.expect_code(2);
    assert!(missing.stderr.contains("config file /no/such/config.toml: cannot read it"), "{}", missing.stderr);
}

#[test]
fn a_file_that_changes_after_a_good_load_is_fully_checked_again() {
    let sb = Sandbox::new();
    let path = sb.plugins().join("libskyhost_swap.so");
    std::fs::copy(fixture("echo"), &path).unwrap();
    let first = sb.run(["plugins", "-o", "json"]);
    assert_eq!(entry(&first.json(), "swap")["status"], "loaded");
    let memory = std::fs::read_to_string(sb.path().join("cache/skyhost/verified-plugins")).unwrap();
    assert!(memory.contains(path.to_str().unwrap()), "the good load is remembered: {memory}");
    // Remembered: still loads, and answers.
    let again = sb.run(["plugins", "-o", "json"]);
    assert_eq!(entry(&again.json(), "swap")["status"], "loaded");

    // Overwritten in place (same inode) with a plugin of another layout.
    std::fs::copy(fixture("layoutchanged"), &path).unwrap();
    let changed = sb.run(["plugins", "-o", "json"]);
    let json = changed.json();
    let e = entry(&json, "swap");
    assert_eq!(e["status"], "incompatible", "{e:#}");
    assert!(e["reason"].as_str().unwrap().contains("interface layout differs"), "{e:#}");
}

#[test]
fn one_file_serving_several_backends_follows_the_same_rules() {
    let sb = Sandbox::new().with_plugins(&["vast"]);
    let json = sb.run(["plugins", "-o", "json"]).json();
    for cloud in skyhost_e2e::NEOCLOUDS {
        let e = entry(&json, cloud);
        assert_eq!(e["status"], "loaded", "{e:#}");
        assert!(e["path"].as_str().unwrap().ends_with("libskyhost_neoclouds.so"));
        assert_eq!(e["info"]["name"], cloud);
    }
    // Switching some of them off leaves the others; they answer for themselves.
    let run = sb.run(["--disable", "vast,nebius", "show-gpus", "H100", "-o", "json"]);
    let json = run.json();
    let clouds: Vec<&str> =
        json["offerings"][0]["rows"].as_array().unwrap().iter().map(|r| r["backend"].as_str().unwrap()).collect();
    assert!(clouds.contains(&"hyperbolic") && !clouds.contains(&"vast") && !clouds.contains(&"nebius"), "{clouds:?}");

    // All of them off (or the file's own name): the file is never opened.
    std::fs::remove_file(sb.plugins().join("libskyhost_neoclouds.so")).unwrap();
    let fifo = std::ffi::CString::new(sb.plugins().join("libskyhost_neoclouds.so").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    for switch in ["neoclouds", "vast,nebius,hyperbolic,seeweb,yotta,mithril,verda"] {
        let run = skyhost_e2e::Run::from(
            run_with_timeout(
                sb.command(["--disable", switch, "plugins", "-o", "json"]),
                std::time::Duration::from_secs(30),
            )
            .expect("no hang"),
        );
        let json = run.json();
        for cloud in skyhost_e2e::NEOCLOUDS {
            assert_eq!(entry(&json, cloud)["status"], "disabled", "{switch}: {cloud}");
        }
    }

    // Missing: each backend says which file to install.
    let missing = Sandbox::new().run(["plugins", "-o", "json"]).json();
    let e = entry(&missing, "yotta");
    assert_eq!(e["status"], "missing");
    assert!(
        e["hint"].as_str().unwrap().contains(
            "install libskyhost_neoclouds.so (it serves vast, nebius, hyperbolic, seeweb, yotta, mithril, verda)"
        ),
        "{e:#}"
    );

    // A standalone file earlier on the path wins over the bundle's member.
    let sb = Sandbox::new().with_plugins(&["vast"]);
    let first = sb.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::copy(fixture("echo"), first.join("libskyhost_vast.so")).unwrap();
    let run = sb.run(["--plugin-dir", first.to_str().unwrap(), "plugins", "-o", "json"]);
    let json = run.json();
    assert_eq!(entry(&json, "vast")["path"], first.join("libskyhost_vast.so").to_str().unwrap());
    assert_eq!(entry(&json, "nebius")["status"], "loaded");
    assert!(json["plugins"].as_array().unwrap().iter().any(|p| p["name"] == "vast" && p["status"] == "shadowed"));
}

#[test]
fn user_data_install_prefix_build_dir_and_system_dirs_come_in_that_order() {
    let sb = Sandbox::new();
    let data = sb.path().join("data/skyhost/plugins");
    let prefix = sb.path().join("lib/skyhost/plugins");
    let system = sb.path().join("system");
    sb.link_plugin_into(&data, "aws", &plugin("aws"));
    for dir in [&prefix, &system] {
        sb.link_plugin_into(dir, "aws", &plugin("aws"));
        sb.link_plugin_into(dir, "gcp", &plugin("gcp"));
    }
    sb.link_plugin_into(&system, "lambda", &plugin("lambda"));
    let sb = sb.env("SKYHOST_SYSTEM_PLUGIN_DIRS", &system);
    let mut quiet = sb.command(["plugins", "-o", "json"]);
    quiet.env_remove("SKYHOST_PLUGIN_PATH");
    let json = skyhost_e2e::Run::from(quiet.output().unwrap()).json();
    // The sandbox's binary is <sandbox>/bin/skyhost: its prefix is the sandbox.
    assert_eq!(entry(&json, "aws")["path"], data.join("libskyhost_aws.so").to_str().unwrap());
    assert_eq!(entry(&json, "gcp")["path"], prefix.join("libskyhost_gcp.so").to_str().unwrap());
    assert_eq!(entry(&json, "lambda")["path"], system.join("libskyhost_lambda.so").to_str().unwrap());
    let origins: Vec<&str> =
        json["search_path"].as_array().unwrap().iter().map(|d| d["origin"].as_str().unwrap()).collect();
    assert_eq!(origins, ["user_data", "install", "system"]);

    // The real binary in target/<profile>/: the build directory comes after
    // the user's directory and before the system ones.
    let mut cmd = std::process::Command::new(artifact("skyhost"));
    cmd.args(["plugins", "-o", "json"]);
    for (k, v) in quiet.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let json = skyhost_e2e::Run::from(cmd.output().unwrap()).json();
    let build = skyhost_e2e::build_dir();
    assert_eq!(entry(&json, "aws")["path"], data.join("libskyhost_aws.so").to_str().unwrap());
    assert_eq!(entry(&json, "gcp")["path"], build.join("libskyhost_gcp.so").to_str().unwrap());
    assert_eq!(entry(&json, "lambda")["path"], build.join("libskyhost_lambda.so").to_str().unwrap());
    let origins: Vec<&str> =
        json["search_path"].as_array().unwrap().iter().map(|d| d["origin"].as_str().unwrap()).collect();
    assert_eq!(origins, ["user_data", "build_dir", "system"]);
    let shadowed = json["plugins"].as_array().unwrap().iter().filter(|p| p["status"] == "shadowed").count();
    assert_eq!(shadowed, 4, "aws in the build and system dirs, gcp and lambda in the system dir");
}

#[test]
fn an_unknown_key_in_any_config_table_is_a_usage_error_and_skyhost_config_names_the_file() {
    let sb = Sandbox::new().with_plugins(&["aws"]);
    for (table, key) in
        [("", "plugin_dirs"), ("[catalog]\n", "max_age"), ("[kubernetes]\n", "timeout"), ("[serve]\n", "port")]
    {
        let path = sb.write_config(&format!("{table}{key} = 1\n"));
        let run = sb.run(["plugins"]);
        run.expect_code(2).expect_no_panic();
        assert!(
            run.stderr.starts_with(&format!("error: config file {}:", path.display())),
            "{table}{key}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(&format!("unknown field `{key}`")), "{table}{key}: {}", run.stderr);
    }
    // SKYHOST_CONFIG points at another file, which is then the one read.
    let good = sb.write_config("disable = [\"aws\"]\n");
    let other = sb.path().join("other.toml");
    std::fs::write(&other, "[serve]\nnope = true\n").unwrap();
    let run = sb.run(["plugins", "-o", "json"]);
    run.expect_code(0);
    assert_eq!(entry(&run.json(), "aws")["status"], "disabled", "{}", good.display());
    let sb = sb.env("SKYHOST_CONFIG", &other);
    let run = sb.run(["plugins"]);
    run.expect_code(2);
    assert!(run.stderr.starts_with(&format!("error: config file {}:", other.display())), "{}", run.stderr);
    assert!(run.stderr.contains("unknown field `nope`"), "{}", run.stderr);
    std::fs::write(&other, "plugin_path = []\n").unwrap();
    let run = sb.run(["plugins", "-o", "json"]);
    run.expect_code(0);
    assert_eq!(entry(&run.json(), "aws")["status"], "loaded", "the default config file is not read then");
}
