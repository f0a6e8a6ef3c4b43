//! Command-line definitions. `--help`, the man page and the shell completions
//! are all generated from these.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 error, 2 usage or config error, 3 a needed backend is \
missing, disabled or broken, 4 nothing matched.

Plugins are searched in --plugin-dir, SKYHOST_PLUGIN_PATH, plugin_path of the \
config file, ~/.local/share/skyhost/plugins, <prefix>/lib/skyhost/plugins, the \
build directory of a cargo build, /usr/local/lib/skyhost/plugins and \
/usr/lib/skyhost/plugins. Run `skyhost plugins` to see what was found.";

/// List GPUs across Kubernetes clusters and clouds. Backends are plugins.
#[derive(Debug, Parser)]
#[command(name = "skyhost", version, about, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Search DIR for plugins before anything else (repeatable)
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    pub plugin_dirs: Vec<PathBuf>,

    /// Config file [default: $XDG_CONFIG_HOME/skyhost/config.toml]
    #[arg(long, value_name = "FILE", env = "SKYHOST_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Do not load backend NAME (repeatable or comma-separated; also SKYHOST_DISABLE)
    #[arg(long = "disable", value_name = "NAME", value_delimiter = ',', global = true)]
    pub disable: Vec<String>,

    /// Directory of SkyPilot-format catalogs, laid out like ~/.sky/catalogs/v8
    #[arg(long, value_name = "DIR", env = "SKYHOST_CATALOG_DIR", global = true)]
    pub catalog_dir: Option<PathBuf>,

    /// Never download catalogs; use the catalog directory, the cache or the embedded copies
    #[arg(long, env = "SKYHOST_OFFLINE", global = true, value_parser = clap::builder::FalseyValueParser::new())]
    pub offline: bool,

    /// Ask the skyhost server at URL instead of loading plugins here
    #[arg(long, value_name = "URL", env = "SKYHOST_SERVER", global = true)]
    pub server: Option<String>,

    /// Where plugins run: each plugin file in a worker process of its own, or in this process
    #[arg(long, value_enum, value_name = "MODE", env = "SKYHOST_ISOLATION", global = true)]
    pub isolation: Option<crate::plugins::Isolation>,

    /// More detail: loader messages, search path, timings
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every backend: loaded, disabled, missing, shadowed, incompatible or broken
    Plugins(PluginsArgs),

    /// Show GPUs, their prices and their free capacity (as `sky show-gpus`)
    #[command(name = "show-gpus")]
    ShowGpus(ShowGpusArgs),

    /// GPU commands, under SkyPilot's newer name
    Gpus {
        #[command(subcommand)]
        command: GpusCommand,
    },

    /// Check each backend: catalogs readable, clusters reachable
    Check(CheckArgs),

    /// Cloud catalogs: where they come from, and refreshing them
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },

    /// Serve the same answers as JSON over HTTP
    Serve(ServeArgs),

    /// Print a shell completion script
    Completions {
        /// Shell to complete for
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff)
    Man,
}

/// `skyhost gpus ...`.
#[derive(Debug, Subcommand)]
pub enum GpusCommand {
    /// Same as `skyhost show-gpus`
    List(ShowGpusArgs),
}

/// Output formats of `plugins` and `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns
    Table,
    /// One JSON document
    Json,
}

/// Output formats of `show-gpus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum GpuFormat {
    /// SkyPilot's tables
    #[default]
    Table,
    /// One JSON document with everything the tables show
    Json,
    /// The offering rows as CSV
    Csv,
}

/// `skyhost plugins`.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Pin the loaded plugin files (name, SHA-256, interface) in plugins.lock beside the config file
    #[arg(long)]
    pub lock: bool,
}

/// `skyhost show-gpus` / `skyhost gpus list`.
#[derive(Debug, Args, Clone, Default)]
pub struct ShowGpusArgs {
    /// GPU name (a case-insensitive regular expression) and optional quantity, e.g. A100:8
    #[arg(value_name = "NAME[:QTY]")]
    pub accelerator: Option<String>,

    /// Show every accelerator, with prices
    #[arg(short = 'a', long = "all", conflicts_with = "accelerator")]
    pub all: bool,

    /// Where to look: CLOUD[/REGION], `k8s`, kubernetes/CONTEXT, `slurm`, or slurm/CLUSTER
    #[arg(long, value_name = "INFRA")]
    pub infra: Option<String>,

    /// Older spelling of --infra CLOUD
    #[arg(long, value_name = "CLOUD", hide = true, conflicts_with = "infra")]
    pub cloud: Option<String>,

    /// Older spelling of --infra CLOUD/REGION (needs --cloud)
    #[arg(long, value_name = "REGION", hide = true, conflicts_with = "infra", requires = "cloud")]
    pub region: Option<String>,

    /// One row per region instead of the cheapest one (needs a GPU name)
    #[arg(long, requires = "accelerator", conflicts_with = "region")]
    pub all_regions: bool,

    /// Kubernetes context to query (repeatable) [default: the current context]
    #[arg(long = "context", value_name = "NAME")]
    pub contexts: Vec<String>,

    /// Query every Kubernetes context in the kubeconfig
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,

    /// A node taint your pods tolerate, KEY[=VALUE][:EFFECT] (repeatable); adds to [kubernetes] tolerations
    #[arg(long = "toleration", value_name = "TAINT")]
    pub tolerations: Vec<String>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = GpuFormat::Table)]
    pub output: GpuFormat,
}

/// `skyhost check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Backends to check [default: all loaded]
    #[arg(value_name = "BACKEND")]
    pub backends: Vec<String>,

    /// Kubernetes context to check (repeatable)
    #[arg(long = "context", value_name = "NAME")]
    pub contexts: Vec<String>,

    /// Check every Kubernetes context in the kubeconfig
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `skyhost catalog ...`.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Download the catalogs of CLOUD (or of every loaded cloud) now
    Update {
        /// Clouds to update
        #[arg(value_name = "CLOUD")]
        clouds: Vec<String>,
    },
    /// Show, per cloud, which catalog is used, where it is, its age and rows
    Status {
        /// Output format
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

/// `skyhost serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:46590]
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,

    /// Serve a non-loopback address without [serve] tokens_file (something else must guard it)
    #[arg(long)]
    pub allow_unauthenticated: bool,

    /// Log lines as text for people or as JSON objects for a log pipeline
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Do not serve the web dashboard at / (also [serve] ui = false)
    #[arg(long)]
    pub no_ui: bool,
}

/// Log formats of `serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `skyhost serve: ...` lines
    Text,
    /// One JSON object per line
    Json,
}
