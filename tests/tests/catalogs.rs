//! The cloud plugins on real CSV files: every format quirk, every query,
//! bad catalogs, and the download path against a server started here.
//!
//! Expected tables are written by hand from `tests/fixtures/catalogs/quirks`:
//! * AWS p4d.24xlarge is offered in three regions; us-east-2's on-demand
//!   price (21.95764) undercuts us-east-1's (21.957642) in the sixth decimal,
//!   so us-east-2 is the row shown, with its own spot price (6.037);
//! * GCP's A100:1 is priced with its host a2-highgpu-1g (1.61365 + 0.81406),
//!   V100:1 with the cheapest N1 host of 8+ vCPUs and 32+ GiB (n1-highmem-8),
//!   and its asia-east1 row drops out for want of a host;
//! * Vast's GpuInfo holds both RTX 5090s' memory (65214 MiB): 32GB each.

use skyhost_e2e::{
    Sandbox,
    http_files::{Fault, HttpFiles},
    shared_catalogs, workspace,
};

const QUIRK_CLOUDS: [&str; 7] = ["aws", "gcp", "azure", "lambda", "vast", "verda", "yotta"];

fn quirks() -> std::path::PathBuf {
    workspace().join("tests/fixtures/catalogs/quirks/v8")
}

fn bad() -> std::path::PathBuf {
    workspace().join("tests/fixtures/catalogs/bad/v8")
}

/// The quirk catalogs have no files for these (they come in the same plugin as vast).
const NOT_IN_QUIRKS: &str = "nebius,hyperbolic,seeweb,mithril";

fn sandbox() -> Sandbox {
    Sandbox::new()
        .with_plugins(&QUIRK_CLOUDS)
        .env("SKYHOST_CATALOG_DIR", quirks())
        .env("SKYHOST_DISABLE", NOT_IN_QUIRKS)
}

#[track_caller]
fn table(sb: &Sandbox, args: &[&str], expected: &str) {
    let run = sb.run(args);
    run.expect_code(0).expect_no_panic();
    assert_eq!(run.stdout, expected, "\n--- got\n{}\n--- expected\n{expected}", run.stdout);
}

/// COMMON_GPU and GOOGLE_TPU of the quirk catalogs, shown by default and by `-a`.
const COUNT_TABLES: &str = "\
COMMON_GPU  AVAILABLE_QUANTITIES
A10         0.167, 1
A100        1, 8
H100        8
H200        1, 8
L4          0.125
RTX5090     1, 2
V100        1

GOOGLE_TPU       AVAILABLE_QUANTITIES
tpu-v5litepod-1  1
tpu-v5p-8        1
tpu-v5p-16       1
";

#[test]
fn default_view_counts_common_gpus_and_tpus() {
    table(
        &sandbox(),
        &["show-gpus"],
        &format!(
            "{COUNT_TABLES}\nHint: use -a/--all to see all accelerators (including non-common ones) and pricing.\n"
        ),
    );
}

#[test]
fn a_name_lists_each_instance_type_at_its_cheapest_region_clouds_by_price() {
    table(
        &sandbox(),
        &["show-gpus", "H100"],
        "\
GPU   QTY  CLOUD   INSTANCE_TYPE             DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
H100  8    Lambda  gpu_8x_h100_sxm5          80GB        208    1800GB    $ 23.920      -                  europe-central-1
H100  8    Azure   Standard_ND96isr_H100_v5  -           96     1900GB    $ 98.320      $ 9.832            eastus
",
    );
    table(
        &sandbox(),
        &["show-gpus", "a100", "--infra", "aws"],
        "\
GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100  8    AWS    p4d.24xlarge   40GB        96     1152GB    $ 21.958      $ 6.037            us-east-2
",
    );
}

#[test]
fn all_regions_gives_one_row_per_region() {
    table(
        &sandbox(),
        &["show-gpus", "a100", "--all-regions"],
        "\
GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100  1    GCP    a2-highgpu-1g  40GB        12     85GB      $ 2.428       $ 1.562            europe-west4
A100  8    AWS    p4d.24xlarge   40GB        96     1152GB    $ 21.958      $ 6.037            us-east-2
A100  8    AWS    p4d.24xlarge   40GB        96     1152GB    $ 21.958      $ 2.466            us-east-1
A100  8    AWS    p4d.24xlarge   40GB        96     1152GB    $ 32.773      $ 9.100            eu-west-1
",
    );
}

#[test]
fn a_region_filter_matches_whole_region_names() {
    table(
        &sandbox(),
        &["show-gpus", "A100", "--infra", "aws/eu-west-1"],
        "\
GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100  8    AWS    p4d.24xlarge   40GB        96     1152GB    $ 32.773      $ 9.100            eu-west-1
",
    );
    // The older spelling says the same.
    table(
        &sandbox(),
        &["show-gpus", "A100", "--cloud", "aws", "--region", "EU-WEST-1"],
        "\
GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100  8    AWS    p4d.24xlarge   40GB        96     1152GB    $ 32.773      $ 9.100            eu-west-1
",
    );
    let old = sandbox().run(["show-gpus", "A100", "--cloud", "aws", "--region", "eu-west-1"]);
    assert!(
        old.stderr.starts_with("note: --cloud and --region are the older spelling; use --infra CLOUD[/REGION]"),
        "{}",
        old.stderr
    );
    let none = sandbox().run(["show-gpus", "A100", "--infra", "aws/eu-west"]);
    none.expect_code(4);
    assert!(none.stdout.starts_with("Resources 'A100' not found on AWS."), "{}", none.stdout);
}

#[test]
fn gcp_gpus_are_priced_with_their_host_and_tpus_are_grouped() {
    table(
        &sandbox(),
        &["show-gpus", "V100", "--infra", "gcp"],
        "\
GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
V100  1    GCP    n1-highmem-8   16GB        8      52GB      $ 2.953       $ 1.090            us-central1
",
    );
    table(
        &sandbox(),
        &["show-gpus", "tpu-v5p"],
        "\
GPU         QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
tpu-v5p-8   1    GCP    (attachable)   -           -      -         $ 17.838      $ 6.778            us-east5
tpu-v5p-16  1    GCP    (attachable)   -           -      -         $ 35.676      $ 13.557           us-east5
",
    );
}

#[test]
fn missing_prices_sort_last_and_show_as_a_dash() {
    table(
        &sandbox(),
        &["show-gpus", "H200"],
        "\
GPU   QTY  CLOUD  INSTANCE_TYPE   DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
H200  1    Verda  1H200.141S.44V  141GB       44     185GB     $ 3.590       $ 1.257            FIN-01
H200  8    AWS    p5e.48xlarge    140GB       192    2048GB    -             $ 19.425           us-east-1
",
    );
}

#[test]
fn utf8_regions_json_gpu_info_and_per_device_memory() {
    table(
        &sandbox(),
        &["show-gpus", "RTX5090"],
        "\
GPU      QTY  CLOUD  INSTANCE_TYPE         DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
RTX5090  1    Yotta  1x14v119g_RTX_5090    32GB        14     119GB     $ 0.650       -                  us-east-2
RTX5090  2    Vast   2x-RTX_5090-32-65536  32GB        32     64GB      $ 0.930       $ 0.000            Hafnarfjarðarkaupstaður, IS, EU
",
    );
}

#[test]
fn a_quantity_is_exact_and_a_name_is_a_case_insensitive_pattern() {
    // "a10" also matches A100; quantity 1 keeps A10:1 (not 0.167) and A100:1.
    table(
        &sandbox(),
        &["show-gpus", "a10:1"],
        "\
GPU  QTY  CLOUD  INSTANCE_TYPE            DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A10  1    Azure  Standard_NV36ads_A10_v5  -           36     440GB     $ 3.200       $ 0.640            eastus

GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100  1    GCP    a2-highgpu-1g  40GB        12     85GB      $ 2.428       $ 1.562            europe-west4
",
    );
    table(
        &sandbox(),
        &["show-gpus", "^A10$"],
        "\
GPU  QTY    CLOUD  INSTANCE_TYPE            DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A10  0.167  Azure  Standard_NV6ads_A10_v5   -           6      55GB      $ 0.454       $ 0.091            eastus
A10  1      Azure  Standard_NV36ads_A10_v5  -           36     440GB     $ 3.200       $ 0.640            eastus
",
    );
}

#[test]
fn all_shows_every_accelerator_with_prices_and_no_region() {
    table(
        &sandbox(),
        &["show-gpus", "-a"],
        &(COUNT_TABLES.to_string()
            + "\n\
OTHER_GPU  AVAILABLE_QUANTITIES

GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
A100  1    GCP    a2-highgpu-1g  40GB        12     85GB      $ 2.428       $ 1.562
A100  8    AWS    p4d.24xlarge   40GB        96     1152GB    $ 21.958      $ 6.037

GPU   QTY  CLOUD  INSTANCE_TYPE   DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
H200  1    Verda  1H200.141S.44V  141GB       44     185GB     $ 3.590       $ 1.257
H200  8    AWS    p5e.48xlarge    140GB       192    2048GB    -             $ 19.425

GPU  QTY    CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
L4   0.125  AWS    g6f.large      3GB         2      8GB       $ 0.200       $ 0.090

GPU  QTY    CLOUD  INSTANCE_TYPE            DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
A10  0.167  Azure  Standard_NV6ads_A10_v5   -           6      55GB      $ 0.454       $ 0.091
A10  1      Azure  Standard_NV36ads_A10_v5  -           36     440GB     $ 3.200       $ 0.640

GPU   QTY  CLOUD   INSTANCE_TYPE             DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
H100  8    Lambda  gpu_8x_h100_sxm5          80GB        208    1800GB    $ 23.920      -
H100  8    Azure   Standard_ND96isr_H100_v5  -           96     1900GB    $ 98.320      $ 9.832

GPU   QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
V100  1    GCP    n1-highmem-8   16GB        8      52GB      $ 2.953       $ 1.090

GPU              QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
tpu-v5litepod-1  1    GCP    (attachable)   -           -      -         $ 1.200       $ 0.540

GPU         QTY  CLOUD  INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
tpu-v5p-8   1    GCP    (attachable)   -           -      -         $ 17.838      $ 6.778
tpu-v5p-16  1    GCP    (attachable)   -           -      -         $ 35.676      $ 13.557

GPU      QTY  CLOUD  INSTANCE_TYPE         DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE
RTX5090  1    Yotta  1x14v119g_RTX_5090    32GB        14     119GB     $ 0.650       -
RTX5090  2    Vast   2x-RTX_5090-32-65536  32GB        32     64GB      $ 0.930       $ 0.000
"),
    );
}

#[test]
fn bad_catalogs_fail_alone_and_the_others_answer() {
    let sb = Sandbox::new()
        .with_plugins(&["aws", "azure", "lambda", "vast"])
        .env("SKYHOST_CATALOG_DIR", bad())
        .env("SKYHOST_DISABLE", "nebius,hyperbolic,seeweb,yotta,mithril,verda");
    let run = sb.run(["show-gpus", "A100"]);
    run.expect_code(0).expect_no_panic();
    assert_eq!(
        run.stdout,
        "\
GPU   QTY  CLOUD   INSTANCE_TYPE  DEVICE_MEM  vCPUs  HOST_MEM  HOURLY_PRICE  HOURLY_SPOT_PRICE  REGION
A100  1    Lambda  gpu_1x_a100    40GB        30     200GB     $ 1.290       -                  us-east-1
A100  2    Lambda  gpu_2x_a100    40GB        60     400GB     $ 2.580       -                  us-east-1
"
    );
    let aws = bad().join("aws/vms.csv");
    assert!(
        run.stderr
            .contains(&format!("note: the aws backend failed: {}: missing required column 'Price'", aws.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: this is not a SkyPilot v8 catalog"), "{}", run.stderr);
    let lambda = bad().join("lambda/vms.csv");
    assert!(
        run.stderr.contains(&format!(
            "note: {}: skipped 2 malformed rows (first at line 3: AcceleratorCount is not a number: 'one')",
            lambda.display()
        )),
        "{}",
        run.stderr
    );
    // Empty and header-only files are "no offerings", not errors.
    assert!(!run.stderr.contains("azure") && !run.stderr.contains("vast"), "{}", run.stderr);

    let check = sb.run(["check", "aws", "azure"]);
    check.expect_code(1);
    assert!(check.stdout.contains("AWS: not usable"), "{}", check.stdout);
    assert!(check.stdout.contains("missing required column 'Price'"), "{}", check.stdout);
    assert!(check.stdout.contains("Azure: ok"), "{}", check.stdout);
}

fn cache_file(sb: &Sandbox, cloud: &str) -> std::path::PathBuf {
    sb.path().join(format!("cache/skyhost/catalogs/v8/{cloud}/vms.csv"))
}

fn online(sb: Sandbox, server: &HttpFiles) -> Sandbox {
    sb.env("SKYHOST_OFFLINE", "0").env("SKYHOST_CATALOG_URL", server.url())
}

#[test]
fn catalog_update_downloads_into_the_cache_and_status_reports_it() {
    let server = HttpFiles::start(quirks().parent().unwrap().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws", "lambda", "gcp"]), &server);
    let run = sb.run(["catalog", "update", "aws", "lambda"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "aws: updated, 7 rows\nlambda: updated, 1 rows\n");
    assert_eq!(std::fs::read(cache_file(&sb, "aws")).unwrap(), std::fs::read(quirks().join("aws/vms.csv")).unwrap());
    assert!(server.requests().contains(&"/v8/aws/vms.csv".to_string()));

    let status = sb.run(["catalog", "status", "-o", "json"]);
    status.expect_code(0);
    let json = status.json();
    let row = |cloud: &str| json["catalogs"].as_array().unwrap().iter().find(|c| c["cloud"] == cloud).unwrap().clone();
    assert_eq!(row("aws")["source"], "cache");
    assert_eq!(row("aws")["rows"], 7);
    assert_eq!(row("gcp")["source"], "embedded");
    assert!(row("gcp")["embedded_date"].as_str().is_some());

    // show-gpus now reads the downloaded AWS catalog.
    let listing = sb.run(["show-gpus", "A100", "--infra", "aws"]);
    assert!(listing.stdout.contains("$ 21.958      $ 6.037            us-east-2"), "{}", listing.stdout);
}

#[test]
fn a_failed_or_partial_download_never_replaces_the_cached_copy() {
    let server = HttpFiles::start(quirks().parent().unwrap().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws"]), &server);
    sb.run(["catalog", "update", "aws"]).expect_code(0);
    let good = std::fs::read(cache_file(&sb, "aws")).unwrap();

    server.fault("/v8/aws/vms.csv", Fault::Status(500));
    let run = sb.run(["catalog", "update", "aws"]);
    run.expect_code(1);
    assert!(run.stdout.starts_with("aws: failed: cannot download"), "{}", run.stdout);
    assert!(run.stdout.contains("500"), "{}", run.stdout);
    assert_eq!(std::fs::read(cache_file(&sb, "aws")).unwrap(), good);

    server.fault("/v8/aws/vms.csv", Fault::CutAfter(300));
    let run = sb.run(["catalog", "update", "aws"]);
    run.expect_code(1);
    assert!(run.stdout.contains("broke off"), "{}", run.stdout);
    assert_eq!(std::fs::read(cache_file(&sb, "aws")).unwrap(), good);
    let leftovers: Vec<_> = std::fs::read_dir(cache_file(&sb, "aws").parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_download_that_is_not_a_catalog_is_rejected() {
    let server = HttpFiles::start(bad().parent().unwrap().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws"]), &server);
    let run = sb.run(["catalog", "update", "aws"]);
    run.expect_code(1);
    assert!(run.stdout.contains("is not a usable catalog"), "{}", run.stdout);
    assert!(run.stdout.contains("missing required column 'Price'"), "{}", run.stdout);
    assert!(!cache_file(&sb, "aws").exists());
}

#[test]
fn stale_catalogs_refresh_on_use_and_a_failure_warns_once() {
    let server = HttpFiles::start(quirks().parent().unwrap().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws"]), &server);
    sb.write_config("[catalog]\nmax_age_hours = 0\n");
    // No cache yet: the first listing downloads.
    let first = sb.run(["show-gpus", "A100"]);
    first.expect_code(0);
    assert!(first.stdout.contains("us-east-2"), "{}", first.stdout);
    assert_eq!(server.requests().len(), 1);

    // Stale again (max age 0) and the server now fails: the cached copy
    // answers and one note says why.
    server.fault("/v8/aws/vms.csv", Fault::Status(503));
    let second = sb.run(["show-gpus", "A100"]);
    second.expect_code(0);
    assert!(second.stdout.contains("us-east-2"), "{}", second.stdout);
    assert_eq!(second.stderr.matches("could not refresh").count(), 1, "{}", second.stderr);
    assert!(second.stderr.contains("could not refresh the catalogs of aws"), "{}", second.stderr);
    assert_eq!(server.requests().len(), 2);

    // Right after a failure skyhost neither retries on its own nor warns again.
    let third = sb.run(["show-gpus", "A100"]);
    third.expect_code(0);
    assert!(!third.stderr.contains("could not refresh"), "{}", third.stderr);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn without_network_the_first_run_uses_the_embedded_catalogs() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sb = Sandbox::new()
        .with_plugins(&["aws", "lambda"])
        .env("SKYHOST_OFFLINE", "0")
        .env("SKYHOST_CATALOG_URL", format!("http://127.0.0.1:{port}"));
    let run = sb.run(["show-gpus", "H100"]);
    run.expect_code(0);
    assert!(run.stdout.contains("p5.48xlarge") && run.stdout.contains("gpu_8x_h100_sxm5"), "{}", run.stdout);
    assert_eq!(run.stderr.matches("could not refresh").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("could not refresh the catalogs of aws, lambda"), "{}", run.stderr);
}

#[test]
fn offline_forbids_update() {
    let run = Sandbox::new().with_plugins(&["aws"]).run(["catalog", "update"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--offline"), "{}", run.stderr);
}

/// Every file of the shared snapshot loads, row counts as its README says.
#[test]
fn every_shared_catalog_file_loads() {
    let Some(dir) = shared_catalogs() else {
        return skyhost_e2e::skip("../shared/catalogs/v8 is not on this machine");
    };
    let clouds =
        ["aws", "azure", "gcp", "lambda", "vast", "nebius", "seeweb", "verda", "yotta", "mithril", "hyperbolic"];
    let sb = Sandbox::new().with_plugins(&clouds).env("SKYHOST_CATALOG_DIR", &dir);
    let run = sb.run(["catalog", "status", "-o", "json"]);
    run.expect_code(0);
    let json = run.json();
    let expected_rows = [
        ("aws", 223),
        ("azure", 56671),
        ("gcp", 31285),
        ("lambda", 425),
        ("vast", 67),
        ("nebius", 61),
        ("seeweb", 75),
        ("verda", 33),
        ("yotta", 8),
        ("mithril", 4),
        ("hyperbolic", 3),
    ];
    for (cloud, rows) in expected_rows {
        let c = json["catalogs"].as_array().unwrap().iter().find(|c| c["cloud"] == cloud).unwrap();
        assert_eq!(c["source"], "dir", "{c:#}");
        assert_eq!(c["rows"], rows, "{c:#}");
        assert_eq!(c["skipped_rows"], 0, "{c:#}");
    }
    for args in [&["show-gpus", "-a"][..], &["show-gpus", "A100"], &["show-gpus", "H100:8", "--all-regions"]] {
        let run = sb.run(args);
        run.expect_code(0).expect_no_panic();
        assert!(!run.stderr.contains("malformed"), "{}", run.stderr);
    }
}

#[test]
fn a_catalog_directory_without_a_clouds_file_falls_back_and_says_so() {
    let dir = Sandbox::new();
    let catalogs = dir.path().join("My Catalogs/v8");
    std::fs::create_dir_all(catalogs.join("aws")).unwrap();
    std::fs::copy(quirks().join("aws/vms.csv"), catalogs.join("aws/vms.csv")).unwrap();
    let sb = Sandbox::new().with_plugins(&["aws", "lambda"]).env("SKYHOST_CATALOG_DIR", &catalogs);
    let run = sb.run(["show-gpus", "H100"]);
    run.expect_code(0);
    assert!(run.stdout.contains("gpu_8x_h100_sxm5"), "lambda answers from its embedded catalog: {}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "note: the catalog directory has no {}; used the embedded copy instead",
            catalogs.join("lambda/vms.csv").display()
        )),
        "{}",
        run.stderr
    );
    let status = sb.run(["catalog", "status"]);
    assert!(status.stdout.lines().any(|l| l.starts_with("aws ") && l.contains(" dir ")), "{}", status.stdout);
    assert!(status.stdout.lines().any(|l| l.starts_with("lambda ") && l.contains(" embedded ")), "{}", status.stdout);
}

/// Sets the modification time of `path` to `hours` ago.
fn age(path: &std::path::Path, hours: f64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs_f64(hours * 3600.0);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
}

fn marker(sb: &Sandbox, cloud: &str) -> std::path::PathBuf {
    let mut p = cache_file(sb, cloud).into_os_string();
    p.push(".failed");
    p.into()
}

#[test]
fn after_a_failed_download_skyhost_waits_an_hour_then_tries_again() {
    let server = HttpFiles::start(quirks().parent().unwrap().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws"]), &server);
    sb.write_config("[catalog]\nmax_age_hours = 0\n");
    server.fault("/v8/aws/vms.csv", Fault::Status(503));
    let failed = sb.run(["show-gpus", "A100"]);
    failed.expect_code(0);
    assert!(failed.stderr.contains("could not refresh the catalogs of aws"), "{}", failed.stderr);
    assert!(marker(&sb, "aws").is_file(), "the failure is remembered");
    assert_eq!(server.requests().len(), 1);

    // 59 minutes later: still waiting.
    age(&marker(&sb, "aws"), 59.0 / 60.0);
    sb.run(["show-gpus", "A100"]).expect_code(0);
    assert_eq!(server.requests().len(), 1);
    // `catalog update` does not wait.
    sb.run(["catalog", "update", "aws"]).expect_code(1);
    assert_eq!(server.requests().len(), 2);

    // Over an hour later it tries on its own; a success removes the marker.
    server.heal();
    age(&marker(&sb, "aws"), 61.0 / 60.0);
    let retried = sb.run(["show-gpus", "A100"]);
    retried.expect_code(0);
    assert!(!retried.stderr.contains("could not refresh"), "{}", retried.stderr);
    assert_eq!(server.requests().len(), 3);
    assert!(cache_file(&sb, "aws").is_file());
    assert!(!marker(&sb, "aws").exists(), "a success removes the marker");
}

#[test]
fn cached_catalogs_refresh_after_seven_hours_and_seeweb_after_eight() {
    // A catalog server with an AWS and a Seeweb file.
    let root = Sandbox::new();
    for (cloud, from) in [
        ("aws", quirks().join("aws/vms.csv")),
        ("seeweb", skyhost_e2e::workspace().join("plugins/neoclouds/catalog/seeweb/vms.csv")),
    ] {
        std::fs::create_dir_all(root.path().join(format!("v8/{cloud}"))).unwrap();
        std::fs::copy(from, root.path().join(format!("v8/{cloud}/vms.csv"))).unwrap();
    }
    let server = HttpFiles::start(root.path().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws", "seeweb"]), &server);
    sb.run(["catalog", "update", "aws", "seeweb"]).expect_code(0);
    let asked = |cloud: &str| server.requests().iter().filter(|r| r.contains(&format!("/{cloud}/"))).count();
    assert_eq!((asked("aws"), asked("seeweb")), (1, 1));

    let list = || sb.run(["show-gpus", "-a"]).expect_code(0).stdout.clone();
    // 6.9 hours old: both fresh.
    age(&cache_file(&sb, "aws"), 6.9);
    age(&cache_file(&sb, "seeweb"), 6.9);
    list();
    assert_eq!((asked("aws"), asked("seeweb")), (1, 1));
    // 7.5 hours old: AWS refreshes, Seeweb (8 hours, as SkyPilot) does not.
    age(&cache_file(&sb, "aws"), 7.5);
    age(&cache_file(&sb, "seeweb"), 7.5);
    list();
    assert_eq!((asked("aws"), asked("seeweb")), (2, 1));
    // 8.5 hours old: Seeweb refreshes too.
    age(&cache_file(&sb, "seeweb"), 8.5);
    list();
    assert_eq!((asked("aws"), asked("seeweb")), (2, 2));
}

#[test]
fn auto_update_false_never_downloads_on_its_own() {
    let server = HttpFiles::start(quirks().parent().unwrap().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws"]), &server);
    sb.write_config("[catalog]\nauto_update = false\n");
    // No cached copy: the embedded catalog answers, nothing is fetched.
    let run = sb.run(["show-gpus", "A100"]);
    run.expect_code(0);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    let status = sb.run(["catalog", "status", "-o", "json"]).json();
    assert_eq!(status["catalogs"][0]["source"], "embedded", "{status:#}");
    // An explicit update still downloads; a stale copy is then used as is.
    sb.run(["catalog", "update", "aws"]).expect_code(0);
    assert_eq!(server.requests().len(), 1);
    age(&cache_file(&sb, "aws"), 100.0);
    let run = sb.run(["show-gpus", "A100"]);
    run.expect_code(0);
    assert!(run.stdout.contains("us-east-2"), "the cached copy answers: {}", run.stdout);
    assert_eq!(server.requests().len(), 1);
}

/// A catalog directory holding the quirk catalogs of `clouds`, with `extra`
/// rows appended to AWS's.
fn catalogs_with_aws_rows(sb: &Sandbox, clouds: &[&str], extra: &str) -> std::path::PathBuf {
    let dir = sb.path().join("catalogs/v8");
    for cloud in clouds {
        std::fs::create_dir_all(dir.join(cloud)).unwrap();
        std::fs::copy(quirks().join(cloud).join("vms.csv"), dir.join(cloud).join("vms.csv")).unwrap();
    }
    let aws = dir.join("aws/vms.csv");
    let mut text = std::fs::read_to_string(&aws).unwrap();
    text.push_str(extra);
    std::fs::write(&aws, text).unwrap();
    dir
}

/// Issue #10: a downloaded catalog is network input. A `GpuInfo` nested
/// hundreds of thousands of brackets deep used to overflow the stack and kill
/// skyhost; now such rows are skipped and counted, and everything else lists.
#[test]
fn hostile_catalog_rows_are_skipped_and_counted_and_the_rest_is_listed() {
    let gpu_info = |gpus: &str| format!("\"{{'Gpus': {gpus}}}\"");
    let v100 = gpu_info("[{'Name': 'V100', 'Count': 1, 'MemoryInfo': {'SizeInMiB': 16384}}]");
    let rows = [
        // line 9: a price no float holds
        format!("p3.inf,V100,1.0,8.0,61.0,{v100},1e999,0.9,us-east-1,use1-az1,x86_64,\n"),
        // line 10: hundreds of thousands of brackets
        format!("p3.deep,V100,1.0,8.0,61.0,{},3.06,0.9,us-east-1,use1-az1,x86_64,\n", gpu_info(&"[".repeat(300_000))),
        // line 11: fewer brackets than the length limit, still far too deep for a stack
        format!("p3.deeper,V100,1.0,8.0,61.0,{},3.06,0.9,us-east-1,use1-az1,x86_64,\n", gpu_info(&"[".repeat(60_000))),
        // line 12: a 10 MB field
        format!("{},V100,1.0,8.0,61.0,{v100},3.06,0.9,us-east-1,use1-az1,x86_64,\n", "p".repeat(10 << 20)),
        // line 13: a negative count
        format!("p3.neg,V100,-1,8.0,61.0,{v100},3.06,0.9,us-east-1,use1-az1,x86_64,\n"),
        // line 14: missing values as pandas writes and reads them: listed, with dashes
        format!("p3.2xlarge,V100,1.0,NA,None,{v100},N/A,null,us-east-1,use1-az1,nan,\n"),
    ]
    .concat();
    let sb = Sandbox::new().with_plugins(&["aws", "lambda"]).env("SKYHOST_DISABLE", NOT_IN_QUIRKS);
    let dir = catalogs_with_aws_rows(&sb, &["aws", "lambda"], &rows);
    let sb = sb.env("SKYHOST_CATALOG_DIR", &dir);
    let note = format!(
        "note: {}: skipped 5 malformed rows (first at line 9: Price is not a finite number: '1e999')",
        dir.join("aws/vms.csv").display()
    );

    // The command of the report.
    let run = sb.run(["show-gpus", "--infra", "aws"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stdout.starts_with(
            "COMMON_GPU  AVAILABLE_QUANTITIES\nA100        8\nH200        8\nL4          0.125\nV100        1\n"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains(&note), "{}", run.stderr);
    assert!(run.stderr.len() < 2000, "messages quote fields briefly: {} bytes", run.stderr.len());

    // Every cloud answers; the row of missing values lists with dashes.
    let run = sb.run(["show-gpus", "-a"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("H100  8    Lambda"), "{}", run.stdout);
    assert!(
        run.stdout.contains("V100  1    AWS    p3.2xlarge     16GB        -      -         -             -"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains(&note), "{}", run.stderr);

    // `catalog status` counts them too.
    let status = sb.run(["catalog", "status", "-o", "json"]);
    status.expect_code(0).expect_no_panic();
    let aws = status.json()["catalogs"].as_array().unwrap().iter().find(|c| c["cloud"] == "aws").unwrap().clone();
    assert_eq!((aws["rows"].as_u64(), aws["skipped_rows"].as_u64()), (Some(13), Some(5)), "{aws:#}");
}

#[test]
fn catalogs_are_downloaded_only_over_https_or_from_loopback() {
    // Plain http to anywhere but loopback is refused before any connection
    // (the host name cannot resolve either: .invalid is reserved).
    let sb = Sandbox::new()
        .with_plugins(&["aws"])
        .env("SKYHOST_OFFLINE", "0")
        .env("SKYHOST_CATALOG_URL", "http://catalogs.invalid/catalogs");
    let refusal = "refused http://catalogs.invalid/catalogs/v8/aws/vms.csv: catalogs are downloaded only over https \
                   (plain http only from a loopback address); set SKYHOST_CATALOG_URL or `url` under [catalog] to an https URL";
    let run = sb.run(["catalog", "update", "aws"]);
    run.expect_code(1).expect_no_panic();
    assert!(run.stdout.starts_with(&format!("aws: failed: {refusal}")), "{}", run.stdout);
    // A listing answers from the embedded catalog and says why, every time
    // until the setting is fixed.
    for _ in 0..2 {
        let listing = sb.run(["show-gpus", "H100"]);
        listing.expect_code(0).expect_no_panic();
        assert!(listing.stdout.contains("p5.48xlarge"), "{}", listing.stdout);
        assert!(listing.stderr.contains(refusal), "{}", listing.stderr);
    }
    assert!(!cache_file(&sb, "aws").exists());

    // A loopback server that redirects to plain http elsewhere: refused, and
    // the target is never asked.
    let root = quirks().parent().unwrap().parent().unwrap().to_path_buf();
    let server = HttpFiles::start(root);
    let sb = Sandbox::new()
        .with_plugins(&["aws"])
        .env("SKYHOST_OFFLINE", "0")
        .env("SKYHOST_CATALOG_URL", format!("{}/old", server.url()));
    server.fault("/old/v8/aws/vms.csv", Fault::Redirect("http://catalogs.invalid/v8/aws/vms.csv".into()));
    let run = sb.run(["catalog", "update", "aws"]);
    run.expect_code(1).expect_no_panic();
    assert!(
        run.stdout.starts_with(&format!(
            "aws: failed: refused {}/old/v8/aws/vms.csv: it redirects to http://catalogs.invalid/v8/aws/vms.csv, which is not https; \
             set SKYHOST_CATALOG_URL or `url` under [catalog] to an https URL that serves the catalogs",
            server.url()
        )),
        "{}",
        run.stdout
    );
    assert!(!cache_file(&sb, "aws").exists());

    // A redirect within the loopback server is followed.
    server.fault("/old/v8/aws/vms.csv", Fault::Redirect("/quirks/v8/aws/vms.csv".into()));
    let run = sb.run(["catalog", "update", "aws"]);
    run.expect_code(0).expect_no_panic();
    assert_eq!(run.stdout, "aws: updated, 7 rows\n");
    assert_eq!(
        server.requests(),
        ["/old/v8/aws/vms.csv", "/old/v8/aws/vms.csv", "/quirks/v8/aws/vms.csv"].map(String::from).to_vec()
    );
}

#[test]
fn concurrent_requests_for_a_stale_catalog_download_it_once() {
    let files = HttpFiles::start(quirks().parent().unwrap().to_path_buf());
    let sb = online(Sandbox::new().with_plugins(&["aws"]), &files);
    sb.write_config("[serve]\ncache_ttl_secs = 0\n");
    let server = sb.serve(&[]);
    let path = "/v8/aws/vms.csv";
    let downloads = || files.requests().iter().filter(|p| *p == path).count();
    files.fault(path, Fault::Hold);
    std::thread::scope(|s| {
        // Two different queries (the server's answer cache does not join
        // them) that both find the AWS catalog stale.
        let first = s.spawn(|| server.get("/v1/gpus?infra=aws&name=A100"));
        skyhost_e2e::wait_until("the first download to start", || downloads() == 1);
        let second = s.spawn(|| server.get("/v1/gpus?infra=aws&name=H100"));
        skyhost_e2e::wait_until("the second request to be read", || server.connections_read() >= 2);
        // Not a wait for something to happen: room for a second download
        // to be asked for, which the test then proves did not happen.
        std::thread::sleep(std::time::Duration::from_millis(300));
        files.heal();
        files.release();
        assert_eq!(first.join().unwrap().0, 200);
        assert_eq!(second.join().unwrap().0, 200);
    });
    assert_eq!(downloads(), 1, "one download for two requests");
    assert_eq!(std::fs::read(cache_file(&sb, "aws")).unwrap(), std::fs::read(quirks().join("aws/vms.csv")).unwrap());
    let dir = cache_file(&sb, "aws").parent().unwrap().to_path_buf();
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["vms.csv"], "no temporary file or failure marker left");
}

/// Issue 11: catalogs are named by the same GPU table as clusters. A row
/// called `A100` whose `GpuInfo` says 80 GB is the `A100-80GB` (as Seeweb
/// writes it), and a name filter matches by identity: SkyPilot's GFD name
/// `H100-80GB` and GKE's `nvidia-h200-141gb` find the catalogs' rows.
#[test]
fn catalog_names_are_the_gpu_tables_and_filters_match_by_identity() {
    let gpu_info =
        |mib: u32| format!("\"{{'Gpus': [{{'Name': 'A100', 'Count': 8, 'MemoryInfo': {{'SizeInMiB': {mib}}}}}]}}\"");
    let rows = [
        format!("p4x.24xlarge,A100,8.0,96.0,1152.0,{},30.0,9.0,us-east-1,use1-az1,x86_64,\n", gpu_info(81920)),
        format!("p5x.48xlarge,H100,8.0,192.0,2048.0,{},98.0,9.8,us-east-1,use1-az1,x86_64,\n", gpu_info(81920)),
    ]
    .concat();
    let sb = Sandbox::new().with_plugins(&["aws"]).env("SKYHOST_DISABLE", NOT_IN_QUIRKS);
    let dir = catalogs_with_aws_rows(&sb, &["aws"], &rows);
    let sb = sb.env("SKYHOST_CATALOG_DIR", &dir);

    let run = sb.run(["show-gpus", "A100-80GB", "--infra", "aws"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("p4x.24xlarge"), "{}\n{}", run.stdout, run.stderr);
    // The 40 GB A100s of the same catalog are another GPU.
    assert!(!run.stdout.contains("p4d.24xlarge"), "{}", run.stdout);

    let run = sb.run(["show-gpus", "H100-80GB", "--infra", "aws"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("p5x.48xlarge"), "{}\n{}", run.stdout, run.stderr);
    let run = sb.run(["show-gpus", "nvidia-h200-141gb", "--infra", "aws"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("H200"), "{}\n{}", run.stdout, run.stderr);
}
