//! The requirement check: each command says which backends it needs and which
//! it can use, and this runs against the loaded [`PluginSet`] before the
//! command does any work. A needed backend that is not loaded stops the
//! command (exit 3) with the install or enable hint; a usable one that is
//! absent becomes a [`Skipped`] note and the command goes on.

use serde::Serialize;

use crate::{
    api::error::ErrorKind,
    diagnostics::{Diagnostic, Failure, exit},
    gpus::request::GpuRequest,
    plugins::{KNOWN_BACKENDS, PluginSet, Status},
};

/// What a command asks of the backends.
#[derive(Debug, Default, Clone)]
pub struct Requirements {
    /// Backends without which the command cannot run.
    pub needs: Vec<String>,
    /// Backends the command uses when they are there.
    pub uses: Vec<String>,
}

/// A usable backend that the command goes without.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Backend name.
    pub backend: String,
    /// Why it is not loaded.
    pub status: Status,
    /// One line.
    pub reason: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A requirement that is not met.
#[derive(Debug, Clone)]
pub enum Unmet {
    /// No backend has this name (a usage error).
    Unknown {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// The backend exists but is not loaded.
    Unavailable {
        /// Backend name (`*` for "any GPU backend").
        backend: String,
        /// Why: missing, disabled, broken or incompatible.
        status: Status,
        /// One line.
        message: String,
        /// What to do.
        hint: Option<String>,
        /// Where skyhost looked, for a missing backend.
        looked_in: Option<String>,
    },
}

impl Unmet {
    /// The `kind` of the server's error body.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unknown { .. } => ErrorKind::BadRequest,
            Self::Unavailable { status: Status::Disabled, .. } => ErrorKind::BackendDisabled,
            Self::Unavailable { status: Status::Missing, .. } => ErrorKind::BackendMissing,
            Self::Unavailable { status: Status::Incompatible, .. } => ErrorKind::BackendIncompatible,
            Self::Unavailable { status: Status::Untrusted, .. } => ErrorKind::BackendUntrusted,
            Self::Unavailable { .. } => ErrorKind::BackendBroken,
        }
    }
}

impl Unmet {
    /// The backend concerned (the name asked for, when there is none).
    pub fn backend(&self) -> &str {
        match self {
            Self::Unknown { name, .. } => name,
            Self::Unavailable { backend, .. } => backend,
        }
    }

    /// What is wrong, in one line.
    pub fn message(&self) -> String {
        match self {
            Self::Unknown { name, .. } => format!("there is no backend named '{name}'"),
            Self::Unavailable { message, .. } => message.clone(),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unknown { known, .. } => Some(format!("backends: {}", known.join(", "))),
            Self::Unavailable { hint, .. } => hint.clone(),
        }
    }
}

impl From<Unmet> for Failure {
    fn from(u: Unmet) -> Self {
        let d = Diagnostic::error(u.message()).help_opt(u.hint());
        match u {
            Unmet::Unknown { .. } => Failure::new(exit::USAGE, d),
            Unmet::Unavailable { looked_in, .. } => Failure::new(
                exit::BACKEND_UNAVAILABLE,
                match looked_in {
                    Some(dirs) => d.with_note(format!("looked in: {dirs}")),
                    None => d,
                },
            ),
        }
    }
}

/// Checks `req` for `command` (used in messages, e.g. `show-gpus --infra k8s`).
pub fn check(set: &PluginSet, req: &Requirements, command: &str) -> Result<Vec<Skipped>, Unmet> {
    for name in &req.needs {
        let Some(entry) = set.entry(name) else {
            let mut known: Vec<String> = KNOWN_BACKENDS.iter().map(|k| k.name.to_string()).collect();
            known.extend(set.entries.iter().filter(|e| e.known().is_none()).map(|e| e.name.clone()));
            known.dedup();
            return Err(Unmet::Unknown { name: name.clone(), known });
        };
        if entry.status == Status::Loaded {
            continue;
        }
        let display = entry.display_name();
        let reason = entry.reason.clone().unwrap_or_default();
        let message = match entry.status {
            Status::Missing => format!("`{command}` needs the {display} backend, which is not installed"),
            Status::Disabled => format!("`{command}` needs the {display} backend, which is {reason}"),
            _ => format!(
                "`{command}` needs the {display} backend, but its plugin {} is {}: {reason}",
                entry.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                entry.status.word()
            ),
        };
        let looked_in = (entry.status == Status::Missing)
            .then(|| set.search_path.iter().map(|d| d.path.display().to_string()).collect::<Vec<_>>().join(", "));
        return Err(Unmet::Unavailable {
            backend: name.clone(),
            status: entry.status,
            message,
            hint: entry.hint.clone(),
            looked_in,
        });
    }
    Ok(req
        .uses
        .iter()
        .filter_map(|name| set.entry(name))
        .filter(|e| e.status != Status::Loaded)
        .map(|e| Skipped {
            backend: e.name.clone(),
            status: e.status,
            reason: match e.status {
                Status::Missing => "not installed".to_string(),
                _ => e.reason.clone().unwrap_or_else(|| e.status.word().to_string()),
            },
            hint: e.hint.clone(),
        })
        .collect())
}

/// The one short note for skipped backends, grouped by why, and its hint:
/// `skipped kubernetes, gcp (not installed); aws (disabled by --disable)`.
pub fn skipped_summary(skipped: &[Skipped]) -> Option<(String, Option<String>)> {
    if skipped.is_empty() {
        return None;
    }
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for s in skipped {
        let why = match s.status {
            Status::Missing | Status::Disabled => s.reason.clone(),
            other => other.word().to_string(),
        };
        match groups.iter_mut().find(|(w, _)| *w == why) {
            Some((_, names)) => names.push(&s.backend),
            None => groups.push((why, vec![&s.backend])),
        }
    }
    let text = groups.iter().map(|(why, names)| format!("{} ({why})", names.join(", "))).collect::<Vec<_>>().join("; ");
    let hint = match skipped {
        [one] => one.hint.clone(),
        _ => Some("run `skyhost plugins` to see how to install, enable or fix them".into()),
    };
    Some((format!("skipped {text}"), hint))
}

/// What a GPU query needs and uses.
pub fn requirements_for(plugins: &PluginSet, req: &GpuRequest) -> Requirements {
    match &req.infra {
        Some(b) => Requirements { needs: vec![b.clone()], uses: Vec::new() },
        None => {
            let mut uses: Vec<String> = KNOWN_BACKENDS.iter().map(|k| k.name.to_string()).collect();
            let third_party: Vec<String> = plugins
                .loaded
                .iter()
                .filter(|b| b.lists_gpus())
                .map(|b| b.name.clone())
                .filter(|n| !uses.contains(n))
                .collect();
            uses.extend(third_party);
            Requirements { needs: Vec::new(), uses }
        }
    }
}

/// Checks a GPU query's requirements, and that some GPU backend is there at all.
pub fn check_gpus(plugins: &PluginSet, req: &GpuRequest, command: &str) -> Result<Vec<Skipped>, Unmet> {
    let skipped = check(plugins, &requirements_for(plugins, req), command)?;
    if !plugins.loaded.iter().any(|b| b.lists_gpus()) {
        return Err(Unmet::Unavailable {
            backend: "*".into(),
            status: Status::Missing,
            message: format!("`{command}` needs a GPU backend, and none is loaded"),
            hint: Some("install at least one backend plugin; `skyhost plugins` shows how".into()),
            looked_in: None,
        });
    }
    Ok(skipped)
}
