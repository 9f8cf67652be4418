//! Compile diagnostics: rustc-style errors with a code, the file, labelled
//! spans and a hint, rendered by miette. A compile reports every error it
//! can find in a file, not only the first, and keeps the first
//! [`MAX_REPORTED_DIAGNOSTICS`] of them.

use crate::source::Source;
use crate::span::Span;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode};
use std::fmt;

/// The most diagnostics a compile reports; the rest are counted in
/// [`CompileError::omitted`].
pub const MAX_REPORTED_DIAGNOSTICS: usize = 200;

/// One problem with a workflow (or site file, or command-line argument).
#[derive(Debug, Clone)]
pub struct Diagnostic {
    code: &'static str,
    message: String,
    labels: Vec<(Span, String)>,
    help: Option<String>,
    source: Option<Source>,
}

impl Diagnostic {
    /// A diagnostic with a code (`twinflow::...`) and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            source: None,
        }
    }

    /// Points into `source`.
    pub fn in_source(mut self, source: &Source) -> Self {
        self.source = Some(source.clone());
        self
    }

    /// Adds a labelled span (the first one is the primary label).
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }

    /// Sets the hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the hint if there is one.
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// The stable code, e.g. `twinflow::unknown-key`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// `(line, column)` of the primary label, 1-based.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let (span, _) = self.labels.first()?;
        self.source.as_ref()?.line_col(span.start)
    }

    /// Renders like rustc: message, `file:line:col`, the source with labels, the hint.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("error: {}\n", self.message);
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.labels.is_empty() {
            return None;
        }
        self.source.as_deref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(
            |(i, (span, text))| {
                let label = (!text.is_empty()).then(|| text.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(label, *span)
                } else {
                    LabeledSpan::new_with_span(label, *span)
                }
            },
        )))
    }
}

/// Why a workflow did not compile: one or more diagnostics, in file order.
/// At most [`MAX_REPORTED_DIAGNOSTICS`] are kept; `omitted` counts the rest.
#[derive(Debug, Clone)]
pub struct CompileError {
    /// What went wrong, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// How many more problems were found and left out.
    pub omitted: usize,
}

impl CompileError {
    /// How many problems were found, including those left out.
    pub fn error_count(&self) -> usize {
        self.diagnostics.len() + self.omitted
    }

    /// Renders every diagnostic and, when some were left out, how many.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render(color));
            out.push('\n');
        }
        if let Some(more) = self.more() {
            out.push_str(&format!("error: {more}\n"));
        }
        out
    }

    /// "and N more errors (...)", when some were left out.
    fn more(&self) -> Option<String> {
        let noun = if self.omitted == 1 { "error" } else { "errors" };
        (self.omitted > 0).then(|| {
            format!(
                "and {} more {noun} (only the first {} are shown)",
                self.omitted,
                self.diagnostics.len()
            )
        })
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.diagnostics.as_slice() {
            [one] if self.omitted == 0 => write!(f, "{}", one.message),
            many => write!(
                f,
                "{} errors, the first: {}",
                self.error_count(),
                many.first().map_or("", |d| d.message.as_str())
            ),
        }
    }
}

impl std::error::Error for CompileError {}

/// Collects diagnostics during a compile.
#[derive(Debug)]
pub(crate) struct Diags {
    pub(crate) source: Source,
    pub(crate) list: Vec<Diagnostic>,
}

impl Diags {
    pub(crate) fn new(source: Source) -> Self {
        Self {
            source,
            list: Vec::new(),
        }
    }

    /// Starts a diagnostic pointing at `span` in this file.
    pub(crate) fn at(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::new(code, message)
            .in_source(&self.source)
            .label(span, label);
        self.list.push(d);
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether hints that search or list many names ("did you mean", "steps:
    /// a, b, ...") are still worth working out: only while fewer diagnostics
    /// than are reported have been found, so that a file with very many
    /// mistakes costs time linear in its size.
    pub(crate) fn hints_wanted(&self) -> bool {
        self.list.len() < MAX_REPORTED_DIAGNOSTICS
    }

    /// Sorts by position, diagnostics without a place (about command-line
    /// arguments, usually the cause of the rest) first, and hands them over.
    pub(crate) fn into_error(mut self) -> CompileError {
        self.list
            .sort_by_key(|d| d.labels.first().map(|(s, _)| s.start));
        // The same mistake seen from several places (e.g. a top-level `env`
        // checked for every step) is reported once.
        self.list.dedup_by(|a, b| {
            !a.labels.is_empty()
                && a.code == b.code
                && a.labels.first().map(|l| l.0) == b.labels.first().map(|l| l.0)
        });
        let omitted = self.list.len().saturating_sub(MAX_REPORTED_DIAGNOSTICS);
        self.list.truncate(MAX_REPORTED_DIAGNOSTICS);
        CompileError {
            diagnostics: self.list,
            omitted,
        }
    }
}

impl Diagnostic {
    /// In-place hint setter for diagnostics built through [`Diags::at`].
    pub(crate) fn set_help(&mut self, help: Option<String>) -> &mut Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// In-place secondary label.
    pub(crate) fn add_label(&mut self, span: Span, text: impl Into<String>) -> &mut Self {
        self.labels.push((span, text.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::source;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = source("f.yaml", "a: 1\nbé: x\n  c: 2\n");
        let d = Diagnostic::new("twinflow::x", "m")
            .in_source(&src)
            .label(Span::new(9, 1), "");
        assert_eq!(d.line_col(), Some((2, 4)));
        let d = Diagnostic::new("twinflow::x", "m")
            .in_source(&src)
            .label(Span::new(0, 1), "");
        assert_eq!(d.line_col(), Some((1, 1)));
    }

    #[test]
    fn only_the_first_diagnostics_are_kept_and_the_rest_counted() {
        let src = source("f.yaml", "x\n".repeat(1000));
        let mut d = Diags::new(src);
        for i in (0..1000).rev() {
            d.at(
                "twinflow::x",
                Span::new(2 * i, 1),
                format!("problem {i}"),
                "",
            );
        }
        let err = d.into_error();
        assert_eq!(err.diagnostics.len(), MAX_REPORTED_DIAGNOSTICS);
        assert_eq!(err.omitted, 1000 - MAX_REPORTED_DIAGNOSTICS);
        assert_eq!(err.error_count(), 1000);
        assert_eq!(err.diagnostics[0].message(), "problem 0");
        assert!(
            err.render(false)
                .ends_with("error: and 800 more errors (only the first 200 are shown)\n")
        );
        assert!(
            err.to_string()
                .starts_with("1000 errors, the first: problem 0")
        );
    }
}
