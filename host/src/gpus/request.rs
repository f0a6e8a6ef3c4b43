//! The GPU query as the user states it (flags, or the server's query
//! string), validated before any backend is called.

use serde::{Deserialize, Serialize};

use crate::cli::ShowGpusArgs;

/// A validated `show-gpus` query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuRequest {
    /// Accelerator name pattern.
    pub name: Option<String>,
    /// Accelerators per VM or node.
    pub quantity: Option<u32>,
    /// `-a`: every accelerator with prices.
    pub all: bool,
    /// The backend named by `--infra` / `--cloud`.
    pub infra: Option<String>,
    /// Region (clouds) named by `--infra X/REGION` or `--region`.
    pub region: Option<String>,
    /// One row per region.
    pub all_regions: bool,
    /// Kubernetes contexts (`--context`, or `--infra kubernetes/CONTEXT`).
    pub contexts: Vec<String>,
    /// Every context.
    pub all_contexts: bool,
    /// Taints the user's pods tolerate (`--toleration`).
    pub tolerations: Vec<skyhost_plugin_api::Toleration>,
}

/// The raw inputs, as flags or query parameters give them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawGpuQuery {
    /// `NAME` or `NAME:QTY`.
    pub name: Option<String>,
    /// Quantity given on its own (server only).
    pub quantity: Option<String>,
    /// `-a`.
    pub all: bool,
    /// `--infra`.
    pub infra: Option<String>,
    /// `--cloud`.
    pub cloud: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--all-regions`.
    pub all_regions: bool,
    /// `--context`.
    pub contexts: Vec<String>,
    /// `--all-contexts`.
    pub all_contexts: bool,
    /// `--toleration` (repeatable).
    pub tolerations: Vec<String>,
}

impl From<&ShowGpusArgs> for RawGpuQuery {
    fn from(a: &ShowGpusArgs) -> Self {
        Self {
            name: a.accelerator.clone(),
            quantity: None,
            all: a.all,
            infra: a.infra.clone(),
            cloud: a.cloud.clone(),
            region: a.region.clone(),
            all_regions: a.all_regions,
            contexts: a.contexts.clone(),
            all_contexts: a.all_contexts,
            tolerations: a.tolerations.clone(),
        }
    }
}

/// Canonical backend name of an infra word (`k8s` is `kubernetes`).
pub fn backend_of(infra: &str) -> String {
    match infra.to_ascii_lowercase().as_str() {
        "k8s" => "kubernetes".to_string(),
        other => other.to_string(),
    }
}

fn parse_quantity(text: &str) -> Result<u32, String> {
    match text.trim().parse::<i64>() {
        Ok(q) if q > 0 && q <= u32::MAX as i64 => Ok(q as u32),
        _ => Err(format!("invalid accelerator quantity '{text}': expected a positive integer")),
    }
}

impl RawGpuQuery {
    /// Validates the inputs; the error is one line for a usage message.
    pub fn validate(self) -> Result<GpuRequest, String> {
        let mut r = GpuRequest {
            all: self.all,
            all_regions: self.all_regions,
            all_contexts: self.all_contexts,
            ..Default::default()
        };
        if let Some(text) = self.name.filter(|n| !n.is_empty()) {
            let parts: Vec<&str> = text.split(':').collect();
            let (name, qty) = match parts.as_slice() {
                [name] => (*name, None),
                [name, qty] => (*name, Some(parse_quantity(qty)?)),
                _ => return Err(format!("invalid accelerator '{text}': expected NAME or NAME:QTY")),
            };
            if name.is_empty() {
                return Err(format!("invalid accelerator '{text}': the name is empty"));
            }
            regex_lite::RegexBuilder::new(name).case_insensitive(true).size_limit(1 << 20).build().map_err(|e| {
                format!("invalid GPU name pattern '{name}': {}", e.to_string().lines().last().unwrap_or_default())
            })?;
            r.name = Some(name.to_string());
            r.quantity = qty;
        }
        if let Some(q) = self.quantity.filter(|q| !q.is_empty()) {
            if r.quantity.is_some() {
                return Err("give the quantity either as NAME:QTY or as quantity, not both".into());
            }
            r.quantity = Some(parse_quantity(&q)?);
        }
        if r.quantity.is_some() && r.name.is_none() {
            return Err("a quantity needs a GPU name".into());
        }
        if r.all && r.name.is_some() {
            return Err("--all is only allowed without a GPU name".into());
        }
        if self.infra.is_some() && (self.cloud.is_some() || self.region.is_some()) {
            return Err("--infra cannot be combined with --cloud or --region".into());
        }
        if self.region.is_some() && self.cloud.is_none() {
            return Err("--region needs --cloud (or use --infra CLOUD/REGION)".into());
        }
        let (backend, place) = match (&self.infra, &self.cloud) {
            (Some(infra), _) => {
                let mut parts = infra.splitn(3, '/');
                let backend = parts.next().unwrap_or_default().trim().to_string();
                (Some(backend), parts.next().map(str::to_string))
            }
            (None, Some(cloud)) => (Some(cloud.clone()), self.region.clone()),
            (None, None) => (None, None),
        };
        if let Some(b) = backend {
            if b.is_empty() || b == "*" {
                return Err("--infra needs a cloud name, e.g. aws, gcp or k8s".into());
            }
            r.infra = Some(backend_of(&b));
        }
        let place = place.filter(|p| !p.is_empty());
        let is_kubernetes = r.infra.as_deref() == Some("kubernetes");
        // `--infra slurm/<cluster>`: a cluster, not a region.
        let is_slurm = r.infra.as_deref() == Some("slurm");
        if is_slurm {
            r.contexts.extend(place);
            if !self.contexts.is_empty() || self.all_contexts {
                return Err(
                    "--context and --all-contexts apply to Kubernetes; name a Slurm cluster as --infra slurm/CLUSTER"
                        .into(),
                );
            }
        } else if is_kubernetes {
            if let Some(ctx) = place {
                if !self.contexts.is_empty() {
                    return Err(
                        "give the context either in --infra kubernetes/CONTEXT or with --context, not both".into()
                    );
                }
                r.contexts.push(ctx);
            }
        } else {
            r.region = place;
        }
        if !is_kubernetes && r.infra.is_some() && (!self.contexts.is_empty() || self.all_contexts) {
            return Err(
                "--context and --all-contexts apply to Kubernetes; use them without --infra or with --infra k8s".into(),
            );
        }
        r.contexts.extend(self.contexts);
        r.tolerations = self.tolerations.iter().map(|t| super::toleration::parse(t)).collect::<Result<_, _>>()?;
        if r.all_contexts && !r.contexts.is_empty() {
            return Err("--all-contexts cannot be combined with --context".into());
        }
        if r.all_regions && r.name.is_none() {
            return Err("--all-regions is only allowed with a GPU name".into());
        }
        if r.all_regions && r.region.is_some() {
            return Err("--all-regions cannot be combined with a region".into());
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: impl FnOnce(&mut RawGpuQuery)) -> Result<GpuRequest, String> {
        let mut raw = RawGpuQuery::default();
        f(&mut raw);
        raw.validate()
    }

    #[test]
    fn names_quantities_and_infra() {
        let r = q(|r| {
            r.name = Some("A100:8".into());
            r.infra = Some("aws/us-east-1".into());
        })
        .unwrap();
        assert_eq!(
            (r.name.as_deref(), r.quantity, r.infra.as_deref(), r.region.as_deref()),
            (Some("A100"), Some(8), Some("aws"), Some("us-east-1"))
        );
        let k = q(|r| r.infra = Some("k8s/my-ctx".into())).unwrap();
        assert_eq!((k.infra.as_deref(), k.contexts.clone()), (Some("kubernetes"), vec!["my-ctx".to_string()]));
        let s = q(|r| r.infra = Some("slurm/hpc".into())).unwrap();
        assert_eq!((s.infra.as_deref(), s.contexts.clone(), s.region), (Some("slurm"), vec!["hpc".to_string()], None));
        assert!(
            q(|r| {
                r.infra = Some("slurm".into());
                r.contexts = vec!["c".into()];
            })
            .is_err()
        );
    }

    #[test]
    fn refusals() {
        for (raw, why) in [
            (RawGpuQuery { name: Some("A100:0".into()), ..Default::default() }, "positive"),
            (RawGpuQuery { name: Some("A100:x".into()), ..Default::default() }, "positive"),
            (RawGpuQuery { name: Some("A:1:2".into()), ..Default::default() }, "NAME:QTY"),
            (RawGpuQuery { name: Some("A100(".into()), ..Default::default() }, "pattern"),
            (RawGpuQuery { name: Some("A100".into()), all: true, ..Default::default() }, "--all"),
            (RawGpuQuery { all_regions: true, ..Default::default() }, "GPU name"),
            (
                RawGpuQuery {
                    name: Some("A".into()),
                    all_regions: true,
                    infra: Some("aws/r".into()),
                    ..Default::default()
                },
                "region",
            ),
            (RawGpuQuery { region: Some("r".into()), ..Default::default() }, "--cloud"),
            (RawGpuQuery { infra: Some("aws".into()), contexts: vec!["c".into()], ..Default::default() }, "Kubernetes"),
        ] {
            let e = raw.validate().unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
