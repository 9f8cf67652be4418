//! Compile diagnostics: rustc-style errors with a code, the file, labelled
//! spans and a hint, rendered by miette. A compile reports every error it
//! can find in a file, not only the first.

use crate::span::Span;
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use std::fmt;
use std::sync::Arc;

/// The most diagnostics a compile reports; the rest are counted in
/// [`CompileError::omitted`].
pub const MAX_REPORTED_DIAGNOSTICS: usize = 200;

/// A named source text that diagnostics point into.
pub type Source = Arc<SourceText>;

/// Makes a named source.
pub fn source(name: impl AsRef<str>, text: impl Into<String>) -> Source {
    Arc::new(SourceText::new(name.as_ref(), text.into()))
}

/// A file's name and text, with the offsets where its lines start, so that a
/// diagnostic finds its line without reading the file from its beginning
/// (miette's own sources do, which made many diagnostics quadratic).
#[derive(Debug)]
pub struct SourceText {
    name: String,
    text: String,
    /// Offset of the first byte of each line; lines end at `\n`, `\r\n` or
    /// `\r`, as miette counts them.
    line_starts: Vec<usize>,
}

impl SourceText {
    fn new(name: &str, text: String) -> Self {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            let ends_line = b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
            if ends_line {
                line_starts.push(i + 1);
            }
        }
        Self {
            name: name.to_owned(),
            text,
            line_starts,
        }
    }

    /// The name diagnostics show.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 0-based line holding byte `offset` (the last line past the end).
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset) - 1
    }
}

impl SourceCode for SourceText {
    /// What miette's `str` source gives, found from the line index: miette
    /// reads the text from the beginning of the line `before + 1` lines above
    /// the span (one more than it shows: miette takes an empty span at the
    /// start of its text to end before it), and the line numbers are shifted
    /// by the lines skipped.
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let first = self.line_of(span.offset()).saturating_sub(before + 1);
        let skipped = self.line_starts[first];
        let window = &self.text.as_bytes()[skipped..];
        let shifted = SourceSpan::new(span.offset().saturating_sub(skipped).into(), span.len());
        let inner = window.read_span(&shifted, before, after)?;
        let found = SourceSpan::new((inner.span().offset() + skipped).into(), inner.span().len());
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.clone(),
                inner.data(),
                found,
                inner.line() + first,
                inner.column(),
                inner.line_count() + first,
            )
            .with_language("yaml"),
        ))
    }
}

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
        let source = self.source.as_ref()?;
        let line = source.line_of(span.start);
        let line_start = source.line_starts[line];
        let col = source.text.get(line_start..span.start)?.chars().count();
        Some((line + 1, col + 1))
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

    /// The line index gives what miette finds by reading from the beginning.
    #[test]
    fn indexed_spans_read_like_miettes_own() {
        let texts = [
            "",
            "a: 1",
            "a: 1\nb: 2\n",
            "version: 1\nsteps:\n  a:\n    run: echo\n\n\n  b:\n    runn: x\n",
            "a\r\nb\r\n\r\nc\rd\n\ne",
            "\n\n\nx: é ü\n  y: 2\n",
        ];
        for text in texts {
            let ours = SourceText::new("f.yaml", text.to_owned());
            for offset in 0..=text.len() {
                // Spans inside the text (miette's own source panics past it).
                for len in [0, 1, 3, 12]
                    .into_iter()
                    .filter(|l| offset + l <= text.len())
                {
                    for context in [0, 1, 2] {
                        let span = SourceSpan::new(offset.into(), len);
                        let theirs = text.read_span(&span, context, context);
                        let mine = ours.read_span(&span, context, context);
                        match (theirs, mine) {
                            (Ok(t), Ok(m)) => {
                                let at = format!("{text:?} at {offset}+{len}, context {context}");
                                assert_eq!(t.data(), m.data(), "{at}");
                                assert_eq!(t.span(), m.span(), "{at}");
                                assert_eq!(t.line(), m.line(), "{at}");
                                assert_eq!(t.column(), m.column(), "{at}");
                                assert_eq!(t.line_count(), m.line_count(), "{at}");
                            }
                            (Err(_), Err(_)) => {}
                            (t, m) => panic!(
                                "{text:?} at {offset}+{len}: miette {:?}, ours {:?}",
                                t.is_ok(),
                                m.is_ok()
                            ),
                        }
                    }
                }
            }
        }
    }

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
