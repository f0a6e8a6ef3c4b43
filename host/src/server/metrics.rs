//! `/metrics` in the Prometheus text format (prometheus-client): requests
//! and their latency by route and status, plugin calls by backend and
//! method, each backend's status and its worker's failures, and per backend,
//! context and GPU the capacity, free and not-ready GPUs, with whether the
//! context answered and how old that answer is. The GPU figures come from
//! the cached default listing, so a scrape never asks a cluster more often
//! than `/v1/gpus` would.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{gpus::report::GpuReport, plugins::PluginSet};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    backend: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    backend: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContextLabels {
    backend: String,
    context: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpuLabels {
    backend: String,
    context: String,
    gpu: String,
}

fn latency_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16))
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    calls: Family<CallLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            calls: Family::new_with_constructor(latency_buckets),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe_request(&self, route: &str, status: u16, took: Duration) {
        let labels = RouteLabels { route: route.to_string(), status };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// Times one plugin call.
    pub fn observe_call(&self, backend: &str, method: &str, took: Duration) {
        let labels = CallLabels { backend: backend.to_string(), method: method.to_string() };
        self.calls.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// The exposition: these metrics, the backends' state now, and the GPU
    /// figures of `listing` (the cached default listing and its age).
    pub fn render(&self, plugins: &PluginSet, listing: Option<(&GpuReport, Duration)>) -> String {
        let mut r = Registry::with_prefix("skyhost");
        r.register("http_requests", "Requests answered, by route and status", self.requests.clone());
        r.register("http_request_duration_seconds", "Time to answer, by route and status", self.latency.clone());
        r.register("plugin_call_duration_seconds", "Plugin calls, by backend and method", self.calls.clone());

        let status: Family<StatusLabels, Gauge> = Family::default();
        let failures: Family<BackendLabels, Gauge> = Family::default();
        let restarts: Family<BackendLabels, Gauge> = Family::default();
        for e in plugins.entries_now() {
            let backend = e.name.clone();
            status.get_or_create(&StatusLabels { backend: backend.clone(), status: e.status.word().into() }).set(1);
            if let Some(h) = &e.health {
                failures.get_or_create(&BackendLabels { backend: backend.clone() }).set(i64::from(h.failures_in_a_row));
                restarts.get_or_create(&BackendLabels { backend }).set(h.restarts as i64);
            }
        }
        r.register("backend_status", "1 for each backend's status (loaded, missing, broken, ...)", status);
        r.register("plugin_failures_in_a_row", "Calls in a row that crashed or hung the plugin's worker", failures);
        r.register("plugin_worker_restarts", "Worker processes started again after a failure", restarts);

        let up: Family<ContextLabels, Gauge> = Family::default();
        let age: Family<ContextLabels, Gauge> = Family::default();
        let capacity: Family<GpuLabels, Gauge> = Family::default();
        let free: Family<GpuLabels, Gauge> = Family::default();
        let not_ready: Family<GpuLabels, Gauge> = Family::default();
        if let Some((report, old)) = listing {
            for section in &report.clusters {
                for c in &section.clusters {
                    let ctx = ContextLabels { backend: section.backend.clone(), context: c.name.clone() };
                    up.get_or_create(&ctx).set(i64::from(c.error.is_none()));
                    age.get_or_create(&ctx).set(old.as_secs() as i64);
                    for g in &c.gpus {
                        let l = GpuLabels {
                            backend: section.backend.clone(),
                            context: c.name.clone(),
                            gpu: g.name.clone(),
                        };
                        capacity.get_or_create(&l).set(i64::from(g.capacity));
                        not_ready.get_or_create(&l).set(i64::from(g.not_ready));
                        if let Some(f) = g.free {
                            free.get_or_create(&l).set(i64::from(f));
                        }
                    }
                }
            }
        }
        r.register("context_up", "1 when the context's last answer succeeded", up);
        r.register("context_answer_age_seconds", "Age of the answer the GPU figures come from", age);
        r.register("gpus_capacity", "GPUs on schedulable nodes", capacity);
        r.register("gpus_free", "GPUs not requested by pods (absent when unknown)", free);
        r.register("gpus_not_ready", "GPUs on nodes that are not ready, cordoned or tainted", not_ready);

        let mut out = String::new();
        encode(&mut out, &r).expect("writing to a String cannot fail");
        out
    }
}
