//! The Kubernetes manifests in `deploy/kubernetes/`, rendered as
//! `kubectl kustomize` renders them and read into the API's own types
//! (k8s-openapi, the version the Kubernetes plugin uses): a field the API does
//! not have is an error, so a typo cannot silently do nothing. Then the
//! promises: least-privilege RBAC, a locked-down pod, probes on routes the
//! server has, a Service and a NetworkPolicy that reach the pods, and a config
//! file the real binary accepts.
//!
//! kubectl is not installed here, so the kustomization is read by this test,
//! which implements only what it uses (`resources`: plain files) and refuses
//! every other kustomize feature rather than render it wrongly.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Component, Path},
};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Container, Namespace, Secret, Service, ServiceAccount},
        networking::v1::{NetworkPolicy, NetworkPolicyPort},
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use skyhost_e2e::{Sandbox, workspace};

const NAMESPACE: &str = "skyhost";
const NAME_LABEL: &str = "app.kubernetes.io/name";
const UID: i64 = 65532;

/// YAML read as Kubernetes reads it: `0440` is octal (YAML 1.1, which the
/// API machinery's YAML readers keep), duplicate keys are an error.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options
}

/// What `kubectl kustomize deploy/kubernetes` prints, as JSON values.
fn render(dir: &Path) -> Result<Vec<Value>, String> {
    let file = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let k: Value =
        serde_saphyr::from_str_with_options(&text, yaml_options()).map_err(|e| format!("{}: {e}", file.display()))?;
    let k = k.as_object().ok_or("kustomization.yaml is not a mapping")?;
    let mut resources = None;
    for (key, value) in k {
        match key.as_str() {
            "apiVersion" if value == "kustomize.config.k8s.io/v1beta1" => {}
            "kind" if value == "Kustomization" => {}
            "resources" => resources = Some(value),
            _ => {
                return Err(format!(
                    "kustomization.yaml: `{key}: {value}` is a kustomize feature this test does not render \
                     (it renders `resources` only); implement it in tests/tests/manifests.rs first"
                ));
            }
        }
    }
    let resources = resources.and_then(Value::as_array).ok_or("kustomization.yaml: no `resources` list")?;
    let mut objects = Vec::new();
    for r in resources {
        let r = r.as_str().ok_or_else(|| format!("kustomization.yaml: resource {r} is not a string"))?;
        let path = Path::new(r);
        if r.contains("://") || !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("kustomization.yaml: resource `{r}` is not a file in this directory"));
        }
        let path = dir.join(path);
        if !path.is_file() {
            return Err(format!(
                "kustomization.yaml: resource `{r}` is not a file (directories are not rendered here)"
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{r}: {e}"))?;
        let docs: Vec<Value> =
            serde_saphyr::from_str_multiple_with_options(&text, yaml_options()).map_err(|e| format!("{r}: {e}"))?;
        // kustomize drops empty documents.
        objects.extend(docs.into_iter().filter(|d| !d.is_null()));
    }
    let mut ids = BTreeSet::new();
    for o in &objects {
        let id = format!("{} {} {}/{}", o["apiVersion"], o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]);
        if !ids.insert(id.clone()) {
            return Err(format!("{id} is defined twice (kustomize refuses that)"));
        }
    }
    Ok(objects)
}

/// The first place where `typed` (what the API types made of the input)
/// differs from `raw`: a field the types dropped is one the API does not have.
fn difference(raw: &Value, typed: &Value, at: &str) -> Option<String> {
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (k, v) in r {
                let here = format!("{at}.{k}");
                match t.get(k) {
                    None => return Some(format!("unknown field `{here}`")),
                    Some(tv) => {
                        if let Some(d) = difference(v, tv, &here) {
                            return Some(d);
                        }
                    }
                }
            }
            t.keys().find(|k| !r.contains_key(*k)).map(|k| format!("`{at}.{k}` appeared when read"))
        }
        (Value::Array(r), Value::Array(t)) if r.len() == t.len() => {
            r.iter().zip(t).enumerate().find_map(|(i, (r, t))| difference(r, t, &format!("{at}[{i}]")))
        }
        _ if raw == typed => None,
        _ => Some(format!("`{at}` is {raw}, which the API reads as {typed}")),
    }
}

/// `raw` as a `T`, strictly: it must deserialise, and serialise back to
/// exactly itself.
fn strict<T: DeserializeOwned + Serialize>(raw: &Value) -> Result<T, String> {
    let what = format!("{} {}", raw["kind"].as_str().unwrap_or("?"), raw["metadata"]["name"].as_str().unwrap_or("?"));
    let typed: T = serde_json::from_value(raw.clone()).map_err(|e| format!("{what}: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("{what}: {e}"))?;
    match difference(raw, &back, "") {
        Some(d) => Err(format!("{what}: {d}")),
        None => Ok(typed),
    }
}

/// Every object the deployment needs, each exactly once.
struct Manifests {
    namespace: Namespace,
    service_account: ServiceAccount,
    cluster_role: ClusterRole,
    binding: ClusterRoleBinding,
    secret: Secret,
    config_map: ConfigMap,
    deployment: Deployment,
    service: Service,
    network_policy: NetworkPolicy,
}

fn one<T: DeserializeOwned + Serialize>(objects: &[Value], api_version: &str, kind: &str) -> Result<T, String> {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    match found[..] {
        [o] if o["apiVersion"] == api_version => strict(o),
        [o] => Err(format!("{kind} has apiVersion {}, expected {api_version}", o["apiVersion"])),
        _ => Err(format!("{} objects of kind {kind}, expected exactly one", found.len())),
    }
}

fn typed(objects: &[Value]) -> Result<Manifests, String> {
    const KINDS: [&str; 9] = [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Secret",
        "ConfigMap",
        "Deployment",
        "Service",
        "NetworkPolicy",
    ];
    if let Some(o) = objects.iter().find(|o| !KINDS.iter().any(|k| o["kind"] == *k)) {
        return Err(format!("unexpected object of kind {} (expected only {KINDS:?})", o["kind"]));
    }
    Ok(Manifests {
        namespace: one(objects, "v1", "Namespace")?,
        service_account: one(objects, "v1", "ServiceAccount")?,
        cluster_role: one(objects, "rbac.authorization.k8s.io/v1", "ClusterRole")?,
        binding: one(objects, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding")?,
        secret: one(objects, "v1", "Secret")?,
        config_map: one(objects, "v1", "ConfigMap")?,
        deployment: one(objects, "apps/v1", "Deployment")?,
        service: one(objects, "v1", "Service")?,
        network_policy: one(objects, "networking.k8s.io/v1", "NetworkPolicy")?,
    })
}

/// The paths the server routes, from its OpenAPI document.
fn server_paths() -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("host/src/server/openapi.json")).expect("openapi.json"),
    )
    .expect("openapi.json is JSON");
    doc["paths"].as_object().expect("paths").keys().cloned().collect()
}

/// A resource quantity (`100m`, `1`, `128Mi`, `1G`) as a number, or `None`
/// when it is not one Kubernetes would accept.
fn quantity(q: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES.iter().find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f))).unwrap_or((q, 1.0));
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// Records broken promises instead of stopping at the first.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }
}

fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// Every promise the manifests make; an empty list when all hold.
fn violations(objects: &[Value], routes: &BTreeSet<String>) -> Vec<String> {
    let m = match typed(objects) {
        Ok(m) => m,
        Err(e) => return vec![e],
    };
    let mut f = Findings::default();

    // Names, namespaces, labels.
    f.check(m.namespace.metadata.name.as_deref() == Some(NAMESPACE), "the Namespace is not `skyhost`");
    let metas: [(&str, &ObjectMeta, bool); 9] = [
        ("Namespace", &m.namespace.metadata, false),
        ("ServiceAccount", &m.service_account.metadata, true),
        ("ClusterRole", &m.cluster_role.metadata, false),
        ("ClusterRoleBinding", &m.binding.metadata, false),
        ("Secret", &m.secret.metadata, true),
        ("ConfigMap", &m.config_map.metadata, true),
        ("Deployment", &m.deployment.metadata, true),
        ("Service", &m.service.metadata, true),
        ("NetworkPolicy", &m.network_policy.metadata, true),
    ];
    for (kind, meta, namespaced) in metas {
        f.check(
            labels(meta).get(NAME_LABEL).map(String::as_str) == Some("skyhost"),
            format!("{kind} lacks {NAME_LABEL}: skyhost"),
        );
        let ns = meta.namespace.as_deref();
        f.check(
            if namespaced { ns == Some(NAMESPACE) } else { ns.is_none() },
            format!("{kind} has namespace {ns:?}, expected {}", if namespaced { NAMESPACE } else { "none" }),
        );
    }

    // RBAC: get/list/watch on nodes and pods in the core group, nothing else.
    let rules = m.cluster_role.rules.clone().unwrap_or_default();
    let mut granted = BTreeSet::new();
    for r in &rules {
        f.check(r.non_resource_urls.is_none(), "the ClusterRole grants non-resource URLs");
        f.check(r.resource_names.is_none(), "the ClusterRole names single resources");
        let strings = r.api_groups.iter().chain(&r.resources).flatten().chain(&r.verbs);
        f.check(!strings.clone().any(|s| s.contains('*')), format!("the ClusterRole has a `*`: {r:?}"));
        f.check(!r.resources.iter().flatten().any(|s| s.starts_with("secrets")), "the ClusterRole reaches secrets");
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    granted.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    let wanted: BTreeSet<(String, String, String)> = ["nodes", "pods"]
        .iter()
        .flat_map(|res| ["get", "list", "watch"].map(|v| (String::new(), res.to_string(), v.to_string())))
        .collect();
    f.check(
        granted == wanted,
        format!("the ClusterRole grants {granted:?}, expected get/list/watch on core nodes and pods"),
    );
    f.check(m.cluster_role.aggregation_rule.is_none(), "the ClusterRole aggregates others");
    let role_ref = &m.binding.role_ref;
    f.check(
        role_ref.api_group == "rbac.authorization.k8s.io"
            && role_ref.kind == "ClusterRole"
            && Some(&role_ref.name) == m.cluster_role.metadata.name.as_ref(),
        format!("the binding refers to {role_ref:?}, not the ClusterRole"),
    );
    let subjects = m.binding.subjects.clone().unwrap_or_default();
    f.check(
        matches!(&subjects[..], [s] if s.kind == "ServiceAccount"
            && Some(&s.name) == m.service_account.metadata.name.as_ref()
            && s.namespace == m.service_account.metadata.namespace),
        format!("the binding's subjects are {subjects:?}, not exactly the ServiceAccount"),
    );

    // The pod.
    let spec = m.deployment.spec.clone().unwrap_or_default();
    f.check(spec.replicas == Some(2), format!("replicas is {:?}, expected 2", spec.replicas));
    let pod_labels = spec.template.metadata.as_ref().map(labels).unwrap_or_default();
    let selects_pods = |selector: &BTreeMap<String, String>| {
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    f.check(
        spec.selector.match_expressions.is_none()
            && selects_pods(&spec.selector.match_labels.clone().unwrap_or_default()),
        "the Deployment's selector does not select its pods",
    );
    f.check(
        pod_labels.get(NAME_LABEL).map(String::as_str) == Some("skyhost"),
        format!("the pods lack {NAME_LABEL}: skyhost"),
    );
    let pod = spec.template.spec.clone().unwrap_or_default();
    f.check(
        pod.service_account_name == m.service_account.metadata.name,
        format!("the pods run as service account {:?}", pod.service_account_name),
    );
    f.check(pod.automount_service_account_token != Some(false), "the pods do not mount their service account token");
    for (what, on) in [("hostNetwork", pod.host_network), ("hostPID", pod.host_pid), ("hostIPC", pod.host_ipc)] {
        f.check(on != Some(true), format!("the pods use {what}"));
    }
    let psc = pod.security_context.clone().unwrap_or_default();
    f.check(psc.run_as_non_root == Some(true), "pod securityContext: runAsNonRoot is not true");
    f.check(
        psc.run_as_user == Some(UID),
        format!("pod securityContext: runAsUser is {:?}, expected {UID}", psc.run_as_user),
    );
    f.check(
        psc.seccomp_profile.as_ref().map(|p| p.type_.as_str()) == Some("RuntimeDefault"),
        "pod securityContext: seccompProfile is not RuntimeDefault",
    );
    let volumes = pod.volumes.clone().unwrap_or_default();
    f.check(!volumes.iter().any(|v| v.host_path.is_some()), "a hostPath volume");
    f.check(pod.init_containers.is_none() && pod.ephemeral_containers.is_none(), "containers besides the server");
    let [c]: &[Container] = &pod.containers[..] else {
        f.check(false, format!("{} containers, expected the server alone", pod.containers.len()));
        return f.0;
    };
    let sc = c.security_context.clone().unwrap_or_default();
    f.check(sc.run_as_non_root == Some(true), "container securityContext: runAsNonRoot is not true");
    f.check(
        sc.run_as_user == Some(UID),
        format!("container securityContext: runAsUser is {:?}, expected {UID}", sc.run_as_user),
    );
    f.check(
        sc.read_only_root_filesystem == Some(true),
        "container securityContext: readOnlyRootFilesystem is not true",
    );
    f.check(
        sc.allow_privilege_escalation == Some(false),
        "container securityContext: allowPrivilegeEscalation is not false",
    );
    f.check(sc.privileged != Some(true), "container securityContext: privileged");
    let caps = sc.capabilities.clone().unwrap_or_default();
    f.check(
        caps.drop == Some(vec!["ALL".to_string()]),
        format!("capabilities drop {:?}, expected [\"ALL\"]", caps.drop),
    );
    f.check(caps.add.as_ref().is_none_or(Vec::is_empty), format!("capabilities added: {:?}", caps.add));
    f.check(
        sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()) == Some("RuntimeDefault"),
        "container securityContext: seccompProfile is not RuntimeDefault",
    );
    let resources = c.resources.clone().unwrap_or_default();
    for (which, list) in [("requests", &resources.requests), ("limits", &resources.limits)] {
        for r in ["cpu", "memory"] {
            f.check(list.as_ref().is_some_and(|l| l.contains_key(r)), format!("no {r} in the container's {which}"));
        }
    }
    for r in ["cpu", "memory"] {
        let amount = |list: &Option<BTreeMap<String, Quantity>>| list.as_ref()?.get(r).map(|q| quantity(&q.0));
        if let (Some(request), Some(limit)) = (amount(&resources.requests), amount(&resources.limits)) {
            f.check(
                request.is_some() && limit.is_some() && request <= limit,
                format!("the container's {r} request {request:?} is not a quantity at most its limit {limit:?}"),
            );
        }
    }
    let ports = c.ports.clone().unwrap_or_default();
    let http = ports.iter().find(|p| p.name.as_deref() == Some("http"));
    f.check(
        http.is_some_and(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP"),
        "no TCP container port named `http`",
    );
    let container_port = http.map(|p| p.container_port);
    for (which, probe, path) in
        [("liveness", &c.liveness_probe, "/healthz"), ("readiness", &c.readiness_probe, "/readyz")]
    {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
        f.check(
            get.is_some_and(|g| {
                g.path.as_deref() == Some(path)
                    && g.port == IntOrString::String("http".into())
                    && g.scheme.as_deref().unwrap_or("HTTP") == "HTTP"
                    && g.host.is_none()
            }),
            format!("the {which} probe is not GET {path} on port `http`: {get:?}"),
        );
        f.check(
            routes.contains(path),
            format!("the {which} probe's {path} is not a route of the server (openapi.json)"),
        );
    }
    let mounts = c.volume_mounts.clone().unwrap_or_default();
    let mount_of = |path: &str| -> Option<&k8s_openapi::api::core::v1::Volume> {
        // The mount a file at `path` is read from (the longest prefix).
        let m = mounts
            .iter()
            .filter(|m| path.starts_with(&format!("{}/", m.mount_path.trim_end_matches('/'))) || path == m.mount_path)
            .max_by_key(|m| m.mount_path.len())?;
        volumes.iter().find(|v| v.name == m.name)
    };
    f.check(
        mount_of("/tmp/x").is_some_and(|v| v.empty_dir.is_some()),
        "/tmp is not an emptyDir (the root filesystem is read-only)",
    );
    f.check(
        mount_of("/etc/skyhost/kubeconfig").is_none(),
        "a kubeconfig is mounted: the pod must use its service account",
    );
    f.check(mounts.iter().all(|m| m.sub_path.is_none()), "a subPath mount (it never sees updates)");
    // A file under a mount of `volume` and the key it shows.
    let key_in = |path: &str| -> Option<(k8s_openapi::api::core::v1::Volume, String)> {
        let v = mount_of(path)?;
        let m = mounts.iter().find(|m| m.name == v.name)?;
        let key = path.strip_prefix(&format!("{}/", m.mount_path.trim_end_matches('/')))?;
        Some((v.clone(), key.to_string()))
    };

    // The config file: where SKYHOST_CONFIG says, from the ConfigMap.
    let config_path =
        c.env.iter().flatten().find(|e| e.name == "SKYHOST_CONFIG").and_then(|e| e.value.clone()).unwrap_or_default();
    let config_data = m.config_map.data.clone().unwrap_or_default();
    let config_text = match key_in(&config_path) {
        Some((v, key)) => {
            let from_map = v.config_map.as_ref().is_some_and(|s| {
                Some(&s.name) == m.config_map.metadata.name.as_ref() && s.items.is_none() && s.optional != Some(true)
            });
            f.check(from_map, format!("SKYHOST_CONFIG ({config_path}) is not on a mount of the ConfigMap"));
            config_data.get(&key).cloned()
        }
        None => None,
    };
    let Some(config_text) = config_text else {
        f.check(false, format!("SKYHOST_CONFIG ({config_path:?}) is not a file of the ConfigMap"));
        return f.0;
    };
    let config: toml::Table = match config_text.parse() {
        Ok(t) => t,
        Err(e) => {
            f.check(false, format!("config.toml is not TOML: {e}"));
            return f.0;
        }
    };
    let serve = config.get("serve").and_then(toml::Value::as_table).cloned().unwrap_or_default();
    let addr = serve.get("addr").and_then(toml::Value::as_str).unwrap_or_default();
    let addr_port = addr.rsplit_once(':').and_then(|(_, p)| p.parse::<i32>().ok());
    f.check(
        addr_port.is_some() && addr_port == container_port,
        format!("[serve] addr {addr:?} is not the `http` port {container_port:?}"),
    );
    f.check(
        addr.starts_with("0.0.0.0:") || addr.starts_with("[::]:"),
        format!("[serve] addr {addr:?} is not reachable from outside the pod"),
    );
    f.check(
        c.command.is_none() && c.args.as_deref() == Some(&["serve".to_string()][..]),
        format!("the container runs {:?} {:?}, expected `serve` with the address from the config", c.command, c.args),
    );

    // The tokens: where tokens_file says, from the Secret, never a plain token.
    let tokens_path = serve.get("tokens_file").and_then(toml::Value::as_str).unwrap_or_default();
    match key_in(tokens_path) {
        Some((v, key)) => {
            f.check(
                v.secret.as_ref().is_some_and(|s| {
                    s.secret_name == m.secret.metadata.name && s.items.is_none() && s.optional != Some(true)
                }),
                format!("tokens_file ({tokens_path}) is not on a mount of the Secret"),
            );
            let mode = v.secret.as_ref().and_then(|s| s.default_mode).unwrap_or(0o644);
            f.check(mode & !0o440 == 0, format!("the tokens file is writable or readable by others (mode {mode:#o})"));
            let stored = m.secret.string_data.as_ref().and_then(|d| d.get(&key)).cloned().or_else(|| {
                m.secret.data.as_ref().and_then(|d| d.get(&key)).map(|b| String::from_utf8_lossy(&b.0).into_owned())
            });
            match stored {
                Some(tokens) => {
                    let lines: Vec<&str> = tokens.lines().filter(|l| !l.trim().is_empty()).collect();
                    f.check(!lines.is_empty(), "the Secret holds no token line");
                    for l in lines {
                        let hex = l.trim().strip_prefix("sha256:").unwrap_or("");
                        f.check(
                            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                            format!("the Secret's token line {l:?} is not `sha256:<64 hex>` (no plain token in the repository)"),
                        );
                    }
                }
                None => f.check(false, format!("the Secret has no key {key:?} (tokens_file {tokens_path})")),
            }
        }
        None => f.check(false, format!("[serve] tokens_file {tokens_path:?} is not on a mounted volume")),
    }

    // The Service: port 80 to the container port, by name.
    let svc = m.service.spec.clone().unwrap_or_default();
    f.check(selects_pods(&svc.selector.clone().unwrap_or_default()), "the Service's selector does not select the pods");
    let svc_ports = svc.ports.clone().unwrap_or_default();
    f.check(
        matches!(&svc_ports[..], [p] if p.port == 80 && p.target_port == Some(IntOrString::String("http".into()))
            && p.protocol.as_deref().unwrap_or("TCP") == "TCP"),
        format!("the Service's ports are {svc_ports:?}, expected 80 to the container port `http`"),
    );

    // The NetworkPolicy: in to the server's port, out to DNS and the API server.
    let np = m.network_policy.spec.clone().unwrap_or_default();
    let selector = np.pod_selector.clone().unwrap_or_default();
    f.check(
        selector.match_expressions.is_none() && selects_pods(&selector.match_labels.clone().unwrap_or_default()),
        "the NetworkPolicy does not select the pods",
    );
    let types = np.policy_types.clone().unwrap_or_default();
    f.check(
        types.iter().any(|t| t == "Ingress") && types.iter().any(|t| t == "Egress"),
        format!("policyTypes {types:?} is not both Ingress and Egress"),
    );
    let port_set = |rules: Vec<Option<Vec<NetworkPolicyPort>>>, f: &mut Findings, what: &str| {
        let mut set = BTreeSet::new();
        for ports in rules {
            // A rule without ports opens every port.
            let Some(ports) = ports.filter(|p| !p.is_empty()) else {
                f.check(false, format!("a NetworkPolicy {what} rule allows every port"));
                continue;
            };
            for p in ports {
                f.check(p.end_port.is_none(), format!("a NetworkPolicy {what} port range"));
                let n = match p.port {
                    Some(IntOrString::Int(n)) => n,
                    Some(IntOrString::String(name)) if name == "http" => container_port.unwrap_or(-1),
                    other => {
                        f.check(false, format!("a NetworkPolicy {what} port {other:?}"));
                        continue;
                    }
                };
                set.insert((n, p.protocol.unwrap_or_else(|| "TCP".into())));
            }
        }
        set
    };
    let ingress = np.ingress.clone().unwrap_or_default().into_iter().map(|r| r.ports).collect();
    let ingress = port_set(ingress, &mut f, "ingress");
    let expected: BTreeSet<(i32, String)> = container_port.into_iter().map(|p| (p, "TCP".to_string())).collect();
    f.check(ingress == expected, format!("the NetworkPolicy lets in {ingress:?}, expected only the `http` port"));
    let egress = np.egress.clone().unwrap_or_default().into_iter().map(|r| r.ports).collect();
    let egress = port_set(egress, &mut f, "egress");
    let expected: BTreeSet<(i32, String)> =
        [(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")].map(|(p, t)| (p, t.to_string())).into_iter().collect();
    f.check(egress == expected, format!("the NetworkPolicy lets out {egress:?}, expected DNS and the API server only"));

    f.0
}

fn manifests() -> Vec<Value> {
    render(&workspace().join("deploy/kubernetes")).unwrap_or_else(|e| panic!("deploy/kubernetes: {e}"))
}

#[test]
fn manifests_are_valid_and_keep_their_promises() {
    let found = violations(&manifests(), &server_paths());
    assert!(found.is_empty(), "deploy/kubernetes breaks its promises:\n  {}", found.join("\n  "));
}

/// The config file the pods read is one the real binary accepts (an unknown
/// key is an error, exit 2).
#[test]
fn the_pods_config_file_is_accepted_by_skyhost() {
    let objects = manifests();
    let map: ConfigMap = one(&objects, "v1", "ConfigMap").expect("one ConfigMap");
    let text = map.data.unwrap_or_default().remove("config.toml").expect("config.toml in the ConfigMap");
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("pod-config.toml");
    std::fs::write(&file, text).expect("write config");
    let run = sandbox.run([
        std::ffi::OsStr::new("--config"),
        file.as_os_str(),
        "plugins".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    run.expect_code(0);
}

// The checks above can fail: each broken copy of the manifests below is caught.

/// The rendered manifests with `edit` applied to the first object of `kind`.
fn broken(kind: &str, edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut objects = manifests();
    edit(objects.iter_mut().find(|o| o["kind"] == kind).expect(kind));
    violations(&objects, &server_paths())
}

#[track_caller]
fn assert_caught(found: Vec<String>, expected: &str) {
    assert!(found.iter().any(|f| f.contains(expected)), "expected a finding containing {expected:?}, got {found:?}");
}

#[test]
fn broken_manifests_are_caught() {
    assert_caught(
        broken("ClusterRole", |o| o["rules"][0]["verbs"].as_array_mut().unwrap().push("*".into())),
        "has a `*`",
    );
    assert_caught(
        broken("ClusterRole", |o| o["rules"][0]["resources"].as_array_mut().unwrap().push("secrets".into())),
        "reaches secrets",
    );
    assert_caught(
        broken("ClusterRole", |o| o["rules"][0]["verbs"].as_array_mut().unwrap().push("delete".into())),
        "expected get/list/watch",
    );
    assert_caught(
        broken("ClusterRoleBinding", |o| o["subjects"][0]["name"] = "default".into()),
        "not exactly the ServiceAccount",
    );
    // A typo in a field name: the API types do not know it.
    assert_caught(
        broken("Deployment", |o| {
            let sc = o["spec"]["template"]["spec"]["containers"][0]["securityContext"].as_object_mut().unwrap();
            let v = sc.remove("readOnlyRootFilesystem").unwrap();
            sc.insert("readOnlyRootFileSystem".into(), v);
        }),
        "unknown field `.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem`",
    );
    // A value of the wrong type.
    assert_caught(broken("Deployment", |o| o["spec"]["replicas"] = "2".into()), "Deployment skyhost:");
    assert_caught(broken("Deployment", |o| o["spec"]["replicas"] = 3.into()), "replicas is Some(3)");
    assert_caught(
        broken("Deployment", |o| {
            o["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] =
                serde_json::json!(["NET_RAW"])
        }),
        "capabilities drop",
    );
    assert_caught(
        broken("Deployment", |o| o["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0.into()),
        "pod securityContext: runAsUser",
    );
    assert_caught(
        broken("Deployment", |o| {
            o["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/ready".into()
        }),
        "the readiness probe is not GET /readyz",
    );
    assert_caught(
        broken("Deployment", |o| {
            o["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                .as_object_mut()
                .unwrap()
                .remove("memory");
        }),
        "no memory in the container's limits",
    );
    assert_caught(
        broken("Deployment", |o| {
            o["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "2Gi".into()
        }),
        "memory request",
    );
    assert_caught(
        broken("Deployment", |o| {
            o["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "one".into()
        }),
        "cpu request",
    );
    assert_caught(
        broken("Deployment", |o| o["spec"]["template"]["spec"]["volumes"][1]["secret"]["defaultMode"] = 0o444.into()),
        "writable or readable by others",
    );
    // A probe on a path the server does not route.
    let mut routes = server_paths();
    routes.remove("/readyz");
    assert_caught(violations(&manifests(), &routes), "/readyz is not a route of the server");
    assert_caught(
        broken("Service", |o| o["spec"]["ports"][0]["targetPort"] = 46590.into()),
        "expected 80 to the container port `http`",
    );
    assert_caught(
        broken("NetworkPolicy", |o| o["spec"]["egress"].as_array_mut().unwrap().push(serde_json::json!({}))),
        "egress rule allows every port",
    );
    assert_caught(
        broken("NetworkPolicy", |o| o["spec"]["podSelector"]["matchLabels"] = serde_json::json!({"app": "other"})),
        "does not select the pods",
    );
    assert_caught(broken("Secret", |o| o["stringData"]["tokens"] = "hunter2\n".into()), "no plain token");
    assert_caught(
        broken("ConfigMap", |o| o["data"]["config.toml"] = "[serve]\naddr = \"127.0.0.1:46590\"\n".into()),
        "not reachable from outside the pod",
    );
    let mut objects = manifests();
    objects.retain(|o| o["kind"] != "NetworkPolicy");
    assert_caught(violations(&objects, &server_paths()), "0 objects of kind NetworkPolicy");
}

#[test]
fn unimplemented_kustomize_features_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in std::fs::read_dir(workspace().join("deploy/kubernetes")).expect("deploy/kubernetes") {
        let file = file.expect("entry").path();
        std::fs::copy(&file, dir.path().join(file.file_name().expect("name"))).expect("copy");
    }
    let k = dir.path().join("kustomization.yaml");
    let text = std::fs::read_to_string(&k).expect("kustomization.yaml");
    render(dir.path()).expect("the copy renders");
    std::fs::write(&k, format!("{text}images:\n  - name: skyhost\n    newTag: other\n")).expect("write");
    let e = render(dir.path()).expect_err("images: is not implemented");
    assert!(e.contains("`images:"), "{e}");
    std::fs::write(&k, text.replace("  - namespace.yaml\n", "  - ../namespace.yaml\n")).expect("write");
    assert!(render(dir.path()).expect_err("a file outside").contains("not a file in this directory"));
}
