//! `twinflow cwl-runner` (the CWL conformance runner contract: `--outdir DIR
//! --quiet TOOL [JOB]`, the output object as JSON on stdout, exit 33 for an
//! unsupported feature) and `twinflow cwl-step`, what the tasks of a CWL
//! plan run. The runner compiles the document into a plan and runs it with
//! the engine in a private state directory, as `twinflow run` would.

use crate::exit;
use crate::output::Output;
use crate::plumbing::{build_engine, runtime};
use std::path::{Path, PathBuf};
use twinflow_cwl::{CwlError, CwlInput, ErrorKind, step};
use twinflow_engine::{Outcome, RunOptions};

/// The contract's exit code for an unsupported feature.
pub(crate) const UNSUPPORTED: u8 = 33;

/// `twinflow cwl-step`: runs the tool in the current directory (the task's).
pub(crate) fn cwl_step(out: &Output, args: &step::StepArgs) -> u8 {
    let dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            out.error(&format!("cannot find the working directory: {e}"));
            return exit::TASK_FAILED;
        }
    };
    step::main(args, &dir) as u8
}

/// Arguments of `twinflow cwl-runner`.
#[derive(Debug, Clone)]
pub(crate) struct RunnerArgs {
    pub(crate) outdir: PathBuf,
    pub(crate) document: PathBuf,
    pub(crate) job: Option<PathBuf>,
    pub(crate) keep: bool,
    pub(crate) bind: Option<PathBuf>,
}

fn code_of(e: &CwlError) -> u8 {
    match e.kind {
        ErrorKind::Unsupported => UNSUPPORTED,
        ErrorKind::Invalid => exit::INVALID,
        ErrorKind::Failed | ErrorKind::Io => exit::TASK_FAILED,
    }
}

/// `twinflow cwl-runner`.
pub(crate) fn cwl_runner(out: &Output, args: &RunnerArgs) -> u8 {
    let runner = match runner_binary(out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let input = CwlInput {
        document: args.document.clone(),
        job: args.job.clone(),
        run_id: twinflow_engine::new_run_id_for_file(&args.document),
        runner,
        site: None,
        local: false,
        bind: args.bind.clone(),
        max_tasks: twinflow_workflow::DEFAULT_MAX_TASKS,
    };
    let compiled = match twinflow_cwl::compile(&input) {
        Ok(c) => c,
        Err(e) => {
            out.error(&e.to_string());
            return code_of(&e);
        }
    };
    let state = match tempfile::Builder::new().prefix("twinflow-cwl-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            out.error(&format!("cannot create a state directory: {e}"));
            return exit::UNREACHABLE;
        }
    };
    let outdir = match std::path::absolute(&args.outdir) {
        Ok(p) => p,
        Err(e) => {
            out.error(&format!(
                "cannot resolve --outdir {}: {e}",
                args.outdir.display()
            ));
            return exit::INVALID;
        }
    };
    let code = run_and_collect(out, state.path(), compiled, &outdir);
    if args.keep {
        let kept = state.keep();
        eprintln!("state kept in {}", kept.display());
    }
    code
}

fn run_and_collect(
    out: &Output,
    state: &Path,
    compiled: twinflow_cwl::Compiled,
    outdir: &Path,
) -> u8 {
    let engine = match build_engine(out, state, None) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let rt = match runtime(out) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = RunOptions {
        cache: false,
        ..RunOptions::default()
    };
    let result = rt.block_on(async {
        let run = engine.submit(compiled.plan, options).await?;
        run.wait().await
    });
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            out.error(&format!("the run failed to start: {e}"));
            return exit::UNREACHABLE;
        }
    };
    let workdir = step::task_dir(&summary.run_dir, &compiled.step, 0);
    if summary.outcome != Outcome::Succeeded {
        return match step::read_error(&workdir) {
            Some(e) => {
                out.error(&e.to_string());
                code_of(&e)
            }
            None => {
                out.error(&format!(
                    "the run ended {:?}; logs under {}",
                    summary.outcome,
                    workdir.display()
                ));
                exit::TASK_FAILED
            }
        };
    }
    let collected = step::read_outputs(&workdir).and_then(|mut v| {
        twinflow_cwl::runner::relocate(&mut v, outdir, Some(&summary.run_dir))?;
        Ok(v)
    });
    match collected {
        Ok(v) => {
            out.print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            ));
            exit::SUCCESS
        }
        Err(e) => {
            out.error(&e.to_string());
            code_of(&e)
        }
    }
}

/// This `twinflow` binary: what the tasks of a CWL plan run.
fn runner_binary(out: &Output) -> Result<std::path::PathBuf, u8> {
    std::env::current_exe().map_err(|e| {
        out.error(&format!("cannot find the twinflow binary: {e}"));
        exit::UNREACHABLE
    })
}

/// Whether `file` names a CWL document (`.cwl`, perhaps with `#id`).
pub(crate) fn is_cwl(file: &Path) -> bool {
    let (file, _) = twinflow_cwl::load::split_fragment(file);
    file.extension().is_some_and(|e| e == "cwl")
}

/// `run`, `plan`, `graph` and `validate` of a CWL document and its job.
pub(crate) fn compile_for_run(
    out: &Output,
    args: &crate::args::CompileArgs,
    run_id: Option<&str>,
) -> Result<twinflow_core::Plan, u8> {
    if !args.params.is_empty() {
        out.error("--param does not apply to a CWL document: give its inputs in a job object");
        return Err(exit::INVALID);
    }
    let input = CwlInput {
        document: args.file.clone(),
        job: args.job.clone(),
        run_id: run_id.map_or_else(|| twinflow_workflow::DRY_RUN_ID.to_owned(), str::to_owned),
        runner: runner_binary(out)?,
        site: super::read_site(out, args)?,
        local: args.local,
        bind: args.bind.clone(),
        max_tasks: args.max_tasks,
    };
    match twinflow_cwl::compile(&input) {
        Ok(c) => Ok(c.plan),
        Err(e) => {
            // Exit 33 is the conformance runner's; for `run` and `validate`
            // an unsupported feature is an input twinflow cannot take.
            out.error(&e.to_string());
            Err(exit::INVALID)
        }
    }
}

/// `validate DOC.cwl` without a job object: the document alone (its plan
/// needs the job's values to count tasks).
pub(crate) fn validate_document(out: &Output, args: &crate::args::CompileArgs) -> u8 {
    match twinflow_cwl::check_document(&args.file, args.bind.as_deref()) {
        Ok(process) => {
            out.print(&format!(
                "{}: CWL {:?} is valid ({} inputs, {} outputs); give a job object to see its tasks\n",
                args.file.display(),
                process.class,
                process.inputs.len(),
                process.outputs.len()
            ));
            exit::SUCCESS
        }
        Err(e) => {
            out.error(&e.to_string());
            exit::INVALID
        }
    }
}
