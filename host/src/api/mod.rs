//! The HTTP API's wire types and the answers it shares with the commands:
//! the server, the client and the commands all use this module, and none of
//! them imports another.
//!
//! * [`error`]: the error body every non-200 answer carries, with its kinds;
//! * [`plugins`]: the plugin report (`skyhost plugins -o json`, `/v1/plugins`);
//! * [`check`]: the backend checks (`skyhost check -o json`, `/v1/check`);
//! * the GPU listing is [`crate::gpus::report::GpuReport`], with its request
//!   as query parameters in [`gpus`];
//! * [`redact`]: what may not reach a client (passwords in URLs, tokens,
//!   a credential helper's further lines).

pub mod check;
pub mod error;
pub mod gpus;
pub mod plugins;
pub mod query;
pub mod redact;

/// The HTTP API version; the server sends it in [`VERSION_HEADER`].
pub const VERSION: u32 = 1;
/// Header carrying [`VERSION`].
pub const VERSION_HEADER: &str = "skyhost-api-version";
