//! `${{ expr }}` in strings: splitting text into literal pieces and expression
//! names, and finding each expression's span in the source for diagnostics.

use crate::span::Span;

/// A piece of a string before name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawPiece {
    Lit(String),
    /// A dotted name, e.g. `params.region`, with its span in the source.
    Expr {
        name: String,
        span: Span,
    },
}

/// A problem in a string's expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExprError {
    pub(crate) message: String,
    pub(crate) span: Span,
    pub(crate) help: Option<String>,
}

/// Splits `text` (the value of the node at `at`) into pieces. `source` is the
/// whole file, used to point at the n-th `${{` inside the node. Every wrong
/// expression is an error, not only the first: a wrong one is left out and
/// the text after it still read (after an unclosed `${{` nothing is left).
/// Returns the pieces of the well-formed parts and the errors.
pub(crate) fn split(text: &str, at: Span, source: &str) -> (Vec<RawPiece>, Vec<ExprError>) {
    let mut pieces = Vec::new();
    let mut errors = Vec::new();
    let mut rest = text;
    let mut nth = 0;
    while let Some(open) = rest.find("${{") {
        if open > 0 {
            pieces.push(RawPiece::Lit(rest[..open].to_owned()));
        }
        let span = locate(source, at, nth);
        let after = &rest[open + 3..];
        let close = after.find("}}").filter(|&c| !after[..c].contains("${{"));
        let Some(close) = close else {
            errors.push(ExprError {
                message: "unclosed `${{`: no matching `}}`".into(),
                span: Span::new(span.start, 3),
                help: Some("close the expression with `}}`, as in `${{ params.region }}`".into()),
            });
            rest = "";
            break;
        };
        let name = after[..close].trim();
        if name.is_empty() {
            errors.push(ExprError {
                message: "empty expression `${{ }}`".into(),
                span,
                help: Some("write a name inside, e.g. `${{ params.region }}`".into()),
            });
        } else if !is_dotted_name(name) {
            errors.push(ExprError {
                message: format!("`{name}` is not an expression twinflow understands"),
                span,
                help: Some(
                    "expressions are names such as `params.X`, `inputs.X`, `outputs.X`, a for_each key, `cycle.year`, `workflow.dir`, `run.id` or `task.name`".into(),
                ),
            });
        } else {
            pieces.push(RawPiece::Expr {
                name: name.to_owned(),
                span,
            });
        }
        rest = &after[close + 2..];
        nth += 1;
    }
    if !rest.is_empty() {
        pieces.push(RawPiece::Lit(rest.to_owned()));
    }
    (pieces, errors)
}

/// `a.b-c.d_e`: segments of letters, digits, `_` and `-`, not starting with a digit or `-`.
fn is_dotted_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|seg| {
            let mut chars = seg.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// The longest expression span shown.
const MAX_SHOWN: usize = 200;

/// The span of the n-th `${{ ... }}` at or after the node's start; the node's
/// own span when the source does not show it (e.g. built by escapes).
fn locate(source: &str, at: Span, nth: usize) -> Span {
    // Within the node: a value whose `${{` the source does not show (written
    // with escapes) must not find another node's, nor read the whole file.
    let Some(tail) = source.get(at.start..at.end()) else {
        return at;
    };
    let Some((offset, _)) = tail.match_indices("${{").nth(nth) else {
        return at;
    };
    let start = at.start + offset;
    // Looked for in the next 200 bytes only: an unclosed `${{` must not make
    // each expression read the rest of the file.
    let window = &source.as_bytes()[start..source.len().min(start + MAX_SHOWN)];
    let len = window
        .windows(2)
        .position(|w| w == b"}}")
        .map_or(3, |end| end + 2);
    Span::new(start, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_locates() {
        let source = "run: echo ${{ params.a }} and ${{ b }}\n";
        let at = Span::new(5, source.len() - 6);
        let (pieces, errors) = split(&source[5..source.len() - 1], at, source);
        assert!(errors.is_empty());
        assert_eq!(pieces.len(), 4);
        let RawPiece::Expr { name, span } = &pieces[3] else {
            panic!("not an expression")
        };
        assert_eq!(name, "b");
        assert_eq!(&source[span.start..span.end()], "${{ b }}");
    }

    #[test]
    fn refuses_unclosed_and_odd_expressions() {
        let at = Span::default();
        let errors = |text: &str| split(text, at, "").1.len();
        assert_eq!(errors("echo ${{ params.a"), 1);
        assert_eq!(errors("echo ${{ a + b }}"), 1);
        assert_eq!(errors("echo ${{ }}"), 1);
        assert_eq!(split("plain $HOME ${x}", at, "").0.len(), 1);
    }

    #[test]
    fn every_wrong_expression_is_an_error() {
        let source = "run: ${{ a + b }} ${{ ok }} ${{ }} ${{ c d }} ${{ open\n";
        let at = Span::new(5, source.len() - 6);
        let (pieces, errors) = split(&source[5..source.len() - 1], at, source);
        let shown: Vec<&str> = errors
            .iter()
            .map(|e| &source[e.span.start..e.span.end()])
            .collect();
        assert_eq!(shown, ["${{ a + b }}", "${{ }}", "${{ c d }}", "${{"]);
        let names: Vec<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                RawPiece::Expr { name, .. } => Some(name.as_str()),
                RawPiece::Lit(_) => None,
            })
            .collect();
        assert_eq!(names, ["ok"]);
    }
}
