//! Expands lowered steps into tasks: the `for_each` product and cycle points,
//! producer matching (single, gather, `@-k`) and command substitution with
//! every value shell-quoted (a source's URL: percent-encoded). Linear in tasks plus edges; values are quoted
//! once, not per task.

use crate::diag::Diags;
use crate::lower::{Lowered, StepIr, render_url};
use std::collections::HashMap;
use twinflow_core::{
    CyclePoint, ParamValue, Piece, Plan, PlanBuilder, Ref, StepId, StepSpec, TaskId, input_paths,
    push_shell_quoted, shell_quote, shell_words, task_name,
};

/// How a consumer finds its producers along one link (`needs` or `after`).
struct Link {
    producer_first: u32,
    /// (consumer key slot, producer stride, consumer value -> producer value)
    fixed: Vec<(usize, u32, Vec<u32>)>,
    /// (producer stride, count): dimensions gathered over, outermost first.
    free: Vec<(u32, u32)>,
    /// `Some(k)`: the producer's point is the consumer's minus k.
    same_point: Option<u32>,
}

impl Link {
    fn new(consumer: &StepSpec, producer: &StepSpec, offset: u32, points: u32) -> Self {
        let p_points = if producer.cycling { points } else { 1 };
        let mut strides = vec![0u32; producer.for_each.len()];
        let mut stride = p_points;
        for (j, key) in producer.for_each.iter().enumerate().rev() {
            strides[j] = stride;
            stride *= key.values.len() as u32;
        }
        let mut fixed = Vec::new();
        let mut free = Vec::new();
        for (j, key) in producer.for_each.iter().enumerate() {
            match consumer.for_each.iter().position(|k| k.name == key.name) {
                Some(slot) => {
                    let index: HashMap<&str, u32> = key
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.as_str(), i as u32))
                        .collect();
                    let map = consumer.for_each[slot]
                        .values
                        .iter()
                        .map(|v| index.get(v.as_str()).copied().unwrap_or(0))
                        .collect();
                    fixed.push((slot, strides[j], map));
                }
                None => free.push((strides[j], key.values.len() as u32)),
            }
        }
        let same_point = match (producer.cycling, consumer.cycling) {
            (true, true) => Some(offset),
            (true, false) => {
                free.push((1, points));
                None
            }
            _ => None,
        };
        Self {
            producer_first: producer.tasks.start,
            fixed,
            free,
            same_point,
        }
    }

    /// Appends the producers of the consumer at `coords`/`point` to `out`.
    fn producers(&self, coords: &[u32], point: u32, out: &mut Vec<TaskId>) {
        let mut base = self.producer_first;
        for (slot, stride, map) in &self.fixed {
            base += map[coords[*slot] as usize] * stride;
        }
        if let Some(k) = self.same_point {
            if point < k {
                return;
            }
            base += point - k;
        }
        if self.free.is_empty() {
            out.push(TaskId(base));
            return;
        }
        let mut counters = vec![0u32; self.free.len()];
        loop {
            let offset: u32 = counters
                .iter()
                .zip(&self.free)
                .map(|(c, (s, _))| c * s)
                .sum();
            out.push(TaskId(base + offset));
            let mut dim = self.free.len();
            loop {
                if dim == 0 {
                    return;
                }
                dim -= 1;
                counters[dim] += 1;
                if counters[dim] < self.free[dim].1 {
                    break;
                }
                counters[dim] = 0;
            }
        }
    }
}

/// Number of tasks of a step, if it fits in u32.
fn instance_count(step: &StepSpec, points: u32) -> Option<u32> {
    let mut n: u32 = if step.cycling { points } else { 1 };
    for key in &step.for_each {
        n = n.checked_mul(key.values.len() as u32)?;
    }
    Some(n)
}

/// Limits checked before anything is expanded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_tasks: usize,
    pub(crate) max_edges: u64,
    pub(crate) max_command_bytes: u64,
}

pub(crate) fn expand(mut lowered: Lowered, limits: Limits, d: &mut Diags) -> Option<Plan> {
    // Task ids are u32: a larger limit cannot be honoured.
    let max_tasks = limits.max_tasks.min(u32::MAX as usize);
    let points = lowered.cycle.as_ref().map_or(1, |c| c.points.len() as u32);
    let mut next: u64 = 0;
    for ir in &mut lowered.steps {
        let count = instance_count(&ir.spec, points).map(u64::from);
        let total = count.map(|c| c + next);
        match total {
            Some(total) if total <= max_tasks as u64 => {
                ir.spec.tasks = next as u32..total as u32;
                next = total;
            }
            _ => {
                let what =
                    count.map_or_else(|| "more than 4 billion".to_owned(), |c| c.to_string());
                d.at(
                    "twinflow::too-many-tasks",
                    ir.name_span,
                    format!("the workflow would have more than {max_tasks} tasks (this step alone: {what})"),
                    "too many tasks",
                )
                .set_help(Some("reduce the for_each lists or the cycle, or raise the limit with `--max-tasks`".into()));
                return None;
            }
        }
    }
    if !within_size_limits(&lowered, limits, points, d) {
        return None;
    }
    let run_ir: Vec<_> = lowered.steps.iter().map(|s| s.run.clone()).collect();
    // A source's tasks fetch its URL, one per cycle point when it cycles.
    let urls: Vec<Option<Vec<String>>> = lowered
        .steps
        .iter()
        .map(|s| {
            s.url.then(|| match (&lowered.cycle, s.spec.cycling) {
                (Some(c), true) => c
                    .points
                    .iter()
                    .map(|p| render_url(&s.run, &lowered.params, Some(p)))
                    .collect(),
                _ => vec![render_url(&s.run, &lowered.params, None)],
            })
        })
        .collect();
    let hooks = std::mem::take(&mut lowered.hooks);
    let specs: Vec<StepSpec> = lowered.steps.into_iter().map(|s: StepIr| s.spec).collect();
    let consts = Consts::new(
        &lowered.info.dir.display().to_string(),
        &lowered.info.name,
        &lowered.info.run_id,
        &lowered.params,
        lowered
            .cycle
            .as_ref()
            .map(|c| c.points.as_slice())
            .unwrap_or(&[]),
    );
    let mut builder = PlanBuilder::new(
        lowered.info,
        lowered.params,
        lowered.cycle,
        lowered.executors,
        specs,
    );
    for (s, (template, urls)) in run_ir.iter().zip(urls).enumerate() {
        match urls {
            Some(urls) => {
                for url in urls {
                    builder.push_task(StepId(s as u32), url, &mut Vec::new());
                }
            }
            None => expand_step(&mut builder, StepId(s as u32), template, &consts, points),
        }
    }
    let mut plan = builder.finish();
    plan.hooks = hooks;
    Some(plan)
}

/// Values quoted once for the whole plan.
struct Consts {
    dir: String,
    name: String,
    run_id: String,
    params: Vec<String>,
    /// Per cycle point: label, year, month, day.
    cycle: Vec<[String; 4]>,
    labels: Vec<String>,
}

impl Consts {
    fn new(
        dir: &str,
        name: &str,
        run_id: &str,
        params: &[(String, ParamValue)],
        points: &[CyclePoint],
    ) -> Self {
        Self {
            dir: shell_quote(dir),
            name: shell_quote(name),
            run_id: shell_quote(run_id),
            params: params
                .iter()
                .map(|(_, v)| shell_words(v.as_slice().iter().map(String::as_str)))
                .collect(),
            cycle: points
                .iter()
                .map(|p| {
                    [
                        shell_quote(&p.label),
                        p.year.to_string(),
                        p.month.to_string(),
                        p.day.to_string(),
                    ]
                })
                .collect(),
            labels: points.iter().map(|p| p.label.clone()).collect(),
        }
    }
}

/// What an input substitutes to, by number of producers.
struct InputWords {
    name: String,
    file: String,
    gather: bool,
    cached: Option<(usize, String)>,
}

impl InputWords {
    fn words(&mut self, count: usize) -> &str {
        if self.cached.as_ref().is_none_or(|(n, _)| *n != count) {
            let paths = input_paths(&self.name, &self.file, self.gather, count);
            let text = if !self.gather && count == 0 {
                "''".to_owned()
            } else {
                shell_words(paths.iter().map(String::as_str))
            };
            self.cached = Some((count, text));
        }
        self.cached.as_ref().map_or("", |(_, s)| s.as_str())
    }
}

fn expand_step(
    builder: &mut PlanBuilder,
    id: StepId,
    template: &twinflow_core::Template,
    consts: &Consts,
    points: u32,
) {
    let steps = builder.steps();
    let step = &steps[id.index()];
    let input_links: Vec<Link> = step
        .inputs
        .iter()
        .map(|i| Link::new(step, &steps[i.from_step.index()], i.offset, points))
        .collect();
    let after_links: Vec<Link> = step
        .after
        .iter()
        .map(|a| Link::new(step, &steps[a.step.index()], a.offset, points))
        .collect();
    let mut input_words: Vec<InputWords> = step
        .inputs
        .iter()
        .map(|i| {
            let file = steps[i.from_step.index()]
                .outputs
                .iter()
                .find(|o| o.name == i.output)
                .map_or(i.output.clone(), |o| o.file_name().to_owned());
            InputWords {
                name: i.name.clone(),
                file,
                gather: i.gather,
                cached: None,
            }
        })
        .collect();
    let key_words: Vec<Vec<String>> = step
        .for_each
        .iter()
        .map(|k| k.values.iter().map(|v| shell_quote(v)).collect())
        .collect();
    let output_words: Vec<String> = step.outputs.iter().map(|o| shell_quote(&o.path)).collect();
    let step_name = step.name.clone();
    let key_names: Vec<String> = step.for_each.iter().map(|k| k.name.clone()).collect();
    let key_values: Vec<Vec<String>> = step.for_each.iter().map(|k| k.values.clone()).collect();
    let cycling = step.cycling;
    let count = step.tasks.len();
    let n_points = if cycling { points } else { 1 };
    let mut coords = vec![0u32; step.for_each.len()];
    let mut point = 0u32;
    let mut producers: Vec<Vec<TaskId>> = vec![Vec::new(); input_links.len()];
    let mut deps: Vec<TaskId> = Vec::new();
    let mut last_len = 64;
    for _ in 0..count {
        deps.clear();
        for (slot, link) in input_links.iter().enumerate() {
            producers[slot].clear();
            link.producers(&coords, point, &mut producers[slot]);
            builder.push_input(&producers[slot]);
            deps.extend_from_slice(&producers[slot]);
        }
        for link in &after_links {
            link.producers(&coords, point, &mut deps);
        }
        let mut command = String::with_capacity(last_len);
        for piece in &template.pieces {
            match piece {
                Piece::Lit(s) => command.push_str(s),
                Piece::Ref(r) => match *r {
                    Ref::Param(i) => command.push_str(&consts.params[i as usize]),
                    Ref::Key(slot) => {
                        command.push_str(&key_words[slot as usize][coords[slot as usize] as usize])
                    }
                    Ref::Input(slot) => {
                        let n = producers[slot as usize].len();
                        command.push_str(input_words[slot as usize].words(n));
                    }
                    Ref::Output(slot) => command.push_str(&output_words[slot as usize]),
                    Ref::CyclePoint => command.push_str(&consts.cycle[point as usize][0]),
                    Ref::CycleYear => command.push_str(&consts.cycle[point as usize][1]),
                    Ref::CycleMonth => command.push_str(&consts.cycle[point as usize][2]),
                    Ref::CycleDay => command.push_str(&consts.cycle[point as usize][3]),
                    Ref::WorkflowDir => command.push_str(&consts.dir),
                    Ref::WorkflowName => command.push_str(&consts.name),
                    Ref::RunId => command.push_str(&consts.run_id),
                    Ref::TaskName => {
                        let pairs = key_names
                            .iter()
                            .zip(&key_values)
                            .zip(&coords)
                            .map(|((k, vs), c)| (k.as_str(), vs[*c as usize].as_str()));
                        let name = task_name(
                            &step_name,
                            pairs,
                            cycling.then(|| consts.labels[point as usize].as_str()),
                        );
                        push_shell_quoted(&mut command, &name);
                    }
                },
            }
        }
        last_len = command.len();
        builder.push_task(id, command, &mut deps);
        // Advance the odometer: point innermost, then keys from last to first.
        point += 1;
        if point == n_points {
            point = 0;
            for slot in (0..coords.len()).rev() {
                coords[slot] += 1;
                if (coords[slot] as usize) < key_values[slot].len() {
                    break;
                }
                coords[slot] = 0;
            }
        }
    }
}

/// How many producers one consumer task gets along a link: the product of the
/// dimensions it gathers over.
fn gather_size(consumer: &StepSpec, producer: &StepSpec, points: u32) -> u64 {
    let mut n: u64 = 1;
    for key in &producer.for_each {
        if !consumer.for_each.iter().any(|k| k.name == key.name) {
            n = n.saturating_mul(key.values.len() as u64);
        }
    }
    if producer.cycling && !consumer.cycling {
        n = n.saturating_mul(u64::from(points));
    }
    n
}

/// Upper bound of the bytes one reference adds to a command.
fn reference_bytes(lowered: &Lowered, s: &StepSpec, r: Ref, gathers: &[u64]) -> u64 {
    let quoted = |w: &str| shell_quote(w).len() as u64;
    match r {
        Ref::Param(i) => lowered.params[i as usize]
            .1
            .as_slice()
            .iter()
            .map(|w| quoted(w) + 1)
            .sum(),
        Ref::Key(k) => s.for_each[k as usize]
            .values
            .iter()
            .map(|v| quoted(v))
            .max()
            .unwrap_or(0),
        Ref::Input(i) => {
            let input = &s.inputs[i as usize];
            let path = 32 + input.name.len() as u64 + input.output.len() as u64;
            gathers[i as usize].saturating_mul(path)
        }
        Ref::TaskName => {
            let keys: u64 = s
                .for_each
                .iter()
                .map(|k| {
                    k.name.len() as u64 + 2 + k.values.iter().map(|v| quoted(v)).max().unwrap_or(0)
                })
                .sum();
            s.name.len() as u64 + keys + 40
        }
        Ref::WorkflowDir => quoted(&lowered.info.dir.display().to_string()),
        _ => 64,
    }
}

/// Refuses, before expansion, plans whose dependency edges or command text
/// would outgrow memory: both can grow with the square of a small file (a
/// list param in every command, every task gathering every task).
fn within_size_limits(lowered: &Lowered, limits: Limits, points: u32, d: &mut Diags) -> bool {
    let steps = &lowered.steps;
    let mut edges: u64 = 0;
    let mut bytes: u64 = 0;
    for ir in steps {
        let s = &ir.spec;
        let tasks = s.tasks.len() as u64;
        let gathers: Vec<u64> = s
            .inputs
            .iter()
            .map(|i| gather_size(s, &steps[i.from_step.index()].spec, points))
            .collect();
        let per_task_edges = s
            .after
            .iter()
            .map(|a| gather_size(s, &steps[a.step.index()].spec, points))
            .chain(gathers.iter().copied())
            .fold(0u64, u64::saturating_add);
        let per_task_bytes = ir
            .run
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Lit(text) => text.len() as u64,
                Piece::Ref(r) => reference_bytes(lowered, s, *r, &gathers),
            })
            .fold(0u64, u64::saturating_add);
        edges = edges.saturating_add(tasks.saturating_mul(per_task_edges));
        bytes = bytes.saturating_add(tasks.saturating_mul(per_task_bytes));
        if edges > limits.max_edges {
            d.at(
                "twinflow::plan-too-large",
                ir.name_span,
                format!(
                    "the plan would have more than {} dependency edges (each task of this step waits for {per_task_edges})",
                    limits.max_edges
                ),
                "too many dependencies",
            )
            .set_help(Some(
                "gather in two stages (collect per key first, then collect those), or wait for fewer tasks".into(),
            ));
            return false;
        }
        if bytes > limits.max_command_bytes {
            d.at(
                "twinflow::plan-too-large",
                ir.name_span,
                format!(
                    "the plan's commands would take more than the limit of {} MiB (this step's about {} KiB each)",
                    limits.max_command_bytes >> 20,
                    per_task_bytes >> 10
                ),
                "commands too large",
            )
            .set_help(Some(
                "pass long lists through a file instead of substituting them into every command".into(),
            ));
            return false;
        }
    }
    true
}
