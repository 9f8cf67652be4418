//! `twinflow validate`: checks a workflow and summarises it.

mod host;
mod sources;

pub(crate) use sources::plain_http_sources;

use super::compile;
use crate::args::CompileArgs;
use crate::exit;
use crate::output::Output;
use std::fmt::Write as _;
use twinflow_workflow::Plan;

pub(crate) fn validate(out: &Output, args: &CompileArgs) -> u8 {
    if super::cwl::is_cwl(&args.file) && args.job.is_none() {
        return super::cwl::validate_document(out, args);
    }
    match compile(out, args) {
        Ok(plan) => {
            let mut problems = host::missing_runtimes(&plan, std::env::var_os("PATH").as_deref());
            let aws = std::env::var_os("HOME").and_then(|home| {
                std::fs::read_to_string(std::path::Path::new(&home).join(".aws/credentials")).ok()
            });
            problems.extend(sources::missing_credentials(
                &plan,
                |name| std::env::var(name).ok(),
                aws.as_deref(),
            ));
            if !problems.is_empty() {
                for problem in &problems {
                    out.error(problem);
                }
                return exit::INVALID;
            }
            out.print(&summary(&plan, &args.file.display().to_string()));
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

/// Tasks per step, their executors and shapes, and the total.
pub(crate) fn summary(plan: &Plan, file: &str) -> String {
    let mut s = String::new();
    let width = plan
        .steps
        .iter()
        .map(|st| st.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        s,
        "{}: workflow `{}` is valid",
        crate::term::shown(file),
        plan.workflow.name
    );
    if let Some(c) = &plan.cycle {
        let ahead = c.runahead.map_or("unlimited".to_owned(), |r| r.to_string());
        let _ = writeln!(
            s,
            "cycle: {} .. {} every {} ({}, runahead {ahead})",
            c.start,
            c.stop,
            c.step,
            crate::term::count(c.points.len() as u64, "point")
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  {:<width$}  {:>9}  {:<22}  shape",
        "step", "tasks", "executor"
    );
    for step in &plan.steps {
        let e = &plan.executors[step.executor.index()];
        let mut shape: Vec<String> = step
            .for_each
            .iter()
            .map(|k| format!("{}[{}]", k.name, k.values.len()))
            .collect();
        if step.cycling {
            shape.push(format!(
                "cycle[{}]",
                plan.cycle.as_ref().map_or(0, |c| c.points.len())
            ));
        }
        let gathers: Vec<&str> = step
            .inputs
            .iter()
            .filter(|i| i.gather)
            .map(|i| i.name.as_str())
            .collect();
        let mut shape = if shape.is_empty() {
            "single".to_owned()
        } else {
            shape.join(" x ")
        };
        if !gathers.is_empty() {
            let _ = write!(shape, ", gathers {}", gathers.join(", "));
        }
        let executor = format!("{} ({})", e.name, e.backend.kind());
        let _ = writeln!(
            s,
            "  {:<width$}  {:>9}  {:<22}  {shape}",
            step.name,
            step.tasks.len(),
            executor
        );
    }
    let _ = writeln!(s, "  {:<width$}  {:>9}", "total", plan.task_count());
    s
}
