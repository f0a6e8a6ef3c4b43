//! A cloud backend: one catalog file, read by the rules of this crate. Each
//! cloud plugin is this backend with its own [`CloudSpec`] and embedded catalog.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::SystemTime,
};

use skyhost_plugin_api::{
    Backend, CatalogSpec, CatalogStats, CatalogStatsRequest, CheckItem, CheckReport, CheckRequest, Description,
    ErrorKind, GpuQuery, GpuQueryResponse, PluginError, capability, method,
    sdk::{Router, Typed, TypedBackend, split_method, unknown_method},
};

use crate::{
    gcp,
    parse::{Catalog, CatalogError, ReadRules},
    query::{self, Filter},
};

/// How a cloud prices accelerators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// Each row is a complete offering.
    PerRow,
    /// GPU rows are priced together with a host VM (GCP); see [`gcp`].
    GpuPlusHost,
}

/// Everything that makes one cloud's plugin.
#[derive(Debug)]
pub struct CloudSpec {
    /// Backend name, also the catalog folder (`<name>/vms.csv`).
    pub name: &'static str,
    /// Name for people.
    pub display_name: &'static str,
    /// One line for `skyhost plugins`.
    pub description: &'static str,
    /// The catalog compiled into the plugin.
    pub embedded_csv: &'static str,
    /// When the embedded catalog was written (`YYYY-MM-DD`).
    pub embedded_date: &'static str,
    /// How often SkyPilot refreshes this cloud's catalog; `None`: once.
    pub refresh_hours: Option<f64>,
    /// See [`Pricing`].
    pub pricing: Pricing,
    /// The catalog's `GpuInfo` gives the memory of all devices (Vast's does).
    pub device_memory_is_total: bool,
}

type Stamp = (u64, Option<SystemTime>);

/// The backend of a cloud plugin, its methods declared in a typed router
/// ([`TypedBackend`]). Parsed catalogs are cached for the life
/// of the process (keyed by path, size and modification time), so a server
/// answers repeated queries without reading the file again.
pub struct CloudBackend {
    spec: &'static CloudSpec,
    embedded: OnceLock<Result<Arc<Catalog>, PluginError>>,
    files: Mutex<HashMap<PathBuf, (Stamp, Arc<Catalog>)>>,
}

impl CloudBackend {
    /// The backend for `spec`.
    pub fn new(spec: &'static CloudSpec) -> Self {
        Self { spec, embedded: OnceLock::new(), files: Mutex::new(HashMap::new()) }
    }

    fn parse(&self, data: &[u8], label: &str) -> Result<Catalog, PluginError> {
        let rules = ReadRules {
            keep_host: (self.spec.pricing == Pricing::GpuPlusHost).then_some(gcp::is_host_type as fn(&str) -> bool),
            device_memory_is_total: self.spec.device_memory_is_total,
        };
        Catalog::parse(data, rules).map_err(|e| {
            let hint = match e {
                CatalogError::MissingColumn(_) => format!(
                    "this is not a SkyPilot v8 catalog; fix or remove it, or fetch a fresh one with `skyhost catalog update {}`",
                    self.spec.name
                ),
                CatalogError::Unreadable(_) => "fix or remove the file".to_string(),
            };
            PluginError::new(ErrorKind::Config, format!("{label}: {e}")).with_hint(hint)
        })
    }

    /// The catalog at `path`, or the embedded one.
    pub fn catalog(&self, path: Option<&str>) -> Result<(Arc<Catalog>, String), PluginError> {
        let Some(path) = path else {
            let label = format!("embedded {} catalog ({})", self.spec.name, self.spec.embedded_date);
            let parsed = self
                .embedded
                .get_or_init(|| self.parse(self.spec.embedded_csv.as_bytes(), &label).map(Arc::new))
                .clone()?;
            return Ok((parsed, label));
        };
        let path = Path::new(path);
        let label = path.display().to_string();
        let unreadable = |e: std::io::Error| {
            PluginError::new(ErrorKind::Config, format!("{label}: cannot read it: {e}"))
                .with_hint(format!("check the path, or run `skyhost catalog update {}`", self.spec.name))
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        let stamp = (meta.len(), meta.modified().ok());
        if let Some((s, c)) = self.files.lock().expect("cache lock").get(path)
            && *s == stamp
        {
            return Ok((c.clone(), label));
        }
        let data = std::fs::read(path).map_err(unreadable)?;
        let parsed = Arc::new(self.parse(&data, &label)?);
        self.files.lock().expect("cache lock").insert(path.to_path_buf(), (stamp, parsed.clone()));
        Ok((parsed, label))
    }

    fn query(&self, q: GpuQuery) -> Result<GpuQueryResponse, PluginError> {
        let (catalog, label) = self.catalog(q.catalog_path.as_deref())?;
        let filter = Filter::new(&q)?;
        let mut response = GpuQueryResponse::default();
        if q.want_counts {
            response.counts = query::counts(&catalog, &filter);
        }
        if q.want_offerings {
            let candidates = match self.spec.pricing {
                Pricing::PerRow => query::candidates(&catalog, &filter),
                Pricing::GpuPlusHost => gcp::joined_candidates(&catalog, &filter),
            };
            response.offerings = query::offerings(candidates, q.all_regions, self.spec.pricing == Pricing::GpuPlusHost);
        }
        response.warnings.extend(catalog.skipped_warning(&label));
        Ok(response)
    }

    fn stats(&self, r: CatalogStatsRequest) -> Result<CatalogStats, PluginError> {
        let (catalog, label) = self.catalog(r.catalog_path.as_deref())?;
        let mut names: Vec<&str> = catalog.accelerators.iter().map(|a| &*a.name).collect();
        names.sort_unstable();
        names.dedup();
        Ok(CatalogStats {
            rows: catalog.rows,
            accelerator_rows: catalog.accelerators.len() as u64,
            accelerators: names.len() as u64,
            skipped_rows: catalog.skipped,
            warnings: catalog.skipped_warning(&label).into_iter().collect(),
        })
    }

    fn check(&self, r: CheckRequest) -> CheckReport {
        let item = match self.stats(CatalogStatsRequest { catalog_path: r.catalog_path.clone() }) {
            Ok(s) => CheckItem {
                subject: "catalog".into(),
                ok: true,
                summary: format!(
                    "{} rows, {} offering accelerators ({} names) from {}",
                    s.rows,
                    s.accelerator_rows,
                    s.accelerators,
                    r.catalog_path.unwrap_or_else(|| format!("the embedded catalog of {}", self.spec.embedded_date))
                ),
                details: s.warnings,
                hint: None,
            },
            Err(e) => {
                CheckItem { subject: "catalog".into(), ok: false, summary: e.message, details: vec![], hint: e.hint }
            }
        };
        CheckReport { items: vec![item] }
    }
}

impl TypedBackend for CloudBackend {
    fn describe(&self) -> Description {
        Description {
            name: self.spec.name.into(),
            display_name: self.spec.display_name.into(),
            description: self.spec.description.into(),
            capabilities: vec![capability::CATALOG.into()],
            catalog: Some(CatalogSpec {
                file: format!("{}/vms.csv", self.spec.name),
                refresh_hours: self.spec.refresh_hours,
                embedded_date: Some(self.spec.embedded_date.into()),
            }),
            ..Default::default()
        }
    }

    fn router() -> Router<Self> {
        Router::new()
            .method::<method::GpuQueryCall>(Self::query)
            .method::<method::CatalogStatsCall>(Self::stats)
            .method::<method::CheckCall>(|b, r| Ok(b.check(r)))
    }
}

/// Several clouds in one plugin file: each a backend of its own, called as
/// `<cloud>/<method>`. One file maps faster than several, and small clouds
/// have no reason to be installed one by one.
pub struct CloudBundle {
    name: &'static str,
    description: &'static str,
    clouds: Vec<Typed<CloudBackend>>,
}

impl CloudBundle {
    /// A bundle called `name` (its file is `libskyhost_<name>.so`).
    pub fn new(name: &'static str, description: &'static str, specs: &'static [CloudSpec]) -> Self {
        Self { name, description, clouds: specs.iter().map(|s| Typed::new(CloudBackend::new(s))).collect() }
    }
}

impl Backend for CloudBundle {
    fn describe(&self) -> Description {
        Description {
            name: self.name.into(),
            display_name: self.name.into(),
            description: self.description.into(),
            backends: self.clouds.iter().map(Typed::info).collect(),
            ..Default::default()
        }
    }

    fn call(&self, m: &str, request: &str) -> Result<String, PluginError> {
        let (cloud, method) = split_method(m);
        match self.clouds.iter().find(|c| Some(c.backend().spec.name) == cloud) {
            Some(c) => c.call(method, request),
            None => Err(unknown_method(m)),
        }
    }
}

/// Makes the crate a cloud plugin: `cloud_plugin!(CloudSpec { .. });`
#[macro_export]
macro_rules! cloud_plugin {
    ($spec:expr) => {
        static CLOUD_SPEC: $crate::CloudSpec = $spec;

        fn new_cloud_backend() -> ::core::result::Result<$crate::CloudBackend, ::std::string::String> {
            ::core::result::Result::Ok($crate::CloudBackend::new(&CLOUD_SPEC))
        }

        $crate::skyhost_plugin_api::export_typed_backend!($crate::CloudBackend, new_cloud_backend);
    };
}

/// Makes the crate a plugin serving several clouds:
/// `cloud_bundle_plugin!("name", "description", [CloudSpec { .. }, ..]);`
#[macro_export]
macro_rules! cloud_bundle_plugin {
    ($name:literal, $description:literal, [$($spec:expr),+ $(,)?]) => {
        static CLOUD_SPECS: &[$crate::CloudSpec] = &[$($spec),+];

        fn new_cloud_bundle() -> ::core::result::Result<$crate::CloudBundle, ::std::string::String> {
            ::core::result::Result::Ok($crate::CloudBundle::new($name, $description, CLOUD_SPECS))
        }

        $crate::skyhost_plugin_api::export_backend!($crate::CloudBundle, new_cloud_bundle);
    };
}
