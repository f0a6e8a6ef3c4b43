//! Reading SkyPilot-format GPU catalogs (schema v8) and answering the queries
//! of `skyhost show-gpus`. Shared by every cloud plugin; each plugin is a
//! [`cloud_plugin!`] with its own [`CloudSpec`].

pub mod backend;
pub mod gcp;
pub mod gpu_info;
pub mod parse;
pub mod query;

pub use backend::{CloudBackend, CloudBundle, CloudSpec, Pricing};
pub use skyhost_plugin_api;
