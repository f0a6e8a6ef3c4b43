//! Errors, warnings and notes in the cargo style: what went wrong, then
//! `help:` what to do. Also the exit codes, documented in the README.

use std::io::{IsTerminal, Write};

/// Exit statuses.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A failure while working (I/O, a backend error, an unreachable server).
    pub const ERROR: u8 = 1;
    /// Bad command line or config file.
    pub const USAGE: u8 = 2;
    /// A backend the command needs is missing, disabled, broken or incompatible.
    pub const BACKEND_UNAVAILABLE: u8 = 3;
    /// Nothing matched the query (a GPU name that nothing offers).
    pub const NOT_FOUND: u8 = 4;
}

/// Severity of a [`Diagnostic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Stops the command.
    Error,
    /// Something the user may want to know.
    Note,
}

/// One message for the user.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Severity.
    pub level: Level,
    /// What happened, naming the file or context.
    pub message: String,
    /// `help:` lines.
    pub help: Vec<String>,
    /// `note:` lines (details, shown after help).
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A message at `level`.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self { level, message: message.into(), help: Vec::new(), notes: Vec::new() }
    }
    /// An error.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Level::Error, message)
    }
    /// A note.
    pub fn note(message: impl Into<String>) -> Self {
        Self::new(Level::Note, message)
    }
    /// Adds a `help:` line when there is one.
    pub fn help_opt(mut self, h: Option<impl Into<String>>) -> Self {
        self.help.extend(h.map(Into::into));
        self
    }
    /// Adds a `note:` line.
    pub fn with_note(mut self, n: impl Into<String>) -> Self {
        self.notes.push(n.into());
        self
    }

    /// Writes the message to stderr.
    pub fn eprint(&self) {
        let color = stderr_color();
        let (word, code) = match self.level {
            Level::Error => ("error", "1;31"),
            Level::Note => ("note", "1;36"),
        };
        let paint = |w: &str, c: &str| if color { format!("\x1b[{c}m{w}\x1b[0m") } else { w.to_string() };
        let mut text = format!("{}: {}\n", paint(word, code), self.message);
        for h in &self.help {
            text.push_str(&format!("{}: {h}\n", paint("help", "1;32")));
        }
        for n in &self.notes {
            text.push_str(&format!("{}: {n}\n", paint("note", "1")));
        }
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// A command that stopped: what to print and the exit status.
#[derive(Debug)]
pub struct Failure {
    /// Exit status (see [`exit`]).
    pub code: u8,
    /// The message.
    pub diagnostic: Diagnostic,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: u8, diagnostic: Diagnostic) -> Self {
        Self { code, diagnostic }
    }
    /// A plain error (exit 1).
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(exit::ERROR, Diagnostic::error(message))
    }
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, Diagnostic::error(message))
    }
    /// Adds a `help:` line.
    pub fn help(mut self, h: impl Into<String>) -> Self {
        self.diagnostic.help.push(h.into());
        self
    }
}

/// Colour on stderr: a terminal and no `NO_COLOR`.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Colour on stdout: a terminal and no `NO_COLOR`.
pub fn stdout_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Writes `text` to stdout. A closed pipe (`skyhost ... | head`) is not an error.
pub fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::error(format!("cannot write to stdout: {e}"))),
    }
}
