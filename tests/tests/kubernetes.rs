//! The Kubernetes plugin against the API double: label conventions, free-GPU
//! arithmetic, node states, faults, several contexts and kubeconfigs.

use skyhost_e2e::{
    CLOUDS, Sandbox,
    kube_api::{ClusterSpec, GATEWAY_PATH, KubeApi, kubeconfig, kubeconfig_trusting, node, pod, tls_fixture},
    proxy::{Kind, Proxy},
};

const TOKEN: &str = "s3cret-token";

/// A sandbox with the Kubernetes plugin and a kubeconfig for `contexts`.
fn sandbox(contexts: &[(&str, &str, &str)], current: Option<&str>) -> Sandbox {
    sandbox_with_kubeconfig(&kubeconfig(contexts, current)).0
}

/// A sandbox with the Kubernetes plugin and `KUBECONFIG` naming a file that
/// holds `text`; the file, for the test to rewrite.
fn sandbox_with_kubeconfig(text: &str) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let path = sb.path().join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    (sb.env("KUBECONFIG", &path), path)
}

fn one_context(cluster: ClusterSpec) -> (KubeApi, Sandbox) {
    let api = KubeApi::start(ClusterSpec { token: Some(TOKEN.into()), ..cluster });
    let url = api.url();
    let sb = sandbox(&[("prod", &url, TOKEN)], Some("prod"));
    (api, sb)
}

#[test]
fn gpu_types_free_counts_and_node_states() {
    let cluster = ClusterSpec {
        nodes: vec![
            node("gpu-a").gpus("nvidia.com/gpu", 8).label("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3").0,
            node("gpu-b").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0,
            node("gpu-c")
                .gpus("nvidia.com/gpu", 2)
                .label("cloud.google.com/gke-accelerator", "nvidia-l4")
                .not_ready()
                .0,
            node("cpu-1").0,
        ],
        pods: vec![
            pod("train", "ml", Some("gpu-b")).requests(&[("nvidia.com/gpu", "3"), ("cpu", "2"), ("memory", "4Gi")]).0,
            pod("done", "ml", Some("gpu-b")).requests(&[("nvidia.com/gpu", "4")]).phase("Succeeded").0,
        ],
        token: None,
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert_eq!(
        run.stdout,
        "\
Kubernetes GPUs
Context: prod
GPU   REQUESTABLE_QTY_PER_NODE  UTILIZATION
H100  1, 2, 4, 8                13 of 16 free
L4    1, 2                      0 of 0 free (2 not ready)

Kubernetes per-node GPU availability
CONTEXT  NODE   vCPU         Memory (GB)    GPU   GPU UTILIZATION  NODE STATUS
prod     gpu-a  8 of 8 free  32 of 32 free  H100  8 of 8 free      Healthy
prod     gpu-b  6 of 8 free  28 of 32 free  H100  5 of 8 free      Healthy
prod     gpu-c  8 of 8 free  32 of 32 free  L4    0 of 2 free      NotReady
prod     cpu-1  8 of 8 free  32 of 32 free  -     0 of 0 free      Healthy
",
    );
}

#[test]
fn every_label_convention_and_a_cluster_that_mixes_them() {
    let cluster = ClusterSpec {
        nodes: vec![
            node("skypilot").gpus("nvidia.com/gpu", 1).label("skypilot.co/accelerator", "a100-80gb").0,
            node("gke").gpus("nvidia.com/gpu", 1).label("cloud.google.com/gke-accelerator", "nvidia-tesla-t4").0,
            node("gke-h100").gpus("nvidia.com/gpu", 8).label("cloud.google.com/gke-accelerator", "nvidia-h100-80gb").0,
            node("karpenter").gpus("nvidia.com/gpu", 4).label("karpenter.k8s.aws/instance-gpu-name", "a10g").0,
            node("gfd").gpus("nvidia.com/gpu", 8).label("nvidia.com/gpu.product", "NVIDIA-L40S-48GB").0,
            node("gfd-l4").gpus("nvidia.com/gpu", 1).label("nvidia.com/gpu.product", "NVIDIA-L4-24GB").0,
            node("coreweave").gpus("nvidia.com/gpu", 8).label("gpu.nvidia.com/class", "H100_NVLINK_80GB").0,
            node("nebius").gpus("nvidia.com/gpu", 8).label("nebius.com/gpu-name", "H200").0,
            node("amd").gpus("amd.com/gpu", 8).label("amd.com/gpu.product-name", "AMD_Instinct_MI300X_OAM").0,
            node("amd-beta").gpus("amd.com/gpu", 8).label("beta.amd.com/gpu.product-name", "AMD Instinct MI250X").0,
            node("tpu")
                .gpus("google.com/tpu", 4)
                .label("cloud.google.com/gke-tpu-accelerator", "tpu-v5-lite-podslice")
                .label("cloud.google.com/gke-tpu-topology", "2x2")
                .0,
            node("tpu-multihost")
                .gpus("google.com/tpu", 4)
                .label("cloud.google.com/gke-tpu-accelerator", "tpu-v5p-slice")
                .label("cloud.google.com/gke-tpu-topology", "4x4x4")
                .0,
            // Two conventions on one node: SkyPilot's label wins over GFD's.
            node("both")
                .gpus("nvidia.com/gpu", 2)
                .label("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB")
                .label("skypilot.co/accelerator", "b200")
                .0,
            node("unlabeled").gpus("nvidia.com/gpu", 2).0,
        ],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    let table: String = run.stdout.split("\n\n").next().unwrap().to_string();
    assert_eq!(
        table,
        "\
Kubernetes GPUs
Context: prod
GPU                   REQUESTABLE_QTY_PER_NODE  UTILIZATION
A100-80GB             1                         1 of 1 free
A10G                  1, 2, 4                   4 of 4 free
B200                  1, 2                      2 of 2 free
H100                  1, 2, 4, 8                16 of 16 free
H200                  1, 2, 4, 8                8 of 8 free
L4                    1                         1 of 1 free
L40S                  1, 2, 4, 8                8 of 8 free
MI250X                1, 2, 4, 8                8 of 8 free
MI300X                1, 2, 4, 8                8 of 8 free
T4                    1                         1 of 1 free
tpu-v5-lite-podslice  4                         4 of 4 free"
    );
    assert!(
        run.stdout.contains(
            "prod     unlabeled      8 of 8 free  32 of 32 free  (unlabeled)           2 of 2 free      Healthy"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("prod: 1 GPU node(s) have no label naming the GPU type: unlabeled; label them, e.g. `kubectl label node unlabeled skypilot.co/accelerator=<gpu>`"), "{}", run.stderr);
    assert!(run.stderr.contains("prod: 1 node(s) of multi-host TPU slices are excluded"), "{}", run.stderr);
}

/// Issue 11: native sidecars are added, not taken as a maximum, and
/// pod-level `spec.resources` replaces the containers' cpu and memory.
#[test]
fn native_sidecars_and_pod_level_resources_are_counted_as_the_scheduler_counts_them() {
    let gpu = "nvidia.com/gpu";
    let cluster = ClusterSpec {
        nodes: vec![node("n1").gpus(gpu, 8).label("skypilot.co/accelerator", "h100").0],
        pods: vec![
            // cpu: containers 1 + sidecar 2 = 3 (the old max rule gave 2);
            // memory 1 + 2 = 3 GiB; GPUs 2.
            pod("mesh", "a", Some("n1"))
                .requests(&[("cpu", "1"), ("memory", "1Gi"), (gpu, "2")])
                .sidecar(&[("cpu", "2"), ("memory", "2Gi")])
                .init_container(&[("cpu", "1")])
                .0,
            // Pod-level 4 CPUs and 8 GiB replace the container's 1 and 0;
            // its GPU still comes from the container.
            pod("podlevel", "a", Some("n1"))
                .requests(&[("cpu", "1"), (gpu, "1")])
                .pod_requests(&[("cpu", "4"), ("memory", "8Gi")])
                .0,
        ],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stdout.contains("prod     n1    1 of 8 free  21 of 32 free  H100  5 of 8 free      Healthy"),
        "{}",
        run.stdout
    );
}

/// Issue 11: MIG slices in both strategies are GPUs of their own, named after
/// their parent; time-sliced and MPS-shared GPUs count replicas, said so.
#[test]
fn mig_in_both_strategies_and_time_slicing() {
    let cluster = ClusterSpec {
        nodes: vec![
            // Mixed: one resource per profile, and a stale `nvidia.com/gpu: 0`.
            node("mig-mixed")
                .resource("nvidia.com/gpu", "0")
                .resource("nvidia.com/mig-1g.10gb", "14")
                .resource("nvidia.com/mig-3g.40gb", "2")
                .label("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB")
                .label("nvidia.com/mig.strategy", "mixed")
                .0,
            // Single: slices as `nvidia.com/gpu`, the product names the profile.
            node("mig-single")
                .gpus("nvidia.com/gpu", 7)
                .label("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb")
                .label("nvidia.com/mig.strategy", "single")
                .0,
            // Time-slicing, 4 T4s × 10 replicas, not renamed.
            node("ts")
                .gpus("nvidia.com/gpu", 40)
                .label("nvidia.com/gpu.product", "Tesla-T4-SHARED")
                .label("nvidia.com/gpu.replicas", "10")
                .label("nvidia.com/gpu.count", "4")
                .0,
            // Renamed to `nvidia.com/gpu.shared`: 20 replicas of 4 L4s.
            node("ts-renamed")
                .resource("nvidia.com/gpu", "0")
                .resource("nvidia.com/gpu.shared", "20")
                .label("nvidia.com/gpu.product", "NVIDIA-L4")
                .label("nvidia.com/gpu.replicas", "5")
                .0,
        ],
        pods: vec![
            pod("slices", "a", Some("mig-mixed")).requests(&[("nvidia.com/mig-1g.10gb", "3")]).0,
            pod("single", "a", Some("mig-single")).requests(&[("nvidia.com/gpu", "2")]).0,
            pod("replicas", "a", Some("ts")).requests(&[("nvidia.com/gpu", "5")]).0,
            pod("renamed", "a", Some("ts-renamed")).requests(&[("nvidia.com/gpu.shared", "1")]).0,
        ],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    let table: String = run.stdout.split("\n\n").next().unwrap().to_string();
    assert_eq!(
        table,
        "\
Kubernetes GPUs
Context: prod
GPU                    REQUESTABLE_QTY_PER_NODE  UTILIZATION
A100-80GB MIG 1g.10gb  1, 2, 4, 8, 14            11 of 14 free
A100-80GB MIG 3g.40gb  1, 2                      2 of 2 free
H100 MIG 1g.10gb       1, 2, 4, 7                5 of 7 free
L4 shared              1, 2, 4, 8, 16, 20        19 of 20 free
T4 shared              1, 2, 4, 8, 16, 32, 40    35 of 40 free"
    );
    assert!(
        run.stderr.contains(
            "prod: 2 node(s) share their GPUs by time-slicing or MPS: 8 physical GPU(s) offered as 60 replicas"
        ),
        "{}",
        run.stderr
    );
    // A MIG node with no whole GPU left is not a node whose device plugin is missing.
    assert!(!run.stderr.contains("report 0 GPU resources"), "{}", run.stderr);
    // A filter naming the parent finds its slices.
    let run = sb.run(["show-gpus", "A100-80GB", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("A100-80GB MIG 3g.40gb"), "{}", run.stdout);
    assert!(!run.stdout.contains("H100"), "{}", run.stdout);
}

#[test]
fn pods_in_every_phase_init_containers_and_overhead() {
    let gpu = "nvidia.com/gpu";
    let cluster = ClusterSpec {
        nodes: vec![node("n1").gpus(gpu, 8).label("skypilot.co/accelerator", "h100").0],
        pods: vec![
            pod("running", "a", Some("n1")).requests(&[(gpu, "1")]).0,
            pod("pending", "a", Some("n1")).requests(&[(gpu, "1")]).phase("Pending").0,
            pod("unknown", "a", Some("n1")).requests(&[(gpu, "1")]).phase("Unknown").0,
            pod("terminating", "a", Some("n1")).requests(&[(gpu, "1")]).terminating().0,
            pod("succeeded", "a", Some("n1")).requests(&[(gpu, "1")]).phase("Succeeded").0,
            pod("failed", "a", Some("n1")).requests(&[(gpu, "1")]).phase("Failed").0,
            pod("unscheduled", "a", None).requests(&[(gpu, "1")]).phase("Pending").0,
            // max(containers 0, init 2) = 2 held while it starts.
            pod("init", "b", Some("n1")).init_container(&[(gpu, "2")]).phase("Pending").0,
            // no GPU in containers, but the runtime class adds none either: 0.
            pod("overhead", "b", Some("n1")).requests(&[("cpu", "1")]).overhead(&[("cpu", "250m")]).0,
        ],
        ..Default::default()
    };
    let (api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "H100", "--infra", "k8s"]);
    run.expect_code(0);
    // 8 − (running, pending, unknown, terminating: 4) − init 2 = 2.
    assert_eq!(
        run.stdout,
        "\
Kubernetes GPUs
Context: prod
GPU   REQUESTABLE_QTY_PER_NODE  UTILIZATION
H100  1, 2, 4, 8                2 of 8 free
"
    );
    // Finished pods were never sent.
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("PodList?")
                && r.contains("fieldSelector=status.phase!=Succeeded,status.phase!=Failed")),
        "{:?}",
        api.requests()
    );
    // CPU: 1 + 0.25 overhead held.
    let all = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(all.stdout.contains("prod     n1    6.8 of 8 free"), "{}", all.stdout);
}

/// Issue 11: taints as the scheduler sees them. AKS's documented GPU pool
/// taint and GKE's GPU taint keep no GPU pod off; other taints do unless the
/// user's pods tolerate them (config or flag, with Kubernetes' matching).
#[test]
fn gpu_dedication_taints_and_the_users_tolerations() {
    let gpu = "nvidia.com/gpu";
    let cluster = ClusterSpec {
        nodes: vec![
            node("aks-gpu-0")
                .gpus(gpu, 4)
                .label("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB")
                .taint_value("sku", "gpu", "NoSchedule")
                .0,
            node("aks-gpu-1")
                .gpus(gpu, 4)
                .label("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB")
                .taint_value("sku", "gpu", "NoSchedule")
                .0,
            node("gke-gpu")
                .gpus(gpu, 8)
                .label("cloud.google.com/gke-accelerator", "nvidia-l4")
                .taint_value(gpu, "present", "NoSchedule")
                .0,
            node("eks-gpu")
                .gpus(gpu, 8)
                .label("karpenter.k8s.aws/instance-gpu-name", "h100")
                .taint_value("dedicated", "gpuGroup", "NoSchedule")
                .0,
        ],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    let table: String = run.stdout.split("\n\n").next().unwrap().to_string();
    assert_eq!(
        table,
        "\
Kubernetes GPUs
Context: prod
GPU        REQUESTABLE_QTY_PER_NODE  UTILIZATION
A100-80GB  1, 2, 4                   8 of 8 free
H100       1, 2, 4, 8                0 of 0 free (8 not ready)
L4         1, 2, 4, 8                8 of 8 free"
    );
    // Every node's taints are shown, tolerated or not.
    for line in [
        "prod     aks-gpu-0  8 of 8 free  32 of 32 free  A100-80GB  4 of 4 free      Healthy (tolerated: sku=gpu:NoSchedule)",
        "prod     gke-gpu    8 of 8 free  32 of 32 free  L4         8 of 8 free      Healthy (tolerated: nvidia.com/gpu=present:NoSchedule)",
        "prod     eks-gpu    8 of 8 free  32 of 32 free  H100       0 of 8 free      NoSchedule Taint [dedicated=gpuGroup]",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    let json = sb.run(["show-gpus", "--infra", "k8s", "-o", "json"]);
    json.expect_code(0);
    fn taints(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Array(ts)) = m.get("taints") {
                    out.extend(ts.iter().cloned());
                }
                m.values().for_each(|v| taints(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| taints(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    taints(&json.json(), &mut found);
    assert!(
        found.contains(&serde_json::json!({"key": "sku", "value": "gpu", "effect": "NoSchedule", "tolerated": true})),
        "{found:?}"
    );
    assert!(
        found.contains(
            &serde_json::json!({"key": "dedicated", "value": "gpuGroup", "effect": "NoSchedule", "tolerated": false})
        ),
        "{found:?}"
    );

    // By flag: Equal with the value, and the effect.
    let run = sb.run(["show-gpus", "--infra", "k8s", "--toleration", "dedicated=gpuGroup:NoSchedule"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("H100       1, 2, 4, 8                8 of 8 free\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("H100       8 of 8 free      Healthy (tolerated: dedicated=gpuGroup:NoSchedule)"),
        "{}",
        run.stdout
    );
    // A toleration of another value or effect does not match.
    for other in ["dedicated=other", "dedicated:NoExecute", "team"] {
        let run = sb.run(["show-gpus", "--infra", "k8s", "--toleration", other]);
        run.expect_code(0);
        assert!(run.stdout.contains("(8 not ready)"), "{other}: {}", run.stdout);
    }
    // By config: Exists, any value and effect.
    sb.write_config("[kubernetes]\ntolerations = [\"dedicated\"]\n");
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("H100       1, 2, 4, 8                8 of 8 free\n"), "{}", run.stdout);

    // Bad input: one line naming it and the fix.
    let run = sb.run(["show-gpus", "--infra", "k8s", "--toleration", "dedicated:NoSchedul"]);
    run.expect_code(2).expect_no_panic();
    assert!(
        run.stderr.contains("invalid toleration 'dedicated:NoSchedul': unknown effect 'NoSchedul'"),
        "{}",
        run.stderr
    );
    sb.write_config("[kubernetes]\ntolerations = [\"=gpu\"]\n");
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_no_panic();
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("[kubernetes] tolerations: invalid toleration '=gpu': the key is empty"),
        "{}",
        run.stderr
    );
}

#[test]
fn cordoned_and_tainted_nodes_count_as_not_ready_but_gpu_taints_do_not() {
    let gpu = "nvidia.com/gpu";
    let cluster = ClusterSpec {
        nodes: vec![
            node("ok")
                .gpus(gpu, 4)
                .label("skypilot.co/accelerator", "l4")
                .taint(gpu, "NoSchedule")
                .taint("spot", "PreferNoSchedule")
                .0,
            node("cordoned").gpus(gpu, 4).label("skypilot.co/accelerator", "l4").cordoned().0,
            node("tainted")
                .gpus(gpu, 4)
                .label("skypilot.co/accelerator", "l4")
                .taint("maintenance", "NoExecute")
                .taint("dedicated", "NoSchedule")
                .0,
        ],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0);
    assert!(run.stdout.contains("L4   1, 2, 4                   4 of 4 free (8 not ready)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("prod     ok        8 of 8 free  32 of 32 free  L4   4 of 4 free      Healthy"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("prod     cordoned  8 of 8 free  32 of 32 free  L4   0 of 4 free      Cordoned"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("NoExecute Taint [maintenance=true], NoSchedule Taint [dedicated=true]"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_quantity_filter_counts_whole_multiples_per_node() {
    let gpu = "nvidia.com/gpu";
    let cluster = ClusterSpec {
        nodes: vec![
            node("big").gpus(gpu, 8).label("skypilot.co/accelerator", "h100").0,
            node("small").gpus(gpu, 2).label("skypilot.co/accelerator", "h100").0,
        ],
        pods: vec![pod("p", "a", Some("big")).requests(&[(gpu, "3")]).0],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "h100:4", "--infra", "k8s"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "\
Kubernetes GPUs
Context: prod
GPU   QTY_FILTER  UTILIZATION
H100  4           4 of 8 free
"
    );
    let none = sb.run(["show-gpus", "a100", "--infra", "k8s"]);
    none.expect_code(4);
    assert!(none.stderr.contains("Resources 'a100' not found in Kubernetes clusters."), "{}", none.stderr);
}

#[test]
fn pagination_and_an_expired_continue_token() {
    let gpu = "nvidia.com/gpu";
    let mut cluster = ClusterSpec::default();
    for i in 0..3 {
        cluster.nodes.push(node(&format!("n{i}")).gpus(gpu, 8).label("skypilot.co/accelerator", "h100").0);
    }
    for i in 0..1200 {
        let mut p = pod(&format!("p{i}"), "batch", Some(&format!("n{}", i % 3)));
        if i % 400 == 0 {
            p = p.requests(&[(gpu, "2")]);
        }
        cluster.pods.push(p.0);
    }
    let (api, sb) = one_context(cluster);
    api.set_faults(|f| f.expire_next_continue = true);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0);
    assert!(run.stdout.contains("H100  1, 2, 4, 8                18 of 24 free"), "{}", run.stdout);
    let pods: Vec<String> = api.requests().into_iter().filter(|r| r.starts_with("PodList")).collect();
    // 3 pages of 500, one 410 and the restart: 1 + 1 (expired) + 3.
    assert_eq!(pods.len(), 5, "{pods:#?}");
    assert!(pods.iter().all(|r| r.contains("limit=500")));
}

#[test]
fn pods_that_cannot_be_listed_show_capacity_without_free() {
    let cluster = ClusterSpec {
        nodes: vec![node("n1").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    };
    let (api, sb) = one_context(cluster);
    api.set_faults(|f| f.pods_forbidden = true);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0);
    assert!(run.stdout.contains("H100  1, 2, 4, 8                <no permissions> of 8 free"), "{}", run.stdout);
    assert!(
        run.stdout.contains("prod     n1    8     32           H100  <no permissions> of 8 free  Healthy"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("prod: cannot list pods (403 forbidden"), "{}", run.stderr);
}

#[test]
fn two_contexts_queried_at_once_one_unreachable() {
    let gpu = "nvidia.com/gpu";
    let a = KubeApi::start(ClusterSpec {
        nodes: vec![node("a1").gpus(gpu, 8).label("skypilot.co/accelerator", "h100").0],
        pods: vec![pod("p", "x", Some("a1")).requests(&[(gpu, "2")]).0],
        token: Some(TOKEN.into()),
    });
    let b = KubeApi::start(ClusterSpec {
        nodes: vec![
            node("b1").gpus(gpu, 8).label("skypilot.co/accelerator", "h100").0,
            node("b2").gpus(gpu, 2).label("skypilot.co/accelerator", "l4").not_ready().0,
        ],
        token: Some(TOKEN.into()),
        ..Default::default()
    });
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let sb = sandbox(&[("alpha", &a.url(), TOKEN), ("beta", &b.url(), TOKEN), ("gone", &dead, TOKEN)], Some("alpha"));
    sb.write_config("[kubernetes]\nallowed_contexts = \"all\"\n");
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert_eq!(
        run.stdout,
        "\
Kubernetes GPUs
GPU   UTILIZATION
H100  14 of 16 free
L4    0 of 0 free (2 not ready)

Context: alpha
GPU   REQUESTABLE_QTY_PER_NODE  UTILIZATION
H100  1, 2, 4, 8                6 of 8 free

Context: beta
GPU   REQUESTABLE_QTY_PER_NODE  UTILIZATION
H100  1, 2, 4, 8                8 of 8 free
L4    1, 2                      0 of 0 free (2 not ready)

Kubernetes per-node GPU availability
CONTEXT  NODE  vCPU         Memory (GB)    GPU   GPU UTILIZATION  NODE STATUS
alpha    a1    8 of 8 free  32 of 32 free  H100  6 of 8 free      Healthy
beta     b1    8 of 8 free  32 of 32 free  H100  8 of 8 free      Healthy
beta     b2    8 of 8 free  32 of 32 free  L4    0 of 2 free      NotReady
"
    );
    assert!(
        run.stderr.contains("note: Kubernetes context 'gone' failed: cannot reach the API server: Connection refused"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: run `kubectl --context gone get nodes` to see what the API server says"),
        "{}",
        run.stderr
    );

    // --context picks; JSON holds every context, the failed one as data.
    let json = sb.run(["show-gpus", "--infra", "k8s", "--context", "beta", "--context", "gone", "-o", "json"]).json();
    let clusters = json["clusters"][0]["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    assert_eq!(clusters[0]["name"], "beta");
    assert_eq!(clusters[0]["gpus"][0]["free"], 8);
    assert!(clusters[1]["error"]["reason"].as_str().unwrap().contains("Connection refused"));

    // A list in the config picks those contexts, for the listing and the check alike.
    sb.write_config("[kubernetes]\nallowed_contexts = [\"beta\", \"gone\"]\ntimeout_secs = 2\n");
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(run.stdout.contains("Context: beta") && !run.stdout.contains("alpha"), "{}", run.stdout);
    assert!(run.stderr.contains("context 'gone' failed"), "{}", run.stderr);
    let check = sb.run(["check", "kubernetes"]);
    check.expect_code(1);
    assert!(check.stdout.contains("beta: ok.") && check.stdout.contains("gone: failed."), "{}", check.stdout);
    assert!(!check.stdout.contains("alpha"), "{}", check.stdout);
}

#[test]
fn unauthorised_failing_slow_and_malformed_clusters_are_per_context_errors() {
    let good = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 1).label("skypilot.co/accelerator", "t4").0],
        ..Default::default()
    });
    let bad =
        || KubeApi::start(ClusterSpec { nodes: vec![node("x").0], token: Some(TOKEN.into()), ..Default::default() });
    let (failing, slow, malformed, locked) = (bad(), bad(), bad(), bad());
    failing.set_faults(|f| f.nodes_status = Some(500));
    // Never answers: the run finishes only if the 1 s per-context timeout cuts it off.
    slow.hold();
    malformed.set_faults(|f| f.malformed_nodes = true);
    let sb = sandbox(
        &[
            ("good", &good.url(), TOKEN),
            ("locked", &locked.url(), "wrong-token"),
            ("failing", &failing.url(), TOKEN),
            ("slow", &slow.url(), TOKEN),
            ("malformed", &malformed.url(), TOKEN),
        ],
        Some("good"),
    )
    .env("SKYHOST_KUBE_TIMEOUT", "1");
    let run = sb.run(["show-gpus", "--infra", "k8s", "--all-contexts"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stdout.contains("Context: good") && run.stdout.contains("T4   1                         1 of 1 free"),
        "{}",
        run.stdout
    );
    for (ctx, reason) in [
        ("locked", "unauthorized (401): the API server rejected the credentials"),
        ("failing", "the API server answered 500 when listing nodes: etcdserver: request timed out"),
        ("slow", "no answer within 1 s"),
        ("malformed", "the API server sent nodes that do not parse"),
    ] {
        assert!(
            run.stderr.contains(&format!("note: Kubernetes context '{ctx}' failed: {reason}")),
            "{ctx}:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains(&format!("kubectl --context {ctx} get nodes")), "{ctx}");
    }
}

#[test]
fn kubeconfig_problems_are_named() {
    let (sb, path) = sandbox_with_kubeconfig("apiVersion: v1\nclusters: [this is: not yaml\n");
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(1).expect_no_panic();
    assert!(
        run.stderr.contains(&format!("the kubernetes backend failed: kubeconfig {} cannot be used", path.display())),
        "{}",
        run.stderr
    );

    let api = KubeApi::start(ClusterSpec::default());
    let sb = sandbox(&[("only", &api.url(), TOKEN)], Some("only"));
    let run = sb.run(["show-gpus", "--infra", "k8s", "--context", "nosuch"]);
    assert!(
        run.stderr.contains("context 'nosuch' failed: context 'nosuch' is not in the kubeconfig (it has: only)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("kubectl config get-contexts"), "{}", run.stderr);

    // No kubeconfig at all: Kubernetes is not set up here. A listing that did
    // not ask for it skips it in one note; one that did fails; check says so.
    let missing = Sandbox::new()
        .with_plugins(&["kubernetes", "slurm"])
        .with_plugins(&CLOUDS)
        .env("KUBECONFIG", "/no/such/kubeconfig");
    let run = missing.run(["check", "kubernetes"]);
    run.expect_code(1);
    assert!(run.stdout.contains("setup: failed. no kubeconfig: /no/such/kubeconfig does not exist"), "{}", run.stdout);
    let run = missing.run(["show-gpus"]);
    run.expect_code(0);
    assert_eq!(
        run.stderr,
        "note: skipped kubernetes: no kubeconfig: /no/such/kubeconfig does not exist\n\
         help: point KUBECONFIG at a kubeconfig, or run skyhost in a pod with a service account\n"
    );
    let run = missing.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(1);
    assert!(run.stderr.contains("note: the kubernetes backend is not set up here: no kubeconfig"), "{}", run.stderr);
    let json = missing.run(["show-gpus", "-o", "json"]).json();
    assert_eq!(json["notes"][0]["kind"], "skipped_backends");
}

#[test]
fn several_kubeconfig_files_are_merged() {
    let a = KubeApi::start(ClusterSpec {
        nodes: vec![node("a1").gpus("nvidia.com/gpu", 1).label("skypilot.co/accelerator", "t4").0],
        ..Default::default()
    });
    let b = KubeApi::start(ClusterSpec {
        nodes: vec![node("b1").gpus("nvidia.com/gpu", 2).label("skypilot.co/accelerator", "l4").0],
        ..Default::default()
    });
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let first = sb.path().join("first.yaml");
    let second = sb.path().join("second.yaml");
    std::fs::write(&first, kubeconfig(&[("one", &a.url(), "t")], Some("one"))).unwrap();
    std::fs::write(&second, kubeconfig(&[("two", &b.url(), "t")], Some("two"))).unwrap();
    let sb = sb.env("KUBECONFIG", format!("{}:{}", first.display(), second.display()));
    // The first file's current context wins, as with kubectl.
    let current = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(current.stdout.contains("Context: one") && !current.stdout.contains("Context: two"), "{}", current.stdout);
    let all = sb.run(["show-gpus", "--infra", "k8s", "--all-contexts"]);
    assert!(all.stdout.contains("Context: one") && all.stdout.contains("Context: two"), "{}", all.stdout);

    // Files on KUBECONFIG that do not exist are skipped, as kubectl skips them.
    let gone = sb.path().join("gone.yaml");
    let sb = sb.env("KUBECONFIG", format!("{}:{}", gone.display(), second.display()));
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(run.stdout.contains("Context: two"), "{}\n{}", run.stdout, run.stderr);
    let sb = sb.env("KUBECONFIG", format!("{}:{}", gone.display(), gone.display()));
    let run = sb.run(["check", "kubernetes"]);
    assert!(run.stdout.contains("no kubeconfig: none of the files on KUBECONFIG exist"), "{}", run.stdout);
}

#[test]
fn check_reports_each_context() {
    let gpu = "nvidia.com/gpu";
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![
            node("g").gpus(gpu, 4).label("skypilot.co/accelerator", "l4").0,
            node("u").gpus(gpu, 1).0,
            node("c").0,
        ],
        token: Some(TOKEN.into()),
        ..Default::default()
    });
    api.set_faults(|f| f.pods_forbidden = true);
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let sb = sandbox(&[("lab", &api.url(), TOKEN), ("down", &dead, TOKEN)], Some("lab"));
    let run = sb.run(["check", "kubernetes", "--all-contexts"]);
    run.expect_code(1);
    assert!(run.stdout.contains("Kubernetes: not usable"), "{}", run.stdout);
    assert!(run.stdout.contains("lab: ok. reachable; 3 nodes, 2 with GPUs (L4 ×4); 1 unlabeled GPU node(s); cannot list pods (free GPUs unknown)"), "{}", run.stdout);
    assert!(run.stdout.contains("down: failed. unreachable: cannot reach the API server"), "{}", run.stdout);
}

#[test]
fn the_kubernetes_section_comes_first_then_the_clouds() {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    let sb = sandbox(&[("prod", &api.url(), TOKEN)], Some("prod"));
    let sb = CLOUDS.iter().fold(sb, |sb, c| sb.with_plugins(&[c])).with_plugins(&["slurm"]);
    let run = sb.run(["show-gpus", "H100:8"]);
    run.expect_code(0);
    let (k8s, clouds) =
        run.stdout.split_once("\n\nCloud GPUs\n").expect("a Cloud GPUs title after the Kubernetes section");
    assert_eq!(k8s, "Kubernetes GPUs\nContext: prod\nGPU   QTY_FILTER  UTILIZATION\nH100  8           8 of 8 free");
    assert!(clouds.starts_with("GPU   QTY  CLOUD"), "{clouds}");
    assert!(!run.stderr.contains("skipped"), "{}", run.stderr);
}

/// A small cluster with a token, served over HTTPS; `(api, https URL)`.
fn https_cluster() -> (KubeApi, String) {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("g").gpus("nvidia.com/gpu", 4).label("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB").0],
        pods: vec![pod("p", "ml", Some("g")).requests(&[("nvidia.com/gpu", "1")]).0],
        token: Some(TOKEN.into()),
    });
    let url = format!("https://{}", api.also_listen_tls());
    (api, url)
}

const A100_TABLE: &str = "Kubernetes GPUs\nContext: secure\nGPU        REQUESTABLE_QTY_PER_NODE  UTILIZATION\nA100-80GB  1, 2, 4                   3 of 4 free\n";

#[test]
fn https_clusters_are_verified_against_the_kubeconfig_ca() {
    let (_api, url) = https_cluster();
    let ca = std::fs::read(tls_fixture("ca.crt")).unwrap();
    let (sb, path) =
        sandbox_with_kubeconfig(&kubeconfig_trusting(&[("secure", &url, TOKEN)], Some("secure"), Some(&ca)));
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(A100_TABLE), "{}", run.stdout);

    // A certificate from some other CA is refused, and the error says so.
    let other = std::fs::read(tls_fixture("other-ca.crt")).unwrap();
    std::fs::write(&path, kubeconfig_trusting(&[("secure", &url, TOKEN)], Some("secure"), Some(&other))).unwrap();
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stderr
            .contains("note: Kubernetes context 'secure' failed: the API server's TLS certificate is not trusted"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("certificate-authority"), "{}", run.stderr);
}

/// Runs `skyhost ARGS` as a pod would: no kubeconfig, `KUBERNETES_SERVICE_HOST`
/// and `_PORT` set, and the service account's token, CA and namespace under
/// `/var/run/secrets/kubernetes.io/serviceaccount`. That path is fixed, so
/// skyhost runs in a private mount namespace (`unshare`) with a tmpfs over
/// `/var/run`; `None` where this machine cannot make one.
fn run_as_pod(sb: &Sandbox, port: u16, token: &str, args: &[&str]) -> Option<skyhost_e2e::Run> {
    let account = sb.path().join("serviceaccount");
    std::fs::create_dir_all(&account).unwrap();
    std::fs::write(account.join("token"), token).unwrap();
    std::fs::copy(tls_fixture("ca.crt"), account.join("ca.crt")).unwrap();
    std::fs::write(account.join("namespace"), "skyhost").unwrap();
    let probe =
        std::process::Command::new("unshare").args(["-rm", "sh", "-c", "mount -t tmpfs tmpfs /var/run"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        skyhost_e2e::skip("this machine cannot make a private mount namespace (unshare -rm)");
        return None;
    }
    let inner = sb.command(args);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-rm", "sh", "-c"])
        .arg(concat!(
            "set -e; mount -t tmpfs tmpfs /var/run; d=/var/run/secrets/kubernetes.io/serviceaccount; ",
            "mkdir -p $d; cp \"$SERVICE_ACCOUNT\"/* $d/; exec \"$@\""
        ))
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("SERVICE_ACCOUNT", &account)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", port.to_string());
    let out = skyhost_e2e::run_with_timeout(cmd, std::time::Duration::from_secs(60)).expect("finished in time");
    Some(out.into())
}

#[test]
fn in_a_pod_the_service_account_is_used() {
    let (_api, url) = https_cluster();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let sb = Sandbox::new().with_plugins(&["kubernetes"]);
    let Some(run) = run_as_pod(&sb, port, TOKEN, &["show-gpus", "--infra", "k8s"]) else { return };
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(&A100_TABLE.replace("secure", "in-cluster")), "{}\n{}", run.stdout, run.stderr);

    let run = run_as_pod(&sb, port, "revoked-token", &["check", "kubernetes"]).expect("made one before");
    assert!(
        run.stdout.contains("in-cluster: failed. unreachable: unauthorized (401)"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("kubectl get nodes"), "{}", run.stdout);
}

#[test]
fn credentials_from_an_exec_plugin_as_eks_and_gke_write_them() {
    let (_api, url) = https_cluster();
    let (sb, path) = sandbox_with_kubeconfig("");
    let helper = sb.path().join("bin/cloud-auth-helper");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{TOKEN}\"}}}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ca = std::fs::read(tls_fixture("ca.crt")).unwrap();
    let with_exec = |command: &str| {
        kubeconfig_trusting(&[("secure", &url, "unused")], Some("secure"), Some(&ca)).replace(
            "  user:\n    token: unused\n",
            &format!(
                "  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {command}\n      interactiveMode: Never\n"
            ),
        )
    };
    std::fs::write(&path, with_exec(&helper.display().to_string())).unwrap();
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(A100_TABLE), "{}\n{}", run.stdout, run.stderr);

    // The helper is not installed: the note names it, with the kubeconfig's installHint.
    let missing = with_exec("gke-gcloud-auth-plugin-x").replace(
        "interactiveMode: Never\n",
        "interactiveMode: Never\n      installHint: Install gke-gcloud-auth-plugin-x with gcloud components install\n",
    );
    std::fs::write(&path, missing).unwrap();
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stderr.contains("context 'secure' failed: the credential helper `gke-gcloud-auth-plugin-x` that the kubeconfig runs could not be started: No such file or directory"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: Install gke-gcloud-auth-plugin-x with gcloud components install"),
        "{}",
        run.stderr
    );

    // The helper runs and fails (expired cloud login): its own words are shown.
    std::fs::write(&helper, "#!/bin/sh\necho 'error: the SSO session has expired; run aws sso login' >&2\nexit 255\n")
        .unwrap();
    std::fs::write(&path, with_exec(&helper.display().to_string())).unwrap();
    let run = sb.run(["check", "kubernetes"]);
    run.expect_code(1).expect_no_panic();
    assert!(
        run.stdout.contains("the credential helper")
            && run.stdout.contains("failed (exit status: 255): error: the SSO session has expired; run aws sso login"),
        "{}",
        run.stdout
    );
}

/// Issue #10: a credential helper that never returns used to hang the whole
/// listing (kube ran it on the runtime thread the deadline needed). Now it is
/// stopped, with everything it started, when the context's time is up.
#[test]
fn a_credential_helper_that_never_finishes_is_stopped_at_the_deadline() {
    let (_api, url) = https_cluster();
    let (sb, path) = sandbox_with_kubeconfig("");
    let helper = sb.path().join("bin/stuck-auth-helper");
    let pid_file = sb.path().join("helper-child.pid");
    // The helper's child holds its output open: stopping the helper alone is not enough.
    std::fs::write(&helper, format!("#!/bin/sh\nsleep 100000 &\necho $! > {}\nwait\n", pid_file.display())).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ca = std::fs::read(tls_fixture("ca.crt")).unwrap();
    let kubeconfig = kubeconfig_trusting(&[("secure", &url, "unused")], Some("secure"), Some(&ca)).replace(
        "  user:\n    token: unused\n",
        &format!(
            "  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      args: [eks, get-token]\n      interactiveMode: Never\n",
            helper.display()
        ),
    );
    std::fs::write(&path, kubeconfig).unwrap();
    sb.write_config("[kubernetes]\ntimeout_secs = 1\n");
    // `run` gives up on a command that has not ended after a minute; the
    // helper would sleep for a day.
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stderr.contains(&format!(
            "note: Kubernetes context 'secure' failed: the credential helper `{} eks get-token` did not finish within 1 s and was stopped",
            helper.display()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("raise `timeout_secs` under [kubernetes]"), "{}", run.stderr);
    // The helper's child was stopped with it (or is a zombie for init to reap).
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    let running = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        !stat.is_empty() && !stat.contains(") Z ")
    };
    for _ in 0..500 {
        if !running() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!running(), "the helper's child {pid} still runs");

    // `check` says the same and fails.
    let check = sb.run(["check", "kubernetes"]);
    check.expect_code(1).expect_no_panic();
    assert!(check.stdout.contains("did not finish within 1 s"), "{}", check.stdout);
}

/// The legacy `gcp` auth provider runs its `cmd-path` as a credential helper
/// too: its token is used, and a command that never ends is stopped.
#[test]
fn the_gcp_auth_providers_command_runs_within_the_deadline() {
    let (_api, url) = https_cluster();
    let (sb, path) = sandbox_with_kubeconfig("");
    let helper = sb.path().join("bin/gcloud");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$*\" = 'config config-helper --format=json' ] || exit 2\necho '{{\"credential\": {{\"access_token\": \"{TOKEN}\"}}}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ca = std::fs::read(tls_fixture("ca.crt")).unwrap();
    let kubeconfig = kubeconfig_trusting(&[("secure", &url, "unused")], Some("secure"), Some(&ca)).replace(
        "  user:\n    token: unused\n",
        &format!(
            "  user:\n    auth-provider:\n      name: gcp\n      config:\n        cmd-path: {}\n        cmd-args: config config-helper --format=json\n        token-key: '{{.credential.access_token}}'\n",
            helper.display()
        ),
    );
    std::fs::write(&path, kubeconfig).unwrap();
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(A100_TABLE), "{}\n{}", run.stdout, run.stderr);

    std::fs::write(&helper, "#!/bin/sh\nexec sleep 100000\n").unwrap();
    sb.write_config("[kubernetes]\ntimeout_secs = 1\n");
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stderr.contains(&format!(
            "context 'secure' failed: the credential helper `{} config config-helper --format=json` did not finish within 1 s and was stopped",
            helper.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_context_that_skips_tls_verification_is_listed_with_a_note() {
    let (_api, url) = https_cluster();
    let text = kubeconfig(&[("secure", &url, TOKEN)], Some("secure"))
        .replace(&format!("    server: {url}\n"), &format!("    server: {url}\n    insecure-skip-tls-verify: true\n"));
    let (sb, _) = sandbox_with_kubeconfig(&text);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(A100_TABLE), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "note: secure: the kubeconfig sets insecure-skip-tls-verify for this cluster, so its API server's certificate is not checked"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("set certificate-authority-data instead"), "{}", run.stderr);
}

#[test]
fn a_cluster_behind_a_gateway_path() {
    let (api, url) = https_cluster();
    let ca = std::fs::read(tls_fixture("ca.crt")).unwrap();
    let server = format!("{url}{GATEWAY_PATH}");
    let (sb, _) =
        sandbox_with_kubeconfig(&kubeconfig_trusting(&[("secure", &server, TOKEN)], Some("secure"), Some(&ca)));
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(A100_TABLE), "{}\n{}", run.stdout, run.stderr);
    let paths = api.paths();
    assert!(!paths.is_empty() && paths.iter().all(|p| p.starts_with(&format!("{GATEWAY_PATH}/api/v1/"))), "{paths:?}");
}

#[test]
fn client_certificates_as_kubeadm_and_kind_write_them() {
    let (_api, url) = https_cluster();
    let (sb, path) = sandbox_with_kubeconfig("");
    let ca = std::fs::read(tls_fixture("ca.crt")).unwrap();
    let b64 = |name: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(tls_fixture(name)).unwrap())
    };
    let config = kubeconfig_trusting(&[("secure", &url, "unused")], Some("secure"), Some(&ca)).replace(
        "  user:\n    token: unused\n",
        &format!(
            "  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64("client.crt"),
            b64("client.key")
        ),
    );
    std::fs::write(&path, config).unwrap();
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(A100_TABLE), "{}\n{}", run.stdout, run.stderr);

    // Without the certificate (and no token) the same server says 401.
    let anonymous = kubeconfig_trusting(&[("secure", &url, "unused")], Some("secure"), Some(&ca))
        .replace("  user:\n    token: unused\n", "  user: {}\n");
    std::fs::write(&path, anonymous).unwrap();
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(run.stderr.contains("context 'secure' failed: unauthorized (401)"), "{}", run.stderr);
}

#[test]
fn proxies_as_kubectl_uses_them() {
    let (_api, url) = https_cluster();
    let double: std::net::SocketAddr = url.trim_start_matches("https://").parse().unwrap();
    let ca = std::fs::read(tls_fixture("ca.crt")).unwrap();
    // A name no resolver knows (RFC 2606 reserves .invalid): only a proxy can reach it.
    let far = "https://kube.skyhost.invalid:443";
    let (sb, path) = sandbox_with_kubeconfig("");

    // The cluster's proxy-url: an HTTP proxy, or a SOCKS5 one as `ssh -D` opens.
    for kind in [Kind::HttpConnect, Kind::Socks5] {
        let proxy = Proxy::start(kind, double);
        let config = kubeconfig_trusting(&[("secure", far, TOKEN)], Some("secure"), Some(&ca))
            .replace(&format!("server: {far}\n"), &format!("server: {far}\n    proxy-url: {}\n", proxy.url()));
        std::fs::write(&path, config).unwrap();
        let run = sb.run(["show-gpus", "--infra", "k8s"]);
        run.expect_code(0).expect_no_panic();
        assert!(run.stdout.starts_with(A100_TABLE), "{kind:?}: {}\n{}", run.stdout, run.stderr);
        let targets = proxy.targets();
        assert!(!targets.is_empty() && targets.iter().all(|t| t == "kube.skyhost.invalid:443"), "{targets:?}");
    }

    // HTTPS_PROXY from the environment, as kubectl reads it.
    let proxy = Proxy::start(Kind::HttpConnect, double);
    std::fs::write(&path, kubeconfig_trusting(&[("secure", far, TOKEN)], Some("secure"), Some(&ca))).unwrap();
    let sb = sb.env("HTTPS_PROXY", proxy.url());
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.starts_with(A100_TABLE), "{}\n{}", run.stdout, run.stderr);
    assert!(!proxy.targets().is_empty());

    // NO_PROXY covers the server (and loopback is never proxied): direct, so the far name fails.
    let proxy = Proxy::start(Kind::HttpConnect, double);
    let sb = sb.env("HTTPS_PROXY", proxy.url()).env("NO_PROXY", "localhost,.invalid").env("SKYHOST_KUBE_TIMEOUT", "5");
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    // Unresolvable, or no answer where the resolver itself cannot be reached.
    assert!(run.stderr.contains("context 'secure' failed:"), "{}", run.stderr);
    std::fs::write(&path, kubeconfig_trusting(&[("secure", &url, TOKEN)], Some("secure"), Some(&ca))).unwrap();
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    assert!(run.stdout.starts_with(A100_TABLE), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(proxy.targets(), Vec::<String>::new());
}

/// GETs `path` from the API double: (status, `Retry-After`, body as JSON).
fn api_get(api: &KubeApi, path: &str) -> (u16, Option<String>, serde_json::Value) {
    let (status, head, body) = skyhost_e2e::http_request(
        &api.addr.to_string(),
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    );
    let retry_after = head.lines().find_map(|l| l.strip_prefix("retry-after:").map(|v| v.trim().to_string()));
    (status, retry_after, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")))
}

#[test]
fn the_api_double_refuses_what_a_real_api_server_refuses() {
    let api = KubeApi::start(ClusterSpec {
        nodes: vec![node("a").0, node("b").cordoned().0, node("c").0],
        pods: (0..5).map(|i| pod(&format!("p{i}"), "x", Some("a")).0).collect(),
        ..Default::default()
    });
    let refused = |path: &str, code: u16, reason: &str, message: &str| {
        let (status, _, body) = api_get(&api, path);
        assert_eq!(
            (status, body["kind"].as_str(), body["code"].as_u64()),
            (code, Some("Status"), Some(code as u64)),
            "{path}: {body}"
        );
        assert_eq!(body["reason"], reason, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains(message), "{path}: {body}");
    };
    refused(
        "/api/v1/pods?fieldSelector=spec.colour%3Dred",
        400,
        "BadRequest",
        "field label not supported: spec.colour",
    );
    refused("/api/v1/pods?fieldSelector=status.phase%3CRunning", 400, "BadRequest", "unable to parse requirement");
    refused("/api/v1/nodes?fieldSelector=status.phase%21%3DRunning", 400, "BadRequest", "field label not supported");
    refused("/api/v1/pods?limit=ten", 400, "BadRequest", "invalid limit");
    refused("/api/v1/pods?limit=-1", 400, "BadRequest", "invalid limit");
    refused("/api/v1/services", 404, "NotFound", "could not find the requested resource");
    refused("/apis/apps/v1/deployments", 404, "NotFound", "could not find the requested resource");

    // Node lists honour their field selectors.
    let names = |path: &str| -> Vec<String> {
        let (status, _, body) = api_get(&api, path);
        assert_eq!(status, 200, "{path}: {body}");
        body["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names("/api/v1/nodes?fieldSelector=metadata.name%3Db"), ["b"]);
    assert_eq!(names("/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue"), ["b"]);
    assert_eq!(names("/api/v1/nodes?fieldSelector=spec.unschedulable%21%3Dtrue"), ["a", "c"]);
    assert_eq!(names("/api/v1/pods?fieldSelector=metadata.name%3D%3Dp3"), ["p3"]);

    // A continue token belongs to its list and selector.
    let (_, _, first) = api_get(&api, "/api/v1/pods?limit=2");
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(names(&format!("/api/v1/pods?limit=2&continue={token}")), ["p2", "p3"]);
    refused(&format!("/api/v1/nodes?limit=2&continue={token}"), 400, "BadRequest", "continue parameter is invalid");
    refused(
        &format!("/api/v1/pods?limit=2&continue={token}&fieldSelector=status.phase%3DRunning"),
        400,
        "BadRequest",
        "continue parameter is invalid",
    );
    refused("/api/v1/pods?limit=2&continue=not-a-token", 400, "BadRequest", "continue parameter is invalid");

    // Each injected error carries the reason of its code; 429 says when to come back.
    for (code, reason) in [(403, "Forbidden"), (500, "InternalError"), (503, "ServiceUnavailable"), (504, "Timeout")] {
        api.set_faults(|f| f.nodes_status = Some(code));
        refused("/api/v1/nodes", code, reason, "");
    }
    api.set_faults(|f| {
        f.nodes_status = None;
        f.throttle_next = 1;
        f.retry_after_secs = 7;
    });
    let (status, retry_after, body) = api_get(&api, "/api/v1/nodes");
    assert_eq!((status, retry_after.as_deref(), body["reason"].as_str()), (429, Some("7"), Some("TooManyRequests")));
    assert_eq!(api_get(&api, "/api/v1/nodes").0, 200, "only the next request was throttled");
}

#[test]
fn a_throttled_list_is_asked_again_after_retry_after() {
    let cluster = ClusterSpec {
        nodes: vec![node("n1").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        pods: vec![pod("p", "x", Some("n1")).requests(&[("nvidia.com/gpu", "3")]).0],
        ..Default::default()
    };
    let (api, sb) = one_context(cluster);
    // The first list to arrive (nodes and pods are listed at the same time,
    // so either) is throttled once and asked again.
    api.set_faults(|f| {
        f.throttle_next = 1;
        f.retry_after_secs = 1;
    });
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("H100  1, 2, 4, 8                5 of 8 free"), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let lists = api.requests();
    let count = |kind: &str| lists.iter().filter(|r| r.starts_with(kind)).count();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert_eq!(count("NodeList") + count("PodList"), 3, "{lists:?}");
    assert!(count("NodeList") >= 1 && count("PodList") >= 1, "{lists:?}");

    // Throttled for longer than the context's deadline: a note (a failed
    // context is not a failed command), not a hang.
    api.set_faults(|f| {
        f.throttle_next = 100;
        f.retry_after_secs = 30;
    });
    let run = sb.env("SKYHOST_KUBE_TIMEOUT", "1").run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stderr.contains("context 'prod' failed: no answer within 1 s"), "{}", run.stderr);
}

#[test]
fn more_than_one_page_of_nodes_and_an_expired_node_list() {
    // 600 nodes (every fifth without GPUs) and no pods: two pages of nodes,
    // the only list with a continue token.
    let (api, sb) = one_context(skyhost_e2e::kube_api::generated(600, 0));
    api.set_faults(|f| f.expire_next_continue = true);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    // 480 GPU nodes of 8 H100s, counted once although page 1 came twice.
    assert!(run.stdout.contains("H100  1, 2, 4, 8                3840 of 3840 free"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("prod     node-")).count(), 600);
    let nodes: Vec<String> = api.requests().into_iter().filter(|r| r.starts_with("NodeList")).collect();
    // Page 1, page 2 expired (410), then the list again from the start: 2 pages.
    assert_eq!(nodes.len(), 4, "{nodes:#?}");
    assert!(nodes.iter().all(|r| r.contains("limit=500")), "{nodes:#?}");
}

#[test]
fn a_list_that_keeps_expiring_gives_up_after_the_restart_limit() {
    let (api, sb) = one_context(skyhost_e2e::kube_api::generated(600, 0));
    api.set_faults(|f| f.expire_continues = 100);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(
        run.stderr.contains("context 'prod' failed: the API server answered 410 when listing nodes"),
        "{}",
        run.stderr
    );
    // The first list and three restarts, each cut at its second page.
    let nodes = api.requests().into_iter().filter(|r| r.starts_with("NodeList")).count();
    assert_eq!(nodes, 8);
}

#[test]
fn nodes_that_may_not_be_listed_fail_the_context_with_the_reason() {
    let (api, sb) = one_context(ClusterSpec { nodes: vec![node("n").0], ..Default::default() });
    api.set_faults(|f| f.nodes_status = Some(403));
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stderr.contains("context 'prod' failed: forbidden (403) to list nodes"), "{}", run.stderr);
    assert!(run.stderr.contains("kubectl --context prod get nodes"), "{}", run.stderr);
}

/// Issue 11: one chip has one name whoever labelled the node, so the totals
/// table has one row per GPU model.
#[test]
fn a_cluster_mixing_every_label_convention_has_one_row_per_gpu_model() {
    let cluster = ClusterSpec {
        nodes: vec![
            node("gfd-h100").gpus("nvidia.com/gpu", 8).label("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3").0,
            node("gke-h100").gpus("nvidia.com/gpu", 8).label("cloud.google.com/gke-accelerator", "nvidia-h100-80gb").0,
            node("karp-h100").gpus("nvidia.com/gpu", 8).label("karpenter.k8s.aws/instance-gpu-name", "h100").0,
            node("cw-h100").gpus("nvidia.com/gpu", 8).label("gpu.nvidia.com/class", "H100_NVLINK_80GB").0,
            node("neb-h100").gpus("nvidia.com/gpu", 8).label("nebius.com/gpu-name", "H100").0,
            node("sky-h100").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0,
            node("gke-mega")
                .gpus("nvidia.com/gpu", 8)
                .label("cloud.google.com/gke-accelerator", "nvidia-h100-mega-80gb")
                .0,
            node("gfd-mega").gpus("nvidia.com/gpu", 8).label("nvidia.com/gpu.product", "NVIDIA-H100-MEGA-80GB").0,
            node("gfd-a100").gpus("nvidia.com/gpu", 4).label("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB").0,
            node("gke-a100").gpus("nvidia.com/gpu", 4).label("cloud.google.com/gke-accelerator", "nvidia-a100-80gb").0,
            node("cw-a100").gpus("nvidia.com/gpu", 4).label("gpu.nvidia.com/class", "A100_NVLINK_80GB").0,
            node("sky-a100").gpus("nvidia.com/gpu", 4).label("skypilot.co/accelerator", "a100-80gb").0,
            node("karp-t4g").gpus("nvidia.com/gpu", 1).label("karpenter.k8s.aws/instance-gpu-name", "t4g").0,
            node("gfd-t4g").gpus("nvidia.com/gpu", 1).label("nvidia.com/gpu.product", "NVIDIA-T4G").0,
            node("cw-a6000").gpus("nvidia.com/gpu", 2).label("gpu.nvidia.com/class", "RTX_A6000").0,
            node("gfd-a6000").gpus("nvidia.com/gpu", 2).label("nvidia.com/gpu.product", "NVIDIA-RTX-A6000").0,
            node("cw-quadro").gpus("nvidia.com/gpu", 1).label("gpu.nvidia.com/class", "Quadro_RTX_5000").0,
            node("cw-empty").gpus("nvidia.com/gpu", 1).label("gpu.nvidia.com/class", "").0,
            node("tpu")
                .gpus("google.com/tpu", 4)
                .label("cloud.google.com/gke-tpu-accelerator", "tpu-v5-lite-podslice")
                .label("cloud.google.com/gke-tpu-topology", "2x2")
                .0,
        ],
        pods: vec![pod("train", "ml", Some("cw-h100")).requests(&[("nvidia.com/gpu", "8")]).0],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    let table: String = run.stdout.split("\n\n").next().unwrap().to_string();
    assert_eq!(
        table,
        "\
Kubernetes GPUs
Context: prod
GPU                   REQUESTABLE_QTY_PER_NODE  UTILIZATION
A100-80GB             1, 2, 4                   16 of 16 free
A6000                 1, 2                      4 of 4 free
H100                  1, 2, 4, 8                40 of 48 free
H100-MEGA             1, 2, 4, 8                16 of 16 free
RTX5000               1                         1 of 1 free
T4g                   1                         2 of 2 free
tpu-v5-lite-podslice  4                         4 of 4 free"
    );
    // An empty value types the node as unlabeled, and does not fail it.
    assert!(
        run.stdout
            .contains("prod     cw-empty   8 of 8 free  32 of 32 free  (unlabeled)           1 of 1 free      Healthy"),
        "{}",
        run.stdout
    );
    // The value not in the GPU table is reported once, however many nodes.
    assert!(
        run.stderr.contains("prod: 1 GPU label value(s) are not in skyhost's GPU table and are shown cleaned up: `gpu.nvidia.com/class=Quadro_RTX_5000`"),
        "{}",
        run.stderr
    );

    // Name filters match by identity: SkyPilot's GFD name finds the one row.
    let run = sb.run(["show-gpus", "H100-80GB", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("H100  1, 2, 4, 8                40 of 48 free"), "{}", run.stdout);
    assert!(!run.stdout.contains("H100-MEGA"), "{}", run.stdout);
    let run = sb.run(["show-gpus", "nvidia-h100-mega-80gb", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("H100-MEGA  1, 2, 4, 8                16 of 16 free"), "{}", run.stdout);

    // With a quantity, a TPU node's chips are one unit: 4 chips are not four 1s.
    let run = sb.run(["show-gpus", "tpu-v5-lite-podslice:1", "--infra", "k8s"]);
    run.expect_no_panic();
    assert!(!run.stdout.contains("tpu-v5-lite-podslice  1"), "{}", run.stdout);
    let run = sb.run(["show-gpus", "tpu-v5-lite-podslice:4", "--infra", "k8s"]);
    run.expect_code(0).expect_no_panic();
    assert!(run.stdout.contains("tpu-v5-lite-podslice  4           4 of 4 free"), "{}", run.stdout);
}

#[test]
fn control_plane_taints_do_not_make_a_node_not_ready() {
    let gpu = "nvidia.com/gpu";
    let cluster = ClusterSpec {
        nodes: vec![
            node("cp")
                .gpus(gpu, 2)
                .label("skypilot.co/accelerator", "l4")
                .taint("node-role.kubernetes.io/control-plane", "NoSchedule")
                .0,
            node("old")
                .gpus(gpu, 2)
                .label("skypilot.co/accelerator", "l4")
                .taint("node-role.kubernetes.io/master", "NoSchedule")
                .0,
            node("other")
                .gpus(gpu, 2)
                .label("skypilot.co/accelerator", "l4")
                .taint("node-role.kubernetes.io/etcd", "NoSchedule")
                .0,
        ],
        ..Default::default()
    };
    let (_api, sb) = one_context(cluster);
    let run = sb.run(["show-gpus", "--infra", "k8s"]);
    run.expect_code(0);
    assert!(run.stdout.contains("L4   1, 2                      4 of 4 free (2 not ready)"), "{}", run.stdout);
}

#[test]
fn a_cloud_listing_makes_no_kubernetes_request() {
    let (api, sb) = one_context(ClusterSpec {
        nodes: vec![node("n").gpus("nvidia.com/gpu", 8).label("skypilot.co/accelerator", "h100").0],
        ..Default::default()
    });
    let sb = sb.with_plugins(&["aws"]);
    for args in [
        &["show-gpus", "--infra", "aws"][..],
        &["show-gpus", "H100", "--infra", "aws"],
        &["gpus", "list", "-a", "--infra", "aws"],
    ] {
        let run = sb.run(args);
        run.expect_code(0).expect_no_panic();
        assert!(!run.stdout.contains("Kubernetes"), "{args:?}: {}", run.stdout);
    }
    assert_eq!(api.every_path(), Vec::<String>::new(), "no request at all");
    // The same cluster is asked when the listing may use it.
    sb.run(["show-gpus", "H100"]).expect_code(0);
    assert!(!api.requests().is_empty());
}
