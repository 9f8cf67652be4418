//! twinflow-workflow compiles workflow files (language v1) into a [`Plan`]:
//! YAML is parsed under a resource budget into a spanned tree (`node`),
//! read into the typed model (`model`, via the recovering deserializer `de`),
//! given its meaning (`lower`) and expanded into tasks (`expand`). Every
//! problem becomes a rustc-style [`Diagnostic`]; all of a file's problems are
//! reported together.
//!
//! ```
//! use twinflow_workflow::{CompileOptions, compile_str};
//!
//! let yaml = r#"
//! version: 1
//! name: hello
//! params:
//!   who: [world, twins]
//! steps:
//!   greet:
//!     for_each: { name: "${{ params.who }}" }
//!     run: echo hello ${{ name }} > ${{ outputs.greeting }}
//!     outputs: { greeting: greeting.txt }
//!   collect:
//!     needs: { all: greet.greeting }
//!     run: cat ${{ inputs.all }}
//! "#;
//! let plan = compile_str("hello.yaml", yaml, &CompileOptions::default()).unwrap();
//! assert_eq!(plan.task_count(), 3);
//! let collect = plan.find_task("collect").unwrap();
//! assert_eq!(
//!     &*plan.task(collect).command,
//!     "cat inputs/all/0.txt inputs/all/1.txt"
//! );
//!
//! let broken = "version: 1\nsteps:\n  a:\n    runn: echo\n";
//! let err = compile_str("broken.yaml", broken, &CompileOptions::default()).unwrap_err();
//! assert_eq!(err.diagnostics[0].code(), "twinflow::unknown-key");
//! assert_eq!(err.diagnostics[0].hint(), Some("did you mean `run`?"));
//! ```

mod cycle;
mod de;
mod diag;
mod expand;
mod expr;
mod lower;
mod model;
pub mod node;
mod options;
mod read;
mod schema;
mod source;
mod span;
mod suggest;
mod units;

pub use diag::{CompileError, Diagnostic, MAX_REPORTED_DIAGNOSTICS};
pub use node::MAX_SOURCE_BYTES;
pub use options::{
    CompileOptions, DEFAULT_MAX_COMMAND_BYTES, DEFAULT_MAX_EDGES, DEFAULT_MAX_TASKS, DRY_RUN_ID,
    SiteSource, parse_param_arg,
};
pub use schema::{site_schema, workflow_schema};
pub use source::{Source, SourceText, source};
pub use span::{Span, Spanned};
pub use twinflow_core::Plan;

use diag::Diags;
use std::path::Path;

/// Reads and compiles a workflow file. `workflow.dir` becomes the file's
/// directory (absolute) and the default name its stem.
pub fn compile_file(path: &Path, options: &CompileOptions) -> Result<Plan, CompileError> {
    let text = read_source(path, "workflow file")?;
    let mut options = options.clone();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    options.workflow_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    options.file = Some(path.to_path_buf());
    compile_named(&path.display().to_string(), &text, &options, &stem(path))
}

/// `rel` normalised (`./a/../b` as `b`), if it is a relative path that
/// stays inside the directory it is relative to (no leading `/`, no `..`
/// above it, not empty): how `code:` entries are checked, and what other
/// front ends use for names they place in a task's directory.
pub fn relative_inside(rel: &str) -> Option<std::path::PathBuf> {
    lower::code::inside(rel)
}

/// The executors of a plan another front end builds (the CWL front end):
/// each of `roles` a local executor unless `options.site` binds it
/// (checked and reported as for a workflow), all local with
/// `options.local`; each with the plain `env` its site binding sets.
pub fn bind_executor_roles(
    roles: &[&str],
    options: &CompileOptions,
) -> Result<Vec<BoundRole>, CompileError> {
    let name = options.site.as_ref().map_or("site", |s| s.name.as_str());
    let text = options.site.as_ref().map_or("", |s| s.text.as_str());
    let mut d = Diags::new(source(name, text));
    let bound = lower::executors::for_roles(roles, &mut d, options);
    if !d.is_empty() {
        return Err(d.into_error());
    }
    Ok(bound
        .into_iter()
        .map(|e| BoundRole {
            spec: e.spec,
            site_env: e.site_env,
        })
        .collect())
}

/// An executor role bound by [`bind_executor_roles`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundRole {
    /// The executor.
    pub spec: twinflow_core::ExecutorSpec,
    /// The plain `env` the site file sets for it (empty when unbound).
    pub site_env: Vec<(String, String)>,
}

/// Compiles workflow text; `name` labels diagnostics (usually the file name).
pub fn compile_str(name: &str, text: &str, options: &CompileOptions) -> Result<Plan, CompileError> {
    compile_named(name, text, options, &stem(Path::new(name)))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "workflow".to_owned())
}

fn compile_named(
    name: &str,
    text: &str,
    options: &CompileOptions,
    default_name: &str,
) -> Result<Plan, CompileError> {
    let mut d = Diags::new(source(name, text));
    let doc = parse_into::<model::WorkflowDoc>(text, &mut d);
    let Some(doc) = doc else {
        return Err(d.into_error());
    };
    let Some(lowered) = lower::lower(&doc, &mut d, options, default_name) else {
        return Err(d.into_error());
    };
    let limits = expand::Limits {
        max_tasks: options.max_tasks,
        max_edges: options.max_edges,
        max_command_bytes: options.max_command_bytes,
    };
    match expand::expand(lowered, limits, &mut d) {
        Some(plan) if d.is_empty() => Ok(plan),
        _ => Err(d.into_error()),
    }
}

/// Reads a source file through [`read::read_bounded`]: a regular file of at
/// most [`MAX_SOURCE_BYTES`], in UTF-8.
pub(crate) fn read_source(path: &Path, what: &str) -> Result<String, CompileError> {
    let fail = |message: String, help: Option<String>| CompileError {
        diagnostics: vec![Diagnostic::new("twinflow::io", message).maybe_help(help)],
        omitted: 0,
    };
    let subject = format!("{what} `{}`", path.display());
    let bytes = read::read_bounded(path, MAX_SOURCE_BYTES as u64).map_err(|e| match e {
        read::ReadError::Io(e) => fail(format!("failed to read {subject}: {e}"), None),
        e @ read::ReadError::NotRegular(_) => fail(e.describe(&subject), None),
        e @ read::ReadError::TooLarge { .. } => fail(
            e.describe(&subject),
            Some("workflow files are small; generate large sweeps with for_each and params".into()),
        ),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        fail(
            format!(
                "{what} `{}` is not UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
            None,
        )
    })
}

/// Parses YAML text into a typed document, recording every problem in `d`.
pub(crate) fn parse_into<T: for<'de> serde::Deserialize<'de>>(
    text: &str,
    d: &mut Diags,
) -> Option<T> {
    if text.len() > MAX_SOURCE_BYTES {
        d.push(Diagnostic::new(
            "twinflow::too-large",
            format!(
                "the file is {} bytes, more than the limit of {MAX_SOURCE_BYTES}",
                text.len()
            ),
        ));
        return None;
    }
    let is_blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if is_blank {
        d.push(
            Diagnostic::new(
                "twinflow::empty",
                "the file is empty (nothing but blank lines and comments)",
            )
            .help("a workflow starts with `version: 1` and has a `steps:` mapping"),
        );
        return None;
    }
    let node = match node::parse(text) {
        Ok(node) => node,
        Err(e) => {
            d.push(yaml_error(&d.source, text, &e));
            return None;
        }
    };
    for span in node::values_with_nul(&node) {
        d.at(
            "twinflow::nul",
            span,
            "a value holds a NUL character (`\\0`)",
            "contains NUL",
        )
        .set_help(Some(
            "a NUL cannot be passed to a command, an environment variable or a path; remove it"
                .into(),
        ));
    }
    let sink = de::Sink::default();
    let doc = de::from_node::<T>(&node, &sink);
    for e in sink.into_inner() {
        let span = e.span.unwrap_or_default();
        let message = as_written(&e.message, text, span);
        d.at(e.code, span, message, e.label.unwrap_or_default())
            .set_help(e.help);
    }
    if doc.is_none() && d.is_empty() {
        d.push(Diagnostic::new(
            "twinflow::invalid",
            "the file could not be read as a workflow",
        ));
    }
    doc
}

/// Shows a wrongly typed scalar as the file wrote it (`1.0`, not `1`).
fn as_written(message: &str, text: &str, span: Span) -> String {
    let written = text
        .get(span.start..span.end())
        .filter(|w| !w.is_empty() && !w.contains('\n'));
    match (message.split_once(", found the "), written) {
        (Some((expected, found)), Some(w))
            if found.starts_with("number") || found.starts_with("integer") =>
        {
            format!("{expected}, found `{w}`")
        }
        _ => message.to_owned(),
    }
}

/// A YAML syntax or budget error as a diagnostic.
fn yaml_error(source: &Source, text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let raw = e.to_string();
    let message = plain_yaml_message(raw.split(" at line ").next().unwrap_or(&raw).trim());
    let offset = e.location().and_then(|loc| {
        loc.span()
            .byte_offset()
            .map(|o| o as usize)
            .or_else(|| offset_of(text, loc.line() as usize, loc.column() as usize))
    });
    // serde-saphyr reports a tab where its scan began; point at the tab itself.
    let tab = offset
        .filter(|_| message.to_lowercase().contains("tab"))
        .and_then(|o| first_indenting_tab(text, o));
    let offset = tab.or(offset);
    let message = if tab.is_some() {
        "a tab is used for indentation".to_owned()
    } else {
        message
    };
    let line_has_tab = offset.is_some_and(|o| {
        let start = text[..o.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        text[start..end].contains('\t')
    });
    let help = if line_has_tab || (message.to_lowercase().contains("tab") && text.contains('\t')) {
        Some("YAML does not allow tabs for indentation; indent with spaces".to_owned())
    } else if message.starts_with("the file is refused") {
        Some("the file is refused to protect twinflow from runaway YAML (alias bombs, very deep nesting)".to_owned())
    } else {
        offset.and_then(|o| unquoted_flow_expression(text, o, &message))
    };
    if let Some(key) = message
        .strip_prefix("duplicate mapping key: ")
        .and_then(|rest| rest.split(", set DuplicateKeyPolicy").next())
    {
        return duplicate_key(source, text, key, offset);
    }
    let mut diag = Diagnostic::new("twinflow::yaml", format!("invalid YAML: {message}"))
        .in_source(source)
        .maybe_help(help);
    if let Some(o) = offset {
        diag = diag.label(Span::new(o.min(text.len()), 0), "here");
    }
    diag
}

/// A hint when YAML failed inside `{ ... }` or `[ ... ]` on a line with an
/// unquoted `${{`: there `{` starts a mapping, so the expression must be quoted.
fn unquoted_flow_expression(text: &str, offset: usize, message: &str) -> Option<String> {
    let lower = message.to_lowercase();
    if !lower.contains("flow mapping") && !lower.contains("flow sequence") {
        return None;
    }
    let at = offset.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = &text[start..end];
    let open = line.find("${{")?;
    // Quoted already: the quote before it is not closed before it.
    let before = &line[..open];
    if before.matches('"').count() % 2 == 1 || before.matches('\'').count() % 2 == 1 {
        return None;
    }
    let expr = line[open..]
        .find("}}")
        .map_or("${{ ... }}", |close| &line[open..open + close + 2]);
    Some(format!(
        "inside `{{ }}` or `[ ]`, YAML reads the `{{` of an unquoted `${{{{` as a mapping: \
         quote the value, as in `\"{expr}\"`"
    ))
}

/// serde-saphyr's wording, made for workflow authors: no library API advice,
/// no Rust debug output.
fn plain_yaml_message(message: &str) -> String {
    let budget = |what: &str| format!("the file is refused: {what}");
    if message.contains("recursion limit") {
        return budget("it nests too deeply");
    }
    if message.contains("multiple YAML documents") {
        return "the file holds several YAML documents (separated by `---`); a workflow is one document".into();
    }
    if let Some(rest) = message.strip_prefix("budget breached: ") {
        let kind = rest.split([' ', '{', '(']).next().unwrap_or(rest);
        return match kind {
            "Depth" => budget("it nests more than 48 levels deep"),
            "RecordedAnchorEvents" | "Aliases" | "AliasExpansions" | "ReplayedEvents" => {
                budget("its aliases expand to too much (an alias bomb?)")
            }
            "Anchors" => budget("it defines more than 1,000 anchors"),
            "Events" | "Nodes" => budget("it has too many YAML nodes"),
            "TotalScalarBytes" => budget("its text values are too large"),
            other => budget(&format!("it exceeds the parser's `{other}` limit")),
        };
    }
    message.to_owned()
}

/// A key written twice in one mapping: points at both.
fn duplicate_key(source: &Source, text: &str, key: &str, offset: Option<usize>) -> Diagnostic {
    let mut diag = Diagnostic::new("twinflow::duplicate-key", format!("duplicate key `{key}`"))
        .in_source(source)
        .help("a mapping holds each key once: merge the two entries or rename one");
    let Some(at) = offset.filter(|&o| o <= text.len()) else {
        return diag;
    };
    diag = diag.label(
        Span::new(at, key.len().min(text.len() - at)),
        "written again here",
    );
    if let Some(first) = first_definition(text, at, key) {
        diag = diag.label(Span::new(first, key.len()), "first written here");
    }
    diag
}

/// The earlier `key:` at the same indentation in the same block, if any.
fn first_definition(text: &str, at: usize, key: &str) -> Option<usize> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let column = at - line_start;
    let mut end = line_start;
    while end > 0 {
        let start = text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[start..end - 1];
        end = start;
        let indent = line.len() - line.trim_start().len();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if indent < column {
            return None;
        }
        let rest = &line[indent..];
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        if indent == column
            && (rest.starts_with(&format!("{key}:")) || rest.starts_with(&format!("\"{key}\":")))
        {
            return Some(start + indent);
        }
    }
    None
}

/// The first tab in the indentation of a line at or after the line of `from`.
fn first_indenting_tab(text: &str, from: usize) -> Option<usize> {
    let line_start = text.get(..from)?.rfind('\n').map_or(0, |i| i + 1);
    let mut at = line_start;
    for line in text[line_start..].split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(tab) = line[..indent].find('\t') {
            return Some(at + tab);
        }
        at += line.len();
    }
    None
}

/// Byte offset of a 1-based line and column.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start = if line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let line_text = &text[start..];
    let col = line_text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line_text.len(), |(i, _)| i);
    Some(start + col)
}
