//! `twinflow plan`: the task DAG as text or as documented JSON.

use super::compile;
use crate::args::CompileArgs;
use crate::exit;
use crate::output::Output;
use crate::term::{count, shown};
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use twinflow_core::{PlanJson, TaskId};
use twinflow_workflow::Plan;

pub(crate) fn plan(out: &Output, args: &CompileArgs, json: bool) -> u8 {
    let plan = match compile(out, args) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if json {
        let stdout = std::io::stdout().lock();
        let mut writer = BufWriter::with_capacity(1 << 16, stdout);
        let written = serde_json::to_writer(&mut writer, &PlanJson(&plan))
            .map_err(std::io::Error::from)
            .and_then(|()| writer.write_all(b"\n"))
            .and_then(|()| writer.flush());
        if let Err(e) = written
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            out.error(&format!("failed to write the plan: {e}"));
            return exit::INVALID;
        }
    } else {
        out.print(&text(&plan));
    }
    exit::SUCCESS
}

/// One block per task: id, name, executor, resources, its step's launcher,
/// pack and coupling group (when set), dependencies, command.
pub(crate) fn text(plan: &Plan) -> String {
    let mut s = String::new();
    for i in 0..plan.task_count() as u32 {
        let id = TaskId(i);
        let step = plan.step_of(id);
        let e = plan.executor_of(id);
        let r = &step.resources;
        let _ = writeln!(s, "#{id} {}", shown(&plan.task_name(id)));
        let mut res = format!("cpus={}", r.cpus);
        if r.tasks > 1 {
            let _ = write!(res, " tasks={}", r.tasks);
        }
        if let Some(n) = r.nodes {
            let _ = write!(res, " nodes={n}");
        }
        if let Some(p) = r.tasks_per_node {
            let _ = write!(res, " tasks_per_node={p}");
        }
        if r.exclusive {
            res.push_str(" exclusive");
        }
        if let Some(m) = r.memory_bytes {
            let _ = write!(res, " memory={}MiB", m.div_ceil(1 << 20));
        }
        if let Some(t) = r.time_seconds {
            let _ = write!(res, " time={t}s");
        }
        if r.gpus > 0 {
            let _ = write!(res, " gpus={}", r.gpus);
            if let Some(t) = &r.gpu_type {
                let _ = write!(res, " gpu_type={}", shown(t));
            }
        }
        let _ = writeln!(s, "  executor: {} ({})  {res}", e.name, e.backend.kind());
        let mut shape = Vec::new();
        if let Some(l) = step.launcher {
            shape.push(format!("launcher={}", l.as_str()));
        }
        if let Some(p) = step.pack {
            shape.push(format!("pack={} parallel={}", p.tasks, p.parallel));
        }
        if let Some(g) = &step.group {
            shape.push(format!("group={}", shown(g)));
        }
        if !shape.is_empty() {
            let _ = writeln!(s, "  shape: {}", shape.join(" "));
        }
        let deps = plan.dependencies(id);
        if !deps.is_empty() {
            let shown: Vec<String> = deps.iter().take(8).map(|d| format!("#{d}")).collect();
            let more = if deps.len() > 8 {
                format!(" (+{} more)", deps.len() - 8)
            } else {
                String::new()
            };
            let _ = writeln!(s, "  after: {}{more}", shown.join(" "));
        }
        for line in plan.task(id).command.lines() {
            let _ = writeln!(s, "  $ {}", shown(line));
        }
    }
    let _ = writeln!(s, "{}", count(plan.task_count() as u64, "task"));
    s
}
