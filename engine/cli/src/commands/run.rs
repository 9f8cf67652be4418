//! `twinflow run`: compiles a workflow and runs it in this process, showing
//! progress, until it ends or is interrupted (SIGINT/SIGTERM cancel it).

use super::compile_for_run;
use super::inspect::{open_store, state_dir};
use crate::args::{CompileArgs, RunArgs};
use crate::exit;
use crate::output::Output;
use crate::progress::{Mode, Reporter, summary_text};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use twinflow_core::ExecutorKind;
use twinflow_engine::{Engine, Outcome, RunOptions, RunState, RunSummary};
use twinflow_executor_cloud::{CloudFactory, RunnerBinary};
use twinflow_executor_local::{LocalFactory, SlotPool, SupervisorBinary};
use twinflow_executor_slurm::SlurmFactory;

pub(crate) fn run(out: &Output, args: &RunArgs) -> u8 {
    let dir = state_dir(&args.state);
    let (run_id, stored) = match pick_run_id(out, args, &dir) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let compile = match stored {
        Some(stored) => with_stored_settings(&args.compile, &stored),
        None => args.compile.clone(),
    };
    let plan = match compile_for_run(out, &compile, Some(&run_id)) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let sinks = sink_steps(&plan);
    let engine = match build_engine(out, &dir, None) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let options = RunOptions {
        resume: args.resume.is_some(),
        cache: !args.no_cache,
        fail_fast: args.fail_fast,
        default_slots: args.slots,
        args: stored_args(args),
    };
    let mode = if args.json {
        Mode::Json
    } else if std::io::stderr().is_terminal() {
        Mode::Live
    } else {
        Mode::Lines {
            verbose: args.verbose,
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&format!("failed to start the async runtime: {e}"));
            return exit::UNREACHABLE;
        }
    };
    let result = runtime.block_on(drive(engine, plan, options, mode));
    match result {
        Ok((summary, interrupted)) => {
            if mode != Mode::Json {
                eprint!("{}", summary_text(&summary, interrupted));
                if summary.outcome == Outcome::Succeeded {
                    print_results(&dir, &summary, &sinks);
                } else {
                    eprintln!(
                        "  take it up again with: twinflow run --resume={} {}",
                        summary.run_id,
                        args.compile.file.display()
                    );
                }
            }
            let code = match summary.outcome {
                Outcome::Succeeded => exit::SUCCESS,
                Outcome::Failed => exit::TASK_FAILED,
                Outcome::Cancelled => exit::INTERRUPTED,
            };
            let exported = write_exports(out, args, &dir, &summary.run_id);
            if code == exit::SUCCESS {
                exported
            } else {
                code
            }
        }
        Err(RunError::Engine(e)) => {
            out.error(&e.to_string());
            match e {
                twinflow_engine::EngineError::State(_) => exit::UNREACHABLE,
                _ => exit::INVALID,
            }
        }
        Err(RunError::Signals(e)) => {
            out.error(&format!("failed to install signal handlers: {e}"));
            exit::UNREACHABLE
        }
    }
}

/// `--provenance` and `--report`: the exports of the run just ended.
fn write_exports(out: &Output, args: &RunArgs, dir: &Path, run_id: &str) -> u8 {
    if args.provenance.is_none() && args.report.is_none() {
        return exit::SUCCESS;
    }
    let options = twinflow_report::CrateOptions::default();
    super::export::export(
        out,
        dir,
        run_id,
        args.provenance.as_deref().map(|p| (p, &options)),
        args.report.as_deref(),
    )
}

enum RunError {
    Engine(twinflow_engine::EngineError),
    Signals(std::io::Error),
}

async fn drive(
    engine: Engine,
    plan: twinflow_core::Plan,
    options: RunOptions,
    mode: Mode,
) -> Result<(RunSummary, bool), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut handle = engine
        .submit(plan, options)
        .await
        .map_err(RunError::Engine)?;
    let mut reporter = Reporter::new(mode);
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut interrupted = false;
    loop {
        tokio::select! {
            event = handle.next_event() => match event {
                Some(event) => reporter.event(&event),
                None => break,
            },
            _ = sigint.recv() => interrupt(&handle, &reporter, &mut interrupted),
            _ = sigterm.recv() => interrupt(&handle, &reporter, &mut interrupted),
            _ = ticks.tick() => reporter.tick(),
        }
    }
    let summary = handle.wait().await.map_err(RunError::Engine)?;
    Ok((summary, interrupted))
}

fn interrupt(handle: &twinflow_engine::RunHandle, reporter: &Reporter, interrupted: &mut bool) {
    if !*interrupted {
        reporter.note(
            "interrupted: cancelling the run (running tasks get SIGTERM, then SIGKILL after 5 s)",
        );
    }
    *interrupted = true;
    handle.cancel();
}

/// A resumed run compiles with the parameters, site file and `--local` it
/// was started with, unless the command line gives any of them.
fn with_stored_settings(given: &CompileArgs, stored: &str) -> CompileArgs {
    if !given.params.is_empty() || given.site.is_some() || given.local {
        return given.clone();
    }
    let (args, shown) = stored_settings(given, stored);
    if !shown.is_empty() {
        eprintln!("resuming with the run's settings: {}", shown.join(" "));
    }
    args
}

/// `given` with the parameters, site file and `--local` of a run's stored
/// settings (`runs.args`), and those settings as command-line words.
pub(super) fn stored_settings(given: &CompileArgs, stored: &str) -> (CompileArgs, Vec<String>) {
    let mut args = given.clone();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(stored) else {
        return (args, Vec::new());
    };
    args.params = v["params"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    args.site = v["site"].as_str().map(PathBuf::from);
    args.local = v["local"].as_bool().unwrap_or(false);
    let mut shown: Vec<String> = args.params.iter().map(|p| format!("-p {p}")).collect();
    if let Some(site) = &args.site {
        shown.push(format!("--site {}", site.display()));
    }
    if args.local {
        shown.push("--local".to_owned());
    }
    (args, shown)
}

/// A new run id, or the id of the run `--resume` takes up (with the
/// settings it was started with).
fn pick_run_id(out: &Output, args: &RunArgs, dir: &Path) -> Result<(String, Option<String>), u8> {
    let Some(wanted) = &args.resume else {
        return Ok((
            twinflow_engine::new_run_id_for_file(&args.compile.file),
            None,
        ));
    };
    let store = open_store(out, dir)?;
    let found = if wanted.is_empty() {
        let file =
            std::fs::canonicalize(&args.compile.file).unwrap_or_else(|_| args.compile.file.clone());
        store.latest_run_of_file(&file.display().to_string())
    } else {
        store.run(wanted)
    };
    match found {
        Ok(Some(run)) if run.state == RunState::Succeeded && wanted.is_empty() => {
            out.error(&format!(
                "the newest run of {} ({}) already succeeded; run it again without --resume \
                 (unchanged tasks come from the cache)",
                args.compile.file.display(),
                run.id
            ));
            Err(exit::INVALID)
        }
        Ok(Some(run)) => Ok((run.id, Some(run.args))),
        Ok(None) if wanted.is_empty() => {
            out.error(&format!(
                "no earlier run of {} in {} to resume",
                args.compile.file.display(),
                dir.display()
            ));
            Err(exit::INVALID)
        }
        Ok(None) => {
            out.error(&format!("no run `{wanted}` in {} to resume", dir.display()));
            Err(exit::INVALID)
        }
        Err(e) => {
            out.error(&e.to_string());
            Err(exit::UNREACHABLE)
        }
    }
}

/// What `status` shows about how the run was started.
fn stored_args(args: &RunArgs) -> String {
    serde_json::json!({
        "file": args.compile.file.display().to_string(),
        "params": args.compile.params,
        // Absolute, so that exports and resumes from another directory find it.
        "site": args.compile.site.as_ref().map(|s| {
            std::fs::canonicalize(s)
                .unwrap_or_else(|_| s.clone())
                .display()
                .to_string()
        }),
        "local": args.compile.local,
    })
    .to_string()
}

/// Steps nothing depends on, whose results a user looks for first.
fn sink_steps(plan: &twinflow_core::Plan) -> Vec<(u32, String, u32)> {
    plan.sink_steps()
        .into_iter()
        .map(|i| &plan.steps[i])
        .filter(|s| !s.outputs.is_empty())
        .map(|s| (s.tasks.start, s.name.clone(), s.tasks.len() as u32))
        .collect()
}

/// Lists the outputs of the final steps (when there are a few).
fn print_results(dir: &Path, summary: &RunSummary, sinks: &[(u32, String, u32)]) {
    let Ok(store) = twinflow_engine::StateStore::open(dir) else {
        return;
    };
    let mut lines = Vec::new();
    for (first, _, count) in sinks {
        if *count > 5 {
            continue;
        }
        for task in *first..first + count {
            for a in store.artefacts(&summary.run_id, task).unwrap_or_default() {
                lines.push(format!("  {}: {}", a.output, a.path));
            }
        }
    }
    if !lines.is_empty() {
        eprintln!("results:\n{}", lines.join("\n"));
    }
    eprintln!("  all files: {}", summary.run_dir.display());
}

/// The engine of state directory `dir`, with every backend this binary has;
/// local tasks of all its runs share `pool` if given (the daemon).
pub(crate) fn build_engine(
    out: &Output,
    dir: &Path,
    pool: Option<Arc<SlotPool>>,
) -> Result<Engine, u8> {
    let local = match pool {
        Some(pool) => local_factory().with_pool(pool),
        None => local_factory(),
    };
    Engine::builder()
        .state_dir(dir)
        .executor(ExecutorKind::Local, local)
        .executor(ExecutorKind::Slurm, slurm_factory())
        .executor(ExecutorKind::Cloud, cloud_factory())
        .build()
        .map_err(|e| {
            out.error(&e.to_string());
            exit::UNREACHABLE
        })
}

/// The local backend; its tasks' supervisor is this binary's
/// `local-supervisor` command, a process of its own that outlives a killed
/// twinflow with its tasks.
fn local_factory() -> LocalFactory {
    let factory = LocalFactory::default();
    match std::env::current_exe() {
        Ok(path) => factory.with_supervisor(SupervisorBinary {
            path,
            args: vec!["local-supervisor".to_owned()],
        }),
        Err(_) => factory,
    }
}

/// The cloud backend; its runner on the VM is this binary's `cloud-task`
/// command, uploaded there.
fn cloud_factory() -> CloudFactory {
    let factory = CloudFactory::default();
    match std::env::current_exe() {
        Ok(path) => factory.with_runner(RunnerBinary {
            path,
            args: vec!["cloud-task".to_owned()],
        }),
        Err(_) => factory,
    }
}

/// The Slurm backend; packed jobs run this binary's `worker` command: on
/// the login node at this path, which the cluster's nodes must share (true
/// of a login node's home or project directory); over SSH the executor
/// uploads it (unless the executor's `twinflow:` names one there).
fn slurm_factory() -> SlurmFactory {
    let factory = SlurmFactory::default();
    match std::env::current_exe() {
        Ok(exe) => factory.with_worker(exe),
        Err(_) => factory,
    }
}
