//! Resolves the names inside `${{ }}` against a step's scope.

use crate::diag::Diags;
use crate::expr::{RawPiece, split};
use crate::span::Spanned;
use crate::suggest::{did_you_mean, list};
use twinflow_core::{ForEachKey, ParamValue, Piece, Ref, Template};

/// What names a step's strings may use.
#[derive(Debug)]
pub(crate) struct Scope<'a> {
    pub(crate) step: &'a str,
    pub(crate) params: &'a [(String, ParamValue)],
    pub(crate) keys: &'a [ForEachKey],
    pub(crate) inputs: &'a [String],
    pub(crate) outputs: &'a [String],
    pub(crate) cycling: bool,
}

const CYCLE_FIELDS: [&str; 4] = ["point", "year", "month", "day"];

impl Scope<'_> {
    fn all_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        names.extend(self.params.iter().map(|(n, _)| format!("params.{n}")));
        names.extend(self.keys.iter().map(|k| k.name.clone()));
        names.extend(self.inputs.iter().map(|n| format!("inputs.{n}")));
        names.extend(self.outputs.iter().map(|n| format!("outputs.{n}")));
        if self.cycling {
            names.extend(CYCLE_FIELDS.iter().map(|f| format!("cycle.{f}")));
        }
        names.extend(["workflow.dir", "workflow.name", "run.id", "task.name"].map(String::from));
        names
    }

    /// The reference `name` makes, or why it makes none (with a hint when
    /// `hints` is set).
    fn lookup(&self, name: &str, hints: bool) -> Result<Ref, (String, Option<String>)> {
        let position = |list: &[String], n: &str| list.iter().position(|x| x == n);
        let found = match name.split_once('.') {
            Some(("params", p)) => self
                .params
                .iter()
                .position(|(n, _)| n == p)
                .map(|i| Ref::Param(i as u32)),
            Some(("inputs", p)) => position(self.inputs, p).map(|i| Ref::Input(i as u32)),
            Some(("outputs", p)) => position(self.outputs, p).map(|i| Ref::Output(i as u32)),
            Some(("cycle", f)) if CYCLE_FIELDS.contains(&f) => {
                if !self.cycling {
                    return Err((
                        format!(
                            "`{name}` is only defined in cycling steps, and `{}` does not cycle",
                            self.step
                        ),
                        Some("add `cycling: true` to the step".into()),
                    ));
                }
                Some(match f {
                    "point" => Ref::CyclePoint,
                    "year" => Ref::CycleYear,
                    "month" => Ref::CycleMonth,
                    _ => Ref::CycleDay,
                })
            }
            Some(("workflow", "dir")) => Some(Ref::WorkflowDir),
            Some(("workflow", "name")) => Some(Ref::WorkflowName),
            Some(("run", "id")) => Some(Ref::RunId),
            Some(("task", "name")) => Some(Ref::TaskName),
            None => self
                .keys
                .iter()
                .position(|k| k.name == name)
                .map(|i| Ref::Key(i as u32)),
            Some(_) => None,
        };
        found.ok_or_else(|| {
            let message = format!("unknown expression `{name}` in step `{}`", self.step);
            if !hints {
                return (message, None);
            }
            let names = self.all_names();
            let help = did_you_mean(name, names.iter().map(String::as_str)).or_else(|| {
                let (head, _) = name.split_once('.').unwrap_or((name, ""));
                let same_head: Vec<&str> = names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| n.starts_with(&format!("{head}.")))
                    .collect();
                (!same_head.is_empty()).then(|| format!("available here: {}", list(same_head)))
            });
            (message, help)
        })
    }
}

/// Resolves a string's expressions; `None` (with diagnostics) when a name is unknown.
pub(crate) fn resolve(
    d: &mut Diags,
    text: &Spanned<String>,
    scope: &Scope<'_>,
) -> Option<Template> {
    let source = d.source.clone();
    let (pieces, errors) = split(&text.value, text.span, source.text());
    let mut ok = errors.is_empty();
    for e in errors {
        d.at("twinflow::bad-expression", e.span, e.message, "here")
            .set_help(e.help);
    }
    let mut out = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match piece {
            RawPiece::Lit(s) => out.push(Piece::Lit(s)),
            RawPiece::Expr { name, span } => match scope.lookup(&name, d.hints_wanted()) {
                Ok(r) => out.push(Piece::Ref(r)),
                Err((message, help)) => {
                    d.at(
                        "twinflow::unknown-expression",
                        span,
                        message,
                        "not defined here",
                    )
                    .set_help(help);
                    ok = false;
                }
            },
        }
    }
    ok.then_some(Template { pieces: out })
}
