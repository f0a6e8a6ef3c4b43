//! The queries `show-gpus` asks of one cloud's catalog, answered the way
//! SkyPilot's `list_accelerators` answers them, so that the same catalog
//! gives the same rows:
//!
//! * only rows with a `GpuInfo` value count (SkyPilot's `gpus_only`);
//! * the name filter is a case-insensitive regular expression matched
//!   anywhere in the accelerator name; the quantity filter is exact;
//! * per accelerator, rows are ordered by (price, spot price), missing prices
//!   last, and only the first row of each instance type is kept (with
//!   `all_regions`, the first of each instance type and region): so each
//!   instance type shows its cheapest on-demand region and *that row's* spot price;
//! * the kept rows are ordered by (count, instance type, vCPUs, price, spot
//!   price, region).
//!
//! One deliberate difference: the region filter matches a whole region name
//! (ignoring case), where SkyPilot matches it as a regular expression
//! anywhere in the name, so that `europe-west1` does not also pick `europe-west10`.

use std::{cmp::Ordering, collections::BTreeMap};

use regex_lite::{Regex, RegexBuilder};
use skyhost_plugin_api::{AcceleratorQuantities, ErrorKind, GpuQuery, Offering, PluginError};

use crate::parse::{AcceleratorRow, Catalog};

/// The filters of a query, compiled.
#[derive(Debug, Clone)]
pub struct Filter {
    name: Option<Regex>,
    /// The GPU table's name for the name pattern, if it names one: rows are
    /// named by the same table, so `H100-80GB` finds `H100` rows.
    identity: Option<&'static str>,
    quantity: Option<f64>,
    region: Option<String>,
}

impl Filter {
    /// Compiles the filters of `q`.
    pub fn new(q: &GpuQuery) -> Result<Self, PluginError> {
        let name = q
            .name
            .as_deref()
            .map(|n| RegexBuilder::new(n).case_insensitive(true).size_limit(1 << 20).build())
            .transpose()
            .map_err(|e| PluginError::new(ErrorKind::BadRequest, format!("invalid GPU name pattern: {e}")))?;
        let identity = q.name.as_deref().and_then(skyhost_gpu_identity::canonical).map(|g| g.name);
        Ok(Self { name, identity, quantity: q.quantity, region: q.region.as_ref().map(|r| r.to_lowercase()) })
    }

    /// Whether an accelerator row passes the name, quantity and region filters.
    pub fn accepts(&self, row: &AcceleratorRow) -> bool {
        (self.name.as_ref().is_none_or(|re| re.is_match(&row.name)) || self.identity == Some(&*row.name))
            && self.quantity.is_none_or(|q| row.count == q)
            && self.region.as_deref().is_none_or(|r| row.region.to_lowercase() == r)
    }
}

/// Accelerator names with the quantities offered, names sorted.
pub fn counts(catalog: &Catalog, filter: &Filter) -> Vec<AcceleratorQuantities> {
    let mut by_name: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for row in catalog.accelerators.iter().filter(|r| r.has_gpu_info && filter.accepts(r)) {
        let counts = by_name.entry(&row.name).or_default();
        if !counts.contains(&row.count) {
            counts.push(row.count);
        }
    }
    by_name
        .into_iter()
        .map(|(name, mut quantities)| {
            quantities.sort_by(f64::total_cmp);
            AcceleratorQuantities { name: name.to_string(), quantities }
        })
        .collect()
}

/// A row ready for [`offerings`]: an accelerator row, or (GCP) an
/// accelerator joined with its host VM.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// VM type.
    pub instance_type: Option<Box<str>>,
    /// Accelerator name.
    pub name: Box<str>,
    /// Accelerators per VM.
    pub count: f64,
    /// vCPUs.
    pub vcpus: Option<f64>,
    /// Device memory, GiB.
    pub device_memory_gib: Option<f64>,
    /// Host memory, GiB.
    pub memory_gib: Option<f64>,
    /// On-demand price.
    pub price: Option<f64>,
    /// Spot price.
    pub spot_price: Option<f64>,
    /// Region.
    pub region: Box<str>,
}

impl From<&AcceleratorRow> for Candidate {
    fn from(r: &AcceleratorRow) -> Self {
        Self {
            instance_type: r.instance_type.clone(),
            name: r.name.clone(),
            count: r.count,
            vcpus: r.vcpus,
            device_memory_gib: r.device_memory_gib,
            memory_gib: r.memory_gib,
            price: r.price,
            spot_price: r.spot_price,
            region: r.region.clone(),
        }
    }
}

/// The accelerator rows of `catalog` that pass `filter`.
pub fn candidates(catalog: &Catalog, filter: &Filter) -> Vec<Candidate> {
    catalog.accelerators.iter().filter(|r| r.has_gpu_info && filter.accepts(r)).map(Candidate::from).collect()
}

/// Missing values sort last.
fn cmp_missing_last(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn bits(x: Option<f64>) -> Option<u64> {
    x.map(f64::to_bits)
}

/// Offerings per accelerator, following the rules in the module docs.
/// `group_tpus` gathers `tpu-<version>-<size>` rows under `tpu-<version>`
/// (as SkyPilot does for GCP), after the other accelerators.
pub fn offerings(candidates: Vec<Candidate>, all_regions: bool, group_tpus: bool) -> Vec<Offering> {
    let mut groups: BTreeMap<Box<str>, Vec<Candidate>> = BTreeMap::new();
    for c in candidates {
        groups.entry(c.name.clone()).or_default().push(c);
    }
    let mut ordered: Vec<(String, Vec<Candidate>)> = Vec::new();
    let mut tpu_groups: Vec<(String, Vec<Candidate>)> = Vec::new();
    for (name, rows) in groups {
        let rows = cheapest_per_instance_type(rows, all_regions);
        match name.strip_prefix("tpu-").and_then(|rest| rest.split('-').next()).filter(|_| group_tpus) {
            Some(version) => {
                let group = format!("tpu-{version}");
                match tpu_groups.iter_mut().find(|(g, _)| *g == group) {
                    Some((_, existing)) => existing.extend(rows),
                    None => tpu_groups.push((group, rows)),
                }
            }
            None => ordered.push((name.to_string(), rows)),
        }
    }
    for (_, rows) in &mut tpu_groups {
        rows.sort_by(|a, b| {
            cmp_missing_last(a.price, b.price)
                .then(cmp_missing_last(a.spot_price, b.spot_price))
                .then_with(|| a.region.cmp(&b.region))
        });
    }
    ordered
        .into_iter()
        .chain(tpu_groups)
        .flat_map(|(group, rows)| {
            rows.into_iter().map(move |c| Offering {
                group: (group != *c.name).then(|| group.clone()),
                accelerator: c.name.to_string(),
                quantity: c.count,
                instance_type: c.instance_type.map(String::from),
                device_memory_gib: c.device_memory_gib,
                vcpus: c.vcpus,
                host_memory_gib: c.memory_gib,
                price: c.price,
                spot_price: c.spot_price,
                region: Some(c.region.to_string()),
            })
        })
        .collect()
}

fn cheapest_per_instance_type(mut rows: Vec<Candidate>, all_regions: bool) -> Vec<Candidate> {
    rows.sort_by(|a, b| {
        let o = cmp_missing_last(a.price, b.price).then(cmp_missing_last(a.spot_price, b.spot_price));
        if all_regions { o.then_with(|| a.region.cmp(&b.region)) } else { o }
    });
    let mut seen = std::collections::HashSet::new();
    rows.retain(|c| {
        let region = all_regions.then(|| c.region.clone());
        seen.insert((c.instance_type.clone(), c.count.to_bits(), bits(c.vcpus), bits(c.memory_gib), region))
    });
    rows.sort_by(|a, b| {
        a.count
            .total_cmp(&b.count)
            .then_with(|| a.instance_type.as_deref().unwrap_or("").cmp(b.instance_type.as_deref().unwrap_or("")))
            .then(a.vcpus.unwrap_or(0.0).total_cmp(&b.vcpus.unwrap_or(0.0)))
            .then(cmp_missing_last(a.price, b.price))
            .then(cmp_missing_last(a.spot_price, b.spot_price))
            .then_with(|| a.region.cmp(&b.region))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(it: &str, name: &str, count: f64, price: Option<f64>, spot: Option<f64>, region: &str) -> Candidate {
        Candidate {
            instance_type: (!it.is_empty()).then(|| it.into()),
            name: name.into(),
            count,
            vcpus: Some(8.0),
            device_memory_gib: None,
            memory_gib: Some(32.0),
            price,
            spot_price: spot,
            region: region.into(),
        }
    }

    #[test]
    fn a_name_filter_matches_by_identity() {
        let catalog = Catalog::parse(
            b"InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region\n\
              a,H100,8,8,32,x,1,1,r\nb,H100-MEGA,8,8,32,x,1,1,r\nc,A100,8,8,32,x,1,1,r\n",
            Default::default(),
        )
        .unwrap();
        let names = |name: &str| {
            let f = Filter::new(&GpuQuery { name: Some(name.into()), ..Default::default() }).unwrap();
            candidates(&catalog, &f).into_iter().map(|c| c.name.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(names("H100-80GB"), ["H100"]);
        assert_eq!(names("nvidia-h100-mega-80gb"), ["H100-MEGA"]);
        // A pattern still matches as before.
        assert_eq!(names("H100"), ["H100", "H100-MEGA"]);
        assert!(names("A100-80GB").is_empty());
    }

    #[test]
    fn cheapest_on_demand_row_wins_and_keeps_its_own_spot_price() {
        let rows = vec![
            cand("p4d", "A100", 8.0, Some(21.957642), Some(2.466), "us-east-1"),
            cand("p4d", "A100", 8.0, Some(21.95764), Some(6.037), "us-east-2"),
            cand("p4d", "A100", 8.0, None, Some(1.0), "x"),
        ];
        let o = offerings(rows.clone(), false, false);
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].region.as_deref(), o[0].spot_price), (Some("us-east-2"), Some(6.037)));
        assert_eq!(offerings(rows, true, false).len(), 3);
    }

    #[test]
    fn tpus_are_grouped_by_version_after_other_names_and_sorted_by_price() {
        let rows = vec![
            cand("", "tpu-v5p-16", 1.0, Some(20.0), None, "b"),
            cand("", "tpu-v5p-8", 1.0, Some(10.0), None, "a"),
            cand("x", "A100", 1.0, Some(1.0), None, "a"),
        ];
        let o = offerings(rows, false, true);
        let names: Vec<_> = o.iter().map(|o| (o.group.as_deref(), o.accelerator.as_str())).collect();
        assert_eq!(names, vec![(None, "A100"), (Some("tpu-v5p"), "tpu-v5p-8"), (Some("tpu-v5p"), "tpu-v5p-16")]);
    }
}
