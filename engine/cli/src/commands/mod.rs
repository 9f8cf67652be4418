//! One function per subcommand, each returning its exit code.

mod control;
pub(crate) mod cwl;
mod daemon;
mod export;
mod graph;
mod inspect;
mod plan;
mod run;
mod status;
mod tui;
mod validate;
mod watch_tasks;

pub(crate) use control::act;
pub(crate) use cwl::{RunnerArgs, cwl_runner, cwl_step};
pub(crate) use daemon::{cancel, daemon, submit, watch};
pub(crate) use export::{provenance, report};
pub(crate) use graph::graph;
pub(crate) use inspect::{LogsArgs, logs, runs};
pub(crate) use plan::plan;
pub(crate) use run::run;
pub(crate) use status::status;
pub(crate) use tui::tui;
pub(crate) use validate::validate;
pub(crate) use watch_tasks::watch_tasks;

/// `twinflow worker MANIFEST`: exit 0 once every task of the pack ended
/// (their outcomes are in their status files), 2 on an unreadable manifest.
pub(crate) fn worker(out: &Output, manifest: &std::path::Path) -> u8 {
    match twinflow_executor_slurm::worker::run_pack(
        manifest,
        twinflow_executor_slurm::worker::allocated_cpus(),
    ) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            out.error(&e);
            exit::INVALID
        }
    }
}

/// `twinflow local-supervisor [DIR]`: the supervisor of one local
/// executor's tasks (see `twinflow_executor_local::supervise`).
pub(crate) fn local_supervisor(out: &Output, dir: Option<&std::path::Path>) -> u8 {
    match twinflow_executor_local::supervise(dir) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            out.error(&e.to_string());
            exit::UNREACHABLE
        }
    }
}

/// `twinflow cloud-task DIR`: exit 0 once the attempt's exit record is
/// written (its outcome is in there), 3 when not even that could be.
pub(crate) fn cloud_task(out: &Output, dir: &std::path::Path) -> u8 {
    match twinflow_executor_cloud::runner::run(dir) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            out.error(&e);
            exit::UNREACHABLE
        }
    }
}

use crate::args::CompileArgs;
use crate::exit;
use crate::output::Output;
use clap::CommandFactory;
use twinflow_workflow::{CompileOptions, Plan, SiteSource, compile_file, parse_param_arg};

/// Compiles the file named on the command line, or reports why not (exit 2).
fn compile(out: &Output, args: &CompileArgs) -> Result<Plan, u8> {
    compile_for_run(out, args, None)
}

/// Compiles for a run: `run.id` becomes `run_id` when given.
fn compile_for_run(out: &Output, args: &CompileArgs, run_id: Option<&str>) -> Result<Plan, u8> {
    if cwl::is_cwl(&args.file) {
        return cwl::compile_for_run(out, args, run_id);
    }
    if let Some(job) = &args.job {
        out.error(&format!(
            "{}: a job object is for a CWL document (.cwl); a YAML workflow takes --param",
            job.display()
        ));
        return Err(exit::INVALID);
    }
    if let Some(bind) = &args.bind {
        out.error(&format!(
            "{}: a binding file is for a CWL document's abstract steps (.cwl)",
            bind.display()
        ));
        return Err(exit::INVALID);
    }
    let mut options = CompileOptions {
        local: args.local,
        max_tasks: args.max_tasks,
        ..CompileOptions::default()
    };
    if let Some(id) = run_id {
        options.run_id = id.to_owned();
    }
    for raw in &args.params {
        match parse_param_arg(raw) {
            Ok(kv) => options.params.push(kv),
            Err(d) => {
                out.diagnostic(&d);
                return Err(exit::INVALID);
            }
        }
    }
    options.site = read_site(out, args)?;
    let plan = compile_file(&args.file, &options).map_err(|e| {
        out.compile_error(&args.file.display().to_string(), &e);
        exit::INVALID
    })?;
    for warning in validate::plain_http_sources(&plan) {
        out.warning(&warning);
    }
    Ok(plan)
}

/// The site file `--site` names, read; an unreadable one is reported (exit 2).
fn read_site(out: &Output, args: &CompileArgs) -> Result<Option<SiteSource>, u8> {
    let Some(site) = &args.site else {
        return Ok(None);
    };
    SiteSource::read(site).map(Some).map_err(|e| {
        out.compile_error(&site.display().to_string(), &e);
        exit::INVALID
    })
}

pub(crate) fn schema(out: &Output, site: bool) -> u8 {
    let schema = if site {
        twinflow_workflow::site_schema()
    } else {
        twinflow_workflow::workflow_schema()
    };
    match serde_json::to_string_pretty(&schema) {
        Ok(text) => {
            out.print(&text);
            out.print("\n");
            exit::SUCCESS
        }
        Err(e) => {
            out.error(&format!("failed to write the schema: {e}"));
            exit::INVALID
        }
    }
}

pub(crate) fn completions(shell: clap_complete::Shell) -> u8 {
    let mut cmd = crate::args::Cli::command();
    clap_complete::generate(shell, &mut cmd, "twinflow", &mut std::io::stdout());
    exit::SUCCESS
}
