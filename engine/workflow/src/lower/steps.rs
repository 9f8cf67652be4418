//! Steps: `for_each`, `cycling`, `needs`/`after` references and the matching
//! rule, outputs, resources, env, container, model and the `run` template
//! (the parallel shape in `shape`, coupling groups in `groups`).

use super::executors::ExecIr;
use super::sources::{self, SOURCES, SourceIr};
use super::templates::{Scope, resolve};
use super::{StepIr, check_name};
use crate::de::Lenient;
use crate::diag::Diags;
use crate::model::{ForEachDoc, StepDoc, WorkflowDoc};
use crate::span::Spanned;
use crate::suggest::{did_you_mean, list};
use crate::units::{parse_duration, parse_memory};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use twinflow_core::{
    AfterSpec, ExecutorId, ForEachKey, InputSpec, OutputSpec, ParamValue, Piece, Resources, StepId,
    StepSpec, Template, WaitSpec,
};

/// Names a `for_each` key may not take: they are expression namespaces.
const RESERVED: [&str; 7] = [
    "params", "inputs", "outputs", "cycle", "workflow", "run", "task",
];

/// The most retries a step may ask for.
const MAX_RETRIES: u32 = 100;

/// What other steps need to know of a step before it is lowered.
#[derive(Debug)]
struct Shape {
    for_each: Vec<ForEachKey>,
    cycling: bool,
    outputs: Vec<String>,
    /// False when a `for_each` key was wrong: matching checks are skipped.
    complete: bool,
}

/// A parsed reference `step.output@-k` / `step@-k`.
struct Reference<'a> {
    step: &'a str,
    output: Option<&'a str>,
    offset: u32,
}

fn parse_reference(text: &str, with_output: bool) -> Result<Reference<'_>, String> {
    let (target, offset) = match text.split_once('@') {
        Some((t, o)) => {
            let k = o
                .strip_prefix('-')
                .and_then(|k| k.parse::<u32>().ok())
                .filter(|&k| k >= 1)
                .ok_or_else(|| {
                    format!("`@{o}` is not a cycle offset; write `@-1` for the previous point")
                })?;
            (t, k)
        }
        None => (text, 0),
    };
    if with_output {
        let (step, output) = target
            .split_once('.')
            .ok_or_else(|| format!("`{text}` does not name an output; write `step.output`"))?;
        Ok(Reference {
            step: step.trim(),
            output: Some(output.trim()),
            offset,
        })
    } else {
        Ok(Reference {
            step: target.trim(),
            output: None,
            offset,
        })
    }
}

pub(crate) fn lower_all(
    doc: &WorkflowDoc,
    d: &mut Diags,
    params: &[(String, ParamValue)],
    executors: &[ExecIr],
    sources: &[Option<SourceIr>],
    workflow_dir: &Path,
) -> Vec<StepIr> {
    if doc.steps.value.none_written() {
        d.at(
            "twinflow::no-steps",
            doc.steps.span,
            "the workflow has no steps",
            "empty",
        )
        .set_help(Some("add at least one step under `steps:`".into()));
        return Vec::new();
    }
    let entries: Vec<(&Spanned<String>, Option<&StepDoc>)> = doc
        .steps
        .value
        .iter()
        .map(|(name, s)| {
            let Lenient(parsed) = &s.value;
            (name, parsed.as_ref())
        })
        .collect();
    let shapes: Vec<Option<Shape>> = entries
        .iter()
        .map(|(name, s)| {
            check_name(d, name.span, "step", &name.value);
            s.and_then(|s| shape(name, s, d, params, doc))
        })
        .collect();
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.value.as_str(), i))
        .collect();
    // A source is a producer of one output named after it.
    let source_shapes: Vec<(&str, Option<Shape>)> = doc
        .sources
        .iter()
        .zip(sources)
        .map(|((name, _), ir)| {
            let shape = ir.as_ref().map(|ir| Shape {
                for_each: Vec::new(),
                cycling: ir.cycling,
                outputs: vec![ir.spec.name.clone()],
                complete: true,
            });
            (name.value.as_str(), shape)
        })
        .collect();
    let mut out = Vec::new();
    for (i, (name, step)) in entries.iter().enumerate() {
        let (Some(step), Some(shape)) = (step, &shapes[i]) else {
            continue;
        };
        let ctx = Ctx {
            doc,
            entries: &entries,
            index: &index,
            shapes: &shapes,
            sources: &source_shapes,
            params,
            executors,
            workflow_dir,
        };
        if let Some(ir) = ctx.lower_step(d, name, step, shape) {
            out.push(ir);
        }
    }
    out
}

fn shape(
    name: &Spanned<String>,
    s: &StepDoc,
    d: &mut Diags,
    params: &[(String, ParamValue)],
    doc: &WorkflowDoc,
) -> Option<Shape> {
    let before = d.list.len();
    let mut for_each = Vec::new();
    for (key, values) in s.for_each.iter() {
        if !check_name(d, key.span, "for_each key", &key.value) {
            continue;
        }
        if RESERVED.contains(&key.value.as_str()) {
            d.at(
                "twinflow::reserved-key",
                key.span,
                format!(
                    "`{}` cannot be a for_each key: it is an expression namespace",
                    key.value
                ),
                "reserved",
            )
            .set_help(Some(format!("reserved names: {}", RESERVED.join(", "))));
            continue;
        }
        let list: Vec<String> = match &values.value {
            ForEachDoc::List(items) => {
                let mut seen = HashSet::new();
                for item in items {
                    if !seen.insert(item.value.as_str()) {
                        d.at(
                            "twinflow::duplicate-value",
                            item.span,
                            format!("`{}` appears twice in for_each `{}`", item.value, key.value),
                            "repeated",
                        );
                    }
                }
                items.iter().map(|i| i.value.clone()).collect()
            }
            ForEachDoc::Expr(text) => match for_each_param(text, params) {
                Ok(v) => v,
                Err((message, help)) => {
                    d.at(
                        "twinflow::bad-for-each",
                        values.span,
                        message,
                        "invalid for_each values",
                    )
                    .set_help(help);
                    // Keep the key so expressions naming it are not reported too.
                    for_each.push(ForEachKey {
                        name: key.value.clone(),
                        values: Vec::new(),
                    });
                    continue;
                }
            },
        };
        if list.is_empty() {
            d.at(
                "twinflow::empty-list",
                values.span,
                format!("for_each `{}` has no values", key.value),
                "no values, so no tasks",
            );
        }
        for_each.push(ForEachKey {
            name: key.value.clone(),
            values: list,
        });
    }
    let cycling = s.cycling.as_ref().is_some_and(|c| c.value);
    if cycling
        && doc.cycle.is_none()
        && let Some(c) = &s.cycling
    {
        {
            d.at(
                "twinflow::no-cycle",
                c.span,
                format!(
                    "step `{}` cycles, but the workflow has no `cycle`",
                    name.value
                ),
                "needs a top-level `cycle`",
            )
            .set_help(Some(
                "add `cycle: { start: 2020-01-01, stop: 2030-01-01, step: P1Y }`".into(),
            ));
        }
    }
    let outputs = s.outputs.iter().map(|(k, _)| k.value.clone()).collect();
    let complete = d.list.len() == before;
    Some(Shape {
        for_each,
        cycling,
        outputs,
        complete,
    })
}

fn for_each_param(
    text: &str,
    params: &[(String, ParamValue)],
) -> Result<Vec<String>, (String, Option<String>)> {
    let inner = text
        .trim()
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim);
    let Some(name) = inner.and_then(|t| t.strip_prefix("params.")) else {
        return Err((
            format!("for_each values must be a list or `${{{{ params.X }}}}`, not `{text}`"),
            Some("write a YAML list like `[a, b]`, or refer to a list parameter".into()),
        ));
    };
    match params.iter().find(|(n, _)| n == name) {
        Some((_, v)) => Ok(v.as_slice().to_vec()),
        None => Err((
            format!("unknown parameter `{name}`"),
            did_you_mean(name, params.iter().map(|(n, _)| n.as_str())),
        )),
    }
}

/// The producer a reference found.
struct Producer<'a> {
    /// As messages name it: `step` or `sources.NAME`.
    name: &'a str,
    shape: &'a Shape,
    id: StepId,
    output: Option<&'a str>,
    offset: u32,
}

struct Ctx<'a> {
    doc: &'a WorkflowDoc,
    entries: &'a [(&'a Spanned<String>, Option<&'a StepDoc>)],
    /// Position in `entries` of each step name.
    index: &'a HashMap<&'a str, usize>,
    shapes: &'a [Option<Shape>],
    /// `sources:` names and their shapes, in order.
    sources: &'a [(&'a str, Option<Shape>)],
    params: &'a [(String, ParamValue)],
    executors: &'a [ExecIr],
    workflow_dir: &'a Path,
}

impl Ctx<'_> {
    /// Whether `sources.X` names a source: always in a workflow with
    /// sources (where no step may be called `sources`), else unless a step
    /// is called `sources` (then it names that step's output `X`).
    fn sources_named(&self) -> bool {
        !self.sources.is_empty() || !self.index.contains_key(SOURCES)
    }

    fn step_names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.value.as_str())
    }

    fn lower_step(
        &self,
        d: &mut Diags,
        name: &Spanned<String>,
        s: &StepDoc,
        shape: &Shape,
    ) -> Option<StepIr> {
        let before = d.list.len();
        let executor = self.executor(d, name, s);
        let mut inputs = Vec::new();
        for (input, reference) in s.needs.iter() {
            check_name(d, input.span, "input", &input.value);
            if let Some((from_step, output, offset, gather)) =
                self.link(d, name, shape, reference, true)
            {
                inputs.push(InputSpec {
                    name: input.value.clone(),
                    from_step,
                    output: output.unwrap_or_default(),
                    offset,
                    gather,
                });
            }
        }
        let mut after = Vec::new();
        for reference in &s.after {
            if let Some((step, _, offset, _)) = self.link(d, name, shape, reference, false) {
                after.push(AfterSpec { step, offset });
            }
        }
        let waits = self.wait_for(d, name, s, shape, &mut after);
        let outputs = outputs(d, s);
        let resources = resources(d, s);
        if let (Some(e), Some(g)) = (
            executor,
            s.resources.as_ref().and_then(|r| r.value.gpus.as_ref()),
        ) {
            let spec = &self.executors[e.index()].spec;
            super::gpus::check_step(d, &name.value, g.span, &resources, spec);
        }
        let retries = s.retries.as_ref().map_or(0, |r| r.value);
        if let Some(r) = &s.retries
            && r.value > MAX_RETRIES
        {
            d.at(
                "twinflow::too-many-retries",
                r.span,
                format!(
                    "{} retries is more than the limit of {MAX_RETRIES}",
                    r.value
                ),
                "too many",
            );
        }
        let timeout_seconds = s.timeout.as_ref().and_then(|t| duration(d, t, "timeout"));
        let pack = s.pack.as_ref().and_then(|p| super::shape::pack(d, p));
        let launcher = s.launcher.as_ref().map(super::shape::launcher);
        let group = s
            .group
            .as_ref()
            .and_then(|g| check_name(d, g.span, "group", &g.value).then(|| g.value.clone()));
        let input_names: Vec<String> = s.needs.iter().map(|(k, _)| k.value.clone()).collect();
        let scope = Scope {
            step: &name.value,
            params: self.params,
            keys: &shape.for_each,
            inputs: &input_names,
            outputs: &shape.outputs,
            cycling: shape.cycling,
        };
        let run = resolve(d, &s.run, &scope);
        let code = super::code::collect(d, s, run.as_ref(), self.workflow_dir);
        let env = self.env(d, s, executor, &scope);
        let container = s.container.as_ref().and_then(|c| {
            let spec = executor.and_then(|e| self.executors.get(e.index()));
            super::container::lower(d, c, spec.map(|x| &x.spec), self.workflow_dir)
        });
        let model = s
            .model
            .as_ref()
            .and_then(|m| super::model::check(d, m, self.workflow_dir));
        let hooks = super::hooks::lower(d, s.on.as_ref(), Some(&name.value), self.workflow_dir);
        if d.list.len() > before {
            return None;
        }
        Some(StepIr {
            spec: StepSpec {
                name: name.value.clone(),
                description: s.description.clone(),
                executor: executor?,
                for_each: shape.for_each.clone(),
                cycling: shape.cycling,
                inputs,
                after,
                outputs,
                resources,
                retries,
                timeout_seconds,
                pack,
                group,
                launcher,
                env,
                container,
                model,
                code,
                hooks,
                tasks: 0..0,
            },
            run: run?,
            name_span: name.span,
            url: false,
            waits,
        })
    }

    /// `wait_for:`: each source waited for becomes an ordering dependency,
    /// like `after`, and is returned with how the step waits for it.
    fn wait_for(
        &self,
        d: &mut Diags,
        name: &Spanned<String>,
        s: &StepDoc,
        shape: &Shape,
        after: &mut Vec<AfterSpec>,
    ) -> Vec<(StepId, WaitSpec)> {
        let mut waits = Vec::new();
        for entry in &s.wait_for {
            let Some((reference, wait)) = sources::wait_entry(d, entry) else {
                continue;
            };
            if !reference.value.starts_with("sources.") || !self.sources_named() {
                let step = reference.value.split('@').next().unwrap_or_default();
                let help = if self.index.contains_key(step) {
                    format!("`{step}` is a step: wait for it with `after: [{step}]`")
                } else {
                    "`wait_for` takes sources, written `sources.NAME`".to_owned()
                };
                d.at(
                    "twinflow::wait-for-not-source",
                    reference.span,
                    format!(
                        "`wait_for` waits for sources, and `{}` is not one",
                        reference.value
                    ),
                    "not a source",
                )
                .set_help(Some(help));
                continue;
            }
            if let Some((step, _, offset, _)) = self.link(d, name, shape, &reference, false) {
                after.push(AfterSpec { step, offset });
                waits.push((step, wait));
            }
        }
        waits
    }

    fn executor(&self, d: &mut Diags, name: &Spanned<String>, s: &StepDoc) -> Option<ExecutorId> {
        let declared: Vec<&str> = self
            .doc
            .executors
            .iter()
            .map(|(k, _)| k.value.as_str())
            .collect();
        match &s.executor {
            Some(e) => {
                if let Some(i) = self.executors.iter().position(|x| x.spec.name == e.value) {
                    return Some(ExecutorId(i as u32));
                }
                if !declared.contains(&e.value.as_str()) {
                    let help =
                        did_you_mean(&e.value, declared.iter().copied()).unwrap_or_else(|| {
                            if declared.is_empty() {
                                "declare it under `executors:` (e.g. `kind: local`)".into()
                            } else {
                                format!("declared executors: {}", declared.join(", "))
                            }
                        });
                    d.at(
                        "twinflow::unknown-executor",
                        e.span,
                        format!("unknown executor `{}`", e.value),
                        "not declared under `executors`",
                    )
                    .set_help(Some(help));
                }
                None
            }
            None if self.executors.len() == 1 => Some(ExecutorId(0)),
            None => {
                d.at(
                    "twinflow::no-executor",
                    name.span,
                    format!("step `{}` does not say which executor runs it", name.value),
                    "add `executor:` to this step",
                )
                .set_help(Some(format!("choose one of: {}", declared.join(", "))));
                None
            }
        }
    }

    /// Resolves a `needs`/`after` reference and decides whether it gathers.
    fn link(
        &self,
        d: &mut Diags,
        consumer: &Spanned<String>,
        shape: &Shape,
        reference: &Spanned<String>,
        with_output: bool,
    ) -> Option<(StepId, Option<String>, u32, bool)> {
        if reference.value.contains("${{") {
            let what = if with_output {
                "`needs` takes a reference `step.output`"
            } else {
                "`after` takes a step name"
            };
            d.at(
                "twinflow::bad-reference",
                reference.span,
                format!("{what}, not an expression"),
                "expression in a reference",
            )
            .set_help(Some(format!(
                "write it without `${{{{ }}}}`: `{}`",
                reference.value.replace("${{", "").replace("}}", "").trim()
            )));
            return None;
        }
        let r = match parse_reference(&reference.value, with_output) {
            Ok(r) => r,
            Err(message) => {
                d.at(
                    "twinflow::bad-reference",
                    reference.span,
                    message,
                    "invalid reference",
                );
                return None;
            }
        };
        // `sources.NAME` (`needs`) parses as step `sources`, output `NAME`;
        // in `after` and `wait_for` as step `sources.NAME`.
        let source_name = if with_output {
            (r.step == SOURCES).then_some(r.output).flatten()
        } else {
            r.step.strip_prefix("sources.")
        };
        let found = match source_name {
            Some(source) if self.sources_named() => {
                let Some(i) = self.sources.iter().position(|(n, _)| *n == source) else {
                    let help = d.hints_wanted().then(|| {
                        did_you_mean(source, self.sources.iter().map(|(n, _)| *n)).unwrap_or_else(
                            || {
                                if self.sources.is_empty() {
                                    "the workflow declares no `sources:`".to_owned()
                                } else {
                                    format!(
                                        "sources: {}",
                                        list(self.sources.iter().map(|(n, _)| *n))
                                    )
                                }
                            },
                        )
                    });
                    d.at(
                        "twinflow::unknown-source",
                        reference.span,
                        format!("unknown source `{source}`"),
                        "no source of this name",
                    )
                    .set_help(help);
                    return None;
                };
                let producer = self.sources[i].1.as_ref()?;
                let name = format!("sources.{source}");
                let producer = Producer {
                    name: &name,
                    shape: producer,
                    id: sources::step_id(self.entries.len(), i),
                    output: with_output.then_some(source),
                    offset: r.offset,
                };
                return self.matched(d, consumer, shape, reference, &producer);
            }
            _ => self.index.get(r.step),
        };
        let Some(&index) = found else {
            let help = d.hints_wanted().then(|| {
                did_you_mean(r.step, self.step_names())
                    .unwrap_or_else(|| format!("steps: {}", list(self.step_names())))
            });
            d.at(
                "twinflow::unknown-step",
                reference.span,
                format!("unknown step `{}`", r.step),
                "no step of this name",
            )
            .set_help(help);
            return None;
        };
        let producer = self.shapes[index].as_ref()?;
        if let Some(output) = r.output
            && !producer.outputs.iter().any(|o| o == output)
        {
            let help = d.hints_wanted().then(|| did_you_mean(output, producer.outputs.iter().map(String::as_str)).unwrap_or_else(|| {
                if producer.outputs.is_empty() {
                    format!("`{}` declares no outputs; use `after: [{}]` to wait for it without artefacts", r.step, r.step)
                } else {
                    format!("outputs of `{}`: {}", r.step, list(producer.outputs.iter().map(String::as_str)))
                }
            }));
            d.at(
                "twinflow::unknown-output",
                reference.span,
                format!("step `{}` has no output `{output}`", r.step),
                "unknown output",
            )
            .set_help(help);
            return None;
        }
        let producer = Producer {
            name: r.step,
            shape: producer,
            id: StepId(index as u32),
            output: r.output,
            offset: r.offset,
        };
        self.matched(d, consumer, shape, reference, &producer)
    }

    /// The rest of [`Ctx::link`] once the producer is found: cycle offsets,
    /// gathering and the matching of `for_each` values.
    fn matched(
        &self,
        d: &mut Diags,
        consumer: &Spanned<String>,
        shape: &Shape,
        reference: &Spanned<String>,
        p: &Producer<'_>,
    ) -> Option<(StepId, Option<String>, u32, bool)> {
        let producer = p.shape;
        if p.offset > 0 {
            for (who, cycles) in [
                (p.name, producer.cycling),
                (consumer.value.as_str(), shape.cycling),
            ] {
                if !cycles {
                    d.at(
                        "twinflow::offset-without-cycling",
                        reference.span,
                        format!(
                            "`@-{}` refers to earlier cycle points, but `{who}` does not cycle",
                            p.offset
                        ),
                        "cycle offset on a non-cycling step",
                    )
                    .set_help(Some(format!(
                        "add `cycling: true` to `{who}`, or drop `@-{}`",
                        p.offset
                    )));
                    return None;
                }
            }
        }
        let mut gather = producer.cycling && !shape.cycling;
        if !producer.complete || !shape.complete {
            return None;
        }
        for key in &producer.for_each {
            match shape.for_each.iter().find(|k| k.name == key.name) {
                None => gather = true,
                Some(mine) => {
                    let producer_values: HashSet<&str> =
                        key.values.iter().map(String::as_str).collect();
                    if let Some(missing) = mine
                        .values
                        .iter()
                        .find(|v| !producer_values.contains(v.as_str()))
                    {
                        let help = d.hints_wanted().then(|| {
                            format!(
                                "`{}` runs {} over: {}",
                                p.name,
                                key.name,
                                list(key.values.iter().map(String::as_str))
                            )
                        });
                        d.at(
                            "twinflow::no-matching-task",
                            reference.span,
                            format!(
                                "`{}` has no task with {}={missing}, which `{}[{}={missing}]` needs",
                                p.name, key.name, consumer.value, key.name
                            ),
                            "no matching producer",
                        )
                        .set_help(help);
                        return None;
                    }
                }
            }
        }
        Some((p.id, p.output.map(str::to_owned), p.offset, gather))
    }

    /// Workflow, executor (or site) and step `env`, later ones winning.
    fn env(
        &self,
        d: &mut Diags,
        s: &StepDoc,
        executor: Option<ExecutorId>,
        scope: &Scope<'_>,
    ) -> Vec<(String, Template)> {
        let mut entries = EnvEntries::default();
        for (k, v) in self.doc.env.iter() {
            entries.set(&k.value, EnvValue::Raw(k, v));
        }
        if let Some(e) = executor {
            let exec = &self.executors[e.index()];
            for (k, v) in &exec.env {
                entries.set(&k.value, EnvValue::Raw(k, v));
            }
            for (k, v) in &exec.site_env {
                entries.set(k, EnvValue::Lit(v));
            }
        }
        for (k, v) in s.env.iter() {
            entries.set(&k.value, EnvValue::Raw(k, v));
        }
        let mut out = Vec::new();
        for (name, value) in entries.list {
            match value {
                EnvValue::Lit(v) => out.push((
                    name,
                    Template {
                        pieces: vec![Piece::Lit(v.to_owned())],
                    },
                )),
                EnvValue::Raw(k, v) => {
                    if !is_env_name(&k.value) {
                        d.at(
                            "twinflow::bad-env-name",
                            k.span,
                            format!("`{}` is not an environment variable name", k.value),
                            "invalid name",
                        )
                        .set_help(Some(
                            "use letters, digits and `_`, not starting with a digit".into(),
                        ));
                        continue;
                    }
                    if let Some(t) = resolve(d, v, scope) {
                        out.push((name, t));
                    }
                }
            }
        }
        out
    }
}

/// Environment variables in the order first set, later values winning.
#[derive(Default)]
struct EnvEntries<'a> {
    list: Vec<(String, EnvValue<'a>)>,
    /// Position in `list` of each name.
    index: HashMap<String, usize>,
}

impl<'a> EnvEntries<'a> {
    fn set(&mut self, name: &str, value: EnvValue<'a>) {
        match self.index.get(name) {
            Some(&i) => self.list[i].1 = value,
            None => {
                self.index.insert(name.to_owned(), self.list.len());
                self.list.push((name.to_owned(), value));
            }
        }
    }
}

/// An `env` value: as written in the workflow, or a site file's plain text.
enum EnvValue<'a> {
    Raw(&'a Spanned<String>, &'a Spanned<String>),
    Lit(&'a str),
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn outputs(d: &mut Diags, s: &StepDoc) -> Vec<OutputSpec> {
    let mut out: Vec<OutputSpec> = Vec::new();
    // Position in `out` of the first output of each path.
    let mut by_path: HashMap<String, usize> = HashMap::new();
    for (name, path) in s.outputs.iter() {
        check_name(d, name.span, "output", &name.value);
        if path.value.contains("${{") {
            d.at(
                "twinflow::bad-output-path",
                path.span,
                format!("output path `{}` uses an expression", path.value),
                "outputs are fixed paths",
            )
            .set_help(Some(
                "every task has its own working directory, so a fixed name such as `summary.csv` never collides".into(),
            ));
            continue;
        }
        match normalise_output_path(&path.value) {
            Ok(p) => {
                if let Some(other) = by_path.get(&p).map(|&i| &out[i]) {
                    d.at(
                        "twinflow::duplicate-output",
                        path.span,
                        format!(
                            "outputs `{}` and `{}` are the same path `{p}`",
                            other.name, name.value
                        ),
                        "same path",
                    );
                }
                by_path.entry(p.clone()).or_insert(out.len());
                out.push(OutputSpec {
                    name: name.value.clone(),
                    path: p,
                });
            }
            Err(message) => {
                d.at("twinflow::bad-output-path", path.span, message, "invalid output path")
                    .set_help(Some("outputs are relative paths inside the task's working directory, like `results/stands.csv`".into()));
            }
        }
    }
    out
}

/// `./a//b/` -> `a/b`; refuses absolute paths, `..`, `inputs/` and the empty path.
pub(crate) fn normalise_output_path(path: &str) -> Result<String, String> {
    if path.starts_with('/') || path.starts_with('~') {
        return Err(format!("output path `{path}` is absolute"));
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(format!("output path `{path}` contains a NUL or backslash"));
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("output path `{path}` leaves the task's directory"));
    }
    if parts.is_empty() {
        return Err("an output path is empty".into());
    }
    if parts[0] == "inputs" {
        return Err(format!(
            "output path `{path}` is under `inputs/`, where twinflow stages inputs"
        ));
    }
    Ok(parts.join("/"))
}

fn duration(d: &mut Diags, v: &Spanned<crate::model::ScalarString>, what: &str) -> Option<u64> {
    match parse_duration(&v.value.0) {
        Ok(s) => Some(s),
        Err(message) => {
            d.at(
                "twinflow::bad-duration",
                v.span,
                message,
                format!("invalid {what}"),
            )
            .set_help(Some(
                "durations: `90s`, `30m`, `2h`, `1d`, `1h30m`, `HH:MM:SS` or `D-HH:MM:SS`".into(),
            ));
            None
        }
    }
}

fn resources(d: &mut Diags, s: &StepDoc) -> Resources {
    let mut r = Resources::default();
    let Some(doc) = &s.resources else {
        return r;
    };
    if let Some(c) = &doc.value.cpus {
        if c.value == 0 {
            d.at(
                "twinflow::zero",
                c.span,
                "`cpus` must be at least 1",
                "zero",
            );
        }
        r.cpus = c.value;
    }
    if let Some(m) = &doc.value.memory {
        match parse_memory(&m.value.0) {
            Ok(bytes) => r.memory_bytes = Some(bytes),
            Err(message) => {
                d.at("twinflow::bad-memory", m.span, message, "invalid memory")
                    .set_help(Some("memory sizes: `512MiB`, `8GiB`, `2GB` (K/M/G/T alone are binary, as in Slurm)".into()));
            }
        }
    }
    if let Some(t) = &doc.value.time {
        r.time_seconds = duration(d, t, "time");
    }
    if let Some(g) = &doc.value.gpus {
        super::gpus::lower(d, g, &mut r);
    }
    super::shape::ranks(d, &doc.value, &mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_stay_inside() {
        assert_eq!(normalise_output_path("./a//b/").unwrap(), "a/b");
        assert!(normalise_output_path("/etc/passwd").is_err());
        assert!(normalise_output_path("a/../../b").is_err());
        assert!(normalise_output_path("..").is_err());
        assert!(normalise_output_path("").is_err());
        assert!(normalise_output_path("inputs/x").is_err());
        assert!(normalise_output_path("~/x").is_err());
    }

    #[test]
    fn references() {
        let r = parse_reference("forest.stands@-2", true).unwrap();
        assert_eq!((r.step, r.output, r.offset), ("forest", Some("stands"), 2));
        assert!(parse_reference("forest", true).is_err());
        assert!(parse_reference("forest.stands@-0", true).is_err());
        assert!(parse_reference("forest.stands@+1", true).is_err());
        assert_eq!(parse_reference("forest@-1", false).unwrap().offset, 1);
    }
}
