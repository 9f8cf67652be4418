//! CWL v1.2 expressions: parameter references evaluated natively, the rest
//! by the embedded JavaScript engine ([`crate::js`]).
//!
//! This module owns everything between a string of a CWL document and its
//! value: finding `$(...)` and `${...}` in it (cwltool's scanner, quotes and
//! nesting included), its backslash escapes (v1.1+ rules), parsing and
//! following parameter references (`$(inputs.file.path)`,
//! `$(self[0]['key'])`, `$(inputs.list.length)`) against `inputs`, `self`
//! and `runtime`, and the text a value becomes when it is interpolated into
//! a longer string. It follows `cwl_utils.expression` (what cwltool runs):
//! where the two could differ, cwltool's behaviour is the reference.
//!
//! When the document declares `InlineJavascriptRequirement`, a `${...}`
//! body, a `$(...)` that is not a parameter reference, and a reference the
//! native lookup cannot follow (as cwltool falls back to JavaScript then) go
//! to the JavaScript engine, with the requirement's `expressionLib` loaded;
//! a JavaScript failure is [`ExprError::JavaScript`]. Without the
//! requirement, `${` is literal text and a `$(...)` that is not a parameter
//! reference is [`ExprError::Invalid`].

use serde_json::{Map, Value};

/// What an expression can see.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The job's input object, `inputs`.
    pub inputs: &'a Value,
    /// The value of `self` (null where the spec gives none).
    pub self_: &'a Value,
    /// The `runtime` object (`outdir`, `tmpdir`, `cores`, `ram`, ...).
    pub runtime: &'a Value,
    /// The `expressionLib` of InlineJavascriptRequirement
    /// ([`crate::model::Process::expression_lib`]): JavaScript texts loaded
    /// before any JavaScript expression runs.
    pub lib: &'a [Value],
}

/// Whether the document declares InlineJavascriptRequirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Js {
    /// `InlineJavascriptRequirement` is in force: `${...}` is an expression.
    Declared,
    /// Only parameter references: `${` is literal text.
    NotDeclared,
}

/// What [`interpolate_with`] does with whitespace around a string that holds
/// an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whitespace {
    /// Strip it first, as cwltool does for every field but one, so that
    /// `"$(inputs.n)\n"` (a YAML block scalar) is the number itself.
    Strip,
    /// Keep it: cwltool's rule for `InitialWorkDirRequirement` listing
    /// `entry` fields, where a trailing newline is part of the file.
    Keep,
}

/// Why a string could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// JavaScript failed: an exception, a syntax error, the time or memory
    /// limit (under InlineJavascriptRequirement).
    #[error("javascript error in {expr}: {message}")]
    JavaScript {
        /// The whole expression, `$(` or `${` included.
        expr: String,
        /// The engine's message (`ReferenceError: x is not defined`).
        message: String,
    },
    /// A `$(...)` that is not a valid parameter reference and the document has no InlineJavascriptRequirement.
    #[error("invalid parameter reference {expr}: {reason}")]
    Invalid {
        /// The whole expression, `$(` included.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A valid reference that cannot be followed (missing key, index out of range, field of null, ...).
    #[error("cannot evaluate {expr}: {reason}")]
    Eval {
        /// The whole expression, `$(` included.
        expr: String,
        /// Which step failed and why.
        reason: String,
    },
    /// Unterminated `$(` etc.
    #[error("syntax error in {text:?}: {reason}")]
    Syntax {
        /// The text that was scanned.
        text: String,
        /// What is unfinished, and where.
        reason: String,
    },
}

/// Evaluates a string that may hold expressions. If the whole string (exactly, no other characters) is one
/// `$(...)` (or `${...}`), the result is the referenced value itself (any JSON type); otherwise each
/// expression is replaced by its value (see [`interpolated_text`]) and the result is a string.
///
/// As in cwltool, a string that holds no `$(` (nor `${` under
/// [`Js::Declared`]) is returned exactly as it is; one that does is first
/// stripped of surrounding whitespace ([`Whitespace::Strip`]), then its
/// backslash escapes apply: `\$(` and `\${` are the literal `$(` and `${`,
/// `\\` is one backslash, any other backslash stays.
pub fn interpolate(text: &str, ctx: &Context<'_>, js: Js) -> Result<Value, ExprError> {
    interpolate_with(text, ctx, js, Whitespace::Strip)
}

/// [`interpolate`], choosing what happens to whitespace around the string.
pub fn interpolate_with(
    text: &str,
    ctx: &Context<'_>,
    js: Js,
    whitespace: Whitespace,
) -> Result<Value, ExprError> {
    if !mentions_expression(text, js) {
        return Ok(Value::String(text.to_owned()));
    }
    let scanned = match whitespace {
        Whitespace::Strip => text.trim_matches(is_python_space),
        Whitespace::Keep => text,
    };
    let pieces = split(scanned, js)?;
    if let [piece @ (Piece::Paren(_) | Piece::Brace(_))] = pieces.as_slice() {
        return evaluate(*piece, ctx, js);
    }
    let mut out = String::with_capacity(scanned.len());
    for piece in pieces {
        match piece {
            Piece::Text(literal) => out.push_str(literal),
            Piece::Paren(_) | Piece::Brace(_) => {
                out.push_str(&interpolated_text(&evaluate(piece, ctx, js)?));
            }
        }
    }
    Ok(Value::String(out))
}

/// `interpolate` on a string; any other value returned unchanged (NOT recursive).
pub fn eval(value: &Value, ctx: &Context<'_>, js: Js) -> Result<Value, ExprError> {
    match value {
        Value::String(text) => interpolate(text, ctx, js),
        other => Ok(other.clone()),
    }
}

/// Whether the text contains an expression (`$(`, or `${` when js is Declared) that is not escaped.
///
/// An unterminated one counts (evaluating the text reports it).
pub fn has_expression(text: &str, js: Js) -> bool {
    match split(text, js) {
        Ok(pieces) => pieces.iter().any(|piece| !matches!(piece, Piece::Text(_))),
        Err(_) => true,
    }
}

/// Checks the expressions of `text` without evaluating them: under
/// [`Js::Declared`], that each one JavaScript would run parses (the first
/// that does not is [`ExprError::JavaScript`]); otherwise, that each
/// `$(...)` is a parameter reference ([`ExprError::Invalid`]). Unterminated
/// text is [`ExprError::Syntax`].
pub fn check(text: &str, js: Js) -> Result<(), ExprError> {
    if !mentions_expression(text, js) {
        return Ok(());
    }
    for piece in split(text, js)? {
        let code = match piece {
            Piece::Text(_) => continue,
            Piece::Brace(expr) => (expr, crate::js::Code::Body(brace_body(expr))),
            Piece::Paren(expr) if !is_native_reference(paren_body(expr)) => {
                (expr, crate::js::Code::Expression(paren_body(expr)))
            }
            Piece::Paren(_) => continue,
        };
        match (js, code) {
            (Js::Declared, (expr, code)) => {
                crate::js::compiles(code).map_err(|message| javascript_error(expr, message))?;
            }
            (Js::NotDeclared, (expr, _)) => {
                let reason = match parse_reference(paren_body(expr)) {
                    Err(reason) => reason,
                    Ok(reference) => format!(
                        "`{}` is not defined (use inputs, self or runtime)",
                        reference.root
                    ),
                };
                return Err(ExprError::Invalid {
                    expr: expr.to_owned(),
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// Whether the text needs a JavaScript engine (a `${` body when Declared, or a `$(` that is not a parameter reference).
///
/// A reference whose root is not `inputs`, `self` or `runtime` counts (only
/// JavaScript could define it). Decided on the text alone: a reference that
/// JavaScript would follow where a native lookup cannot (`$(inputs.name[0])`
/// on a string) is found only by evaluating it. Unterminated text is `false`.
pub fn needs_javascript(text: &str, js: Js) -> bool {
    split(text, js).is_ok_and(|pieces| {
        pieces.iter().any(|piece| match piece {
            Piece::Text(_) => false,
            Piece::Brace(_) => true,
            Piece::Paren(expr) => !is_native_reference(paren_body(expr)),
        })
    })
}

/// The text a value becomes when interpolated into a longer string: a string
/// as it is, anything else as cwltool writes it (Python's
/// `json.dumps(value, sort_keys=True)`: keys sorted, `", "` and `": "`
/// separators, non-ASCII escaped, floats as Python prints them, e.g. `3.0`,
/// `1e-05`).
pub fn interpolated_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => {
            let mut out = String::new();
            write_python_json(other, &mut out);
            out
        }
    }
}

// ---------------------------------------------------------------------------
// Scanning: cwltool's `scanner`, one expression or escape at a time.

/// A part of a scanned string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'t> {
    /// Literal text (escapes already resolved).
    Text(&'t str),
    /// A whole `$(...)`.
    Paren(&'t str),
    /// A whole `${...}` (only under [`Js::Declared`]).
    Brace(&'t str),
}

/// The scanner's states (its stack holds them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Default,
    Dollar,
    Paren,
    Brace,
    SingleQuote,
    DoubleQuote,
    Backslash,
}

/// What the scanner found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanKind {
    Paren,
    Brace,
    /// A backslash and the character after it, outside any expression.
    Escape,
}

/// Byte range of what the scanner found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    kind: SpanKind,
}

/// Whether cwltool would look at the text at all (its `needs_parsing`).
fn mentions_expression(text: &str, js: Js) -> bool {
    text.contains("$(") || (js == Js::Declared && text.contains("${"))
}

/// Python's `str.isspace`, which `str.strip()` uses.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `text[start..end]`, or empty if that is not a valid range.
fn slice(text: &str, start: usize, end: usize) -> &str {
    text.get(start..end).unwrap_or_default()
}

/// Splits text into literal text and expressions, resolving escapes.
fn split(text: &str, js: Js) -> Result<Vec<Piece<'_>>, ExprError> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    while let Some(span) = next_span(text, pos, js)? {
        push_text(&mut pieces, slice(text, pos, span.start));
        let found = slice(text, span.start, span.end);
        pos = match span.kind {
            SpanKind::Paren => {
                pieces.push(Piece::Paren(found));
                span.end
            }
            SpanKind::Brace => {
                pieces.push(Piece::Brace(found));
                span.end
            }
            SpanKind::Escape => {
                let (literal, next) = unescape(text, span);
                push_text(&mut pieces, literal);
                next
            }
        };
    }
    push_text(&mut pieces, slice(text, pos, text.len()));
    Ok(pieces)
}

fn push_text<'t>(pieces: &mut Vec<Piece<'t>>, text: &'t str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
}

/// cwltool's escaping for v1.1+ documents (`escaping_behavior=2`): `\$(`
/// and `\${` lose the backslash, `\\` is one backslash, any other backslash
/// stays with the character after it. Returns the literal and where
/// scanning resumes.
fn unescape(text: &str, span: Span) -> (&str, usize) {
    let escaped = slice(text, span.start + 1, span.end);
    let after = slice(text, span.end, text.len());
    if escaped == "$" && (after.starts_with('(') || after.starts_with('{')) {
        (slice(text, span.start + 1, span.end + 1), span.end + 1)
    } else if escaped == "\\" {
        (slice(text, span.start, span.start + 1), span.end)
    } else {
        (slice(text, span.start, span.end), span.end)
    }
}

/// The first expression or top-level escape at or after byte `from`.
fn next_span(text: &str, from: usize, js: Js) -> Result<Option<Span>, ExprError> {
    let mut scanner = Scanner::new(from, js);
    let mut chars = slice(text, from, text.len())
        .char_indices()
        .map(|(offset, c)| (from + offset, c));
    let mut held = None;
    while let Some((at, c)) = held.take().or_else(|| chars.next()) {
        match scanner.step(at, c) {
            Scan::Next => {}
            Scan::Again => held = Some((at, c)),
            Scan::Found(span) => return Ok(Some(span)),
        }
    }
    check_finished(text, &scanner.stack, scanner.dollar_at).map(|()| None)
}

/// cwltool's `scanner` state machine, one character at a time.
#[derive(Debug)]
struct Scanner {
    stack: Vec<State>,
    /// Where the current `$` is.
    dollar_at: usize,
    /// Where the current top-level `\` is.
    backslash_at: usize,
    js: Js,
}

/// What the scanner does after a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Next,
    /// Look at the same character again (a `$` that opened nothing).
    Again,
    Found(Span),
}

impl Scanner {
    fn new(from: usize, js: Js) -> Self {
        let stack = vec![State::Default];
        Scanner {
            stack,
            dollar_at: from,
            backslash_at: from,
            js,
        }
    }

    fn step(&mut self, at: usize, c: char) -> Scan {
        let end = at + c.len_utf8();
        match self.stack.last().copied().unwrap_or(State::Default) {
            State::Default => self.default(at, c),
            State::Dollar => self.dollar(c),
            State::Paren => self.block(c, ('(', ')'), State::Paren, end),
            State::Brace => self.block(c, ('{', '}'), State::Brace, end),
            State::SingleQuote => self.quoted(c, '\''),
            State::DoubleQuote => self.quoted(c, '"'),
            State::Backslash => self.escaped(end),
        }
    }

    fn default(&mut self, at: usize, c: char) -> Scan {
        match c {
            '$' => {
                self.stack.push(State::Dollar);
                self.dollar_at = at;
            }
            '\\' => {
                self.stack.push(State::Backslash);
                self.backslash_at = at;
            }
            _ => {}
        }
        Scan::Next
    }

    fn dollar(&mut self, c: char) -> Scan {
        match c {
            '(' => self.stack.push(State::Paren),
            '{' if self.js == Js::Declared => self.stack.push(State::Brace),
            _ => {
                self.stack.pop();
                return Scan::Again;
            }
        }
        Scan::Next
    }

    /// Inside `$(...)` or `${...}`: nesting of the same bracket, and quotes.
    fn block(&mut self, c: char, (open, close): (char, char), state: State, end: usize) -> Scan {
        if c == open {
            self.stack.push(state);
        } else if c == close {
            self.stack.pop();
            if self.stack.last() == Some(&State::Dollar) {
                let kind = if state == State::Paren {
                    SpanKind::Paren
                } else {
                    SpanKind::Brace
                };
                return Scan::Found(Span {
                    start: self.dollar_at,
                    end,
                    kind,
                });
            }
        } else if c == '\'' {
            self.stack.push(State::SingleQuote);
        } else if c == '"' {
            self.stack.push(State::DoubleQuote);
        }
        Scan::Next
    }

    fn quoted(&mut self, c: char, quote: char) -> Scan {
        if c == quote {
            self.stack.pop();
        } else if c == '\\' {
            self.stack.push(State::Backslash);
        }
        Scan::Next
    }

    /// The character after a backslash: an escape at top level, skipped in quotes.
    fn escaped(&mut self, end: usize) -> Scan {
        self.stack.pop();
        if self.stack.last() == Some(&State::Default) {
            let kind = SpanKind::Escape;
            return Scan::Found(Span {
                start: self.backslash_at,
                end,
                kind,
            });
        }
        Scan::Next
    }
}

/// At the end of the text only a dangling `$` or `\` may be left open.
fn check_finished(text: &str, stack: &[State], dollar_at: usize) -> Result<(), ExprError> {
    let dangling = matches!(stack, [_, State::Backslash | State::Dollar]);
    if stack.len() <= 1 || dangling {
        return Ok(());
    }
    let opener = match stack.get(2) {
        Some(State::Brace) => "${",
        _ => "$(",
    };
    let at = slice(text, 0, dollar_at).chars().count();
    Err(ExprError::Syntax {
        text: text.to_owned(),
        reason: format!("`{opener}` at character {at} is never closed"),
    })
}

// ---------------------------------------------------------------------------
// Parameter references: parsing.

/// One step of a parameter reference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'r> {
    /// `.name`, `['name']` or `["name"]`.
    Key { name: String, raw: &'r str },
    /// `[digits]`; `None` when it does not fit in a `usize` (out of range).
    Index { index: Option<usize>, raw: &'r str },
}

impl Step<'_> {
    fn raw(&self) -> &str {
        match self {
            Step::Key { raw, .. } | Step::Index { raw, .. } => raw,
        }
    }
}

/// `symbol segment*`, the inside of `$(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference<'r> {
    root: &'r str,
    steps: Vec<Step<'r>>,
}

/// The inside of a `$(...)`.
fn paren_body(expr: &str) -> &str {
    expr.strip_prefix("$(")
        .and_then(|body| body.strip_suffix(')'))
        .unwrap_or_default()
}

/// The inside of a `${...}`.
fn brace_body(expr: &str) -> &str {
    expr.strip_prefix("${")
        .and_then(|body| body.strip_suffix('}'))
        .unwrap_or_default()
}

/// Python's `\w` (Unicode alphanumerics and `_`), the spec's symbol characters.
fn is_symbol_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The longest prefix of symbol characters.
fn symbol_prefix(text: &str) -> &str {
    let end = text
        .char_indices()
        .find(|&(_, c)| !is_symbol_char(c))
        .map_or(text.len(), |(at, _)| at);
    slice(text, 0, end)
}

/// Parses the inside of `$(...)` as the spec's (and cwltool's `param_re`)
/// grammar: no whitespace, nothing else.
fn parse_reference(body: &str) -> Result<Reference<'_>, String> {
    let root = symbol_prefix(body);
    if root.is_empty() {
        return Err("a parameter reference starts with a name (inputs, self or runtime)".into());
    }
    let mut rest = slice(body, root.len(), body.len());
    let mut steps = Vec::new();
    while !rest.is_empty() {
        let Some((step, len)) = parse_step(rest) else {
            let done = slice(body, 0, body.len() - rest.len());
            return Err(format!(
                "expected `.name`, `['key']`, `[\"key\"]` or `[index]` after `{done}`, found `{rest}`"
            ));
        };
        steps.push(step);
        rest = slice(rest, len, rest.len());
    }
    Ok(Reference { root, steps })
}

/// One segment at the start of `text`, and its length in bytes.
fn parse_step(text: &str) -> Option<(Step<'_>, usize)> {
    if let Some(after) = text.strip_prefix('.') {
        let name = symbol_prefix(after);
        let len = 1 + name.len();
        return (!name.is_empty()).then(|| {
            let raw = slice(text, 0, len);
            (
                Step::Key {
                    name: name.to_owned(),
                    raw,
                },
                len,
            )
        });
    }
    let inner = text.strip_prefix('[')?;
    let len = match inner.chars().next()? {
        quote @ ('\'' | '"') => 2 + quoted_len(slice(inner, 1, inner.len()), quote)?,
        '0'..='9' => {
            let digits = inner.len() - inner.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            slice(inner, digits, inner.len())
                .starts_with(']')
                .then_some(digits + 2)?
        }
        _ => return None,
    };
    let raw = slice(text, 0, len);
    let step = match raw.as_bytes().get(1) {
        Some(b'\'' | b'"') => Step::Key {
            name: unquote(slice(raw, 2, raw.len() - 2)),
            raw,
        },
        _ => Step::Index {
            index: slice(raw, 1, raw.len() - 1).parse().ok(),
            raw,
        },
    };
    Some((step, len))
}

/// Length of a quoted key's content, closing quote and `]` (what follows the
/// opening quote), as Python's regex `'([^']|\\')+'\]` first matches it: the
/// key is not empty, ends at the first quote followed by `]`, and any quote
/// before that must follow a backslash.
fn quoted_len(text: &str, quote: char) -> Option<usize> {
    let mut previous = None;
    for (at, c) in text.char_indices() {
        if c == quote {
            let closes = slice(text, at + 1, text.len()).starts_with(']');
            if at > 0 && closes {
                return Some(at + 2);
            }
            if previous != Some('\\') {
                return None;
            }
        }
        previous = Some(c);
    }
    None
}

/// cwltool's unescaping of a quoted key: `\'` and `\"` are the quotes.
fn unquote(content: &str) -> String {
    content.replace("\\'", "'").replace("\\\"", "\"")
}

/// Whether the inside of a `$(...)` is evaluated without JavaScript.
fn is_native_reference(body: &str) -> bool {
    body == "null"
        || parse_reference(body)
            .is_ok_and(|reference| matches!(reference.root, "inputs" | "self" | "runtime"))
}

// ---------------------------------------------------------------------------
// Parameter references: evaluation.

/// Evaluates one expression found by the scanner.
fn evaluate(piece: Piece<'_>, ctx: &Context<'_>, js: Js) -> Result<Value, ExprError> {
    match piece {
        Piece::Text(text) => Ok(Value::String(text.to_owned())),
        Piece::Brace(expr) => javascript(expr, crate::js::Code::Body(brace_body(expr)), ctx),
        Piece::Paren(expr) => evaluate_reference(expr, ctx, js),
    }
}

/// Runs `code` (from `expr`) in the JavaScript engine.
fn javascript(
    expr: &str,
    code: crate::js::Code<'_>,
    ctx: &Context<'_>,
) -> Result<Value, ExprError> {
    crate::js::evaluate(code, ctx).map_err(|message| javascript_error(expr, message))
}

fn javascript_error(expr: &str, message: String) -> ExprError {
    ExprError::JavaScript {
        expr: expr.to_owned(),
        message,
    }
}

fn eval_error(expr: &str, reason: String) -> ExprError {
    ExprError::Eval {
        expr: expr.to_owned(),
        reason,
    }
}

/// Evaluates a whole `$(...)` natively, or says why it cannot be; under
/// [`Js::Declared`], what is not a reference, or cannot be followed, runs as
/// JavaScript (cwltool's `evaluator`).
fn evaluate_reference(expr: &str, ctx: &Context<'_>, js: Js) -> Result<Value, ExprError> {
    let body = paren_body(expr);
    if body == "null" {
        return Ok(Value::Null);
    }
    let in_javascript = || javascript(expr, crate::js::Code::Expression(body), ctx);
    let reference = match (parse_reference(body), js) {
        (Ok(reference), _) => reference,
        (Err(_), Js::Declared) => return in_javascript(),
        (Err(reason), Js::NotDeclared) => {
            return Err(ExprError::Invalid {
                expr: expr.to_owned(),
                reason,
            });
        }
    };
    let root = match (root_value(reference.root, ctx), js) {
        (Some(root), _) => root,
        (None, Js::Declared) => return in_javascript(),
        (None, Js::NotDeclared) => {
            let reason = format!(
                "`{}` is not defined (use inputs, self or runtime)",
                reference.root
            );
            return Err(eval_error(expr, reason));
        }
    };
    match (follow(root, &reference, js), js) {
        (Ok(value), _) => Ok(value),
        // JavaScript finds `undefined` where a lookup finds nothing, and
        // coerces its way through strings and objects (`name[0]`, `obj[0]`).
        (Err(_), Js::Declared) => in_javascript(),
        (Err(reason), Js::NotDeclared) => Err(eval_error(expr, reason)),
    }
}

fn root_value<'a>(name: &str, ctx: &Context<'a>) -> Option<&'a Value> {
    match name {
        "inputs" => Some(ctx.inputs),
        "self" => Some(ctx.self_),
        "runtime" => Some(ctx.runtime),
        _ => None,
    }
}

/// Follows the steps of a reference from its root value (cwltool's
/// `regex_eval`); the error says which step found nothing.
fn follow(root: &Value, reference: &Reference<'_>, js: Js) -> Result<Value, String> {
    let mut current = root;
    let mut path = reference.root.to_owned();
    let count = reference.steps.len();
    for (done, step) in reference.steps.iter().enumerate() {
        let last = done + 1 == count;
        current = match step {
            Step::Key { name, .. } => match key_step(current, name, last, js, &path)? {
                Found::Value(value) => value,
                Found::Length(length) => return Ok(Value::from(length)),
            },
            Step::Index { index, raw } => index_step(current, *index, raw, &path)?,
        };
        path.push_str(step.raw());
    }
    Ok(current.clone())
}

/// What a key step leads to.
enum Found<'v> {
    Value(&'v Value),
    /// `.length` as the last step.
    Length(usize),
}

/// `.name`, `['name']` or `["name"]` on `current`.
fn key_step<'v>(
    current: &'v Value,
    name: &str,
    last: bool,
    js: Js,
    path: &str,
) -> Result<Found<'v>, String> {
    match (current, name) {
        (Value::Array(items), "length") if last => Ok(Found::Length(items.len())),
        // JavaScript's length of a string, in UTF-16 code units.
        (Value::String(text), "length") if last && js == Js::Declared => {
            Ok(Found::Length(text.encode_utf16().count()))
        }
        (Value::Object(map), _) => map
            .get(name)
            .map(Found::Value)
            .ok_or_else(|| format!("{path} has no key '{name}'{}", known_keys(map))),
        _ => Err(format!(
            "{path} is {}, it has no key '{name}'",
            describe(current)
        )),
    }
}

/// `[index]` on `current`.
fn index_step<'v>(
    current: &'v Value,
    index: Option<usize>,
    raw: &str,
    path: &str,
) -> Result<&'v Value, String> {
    match current {
        Value::Array(items) => index
            .and_then(|at| items.get(at))
            .ok_or_else(|| format!("{path}{raw} is out of range (length {})", items.len())),
        _ => Err(format!(
            "{path} is {}, it cannot be indexed by {raw}",
            describe(current)
        )),
    }
}

/// A short list of an object's keys for an error message.
fn known_keys(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return " (it is empty)".into();
    }
    let keys: Vec<&str> = map.keys().take(8).map(String::as_str).collect();
    let more = if map.len() > keys.len() { ", ..." } else { "" };
    format!(" (keys: {}{more})", keys.join(", "))
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------
// Python's `json.dumps(value, sort_keys=True)`.

fn write_python_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&python_number(number)),
        Value::String(text) => write_python_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (at, (key, item)) in entries.into_iter().enumerate() {
                if at > 0 {
                    out.push_str(", ");
                }
                write_python_string(key, out);
                out.push_str(": ");
                write_python_json(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string with Python's `ensure_ascii` escaping.
fn write_python_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// A number as Python prints it: integers as they are, floats by `repr`.
fn python_number(number: &serde_json::Number) -> String {
    if number.is_f64() {
        number
            .as_f64()
            .map_or_else(|| number.to_string(), python_float)
    } else {
        number.to_string()
    }
}

/// Python's `repr(float)`: the shortest round-tripping digits, positional
/// for exponents from -4 to 15 (`0.0001`, `3.0`), else `1e-05`, `1.5e+16`.
fn python_float(value: f64) -> String {
    if !value.is_finite() {
        let text = if value.is_nan() { "NaN" } else { "Infinity" };
        return if value < 0.0 {
            format!("-{text}")
        } else {
            text.to_owned()
        };
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let Ok(exponent) = exponent.parse::<i32>() else {
        return value.to_string();
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(unsigned) => ("-", unsigned),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let body = if (-4..16).contains(&exponent) {
        positional(&digits, exponent)
    } else {
        exponential(&digits, exponent)
    };
    format!("{sign}{body}")
}

/// `digits` (a `d.ddd` mantissa without its point) times `10^exponent`, positionally.
fn positional(digits: &str, exponent: i32) -> String {
    match usize::try_from(exponent) {
        Ok(whole_len) => {
            let whole_len = whole_len + 1;
            let whole = slice(digits, 0, whole_len.min(digits.len()));
            let zeros = "0".repeat(whole_len.saturating_sub(digits.len()));
            let fraction = slice(digits, whole_len.min(digits.len()), digits.len());
            let fraction = if fraction.is_empty() { "0" } else { fraction };
            format!("{whole}{zeros}.{fraction}")
        }
        Err(_) => {
            let zeros = "0".repeat(usize::try_from(-exponent - 1).unwrap_or_default());
            format!("0.{zeros}{digits}")
        }
    }
}

/// `d.ddde+XX` as Python writes it (no `.0` for a single digit, two-digit exponent at least).
fn exponential(digits: &str, exponent: i32) -> String {
    let first = slice(digits, 0, 1);
    let rest = slice(digits, 1, digits.len());
    let point = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{first}{point}e{sign}{:02}", exponent.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Inputs, self and runtime shared by the tests.
    struct Fixture {
        inputs: Value,
        self_: Value,
        runtime: Value,
        lib: Vec<Value>,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                inputs: json!({
                    "n": 3,
                    "x": 1.5,
                    "tiny": 0.00001,
                    "whole": 3.0,
                    "huge": 1e16,
                    "name": "world",
                    "flag": true,
                    "none": null,
                    "list": [10, 20, 30],
                    "empty": [],
                    "obj": {"b": [1, 2], "a": "é", "length": 7},
                    "file": {"class": "File", "path": "/data/in.txt", "basename": "in.txt"},
                    "key with space": "spaced",
                    "it's": "quoted",
                    "a)b": "paren",
                    "größe": 42,
                    "emoji": "é😀",
                    "val": "val",
                }),
                self_: json!([{"class": "File", "basename": "first.txt"}, {"basename": "second.txt"}]),
                runtime: json!({"outdir": "/out", "tmpdir": "/tmp/x", "cores": 2, "ram": 1024}),
                lib: vec![
                    json!("function double(x) { return 2 * x; }"),
                    json!("var greeting = 'hi ' + double(2);"),
                ],
            }
        }

        fn ctx(&self) -> Context<'_> {
            Context {
                inputs: &self.inputs,
                self_: &self.self_,
                runtime: &self.runtime,
                lib: &self.lib,
            }
        }

        fn run(&self, text: &str, js: Js) -> Result<Value, ExprError> {
            interpolate(text, &self.ctx(), js)
        }

        /// Evaluates under both `Js` values, which must agree.
        fn both(&self, text: &str) -> Value {
            let declared = self.run(text, Js::Declared).unwrap();
            let not_declared = self.run(text, Js::NotDeclared).unwrap();
            assert_eq!(declared, not_declared, "{text}");
            declared
        }
    }

    #[test]
    fn whole_string_reference_returns_typed_values() {
        let f = Fixture::new();
        assert_eq!(f.both("$(inputs.n)"), json!(3));
        assert_eq!(f.both("$(inputs.x)"), json!(1.5));
        assert_eq!(f.both("$(inputs.flag)"), json!(true));
        assert_eq!(f.both("$(inputs.none)"), Value::Null);
        assert_eq!(f.both("$(inputs.list)"), json!([10, 20, 30]));
        assert_eq!(f.both("$(inputs.file)"), f.inputs["file"]);
        assert_eq!(f.both("$(inputs)"), f.inputs);
        assert_eq!(f.both("$(null)"), Value::Null);
    }

    #[test]
    fn surrounding_whitespace_is_stripped_unless_kept() {
        let f = Fixture::new();
        assert_eq!(f.both("  $(inputs.n)\n"), json!(3));
        let kept = interpolate_with("$(inputs.n)\n", &f.ctx(), Js::NotDeclared, Whitespace::Keep);
        assert_eq!(kept.unwrap(), json!("3\n"));
        // Text without expressions is never touched, whitespace and backslashes included.
        assert_eq!(f.both("  plain \\\\ text\n"), json!("  plain \\\\ text\n"));
    }

    #[test]
    fn interpolates_numbers_strings_and_literals_into_text() {
        let f = Fixture::new();
        assert_eq!(
            f.both("-n $(inputs.n) -x $(inputs.x)"),
            json!("-n 3 -x 1.5")
        );
        assert_eq!(f.both("hello $(inputs.name)!"), json!("hello world!"));
        assert_eq!(f.both("$(inputs.name)$(inputs.name)"), json!("worldworld"));
        assert_eq!(
            f.both("f=$(inputs.flag) z=$(inputs.none)"),
            json!("f=true z=null")
        );
    }

    #[test]
    fn interpolated_values_are_written_as_python_json() {
        let f = Fixture::new();
        let text = f.both("obj: $(inputs.obj)");
        assert_eq!(
            text,
            json!(r#"obj: {"a": "\u00e9", "b": [1, 2], "length": 7}"#)
        );
        assert_eq!(f.both("l=$(inputs.list)"), json!("l=[10, 20, 30]"));
        assert_eq!(
            f.both("$(inputs.whole) $(inputs.tiny) $(inputs.huge)"),
            json!("3.0 1e-05 1e+16")
        );
        assert_eq!(interpolated_text(&json!(["😀"])), r#"["\ud83d\ude00"]"#);
        assert_eq!(
            interpolated_text(&json!({"q": "a\"b\\\n\u{7f}"})),
            r#"{"q": "a\"b\\\n\u007f"}"#
        );
    }

    #[test]
    fn python_float_repr() {
        let cases = [
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (1.25e-7, "1.25e-07"),
            (123456789012345.6, "123456789012345.6"),
            (1e15, "1000000000000000.0"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float(value), expected, "{value}");
        }
    }

    #[test]
    fn quoted_keys_and_indexes() {
        let f = Fixture::new();
        assert_eq!(f.both("$(inputs['key with space'])"), json!("spaced"));
        assert_eq!(f.both("$(inputs[\"key with space\"])"), json!("spaced"));
        assert_eq!(f.both(r"$(inputs['it\'s'])"), json!("quoted"));
        assert_eq!(f.both(r#"$(inputs["it's"])"#), json!("quoted"));
        // A `)` inside quotes does not end the expression.
        assert_eq!(f.both("<$(inputs['a)b'])>"), json!("<paren>"));
        assert_eq!(f.both("$(inputs.list[0])"), json!(10));
        assert_eq!(f.both("$(inputs.list[2])"), json!(30));
        assert_eq!(f.both("$(inputs['obj'].b[1])"), json!(2));
    }

    #[test]
    fn length_of_arrays_and_keys_named_length() {
        let f = Fixture::new();
        assert_eq!(f.both("$(inputs.list.length)"), json!(3));
        assert_eq!(f.both("$(inputs.empty.length)"), json!(0));
        assert_eq!(f.both("$(inputs.list['length'])"), json!(3));
        assert_eq!(f.both("n=$(self.length)"), json!("n=2"));
        // On an object, `length` is just a key.
        assert_eq!(f.both("$(inputs.obj.length)"), json!(7));
    }

    #[test]
    fn length_of_a_string_needs_javascript_semantics() {
        let f = Fixture::new();
        // cwltool's native lookup refuses it; JavaScript counts UTF-16 code units.
        let refused = f.run("$(inputs.emoji.length)", Js::NotDeclared);
        assert!(
            matches!(refused, Err(ExprError::Eval { .. })),
            "{refused:?}"
        );
        assert_eq!(
            f.run("$(inputs.emoji.length)", Js::Declared).unwrap(),
            json!(3)
        );
    }

    #[test]
    fn nested_self_and_runtime_references() {
        let f = Fixture::new();
        assert_eq!(f.both("$(inputs.file.path)"), json!("/data/in.txt"));
        assert_eq!(f.both("$(self[0].basename)"), json!("first.txt"));
        assert_eq!(f.both("$(self[1]['basename'])"), json!("second.txt"));
        assert_eq!(
            f.both("$(runtime.outdir)/result.txt"),
            json!("/out/result.txt")
        );
        assert_eq!(f.both("-t $(runtime.cores)"), json!("-t 2"));
    }

    #[test]
    fn unicode_text_and_symbols() {
        let f = Fixture::new();
        assert_eq!(
            f.both("données: $(inputs.name) ✓"),
            json!("données: world ✓")
        );
        assert_eq!(f.both("$(inputs.größe)"), json!(42));
        assert_eq!(f.both("«$(inputs.emoji)»"), json!("«é😀»"));
    }

    #[test]
    fn backslash_escapes() {
        let f = Fixture::new();
        assert_eq!(f.both(r"\$(inputs.val)"), json!("$(inputs.val)"));
        assert_eq!(f.both(r"\\$(inputs.val)"), json!(r"\val"));
        assert_eq!(f.both(r"\\\$(inputs.val)"), json!(r"\$(inputs.val)"));
        assert_eq!(f.both(r"a\nb $(inputs.val)"), json!(r"a\nb val"));
        assert_eq!(f.both(r"\${x} $(inputs.val)"), json!("${x} val"));
        assert_eq!(f.both(r"$(inputs.val) \"), json!(r"val \"));
        assert_eq!(f.both("$(inputs.val) $ $$ $"), json!("val $ $$ $"));
        assert!(!has_expression(r"\$(inputs.val)", Js::Declared));
        assert!(has_expression(r"\\$(inputs.val)", Js::Declared));
    }

    /// The script of the conformance test `quoting_multiple_backslashes`
    /// (string-interpolation/bash-dollar-quote.cwl), entry kept verbatim.
    #[test]
    fn conformance_bash_dollar_quote() {
        let f = Fixture::new();
        let entry = concat!(
            "echo '$(inputs.val)'\n",
            "echo '\\$(inputs.val)'\n",
            "echo '\\\\$(inputs.val)'\n",
            "echo '\\\\\\$(inputs.val)'\n",
            "echo '\\\\\\\\$(inputs.val)'\n",
            "echo '\\\\\\\\\\$(inputs.val)'\n",
            "echo '\\'\n",
            "echo '\\\\'\n",
            "echo '\\\\\\'\n",
            "echo '$' '\\$' '\\\\$' '$$' '$$$'\n",
            "echo \\$(echo \\\n",
        );
        let expected = concat!(
            "echo 'val'\n",
            "echo '$(inputs.val)'\n",
            "echo '\\val'\n",
            "echo '\\$(inputs.val)'\n",
            "echo '\\\\val'\n",
            "echo '\\\\$(inputs.val)'\n",
            "echo '\\'\n",
            "echo '\\'\n",
            "echo '\\\\'\n",
            "echo '$' '\\$' '\\$' '$$' '$$$'\n",
            "echo $(echo \\\n",
        );
        let out = interpolate_with(entry, &f.ctx(), Js::Declared, Whitespace::Keep).unwrap();
        assert_eq!(out, json!(expected));
    }

    #[test]
    fn dollar_brace_is_literal_without_javascript() {
        let f = Fixture::new();
        let text = "echo ${HOME} $(inputs.val)";
        assert_eq!(
            f.run(text, Js::NotDeclared).unwrap(),
            json!("echo ${HOME} val")
        );
        // Without `$(`, nothing is processed at all.
        assert_eq!(
            f.run("  ${x}\\\\ ", Js::NotDeclared).unwrap(),
            json!("  ${x}\\\\ ")
        );
        assert!(!has_expression("${HOME}", Js::NotDeclared));
        assert!(!needs_javascript("${HOME}", Js::NotDeclared));
        assert!(has_expression("${HOME}", Js::Declared));
        // Inside a literal `${`, a reference is still found.
        assert_eq!(
            f.run("${ $(inputs.n) }", Js::NotDeclared).unwrap(),
            json!("${ 3 }")
        );
    }

    #[test]
    fn javascript_runs_under_the_requirement() {
        let f = Fixture::new();
        let js = |text: &str| f.run(text, Js::Declared);
        assert_eq!(js("$(inputs.n + 1)"), Ok(json!(4)));
        assert_eq!(js("${return inputs.x * 2;}"), Ok(json!(3)));
        assert_eq!(js("$( inputs.n )"), Ok(json!(3)));
        assert_eq!(js("$(Math.max(1, inputs.n))"), Ok(json!(3)));
        assert_eq!(js("$(self[1].basename)"), Ok(json!("second.txt")));
        assert_eq!(js("$(self.length + runtime.cores)"), Ok(json!(4)));
        assert_eq!(js("-t $(runtime.cores * 2)"), Ok(json!("-t 4")));
        // The library's functions and globals.
        assert_eq!(js("$(double(inputs.n))"), Ok(json!(6)));
        assert_eq!(js("${ return greeting; }"), Ok(json!("hi 4")));
        // undefined (no return, a missing key) is null.
        assert_eq!(js("${ var x = 1; }"), Ok(Value::Null));
        assert_eq!(js("$(inputs.obj.nothing)"), Ok(Value::Null));
        // Interpolated into text as other values are.
        assert_eq!(
            js("a $(inputs.list.map(function(x) { return x / 10; })) b ${return {'k': [1.5]};}"),
            Ok(json!(r#"a [1, 2, 3] b {"k": [1.5]}"#))
        );
        // Braces and quotes nest.
        let nested = "${ if (inputs.flag) { return {'a': '}'}; } }";
        assert_eq!(js(nested), Ok(json!({"a": "}"})));
        assert!(needs_javascript("$(inputs.x + 1)", Js::Declared));
        assert!(!needs_javascript(
            "$(inputs.x) $(self[0]) $(null)",
            Js::Declared
        ));
    }

    #[test]
    fn javascript_errors_name_the_expression() {
        let f = Fixture::new();
        let got = f.run("a $(x + 1) b", Js::Declared);
        assert_eq!(
            got,
            Err(ExprError::JavaScript {
                expr: "$(x + 1)".into(),
                message: "ReferenceError: x is not defined".into()
            })
        );
        assert_eq!(
            got.unwrap_err().to_string(),
            "javascript error in $(x + 1): ReferenceError: x is not defined"
        );
        let thrown = f.run("${ throw new Error('no ' + inputs.name); }", Js::Declared);
        assert_eq!(
            thrown.unwrap_err().to_string(),
            "javascript error in ${ throw new Error('no ' + inputs.name); }: Error: no world"
        );
        let broken = f.run("$(inputs.n +)", Js::Declared).unwrap_err();
        assert!(
            broken
                .to_string()
                .starts_with("javascript error in $(inputs.n +): SyntaxError"),
            "{broken}"
        );
    }

    #[test]
    fn check_compiles_javascript_and_refuses_it_without_the_requirement() {
        assert_eq!(
            check("a $(inputs.x + 1) ${return 1;}", Js::Declared),
            Ok(())
        );
        // Checking runs nothing.
        assert_eq!(check("${while (true) {}}", Js::Declared), Ok(()));
        let broken = check("ok $(inputs.x) $(inputs.x +)", Js::Declared);
        assert!(
            matches!(&broken, Err(ExprError::JavaScript { expr, .. }) if expr == "$(inputs.x +)"),
            "{broken:?}"
        );
        assert_eq!(check("$(inputs.x) ${not js}", Js::NotDeclared), Ok(()));
        let refused = check("$(inputs.x + 1)", Js::NotDeclared);
        assert!(
            matches!(&refused, Err(ExprError::Invalid { expr, .. }) if expr == "$(inputs.x + 1)"),
            "{refused:?}"
        );
        assert!(matches!(
            check("$(foo.bar)", Js::NotDeclared),
            Err(ExprError::Invalid { .. })
        ));
    }

    #[test]
    fn javascript_is_invalid_without_the_requirement() {
        let f = Fixture::new();
        for expr in [
            "$(1+2)",
            "$(inputs.x + 1)",
            "$( inputs.x )",
            "$()",
            "$(inputs.)",
            "$(inputs[''])",
        ] {
            let got = f.run(expr, Js::NotDeclared);
            assert!(
                matches!(&got, Err(ExprError::Invalid { expr: e, .. }) if e == expr),
                "{expr}: {got:?}"
            );
        }
        assert!(needs_javascript("$(1+2)", Js::NotDeclared));
    }

    #[test]
    fn unterminated_expressions_are_syntax_errors() {
        let f = Fixture::new();
        for (text, js) in [
            ("echo $(inputs.x", Js::NotDeclared),
            ("$(inputs['x)", Js::NotDeclared),
            ("é ${return 1;", Js::Declared),
            ("$((inputs.x)", Js::Declared),
        ] {
            let got = f.run(text, js);
            assert!(
                matches!(got, Err(ExprError::Syntax { .. })),
                "{text}: {got:?}"
            );
            assert!(has_expression(text, js));
            assert!(!needs_javascript(text, js));
        }
        let err = f.run("é ${return 1;", Js::Declared).unwrap_err();
        assert!(
            err.to_string()
                .contains("`${` at character 2 is never closed"),
            "{err}"
        );
    }

    #[test]
    fn references_that_cannot_be_followed() {
        let f = Fixture::new();
        let cases = [
            ("$(inputs.missing)", "inputs has no key 'missing'"),
            (
                "$(inputs.list[3])",
                "inputs.list[3] is out of range (length 3)",
            ),
            ("$(inputs.empty[0])", "out of range (length 0)"),
            ("$(inputs.list[99999999999999999999999])", "out of range"),
            ("$(inputs.none.x)", "inputs.none is null"),
            ("$(inputs.n[0])", "inputs.n is a number"),
            (
                "$(inputs.file.size)",
                "inputs.file has no key 'size' (keys: class, path, basename)",
            ),
            (
                "$(inputs.list.length.x)",
                "inputs.list is an array, it has no key 'length'",
            ),
        ];
        for (text, reason) in cases {
            let got = f.run(&format!("x $(inputs.n) {text}"), Js::NotDeclared);
            match got {
                Err(ExprError::Eval { expr, reason: got }) => {
                    assert_eq!(expr, text);
                    assert!(got.contains(reason), "{text}: {got}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn lookups_javascript_would_coerce() {
        let f = Fixture::new();
        for (text, value) in [
            ("$(inputs.name[0])", json!("w")),
            ("$(inputs.obj[0])", Value::Null),
            ("$(inputs.list.first)", Value::Null),
            ("$(inputs.missing)", Value::Null),
            ("$(inputs.list[3])", Value::Null),
        ] {
            assert_eq!(f.run(text, Js::Declared), Ok(value), "{text}");
            let plain = f.run(text, Js::NotDeclared);
            assert!(
                matches!(plain, Err(ExprError::Eval { .. })),
                "{text}: {plain:?}"
            );
        }
        // What JavaScript cannot follow either is its error.
        for text in ["$(unknown.x)", "$(inputs.none.x)"] {
            let got = f.run(text, Js::Declared);
            assert!(
                matches!(&got, Err(ExprError::JavaScript { expr, .. }) if expr == text),
                "{got:?}"
            );
        }
    }

    #[test]
    fn eval_touches_only_strings() {
        let f = Fixture::new();
        let ctx = f.ctx();
        let nested = json!({"v": "$(inputs.n)"});
        assert_eq!(eval(&nested, &ctx, Js::NotDeclared).unwrap(), nested);
        assert_eq!(eval(&json!(5), &ctx, Js::NotDeclared).unwrap(), json!(5));
        assert_eq!(
            eval(&json!("$(inputs.n)"), &ctx, Js::NotDeclared).unwrap(),
            json!(3)
        );
    }

    #[test]
    fn has_expression_finds_unescaped_references() {
        assert!(has_expression("a $(inputs.x) b", Js::NotDeclared));
        assert!(!has_expression(
            "plain $ text (with) {braces}",
            Js::Declared
        ));
        assert!(!has_expression("", Js::Declared));
        assert!(has_expression("$(1+2)", Js::NotDeclared));
    }

    #[test]
    fn no_panics_on_arbitrary_slices() {
        let f = Fixture::new();
        let nasty = r#"é$(inputs['a\')b"])${ {'}'} \"}\\$(self[0].x)$$(\${([0]'"\😀"#;
        let chars: Vec<(usize, char)> = nasty.char_indices().collect();
        let mut seen = 0;
        for &(start, _) in &chars {
            for end in chars
                .iter()
                .map(|&(at, _)| at)
                .chain([nasty.len()])
                .filter(|&end| end >= start)
            {
                let text = &nasty[start..end];
                for js in [Js::Declared, Js::NotDeclared] {
                    let _ = f.run(text, js);
                    let _ = interpolate_with(text, &f.ctx(), js, Whitespace::Keep);
                    let _ = has_expression(text, js);
                    let _ = needs_javascript(text, js);
                    seen += 1;
                }
            }
        }
        assert!(seen > 1000, "{seen}");
    }
}
