//! Asks the backends, all at once, and assembles the [`GpuReport`].
//!
//! Each backend runs on its own thread; a slow Kubernetes context never
//! delays the catalog answers, and the command waits on no backend its
//! options do not need.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use skyhost_plugin_api::{
    ClusterQuery, ClusterReport, ErrorKind, GpuQuery, GpuQueryResponse, PluginError, capability, method,
};

use super::{
    report::{self, ClusterSection, GpuReport, Mode, NotFound, Note},
    request::GpuRequest,
};
use crate::{
    app::App,
    catalogs::{self, CatalogSettings, Resolved},
    config::{self, AllowedContexts},
    diagnostics::Failure,
    fan_out::fan_out,
    plugins::{BackendHandle, PluginSet},
    requirements::Skipped,
};

/// Settings the backends need, beyond the request.
#[derive(Debug, Clone)]
pub struct GatherSettings {
    /// Catalog sources.
    pub catalogs: CatalogSettings,
    /// `[kubernetes] allowed_contexts`.
    pub allowed_contexts: Option<AllowedContexts>,
    /// Deadline per cluster.
    pub cluster_timeout: Duration,
    /// Sections of other cluster backends (`[slurm]`), by backend name.
    pub sections: BTreeMap<String, config::ClusterBackendSection>,
    /// `[kubernetes] tolerations`.
    pub tolerations: Vec<skyhost_plugin_api::Toleration>,
}

impl GatherSettings {
    /// Settings from the app's config and environment (`SKYHOST_KUBE_TIMEOUT`,
    /// which must be a number of seconds in [`config::TIMEOUT`]'s range).
    pub fn from_app(app: &App) -> Result<Self, Failure> {
        let from_env = match std::env::var("SKYHOST_KUBE_TIMEOUT") {
            Ok(text) => Some(
                text.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("SKYHOST_KUBE_TIMEOUT = {text:?} is not a number of seconds"))
                    .and_then(|t| config::TIMEOUT.check("SKYHOST_KUBE_TIMEOUT", t))
                    .map_err(|e| Failure::usage(e).help("unset it, or give the per-context deadline, e.g. 10"))?,
            ),
            Err(_) => None,
        };
        let timeout = from_env.or(app.config.kubernetes.timeout_secs).unwrap_or(10.0);
        let mut sections = BTreeMap::new();
        if let Some(t) = &app.config.slurm {
            // Checked when the config was loaded.
            let section = config::ClusterBackendSection::from_table("slurm", t).map_err(Failure::usage)?;
            sections.insert("slurm".to_string(), section);
        }
        let tolerations = app
            .config
            .kubernetes
            .tolerations
            .iter()
            .map(|t| super::toleration::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Failure::usage(format!("[kubernetes] tolerations: {e}"))
                    .help("write each as KEY[=VALUE][:EFFECT], e.g. \"dedicated=gpu:NoSchedule\"")
            })?;
        Ok(Self {
            tolerations,
            catalogs: CatalogSettings::from_app(app),
            allowed_contexts: app.config.kubernetes.allowed_contexts.clone(),
            cluster_timeout: Duration::from_secs_f64(timeout),
            sections,
        })
    }

    /// What cluster backend `backend` is asked: `(clusters, all, deadline per
    /// cluster, its config section)`. `--context` names Kubernetes contexts;
    /// another backend's clusters are named by `--infra <backend>/<cluster>`
    /// or its `allowed_clusters`; `--infra <backend>` alone (`infra_named`)
    /// asks all of them, and a listing that does not name the backend asks
    /// for its default (empty and not `all`: Slurm's every cluster, if any).
    pub fn clusters_for(
        &self,
        backend: &str,
        named: &[String],
        all: bool,
        infra_named: bool,
    ) -> (Vec<String>, bool, Duration, Option<serde_json::Value>) {
        if backend == "kubernetes" {
            let (c, a) = self.contexts(named, all);
            return (c, a, self.cluster_timeout, None);
        }
        let section = self.sections.get(backend);
        let timeout = section.and_then(|s| s.timeout_secs).map_or(self.cluster_timeout, Duration::from_secs_f64);
        let json = section.map(|s| s.json.clone());
        if infra_named && !named.is_empty() {
            return (named.to_vec(), false, timeout, json);
        }
        match section.and_then(|s| s.allowed.clone()) {
            Some(AllowedContexts::List(list)) => (list, false, timeout, json),
            Some(AllowedContexts::All) => (Vec::new(), true, timeout, json),
            None => (Vec::new(), infra_named, timeout, json),
        }
    }

    /// The contexts to ask: those named (`--context`), all of them
    /// (`--all-contexts`), or else what `allowed_contexts` says; `(names, all)`.
    pub fn contexts(&self, named: &[String], all: bool) -> (Vec<String>, bool) {
        if !named.is_empty() || all {
            return (named.to_vec(), all);
        }
        match &self.allowed_contexts {
            Some(AllowedContexts::All) => (Vec::new(), true),
            Some(AllowedContexts::List(list)) => (list.clone(), false),
            None => (Vec::new(), false),
        }
    }
}

/// How much longer than the per-context deadline a cluster call may take.
const CALL_MARGIN: Duration = Duration::from_secs(2);

/// What is being waited on, for the spinner.
pub type Progress = Arc<Mutex<BTreeMap<String, String>>>;

fn set_progress(progress: &Progress, backend: &str, what: Option<String>) {
    let mut p = progress.lock().expect("progress lock");
    match what {
        Some(w) => p.insert(backend.to_string(), w),
        None => p.remove(backend),
    };
}

/// What a backend is asked.
#[derive(Clone, Copy)]
enum Ask {
    Clusters,
    Catalog,
}

enum Answer {
    Clusters(Result<ClusterReport, PluginError>),
    Catalog(Resolved, Result<GpuQueryResponse, PluginError>),
}

/// Whether the request includes the backend `name`.
fn wanted(req: &GpuRequest, name: &str) -> bool {
    req.infra.as_deref().is_none_or(|i| i == name)
}

fn cluster_query(req: &GpuRequest, settings: &GatherSettings, backend: &str) -> (ClusterQuery, Duration) {
    let infra_named = req.infra.as_deref() == Some(backend);
    let (clusters, all_clusters, timeout, section) =
        settings.clusters_for(backend, &req.contexts, req.all_contexts, infra_named);
    let q = ClusterQuery {
        clusters,
        all_clusters,
        timeout_secs: timeout.as_secs_f64(),
        name: req.name.clone(),
        quantity: req.quantity,
        settings: section,
        tolerations: settings.tolerations.iter().chain(&req.tolerations).cloned().collect(),
    };
    (q, timeout)
}

fn catalog_query(req: &GpuRequest, resolved: &Resolved, want_counts: bool, want_offerings: bool) -> GpuQuery {
    GpuQuery {
        catalog_path: resolved.request_path(),
        name: req.name.clone(),
        quantity: req.quantity.map(f64::from),
        region: req.region.clone(),
        all_regions: req.all_regions,
        want_counts,
        want_offerings,
    }
}

fn ask_catalog(
    backend: &BackendHandle,
    settings: &CatalogSettings,
    q: impl Fn(&Resolved) -> GpuQuery,
    progress: &Progress,
) -> Answer {
    let resolved = match &backend.info.catalog {
        Some(spec) => catalogs::resolve(settings, backend, spec, &|name| {
            set_progress(progress, name, Some(format!("downloading the {name} catalog")))
        }),
        None => Resolved::embedded(),
    };
    // Reading a catalog takes milliseconds; the spinner shows only downloads.
    set_progress(progress, &backend.name, None);
    let answer = backend.call(method::GPU_QUERY, &q(&resolved));
    Answer::Catalog(resolved, answer)
}

/// Calls the backends and builds the report. `csv` asks for every offering.
pub fn gather(
    plugins: &PluginSet,
    req: &GpuRequest,
    skipped: &[Skipped],
    settings: &GatherSettings,
    want_all_offerings: bool,
    progress: &Progress,
) -> GpuReport {
    let mode = match (&req.name, req.all) {
        (Some(_), _) => Mode::Named,
        (None, true) => Mode::All,
        (None, false) => Mode::Default,
    };
    let want_counts = mode != Mode::Named;
    let want_offerings = mode != Mode::Default || want_all_offerings;
    let clusters: Vec<&Arc<BackendHandle>> =
        plugins.with_capability(capability::CLUSTERS).filter(|b| wanted(req, &b.name)).collect();
    let clouds: Vec<&Arc<BackendHandle>> =
        plugins.with_capability(capability::CATALOG).filter(|b| wanted(req, &b.name)).collect();

    let jobs = clusters.iter().map(|&b| (b, Ask::Clusters)).chain(clouds.iter().map(|&b| (b, Ask::Catalog)));
    let answers = fan_out(
        jobs,
        |(b, ask)| {
            let answer = match ask {
                Ask::Clusters => {
                    set_progress(progress, &b.name, Some(format!("waiting for {} clusters", b.display_name())));
                    // The plugin keeps each context's deadline; the call's own
                    // deadline only catches a plugin that does not.
                    let (cluster_q, timeout) = cluster_query(req, settings, &b.name);
                    let answer = b.call_within(method::CLUSTER_GPUS, &cluster_q, timeout + CALL_MARGIN);
                    set_progress(progress, &b.name, None);
                    Answer::Clusters(answer)
                }
                Ask::Catalog => {
                    ask_catalog(b, &settings.catalogs, |r| catalog_query(req, r, want_counts, want_offerings), progress)
                }
            };
            (b.clone(), answer)
        },
        |(b, ask), message| {
            let e = PluginError::new(ErrorKind::Other, format!("skyhost hit a bug while asking it: {message}"))
                .with_hint("please report it, with the command you ran");
            (
                b.clone(),
                match ask {
                    Ask::Clusters => Answer::Clusters(Err(e)),
                    Ask::Catalog => Answer::Catalog(Resolved::embedded(), Err(e)),
                },
            )
        },
    );

    let mut report = GpuReport {
        schema_version: report::SCHEMA_VERSION,
        query: req.clone(),
        mode,
        clouds_included: req
            .infra
            .as_deref()
            .is_none_or(|i| plugins.backend(i).is_some_and(|b| b.has_capability(capability::CATALOG))),
        ..Default::default()
    };
    let mut counts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut per_cloud = Vec::new();
    let mut fetch_failures: Vec<(String, String)> = Vec::new();
    let mut cluster_found_any = false;
    for (backend, answer) in answers {
        match answer {
            Answer::Clusters(Ok(cr)) => {
                let has_gpus = cr.clusters.iter().any(|c| !c.gpus.is_empty());
                cluster_found_any |= has_gpus;
                cluster_notes(&backend, &cr, &mut report.notes);
                if !has_gpus && cr.clusters.iter().any(|c| c.error.is_none()) {
                    report.notes.push(no_cluster_gpus(&backend, req, cr.cluster_noun.as_deref()));
                }
                // A backend with no clusters here (Slurm not set up, not asked for) has no section.
                if cr.clusters.is_empty() {
                    continue;
                }
                report.clusters.push(ClusterSection {
                    backend: backend.name.clone(),
                    display_name: backend.display_name().to_string(),
                    totals: report::cluster_totals(&cr.clusters),
                    clusters: cr.clusters,
                });
            }
            Answer::Clusters(Err(e)) | Answer::Catalog(_, Err(e)) => {
                let named = req.infra.as_deref() == Some(backend.name.as_str());
                let (kind, message) = match e.kind {
                    // Not set up here (no kubeconfig): a listing that did not ask for it skips it.
                    ErrorKind::NotConfigured if !named => {
                        ("skipped_backends", format!("skipped {}: {}", backend.name, e.message))
                    }
                    ErrorKind::NotConfigured => {
                        ("backend_error", format!("the {} backend is not set up here: {}", backend.name, e.message))
                    }
                    _ => ("backend_error", format!("the {} backend failed: {}", backend.name, e.message)),
                };
                report.notes.push(Note::new(kind, Some(&backend.name), message, e.hint.clone()));
            }
            Answer::Catalog(resolved, Ok(resp)) => {
                if let Some(err) = &resolved.fetch_error {
                    fetch_failures.push((backend.name.clone(), err.clone()));
                }
                if let Some(missing) = &resolved.dir_missing {
                    report.notes.push(Note::new(
                        "catalog",
                        Some(&backend.name),
                        format!(
                            "the catalog directory has no {}; used the {} copy instead",
                            missing.display(),
                            resolved.origin.word()
                        ),
                        None,
                    ));
                }
                for w in resp.warnings {
                    report.notes.push(Note::new("catalog", Some(&backend.name), w, None));
                }
                for c in &resp.counts {
                    report::merge_counts(&mut counts, &c.name, &c.quantities);
                }
                per_cloud.push((backend.name.clone(), backend.display_name().to_string(), resp.offerings));
            }
        }
    }
    if !fetch_failures.is_empty() {
        let names: Vec<&str> = fetch_failures.iter().map(|(n, _)| n.as_str()).collect();
        report.notes.push(Note::new(
            "catalog",
            None,
            format!(
                "could not refresh the catalogs of {} ({}); used the cached or embedded copies",
                names.join(", "),
                fetch_failures[0].1
            ),
            Some("run `skyhost catalog update` to try again, or point --catalog-dir at local catalogs".into()),
        ));
    }
    report.offerings = report::offering_tables(per_cloud);
    if mode != Mode::Named {
        let (common, tpus, other) = report::count_tables(counts);
        report.common_gpus = common;
        report.tpus = tpus;
        if mode == Mode::All {
            report.other_gpus = other;
        }
    }
    if mode == Mode::Named && report.clouds_included && report.offerings.is_empty() {
        report.not_found = Some(not_found(plugins, req, &clouds, settings, cluster_found_any));
    }
    if let Some((message, hint)) = crate::requirements::skipped_summary(skipped) {
        report.notes.push(Note::new("skipped_backends", None, message, hint));
    }
    report
}

fn cluster_notes(backend: &BackendHandle, cr: &ClusterReport, notes: &mut Vec<Note>) {
    for n in &cr.notes {
        notes.push(Note::new("cluster", Some(&backend.name), n.clone(), None));
    }
    let noun = cr.cluster_noun.as_deref().unwrap_or("context");
    for c in &cr.clusters {
        if let Some(e) = &c.error {
            notes.push(Note::new(
                "context_error",
                Some(&backend.name),
                format!("{} {noun} '{}' failed: {}", backend.display_name(), c.name, e.reason),
                e.hint.clone(),
            ));
        }
        for n in &c.notes {
            notes.push(Note::new("cluster", Some(&backend.name), format!("{}: {n}", c.name), None));
        }
    }
}

/// `" with requested quantity 8"`, or nothing, as SkyPilot words it.
fn with_quantity(req: &GpuRequest) -> String {
    req.quantity.map(|q| format!(" with requested quantity {q}")).unwrap_or_default()
}

fn no_cluster_gpus(backend: &BackendHandle, req: &GpuRequest, noun: Option<&str>) -> Note {
    let display = backend.display_name();
    let message = match &req.name {
        Some(name) => format!("Resources '{name}'{} not found in {display} clusters.", with_quantity(req)),
        None => format!("No GPUs found in any {display} clusters."),
    };
    if noun.is_some() {
        // Not Kubernetes: the backend's own check says what it sees.
        let hint = format!("run `skyhost check {}` to see what each cluster reports", backend.name);
        return Note::new("cluster", Some(&backend.name), message, Some(hint));
    }
    Note::new(
        "cluster",
        Some(&backend.name),
        message,
        Some(format!(
            "if a cluster has GPUs, make sure nvidia.com/gpu, amd.com/gpu or google.com/tpu is allocatable on its nodes \
             and the nodes carry a GPU type label (e.g. skypilot.co/accelerator); then run `skyhost check {}`",
            backend.name
        )),
    )
}

fn not_found(
    plugins: &PluginSet,
    req: &GpuRequest,
    clouds: &[&Arc<BackendHandle>],
    settings: &GatherSettings,
    in_clusters: bool,
) -> NotFound {
    let name = req.name.clone().unwrap_or_default();
    let qty = with_quantity(req);
    let place = match req.infra.as_deref().and_then(|i| plugins.backend(i)) {
        Some(b) => format!(" on {}", b.display_name()),
        None => " in cloud catalogs".to_string(),
    };
    // The names that do exist, for suggestions: ask again without filters.
    let mut names: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let all = GpuRequest { region: req.region.clone(), ..Default::default() };
    let progress: Progress = Arc::default();
    for b in clouds {
        if let Answer::Catalog(_, Ok(resp)) =
            ask_catalog(b, &settings.catalogs, |r| catalog_query(&all, r, true, false), &progress)
        {
            for c in resp.counts {
                report::merge_counts(&mut names, &c.name, &c.quantities);
            }
        }
    }
    let mut suggestions = report::suggestions(&name, names.keys().map(String::as_str));
    if req.quantity.is_some()
        && let Some(q) = names.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, q)| q)
    {
        let list: Vec<String> = q.iter().map(|x| super::render::quantity(*x)).collect();
        suggestions.retain(|s| !s.eq_ignore_ascii_case(&name));
        suggestions.insert(0, format!("{name}:{}", list.join(&format!(", {name}:"))));
    }
    let mut message = format!("Resources '{name}'{qty} not found{place}.");
    if in_clusters {
        message.push_str(" (Kubernetes has it; see above.)");
    }
    NotFound { message, suggestions }
}
