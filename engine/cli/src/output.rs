//! Writing to stdout/stderr: colour choice, diagnostics, broken pipes.

use crate::args::ColorChoice;
use std::io::{IsTerminal, Write};
use twinflow_workflow::{CompileError, Diagnostic};

/// Where and how a command writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    color: bool,
}

impl Output {
    pub(crate) fn new(choice: ColorChoice) -> Self {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        Self { color }
    }

    /// Writes text to stdout; a closed pipe (e.g. `| head`) is not an error.
    pub(crate) fn print(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// Writes bytes to stdout as they are (a task's log); a closed pipe is
    /// not an error.
    pub(crate) fn print_bytes(&self, bytes: &[u8]) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(bytes);
        let _ = stdout.flush();
    }

    /// Renders diagnostics and a closing line to stderr.
    pub(crate) fn compile_error(&self, what: &str, err: &CompileError) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(err.render(self.color).as_bytes());
        let n = err.error_count();
        let _ = writeln!(
            stderr,
            "error: could not compile `{}` due to {}",
            crate::term::shown(what),
            crate::term::count(n as u64, "error")
        );
    }

    /// Renders one diagnostic to stderr.
    pub(crate) fn diagnostic(&self, d: &Diagnostic) {
        let _ = std::io::stderr()
            .lock()
            .write_all(d.render(self.color).as_bytes());
    }

    /// Writes a warning line to stderr (its values' control characters
    /// escaped, as [`Output::error`]'s).
    pub(crate) fn warning(&self, message: &str) {
        let message = crate::term::lines(message);
        let _ = writeln!(std::io::stderr().lock(), "warning: {message}");
    }

    /// Writes a plain error line to stderr.
    /// Its values' control characters are escaped ([`crate::term::lines`]).
    pub(crate) fn error(&self, message: &str) {
        let message = crate::term::lines(message);
        let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    }
}
