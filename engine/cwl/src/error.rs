//! The front end's one error type: what went wrong, in which document and
//! where, and whether it is a feature twinflow does not support (the
//! conformance runner's exit 33) rather than a bad document or job.

use std::fmt;
use std::path::PathBuf;

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The document or job object is wrong (a `should_fail` test's outcome).
    Invalid,
    /// A valid CWL feature twinflow does not implement.
    Unsupported,
    /// The tool ran and failed, or its outputs could not be collected.
    Failed,
    /// Reading or writing a file failed.
    Io,
}

/// A located front-end error: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CwlError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The document (or job file) it is about, when known.
    pub file: Option<PathBuf>,
    /// 1-based line in `file`, when known.
    pub line: Option<usize>,
    /// Lowercase fragment saying what is wrong.
    pub message: String,
}

impl fmt::Display for CwlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            _ => {}
        }
        if self.kind == ErrorKind::Unsupported {
            f.write_str("unsupported: ")?;
        }
        f.write_str(&self.message)
    }
}

impl CwlError {
    /// A bad document or job object.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// A feature twinflow does not implement.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// A tool run that failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// An I/O failure on `path`.
    pub fn io(what: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{what} {}: {err}", path.display()))
    }

    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            file: None,
            line: None,
            message: message.into(),
        }
    }

    /// Names the file, unless one is named already.
    pub fn in_file(mut self, file: &std::path::Path) -> Self {
        if self.file.is_none() {
            self.file = Some(file.to_path_buf());
        }
        self
    }

    /// Sets the line, unless one is set already.
    pub fn at_line(mut self, line: Option<usize>) -> Self {
        if self.line.is_none() {
            self.line = line;
        }
        self
    }
}

impl From<crate::expr::ExprError> for CwlError {
    fn from(e: crate::expr::ExprError) -> Self {
        match e {
            // The expression ran and failed (an exception, the time limit).
            crate::expr::ExprError::JavaScript { .. } => Self::failed(e.to_string()),
            other => Self::invalid(other.to_string()),
        }
    }
}

/// Result of the front end.
pub type Result<T> = std::result::Result<T, CwlError>;
