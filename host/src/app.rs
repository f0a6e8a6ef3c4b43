//! What every command shares: the global options, the config, and the
//! plugin set loaded from them.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use crate::{
    cli::Cli,
    config::Config,
    diagnostics::Failure,
    gpus::request::backend_of,
    plugins::{DisabledBy, Isolation, LoadOptions, PluginSet, lock::Lock, search_path, worker::WorkerOptions},
};

/// Where plugins run when neither `--isolation`, `SKYHOST_ISOLATION` nor the
/// config says: chosen from the figures of `bench/run isolation` (README).
pub const CLI_ISOLATION: Isolation = Isolation::Process;

/// Global options and configuration.
#[derive(Debug)]
pub struct App {
    /// The config file's contents.
    pub config: Config,
    /// The config file read, if any.
    pub config_path: Option<PathBuf>,
    /// `--plugin-dir`.
    pub plugin_dirs: Vec<PathBuf>,
    /// `--disable`.
    pub disable_flags: Vec<String>,
    /// `--catalog-dir` / `SKYHOST_CATALOG_DIR`.
    pub catalog_dir: Option<PathBuf>,
    /// `--server` / `SKYHOST_SERVER`.
    pub server: Option<String>,
    /// `-v` count.
    pub verbose: u8,
    /// `--offline` / `SKYHOST_OFFLINE`.
    pub offline: bool,
    /// `--isolation` / `SKYHOST_ISOLATION`.
    pub isolation: Option<Isolation>,
}

impl App {
    /// Builds the app from parsed flags and the config file.
    pub fn new(cli: &Cli, config: Config, config_path: Option<PathBuf>) -> Self {
        Self {
            config,
            config_path,
            plugin_dirs: cli.plugin_dirs.clone(),
            disable_flags: cli.disable.clone(),
            catalog_dir: cli.catalog_dir.clone(),
            server: cli.server.clone().filter(|s| !s.is_empty()),
            verbose: cli.verbose,
            offline: cli.offline,
            isolation: cli.isolation,
        }
    }

    /// Backends switched off, by config, `SKYHOST_DISABLE` and `--disable`.
    pub fn disabled(&self) -> BTreeMap<String, Vec<DisabledBy>> {
        let env = std::env::var("SKYHOST_DISABLE").unwrap_or_default();
        let sources = [
            (DisabledBy::Config, self.config.disable.clone()),
            (DisabledBy::Env, env.split(',').map(str::to_string).collect()),
            (DisabledBy::Flag, self.disable_flags.clone()),
        ];
        let mut map: BTreeMap<String, Vec<DisabledBy>> = BTreeMap::new();
        for (by, names) in sources {
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                let list = map.entry(backend_of(name)).or_default();
                if !list.contains(&by) {
                    list.push(by);
                }
            }
        }
        map
    }

    /// The plugin search path, in order.
    pub fn search_path(&self) -> Vec<search_path::SearchDir> {
        search_path::search_path(search_path::SearchPathInputs {
            flag_dirs: self.plugin_dirs.clone(),
            env_path: std::env::var("SKYHOST_PLUGIN_PATH").ok(),
            config_dirs: self.config.plugin_path.clone(),
            exe: std::env::current_exe().ok(),
            data_dir: dirs::data_dir(),
        })
    }

    /// Where plugins run: the flag or environment, else the config, else `default`.
    pub fn isolation(&self, default: Isolation) -> Isolation {
        self.isolation.or(self.config.plugins.isolation).unwrap_or(default)
    }

    /// Discovers and loads the plugins for a command-line command.
    pub fn load_plugins(&self) -> Result<PluginSet, Failure> {
        self.load_plugins_as(CLI_ISOLATION, None, false)
    }

    /// Discovers and loads the plugins; `isolation` unless configured
    /// otherwise. `server_deadline`: the server's request deadline, which
    /// also bounds every call, and restarts of workers are logged.
    /// `locking`: hash every file for `plugins --lock`, and pin nothing yet.
    pub fn load_plugins_as(
        &self,
        isolation: Isolation,
        server_deadline: Option<Duration>,
        locking: bool,
    ) -> Result<PluginSet, Failure> {
        let p = &self.config.plugins;
        let lock = match (p.require_lock == Some(true) && !locking, self.lock_path()) {
            (false, _) => None,
            (true, None) => {
                return Err(Failure::usage(
                    "[plugins] require_lock is set, but there is no config directory for plugins.lock",
                ));
            }
            (true, Some(path)) => Some(
                Lock::read(&path)
                    .map_err(|e| Failure::usage(e).help("fix or remove it, then run `skyhost plugins --lock`"))?,
            ),
        };
        let call_timeout = Duration::from_secs_f64(p.call_timeout_secs.unwrap_or(30.0));
        Ok(PluginSet::load(LoadOptions {
            search_path: self.search_path(),
            disabled: self.disabled(),
            cache_dir: dirs::cache_dir(),
            isolation: self.isolation(isolation),
            worker: WorkerOptions {
                memory_mb: p.worker_memory_mb.unwrap_or(4096),
                load_timeout: Duration::from_secs_f64(p.load_timeout_secs.unwrap_or(5.0)),
                verbose: self.verbose > 0,
            },
            call_timeout: server_deadline.map_or(call_timeout, |d| d.min(call_timeout)),
            hash_files: locking,
            lock,
        }))
    }

    /// Where `plugins.lock` is.
    pub fn lock_path(&self) -> Option<PathBuf> {
        crate::plugins::lock::lock_path(self.config_path.as_deref())
    }
}
