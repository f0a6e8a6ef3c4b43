//! `/metrics` in the Prometheus text format (the `prometheus` crate):
//! requests and their latency by route and status, plugin calls by backend
//! and method, each backend's status and its worker's failures, and per
//! backend, context and GPU the capacity, free and not-ready GPUs, with
//! whether the context answered and how old that answer is. The GPU figures
//! come from the cached default listing, so a scrape never asks a cluster
//! more often than `/v1/gpus` would.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

use crate::{gpus::report::GpuReport, plugins::PluginSet};

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    calls: HistogramVec,
}

fn buckets() -> Vec<f64> {
    exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
}

impl Default for Metrics {
    fn default() -> Self {
        let labels = ["route", "status"];
        Self {
            requests: IntCounterVec::new(
                Opts::new("skyhost_http_requests_total", "Requests answered, by route and status"),
                &labels,
            )
            .expect("valid metric"),
            latency: HistogramVec::new(
                HistogramOpts::new("skyhost_http_request_duration_seconds", "Time to answer, by route and status")
                    .buckets(buckets()),
                &labels,
            )
            .expect("valid metric"),
            calls: HistogramVec::new(
                HistogramOpts::new("skyhost_plugin_call_duration_seconds", "Plugin calls, by backend and method")
                    .buckets(buckets()),
                &["backend", "method"],
            )
            .expect("valid metric"),
        }
    }
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe_request(&self, route: &str, status: u16, took: Duration) {
        let status = status.to_string();
        self.requests.with_label_values(&[route, &status]).inc();
        self.latency.with_label_values(&[route, &status]).observe(took.as_secs_f64());
    }

    /// Times one plugin call.
    pub fn observe_call(&self, backend: &str, method: &str, took: Duration) {
        self.calls.with_label_values(&[backend, method]).observe(took.as_secs_f64());
    }

    /// The exposition: these metrics, the backends' state now, and the GPU
    /// figures of `listing` (the cached default listing and its age).
    pub fn render(&self, plugins: &PluginSet, listing: Option<(&GpuReport, Duration)>) -> String {
        let status = gauges(
            "skyhost_backend_status",
            "1 for each backend's status (loaded, missing, broken, ...)",
            &["backend", "status"],
        );
        let failures = gauges(
            "skyhost_plugin_failures_in_a_row",
            "Calls in a row that crashed or hung the plugin's worker",
            &["backend"],
        );
        let restarts =
            gauges("skyhost_plugin_worker_restarts", "Worker processes started again after a failure", &["backend"]);
        for e in plugins.entries_now() {
            status.with_label_values(&[e.name.as_str(), e.status.word()]).set(1);
            if let Some(h) = &e.health {
                failures.with_label_values(&[e.name.as_str()]).set(i64::from(h.failures_in_a_row));
                restarts.with_label_values(&[e.name.as_str()]).set(h.restarts as i64);
            }
        }
        let ctx = ["backend", "context"];
        let gpu = ["backend", "context", "gpu"];
        let up = gauges("skyhost_context_up", "1 when the context's last answer succeeded", &ctx);
        let age = gauges("skyhost_context_answer_age_seconds", "Age of the answer the GPU figures come from", &ctx);
        let capacity = gauges("skyhost_gpus_capacity", "GPUs on schedulable nodes", &gpu);
        let free = gauges("skyhost_gpus_free", "GPUs not requested by pods (absent when unknown)", &gpu);
        let not_ready = gauges("skyhost_gpus_not_ready", "GPUs on nodes that are not ready, cordoned or tainted", &gpu);
        if let Some((report, old)) = listing {
            for section in &report.clusters {
                for c in &section.clusters {
                    let l = [section.backend.as_str(), c.name.as_str()];
                    up.with_label_values(&l).set(i64::from(c.error.is_none()));
                    age.with_label_values(&l).set(old.as_secs() as i64);
                    for g in &c.gpus {
                        let l = [section.backend.as_str(), c.name.as_str(), g.name.as_str()];
                        capacity.with_label_values(&l).set(i64::from(g.capacity));
                        not_ready.with_label_values(&l).set(i64::from(g.not_ready));
                        if let Some(f) = g.free {
                            free.with_label_values(&l).set(i64::from(f));
                        }
                    }
                }
            }
        }
        let registry = Registry::new();
        let collectors: [Box<dyn prometheus::core::Collector>; 11] = [
            Box::new(self.requests.clone()),
            Box::new(self.latency.clone()),
            Box::new(self.calls.clone()),
            Box::new(status),
            Box::new(failures),
            Box::new(restarts),
            Box::new(up),
            Box::new(age),
            Box::new(capacity),
            Box::new(free),
            Box::new(not_ready),
        ];
        for c in collectors {
            registry.register(c).expect("distinct metric names");
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut out).expect("writing to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}
