//! One module per command.

pub mod catalog;
pub mod check;
pub mod completions;
pub mod plugins;
pub mod serve;
pub mod show_gpus;
