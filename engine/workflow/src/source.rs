//! The source text diagnostics point into: a file's name and text with an
//! index of its line starts, read by miette through [`SourceCode`].

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use std::sync::Arc;

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

    /// The 1-based line and column (in characters) of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> Option<(usize, usize)> {
        let line = self.line_of(offset);
        let line_start = self.line_starts[line];
        let col = self.text.get(line_start..offset)?.chars().count();
        Some((line + 1, col + 1))
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
}
