//! Plugin discovery and loading: from the search path to a [`PluginSet`] that
//! knows, before any command runs, which backends are loaded, disabled,
//! missing, shadowed, incompatible or broken.
//!
//! * [`search_path`]: where to look; [`preflight`] and [`trust`]: what may be
//!   handed to the dynamic loader; [`loader`]: mapping a file and reading its
//!   root module; [`verified`]: what is remembered of files that passed;
//!   [`lock`]: files the user pinned.
//! * [`set`]: the whole resolution, into report [`entry`]s and loaded
//!   backends; [`bundle`]: files that serve several backends.
//! * [`handle`]: the host's [`BackendHandle`], which reaches its plugin
//!   through a [`connection`]: in this process, or in a [`worker`] process.

pub mod bundle;
pub mod connection;
pub mod entry;
pub mod handle;
pub mod known;
pub mod loader;
pub mod lock;
pub mod preflight;
pub mod search_path;
pub mod set;
pub mod trust;
pub mod verified;
pub mod worker;

pub use connection::Isolation;
pub use entry::{DisabledBy, Entry, Status};
pub use handle::BackendHandle;
pub use known::KNOWN_BACKENDS;
pub use search_path::SearchDir;
pub use set::{LoadOptions, PluginSet};
