//! A GPU listing request as `/v1/gpus` query parameters: written by the
//! client, read by the server.

use super::query::truthy;
use crate::gpus::request::{GpuRequest, RawGpuQuery};

/// The query string of a [`GpuRequest`], as `/v1/gpus` reads it.
pub fn query_pairs(req: &GpuRequest) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(n) = &req.name {
        q.push(("name", n.clone()));
    }
    if let Some(n) = req.quantity {
        q.push(("quantity", n.to_string()));
    }
    if let Some(i) = &req.infra {
        q.push((
            "infra",
            match &req.region {
                Some(r) => format!("{i}/{r}"),
                None => i.clone(),
            },
        ));
    }
    for c in &req.contexts {
        q.push(("context", c.clone()));
    }
    for t in &req.tolerations {
        q.push(("toleration", crate::gpus::toleration::format(t)));
    }
    for (flag, key) in [(req.all, "all"), (req.all_regions, "all_regions"), (req.all_contexts, "all_contexts")] {
        if flag {
            q.push((key, "true".into()));
        }
    }
    q
}

/// Reads `/v1/gpus` parameters (decoded `key=value` pairs) as the CLI's
/// flags; an unknown, repeated or malformed parameter is an error message.
pub fn parse_query(pairs: Vec<(String, String)>) -> Result<RawGpuQuery, String> {
    let mut raw = RawGpuQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in pairs {
        if key != "context" && key != "toleration" && seen.contains(&key) {
            return Err(format!("query parameter '{key}' is given twice"));
        }
        seen.push(key.clone());
        match key.as_str() {
            "name" => raw.name = Some(value),
            "quantity" => raw.quantity = Some(value),
            "infra" => raw.infra = Some(value),
            "cloud" => raw.cloud = Some(value),
            "region" => raw.region = Some(value),
            "context" => raw.contexts.push(value),
            "toleration" => raw.tolerations.push(value),
            "all" => raw.all = truthy(&key, &value)?,
            "all_regions" => raw.all_regions = truthy(&key, &value)?,
            "all_contexts" => raw.all_contexts = truthy(&key, &value)?,
            other => {
                return Err(format!(
                    "unknown query parameter '{other}' (known: name, quantity, infra, cloud, region, context, toleration, all, all_regions, all_contexts)"
                ));
            }
        }
    }
    // `infra=aws&region=us-east-1` means `infra=aws/us-east-1`.
    if let (Some(infra), Some(region)) = (&raw.infra, &raw.region)
        && raw.cloud.is_none()
        && !infra.contains('/')
    {
        raw.infra = Some(format!("{infra}/{region}"));
        raw.region = None;
    }
    Ok(raw)
}
