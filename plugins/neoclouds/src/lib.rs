//! The smaller GPU clouds, one plugin file serving each as a backend of its
//! own: Vast, Nebius, Hyperbolic, Seeweb, Yotta, Mithril and Verda, from
//! SkyPilot's `<cloud>/vms.csv`. Each embedded catalog
//! (`catalog/<cloud>/vms.csv`) is a small, dated sample written from public
//! price lists, used until a real catalog is downloaded or given.

skyhost_catalog::cloud_bundle_plugin!(
    "neoclouds",
    "the smaller GPU clouds: vast, nebius, hyperbolic, seeweb, yotta, mithril, verda",
    [
        skyhost_catalog::CloudSpec {
            name: "vast",
            display_name: "Vast",
            description: "Vast.ai GPU offers from SkyPilot's vast/vms.csv",
            embedded_csv: include_str!("../catalog/vast/vms.csv"),
            embedded_date: "2026-11-28",
            refresh_hours: Some(7.0),
            device_memory_is_total: true,
            pricing: skyhost_catalog::Pricing::PerRow,
        },
        skyhost_catalog::CloudSpec {
            name: "nebius",
            display_name: "Nebius",
            description: "Nebius AI Cloud GPUs from SkyPilot's nebius/vms.csv",
            embedded_csv: include_str!("../catalog/nebius/vms.csv"),
            embedded_date: "2026-11-28",
            refresh_hours: Some(7.0),
            device_memory_is_total: false,
            pricing: skyhost_catalog::Pricing::PerRow,
        },
        skyhost_catalog::CloudSpec {
            name: "hyperbolic",
            display_name: "Hyperbolic",
            description: "Hyperbolic GPUs from SkyPilot's hyperbolic/vms.csv",
            embedded_csv: include_str!("../catalog/hyperbolic/vms.csv"),
            embedded_date: "2026-11-28",
            refresh_hours: Some(7.0),
            device_memory_is_total: false,
            pricing: skyhost_catalog::Pricing::PerRow,
        },
        skyhost_catalog::CloudSpec {
            name: "seeweb",
            display_name: "Seeweb",
            description: "Seeweb cloud GPUs from SkyPilot's seeweb/vms.csv",
            embedded_csv: include_str!("../catalog/seeweb/vms.csv"),
            embedded_date: "2026-11-28",
            refresh_hours: Some(8.0),
            device_memory_is_total: false,
            pricing: skyhost_catalog::Pricing::PerRow,
        },
        skyhost_catalog::CloudSpec {
            name: "yotta",
            display_name: "Yotta",
            description: "Yotta GPUs from SkyPilot's yotta/vms.csv",
            embedded_csv: include_str!("../catalog/yotta/vms.csv"),
            embedded_date: "2026-11-28",
            refresh_hours: Some(7.0),
            device_memory_is_total: false,
            pricing: skyhost_catalog::Pricing::PerRow,
        },
        skyhost_catalog::CloudSpec {
            name: "mithril",
            display_name: "Mithril",
            description: "Mithril GPU instances from SkyPilot's mithril/vms.csv",
            embedded_csv: include_str!("../catalog/mithril/vms.csv"),
            embedded_date: "2026-11-28",
            refresh_hours: Some(7.0),
            device_memory_is_total: false,
            pricing: skyhost_catalog::Pricing::PerRow,
        },
        skyhost_catalog::CloudSpec {
            name: "verda",
            display_name: "Verda",
            description: "Verda (formerly DataCrunch) GPUs from SkyPilot's verda/vms.csv",
            embedded_csv: include_str!("../catalog/verda/vms.csv"),
            embedded_date: "2026-11-28",
            refresh_hours: Some(7.0),
            device_memory_is_total: false,
            pricing: skyhost_catalog::Pricing::PerRow,
        }
    ]
);
