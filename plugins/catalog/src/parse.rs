//! Reading a SkyPilot `vms.csv` (schema v8) as real files come: columns in
//! any order and read by header name, extra columns ignored, CRLF or LF, a
//! missing final newline, UTF-8 text, quoted fields with commas, empty
//! values. A malformed row is skipped and counted; a missing required column
//! fails the whole file.
//!
//! A downloaded catalog is network input, so no value can fail more than its
//! row: the missing-value words pandas knows (`NA`, `N/A`, `null`, `None`,
//! `nan`, ...) are missing values, as SkyPilot reads them; a number that is
//! not finite, negative or absurdly large, a text field longer than any real
//! one, or a `GpuInfo` nested too deep skips the row; messages quote at most
//! [`QUOTE_LIMIT`](skyhost_plugin_api::sdk::QUOTE_LIMIT) bytes of a value.

use skyhost_plugin_api::sdk::clip;

use std::collections::HashMap;

use skyhost_gpu_identity::{self as identity, Gpu};

use crate::gpu_info;

/// Columns every catalog must have.
pub const REQUIRED_COLUMNS: [&str; 9] = [
    "InstanceType",
    "AcceleratorName",
    "AcceleratorCount",
    "vCPUs",
    "MemoryGiB",
    "GpuInfo",
    "Price",
    "SpotPrice",
    "Region",
];

/// A row that offers an accelerator.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceleratorRow {
    /// VM type; `None` for accelerators attached to a VM chosen separately.
    pub instance_type: Option<Box<str>>,
    /// Accelerator name.
    pub name: Box<str>,
    /// Accelerators per VM.
    pub count: f64,
    /// vCPUs of the VM.
    pub vcpus: Option<f64>,
    /// Host memory, GiB.
    pub memory_gib: Option<f64>,
    /// The `GpuInfo` column is not empty (SkyPilot's `gpus_only`).
    pub has_gpu_info: bool,
    /// Memory of one device, GiB.
    pub device_memory_gib: Option<f64>,
    /// On-demand USD per hour.
    pub price: Option<f64>,
    /// Spot USD per hour.
    pub spot_price: Option<f64>,
    /// Region.
    pub region: Box<str>,
    /// Zone, where the catalog has the column.
    pub zone: Option<Box<str>>,
}

/// A VM row without accelerators, kept only where a cloud prices attachable
/// accelerators together with a host VM (GCP).
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    /// VM type.
    pub instance_type: Box<str>,
    /// vCPUs.
    pub vcpus: Option<f64>,
    /// Memory, GiB.
    pub memory_gib: Option<f64>,
    /// On-demand USD per hour.
    pub price: Option<f64>,
    /// Spot USD per hour.
    pub spot_price: Option<f64>,
    /// Region.
    pub region: Box<str>,
    /// Zone.
    pub zone: Option<Box<str>>,
}

/// A parsed catalog file.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Rows with an accelerator, in file order.
    pub accelerators: Vec<AcceleratorRow>,
    /// Host VM rows kept for [`Catalog::parse`]'s `keep_host` predicate, in file order.
    pub hosts: Vec<HostRow>,
    /// Data rows read (not counting the header).
    pub rows: u64,
    /// Malformed rows skipped.
    pub skipped: u64,
    /// Line number and reason of the first malformed row.
    pub first_bad: Option<(u64, String)>,
    /// The GPU of each distinct accelerator name read so far.
    identities: HashMap<Box<str>, Option<&'static Gpu>>,
}

/// A catalog that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// A required column is absent from the header.
    MissingColumn(&'static str),
    /// The file is not CSV (or not UTF-8) at the header.
    Unreadable(String),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingColumn(c) => write!(f, "missing required column '{c}'"),
            Self::Unreadable(e) => write!(f, "cannot read it as CSV: {e}"),
        }
    }
}

struct Columns {
    instance_type: usize,
    name: usize,
    count: usize,
    vcpus: usize,
    memory: usize,
    gpu_info: usize,
    price: usize,
    spot: usize,
    region: usize,
    zone: Option<usize>,
    width: usize,
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Result<Self, CatalogError> {
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let s = String::from_utf8_lossy(f).trim().to_string();
                if i == 0 { s.trim_start_matches('\u{feff}').to_string() } else { s }
            })
            .collect();
        let find = |c: &'static str| names.iter().position(|n| n == c).ok_or(CatalogError::MissingColumn(c));
        Ok(Self {
            instance_type: find(REQUIRED_COLUMNS[0])?,
            name: find(REQUIRED_COLUMNS[1])?,
            count: find(REQUIRED_COLUMNS[2])?,
            vcpus: find(REQUIRED_COLUMNS[3])?,
            memory: find(REQUIRED_COLUMNS[4])?,
            gpu_info: find(REQUIRED_COLUMNS[5])?,
            price: find(REQUIRED_COLUMNS[6])?,
            spot: find(REQUIRED_COLUMNS[7])?,
            region: find(REQUIRED_COLUMNS[8])?,
            zone: names.iter().position(|n| n == "AvailabilityZone"),
            width: names.len(),
        })
    }
}

/// The longest text value read, in bytes; longer ones skip their row.
pub const MAX_TEXT: usize = 1024;
/// The longest `GpuInfo` value read, in bytes (real ones are under 1 KiB).
pub const MAX_GPU_INFO: usize = 64 << 10;
/// The largest number read; larger ones skip their row.
pub const MAX_NUMBER: f64 = 1e9;

/// What pandas' `read_csv` reads as a missing value by default (SkyPilot
/// reads catalogs with it), plus `nan` in any case.
fn is_missing(t: &str) -> bool {
    const PANDAS_NA: [&str; 19] = [
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
        "NULL", "NaN", "None", "n/a", "nan", "null",
    ];
    PANDAS_NA.contains(&t) || t.eq_ignore_ascii_case("nan")
}

/// A text value, trimmed; missing values are empty.
fn text_up_to<'a>(field: &'a [u8], column: &str, max: usize) -> Result<&'a str, String> {
    if field.len() > max {
        return Err(format!("{column} is {} bytes long (at most {max} are read)", field.len()));
    }
    let t = std::str::from_utf8(field).map(str::trim).map_err(|_| format!("{column} is not valid UTF-8"))?;
    Ok(if is_missing(t) { "" } else { t })
}

fn text<'a>(field: &'a [u8], column: &str) -> Result<&'a str, String> {
    text_up_to(field, column, MAX_TEXT)
}

fn optional_text(field: &[u8], column: &str) -> Result<Option<Box<str>>, String> {
    let t = text(field, column)?;
    Ok((!t.is_empty()).then(|| t.into()))
}

/// A number from 0 to [`MAX_NUMBER`]; missing values are `None`.
fn number(field: &[u8], column: &str) -> Result<Option<f64>, String> {
    let quoted = || clip(std::str::from_utf8(field).unwrap_or_default().trim()).into_owned();
    let t = text_up_to(field, column, MAX_TEXT).map_err(|_| format!("{column} is not a number: '{}'", quoted()))?;
    if t.is_empty() {
        return Ok(None);
    }
    let n = t.parse::<f64>().map_err(|_| format!("{column} is not a number: '{}'", quoted()))?;
    if !n.is_finite() {
        return Err(format!("{column} is not a finite number: '{}'", quoted()));
    }
    if !(0.0..=MAX_NUMBER).contains(&n) {
        return Err(format!("{column} is out of range (0 to {MAX_NUMBER}): '{}'", quoted()));
    }
    Ok(Some(n))
}

/// How one cloud's catalog is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadRules {
    /// Keep rows without an accelerator whose instance type passes this test,
    /// as host VMs (GCP); `None` drops them all.
    pub keep_host: Option<fn(&str) -> bool>,
    /// `GpuInfo` gives the memory of all devices, not of one (Vast).
    pub device_memory_is_total: bool,
}

impl Catalog {
    /// Parses catalog text.
    pub fn parse(data: &[u8], rules: ReadRules) -> Result<Catalog, CatalogError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(data);
        let header = reader.byte_headers().map_err(|e| CatalogError::Unreadable(e.to_string()))?.clone();
        if header.is_empty() || header.iter().all(<[u8]>::is_empty) {
            return Ok(Catalog::default());
        }
        let cols = Columns::from_header(&header)?;
        let mut catalog = Catalog::default();
        let mut record = csv::ByteRecord::new();
        loop {
            let line = reader.position().line();
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    catalog.rows += 1;
                    catalog.bad_row(line, clip(&e.to_string()).into_owned());
                    continue;
                }
            }
            if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
                continue; // blank line
            }
            catalog.rows += 1;
            let line = record.position().map_or(line, |p| p.line());
            if record.len() != cols.width {
                catalog.bad_row(line, format!("{} fields, the header has {}", record.len(), cols.width));
                continue;
            }
            if let Err(reason) = catalog.take_row(&record, &cols, rules) {
                catalog.bad_row(line, reason);
            }
        }
        Ok(catalog)
    }

    fn bad_row(&mut self, line: u64, reason: String) {
        self.skipped += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some((line, reason));
        }
    }

    /// The name of the GPU table for an accelerator name, its memory picking
    /// the memory variant (Seeweb calls its 80 GB A100 `A100`); a name not in
    /// the table is kept as the catalog writes it.
    fn identified(&mut self, name: &str, device_memory_gib: Option<f64>) -> Box<str> {
        let gpu = match self.identities.get(name) {
            Some(gpu) => *gpu,
            None => {
                let gpu = identity::canonical(name);
                self.identities.insert(name.into(), gpu);
                gpu
            }
        };
        match (gpu, device_memory_gib) {
            (Some(g), Some(m)) => identity::with_memory(g, m).name.into(),
            (Some(g), None) => g.name.into(),
            (None, _) => name.into(),
        }
    }

    fn take_row(&mut self, r: &csv::ByteRecord, c: &Columns, rules: ReadRules) -> Result<(), String> {
        let name = text(&r[c.name], "AcceleratorName")?;
        if name.is_empty() {
            let instance_type = text(&r[c.instance_type], "InstanceType")?;
            if instance_type.is_empty() || !rules.keep_host.is_some_and(|keep| keep(instance_type)) {
                return Ok(());
            }
            self.hosts.push(HostRow {
                instance_type: instance_type.into(),
                vcpus: number(&r[c.vcpus], "vCPUs")?,
                memory_gib: number(&r[c.memory], "MemoryGiB")?,
                price: number(&r[c.price], "Price")?,
                spot_price: number(&r[c.spot], "SpotPrice")?,
                region: text(&r[c.region], "Region")?.into(),
                zone: c.zone.map(|z| optional_text(&r[z], "AvailabilityZone")).transpose()?.flatten(),
            });
            return Ok(());
        }
        let count = number(&r[c.count], "AcceleratorCount")?.ok_or("AcceleratorCount is empty")?;
        if count == 0.0 {
            return Err("AcceleratorCount is 0".to_string());
        }
        let region = text(&r[c.region], "Region")?;
        if region.is_empty() {
            return Ok(()); // not launchable anywhere (SkyPilot drops these rows too)
        }
        let gpu_info = text_up_to(&r[c.gpu_info], "GpuInfo", MAX_GPU_INFO)?;
        let device_memory_gib = gpu_info::device_memory_gib(gpu_info, rules.device_memory_is_total)?;
        let name = self.identified(name, device_memory_gib);
        self.accelerators.push(AcceleratorRow {
            instance_type: optional_text(&r[c.instance_type], "InstanceType")?,
            name,
            count,
            vcpus: number(&r[c.vcpus], "vCPUs")?,
            memory_gib: number(&r[c.memory], "MemoryGiB")?,
            has_gpu_info: !gpu_info.is_empty(),
            device_memory_gib,
            price: number(&r[c.price], "Price")?,
            spot_price: number(&r[c.spot], "SpotPrice")?,
            region: region.into(),
            zone: c.zone.map(|z| optional_text(&r[z], "AvailabilityZone")).transpose()?.flatten(),
        });
        Ok(())
    }

    /// The warning for skipped rows, naming the file and the first bad line.
    pub fn skipped_warning(&self, file: &str) -> Option<String> {
        let (line, reason) = self.first_bad.as_ref()?;
        Some(format!(
            "{file}: skipped {} malformed row{} (first at line {line}: {reason})",
            self.skipped,
            if self.skipped == 1 { "" } else { "s" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region";

    fn parse(text: &str) -> Catalog {
        Catalog::parse(text.as_bytes(), ReadRules::default()).unwrap()
    }

    #[test]
    fn accelerator_names_are_the_gpu_tables() {
        let mem = |mib: u32| format!("\"{{'Gpus': [{{'MemoryInfo': {{'SizeInMiB': {mib}}}}}]}}\"");
        let c = parse(&format!(
            "{HEADER}\na,A100,1,8,32,{},1,1,r\nb,A100,1,8,32,{},1,1,r\nc,RTX-6000-Ada,1,8,32,x,1,1,r\nd,RTXA6000,1,8,32,x,1,1,r\ne,RTX6000,1,8,32,x,1,1,r\nf,tpu-v5p-8,1,8,32,,1,1,r\n",
            mem(81920),
            mem(40960)
        ));
        let names: Vec<&str> = c.accelerators.iter().map(|a| &*a.name).collect();
        assert_eq!(names, ["A100-80GB", "A100", "RTX6000-Ada", "A6000", "RTX6000", "tpu-v5p-8"]);
    }

    #[test]
    fn reads_columns_by_name_in_any_order_with_crlf_and_no_final_newline() {
        let c = parse(
            "Region,Price,GpuInfo,SpotPrice,MemoryGiB,vCPUs,AcceleratorCount,AcceleratorName,InstanceType,Extra\r\n\
             \"Texas, US, NA\",1.5,{'Gpus': [{'MemoryInfo': {'SizeInMiB': 24576}}]},,32,8,1.0,A10G,g5.2xlarge,x",
        );
        assert_eq!(c.rows, 1);
        let r = &c.accelerators[0];
        assert_eq!((&*r.name, r.count, r.price, r.spot_price), ("A10G", 1.0, Some(1.5), None));
        assert_eq!(&*r.region, "Texas, US, NA");
        assert_eq!(r.device_memory_gib, Some(24.0));
    }

    #[test]
    fn missing_column_names_it() {
        let e = Catalog::parse(b"InstanceType,AcceleratorName\n", ReadRules::default()).unwrap_err();
        assert_eq!(e, CatalogError::MissingColumn("AcceleratorCount"));
    }

    #[test]
    fn empty_and_header_only_files_have_no_rows() {
        assert_eq!(parse("").rows, 0);
        assert_eq!(parse(&format!("{HEADER}\n")).accelerators.len(), 0);
    }

    #[test]
    fn malformed_rows_are_counted_with_the_first_line() {
        let c = parse(&format!(
            "{HEADER}\nok,A100,1,8,32,x,1,1,r\nbad,A100,one,8,32,x,1,1,r\nshort,A100\nok2,A100,2,8,32,x,2,,r\n"
        ));
        assert_eq!((c.rows, c.skipped, c.accelerators.len()), (4, 2, 2));
        assert_eq!(c.first_bad.as_ref().unwrap().0, 3);
        assert!(
            c.skipped_warning("aws/vms.csv")
                .unwrap()
                .starts_with("aws/vms.csv: skipped 2 malformed rows (first at line 3")
        );
    }

    #[test]
    fn pandas_missing_values_are_missing_not_errors() {
        let c = parse(&format!(
            "{HEADER}\np4d,A100,8,NA,N/A,null,None,nan,us-east-1\np5,H100,8,96,<NA>,NULL,#N/A,-nan,us-east-1\nx,None,1,1,1,x,1,1,r\ny,A100,1,1,1,x,1,1,NA\n"
        ));
        assert_eq!((c.rows, c.skipped), (4, 0), "{:?}", c.first_bad);
        // "None" as an accelerator name and "NA" as a region are missing, as
        // pandas reads them: no accelerator, and not launchable anywhere.
        assert_eq!(c.accelerators.len(), 2);
        let a = &c.accelerators[0];
        assert_eq!((a.vcpus, a.memory_gib, a.has_gpu_info, a.price, a.spot_price), (None, None, false, None, None));
        assert_eq!((c.accelerators[1].price, c.accelerators[1].spot_price), (None, None));
    }

    #[test]
    fn numbers_that_are_not_finite_or_out_of_range_skip_their_row_only() {
        for (value, reason) in [
            ("1e999", "Price is not a finite number: '1e999'"),
            ("inf", "Price is not a finite number: 'inf'"),
            ("-1.5", "Price is out of range (0 to 1000000000): '-1.5'"),
            ("1e300", "Price is out of range (0 to 1000000000): '1e300'"),
        ] {
            let c = parse(&format!("{HEADER}\nbad,A100,1,8,32,x,{value},1,r\nok,A100,2,8,32,x,2,,r\n"));
            assert_eq!((c.rows, c.skipped, c.accelerators.len()), (2, 1, 1), "{value}");
            assert_eq!(c.first_bad, Some((2, reason.to_string())), "{value}");
        }
        for count in ["0", "-8", "1e999"] {
            let c = parse(&format!("{HEADER}\nbad,A100,{count},8,32,x,1,1,r\n"));
            assert_eq!((c.skipped, c.accelerators.len()), (1, 0), "{count}");
        }
    }

    #[test]
    fn huge_fields_and_deep_gpu_info_skip_their_row_and_messages_quote_200_bytes() {
        let huge = "9".repeat(10 << 20);
        let deep = format!("\"{{'Gpus': {}\"", "[".repeat(300_000));
        let c = parse(&format!(
            "{HEADER}\nbig,A100,{huge},8,32,x,1,1,r\ndeep,A100,1,8,32,{deep},1,1,r\nname,{huge},1,8,32,x,1,1,r\nok,A100,2,8,32,x,2,,r\n"
        ));
        assert_eq!((c.rows, c.skipped, c.accelerators.len()), (4, 3, 1));
        let (line, reason) = c.first_bad.clone().unwrap();
        assert_eq!(line, 2);
        assert_eq!(reason, format!("AcceleratorCount is not a number: '{}…'", "9".repeat(200)));
        let deep_only = parse(&format!("{HEADER}\ndeep,A100,1,8,32,{deep},1,1,r\n"));
        assert_eq!(deep_only.first_bad.unwrap().1, "GpuInfo is 300009 bytes long (at most 65536 are read)");
        // Under the length limit, still far deeper than any stack allows.
        let deep = format!("\"{{'Gpus': {}\"", "[".repeat(60_000));
        let deep_only = parse(&format!("{HEADER}\ndeep,A100,1,8,32,{deep},1,1,r\n"));
        assert_eq!(deep_only.first_bad.unwrap().1, "GpuInfo nests brackets more than 32 levels deep");
        let long_name = parse(&format!("{HEADER}\nname,{huge},1,8,32,x,1,1,r\n"));
        assert_eq!(long_name.first_bad.unwrap().1, "AcceleratorName is 10485760 bytes long (at most 1024 are read)");
    }
}
