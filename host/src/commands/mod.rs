//! One module per command.

pub mod completions;
pub mod plugins;
pub mod show_gpus;
