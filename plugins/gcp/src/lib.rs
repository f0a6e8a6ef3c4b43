//! The GCP backend: Google Cloud GPUs and TPUs from SkyPilot's gcp/vms.csv.
//! The embedded catalog (`catalog/vms.csv`) is a small, dated sample written
//! from public price lists, used until a real catalog is downloaded or given.

skyhost_catalog::cloud_plugin!(skyhost_catalog::CloudSpec {
    name: "gcp",
    display_name: "GCP",
    description: "Google Cloud GPUs and TPUs from SkyPilot's gcp/vms.csv",
    embedded_csv: include_str!("../catalog/vms.csv"),
    embedded_date: "2026-11-28",
    refresh_hours: Some(7.0),
    device_memory_is_total: false,
    pricing: skyhost_catalog::Pricing::GpuPlusHost,
});
