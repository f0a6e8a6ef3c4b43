//! The body of every error answer: `{"error": {"kind", "backend", "message", "hint"}}`.

use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ApiError {
    /// The error.
    pub error: ApiErrorBody,
}

/// What went wrong, as data.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ApiErrorBody {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The backend concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// What went wrong.
    pub message: String,
    /// What to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, backend: Option<&str>, message: impl Into<String>, hint: Option<String>) -> Self {
        Self { error: ApiErrorBody { kind, backend: backend.map(str::to_string), message: message.into(), hint } }
    }
}

/// Kinds of API errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A parameter is malformed, unknown or names no backend (400, 414).
    BadRequest,
    /// No valid bearer token (401).
    Unauthorized,
    /// The request asks for more than the server allows (403).
    Forbidden,
    /// A needed backend is not installed (424).
    BackendMissing,
    /// A needed backend is switched off (424).
    BackendDisabled,
    /// A needed backend's plugin does not load (424).
    BackendBroken,
    /// A needed backend's plugin was built for another interface (424).
    BackendIncompatible,
    /// A needed backend's plugin is not pinned in plugins.lock (424).
    BackendUntrusted,
    /// Nothing is served at that path (404).
    NotFound,
    /// Only GET and HEAD are served (405).
    MethodNotAllowed,
    /// The request names a host this server does not answer for (421).
    MisdirectedRequest,
    /// Too many requests wait for a backend (503).
    Overloaded,
    /// The server is shutting down (503).
    ShuttingDown,
    /// No answer within the request's deadline (504).
    Timeout,
    /// A bug of skyhost (500).
    Internal,
    /// A kind this client does not know (a newer server).
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// Whether the error says a needed backend is unavailable (exit 3).
    pub fn is_backend_unavailable(self) -> bool {
        matches!(
            self,
            Self::BackendMissing
                | Self::BackendDisabled
                | Self::BackendBroken
                | Self::BackendIncompatible
                | Self::BackendUntrusted
        )
    }
}
