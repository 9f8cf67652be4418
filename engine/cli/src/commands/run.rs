//! `twinflow run`: compiles a workflow and runs it in this process, showing
//! progress, until it ends or is interrupted (SIGINT/SIGTERM cancel it).
//! While it runs it serves its own socket ([`twinflow_daemon::RunSocket`]),
//! so that operator actions, `status`, `logs --follow` and `watch` reach it
//! without a daemon. Without a daemon, `twinflow rerun` of an ended run
//! takes it up here the same way ([`take_up_for_rerun`]).

use super::compile_for_run;
use crate::args::{CompileArgs, RunArgs};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{build_engine, find_run, open_store, runtime, state_dir, stored_settings};
use crate::progress::{Mode, Reporter, summary_text};
use crate::term::shown;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;
use twinflow_engine::{Engine, Outcome, RunInfo, RunOptions, RunSettings, RunState, RunSummary};

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
        ..RunOptions::default()
    };
    let mode = mode(args.json, args.verbose);
    let runtime = match runtime(out) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(drive(engine, plan, options, mode));
    let file = resume_words(&args.compile);
    let code = ended(out, result, mode, &file, |summary| {
        print_results(&dir, summary, &sinks);
    });
    match code {
        Ended::Run { code, run_id } => {
            let exported = write_exports(out, args, &dir, &run_id);
            if code == exit::SUCCESS {
                exported
            } else {
                code
            }
        }
        Ended::Failed(code) => code,
    }
}

/// How a run driven here ended.
enum Ended {
    /// It ran to its end: its exit code and id.
    Run { code: u8, run_id: String },
    /// It could not start (reported): the exit code.
    Failed(u8),
}

/// Prints how a run driven here ended (its summary, and `results` of a
/// succeeded one) and its exit code: 0, 1 when tasks failed, 130 when
/// interrupted.
fn ended(
    out: &Output,
    result: Result<(RunSummary, bool), RunError>,
    mode: Mode,
    file: &str,
    results: impl FnOnce(&RunSummary),
) -> Ended {
    match result {
        Ok((summary, interrupted)) => {
            if mode != Mode::Json {
                eprint!("{}", summary_text(&summary, interrupted));
                if summary.outcome == Outcome::Succeeded {
                    results(&summary);
                } else {
                    eprintln!(
                        "  take it up again with: twinflow run --resume={} {}",
                        shown(&summary.run_id),
                        file
                    );
                }
            }
            let code = match summary.outcome {
                Outcome::Succeeded => exit::SUCCESS,
                Outcome::Failed => exit::TASK_FAILED,
                Outcome::Cancelled => exit::INTERRUPTED,
            };
            Ended::Run {
                code,
                run_id: summary.run_id,
            }
        }
        Err(RunError::Engine(twinflow_engine::EngineError::Action(e))) => {
            out.error(&e.to_string());
            Ended::Failed(if e.is_bad_request() {
                exit::INVALID
            } else {
                exit::UNREACHABLE
            })
        }
        Err(RunError::Engine(e)) => {
            out.error(&e.to_string());
            Ended::Failed(match e {
                twinflow_engine::EngineError::State(_) => exit::UNREACHABLE,
                _ => exit::INVALID,
            })
        }
        Err(RunError::Signals(e)) => {
            out.error(&format!("failed to install signal handlers: {e}"));
            Ended::Failed(exit::UNREACHABLE)
        }
    }
}

/// The progress display a run driven here gets: JSON events, live bars on
/// a terminal, else lines.
fn mode(json: bool, verbose: bool) -> Mode {
    if json {
        Mode::Json
    } else if std::io::stderr().is_terminal() {
        Mode::Live
    } else {
        Mode::Lines { verbose }
    }
}

/// `twinflow rerun RUN SEL…` of a run that has ended, without a daemon:
/// the run is taken up in this process as `twinflow run --resume` takes it
/// up (its plan compiled again from its stored settings, and refused when
/// its workflow changed), with the rerun journalled and applied first
/// ([`RunOptions::rerun`]); the same progress, summary and exit code.
pub(crate) fn take_up_for_rerun(
    out: &Output,
    dir: &Path,
    info: &RunInfo,
    action: twinflow_engine::OperatorAction,
) -> u8 {
    let Some(file) = info.file.clone() else {
        out.error(&format!(
            "cannot take run `{}` up again: its workflow file is not recorded",
            shown(&info.id)
        ));
        return exit::INVALID;
    };
    let settings = info.settings();
    let given = CompileArgs {
        file: settings.file.clone().unwrap_or(file).into(),
        job: None,
        bind: None,
        params: Vec::new(),
        site: None,
        local: false,
        max_tasks: twinflow_workflow::DEFAULT_MAX_TASKS,
    };
    let (compile, _) = stored_settings(&given, &settings);
    let plan = match compile_for_run(out, &compile, Some(&info.id)) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let sinks = sink_steps(&plan);
    let engine = match build_engine(out, dir, None) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let options = RunOptions {
        resume: true,
        args: settings,
        rerun: Some(action),
        ..RunOptions::default()
    };
    let mode = mode(false, false);
    let runtime = match runtime(out) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    eprintln!(
        "run {} has ended and no daemon runs: taking it up here",
        shown(&info.id)
    );
    let result = runtime.block_on(drive(engine, plan, options, mode));
    let file = resume_words(&compile);
    match ended(out, result, mode, &file, |summary| {
        print_results(dir, summary, &sinks);
    }) {
        Ended::Run { code, .. } | Ended::Failed(code) => code,
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
    if let Some(report) = handle.taken_up_by() {
        eprintln!(
            "rerunning {} task(s) of {} (action {}){}",
            report.applied.len(),
            shown(handle.run_id()),
            report.seq,
            match report.skipped {
                0 => String::new(),
                n => format!("; {n} selected task(s) left as they are"),
            }
        );
    }
    let mut reporter = Reporter::new(mode);
    // Operator actions, `status`, `logs --follow` and `watch` reach the
    // run through its own socket while it runs.
    let mut socket = match twinflow_daemon::RunSocket::serve(&engine, &handle) {
        Ok(socket) => Some(socket),
        Err(e) => {
            reporter.note(&format!(
                "the run takes no operator actions (its socket failed: {e})"
            ));
            None
        }
    };
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut interrupted = false;
    loop {
        tokio::select! {
            event = handle.next_event() => match event {
                Some(event) => {
                    if let Some(socket) = &mut socket {
                        socket.event(&event);
                    }
                    reporter.event(&event);
                }
                None => break,
            },
            _ = sigint.recv() => interrupt(&handle, &reporter, &mut interrupted),
            _ = sigterm.recv() => interrupt(&handle, &reporter, &mut interrupted),
            _ = ticks.tick() => reporter.tick(),
        }
    }
    if let Some(socket) = socket {
        socket.close().await;
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
fn with_stored_settings(given: &CompileArgs, stored: &RunSettings) -> CompileArgs {
    if !given.params.is_empty() || given.site.is_some() || given.local {
        return given.clone();
    }
    let (args, words) = stored_settings(given, stored);
    if !words.is_empty() {
        let words: Vec<_> = words.iter().map(|w| shown(w)).collect();
        eprintln!("resuming with the run's settings: {}", words.join(" "));
    }
    args
}

/// A new run id, or the id of the run `--resume` takes up (with the
/// settings it was started with).
fn pick_run_id(
    out: &Output,
    args: &RunArgs,
    dir: &Path,
) -> Result<(String, Option<RunSettings>), u8> {
    let Some(wanted) = &args.resume else {
        return Ok((
            twinflow_engine::new_run_id_for_file(&args.compile.file),
            None,
        ));
    };
    let store = open_store(out, dir)?;
    if !wanted.is_empty() {
        return match find_run(out, &store, wanted)? {
            Some(run) => Ok((run.id.clone(), Some(run.settings()))),
            None => {
                out.error(&format!("no run `{wanted}` in {} to resume", dir.display()));
                Err(exit::INVALID)
            }
        };
    }
    // The newest run of this file that did not succeed.
    let file =
        std::fs::canonicalize(&args.compile.file).unwrap_or_else(|_| args.compile.file.clone());
    let file = file.display().to_string();
    let runs: Vec<RunInfo> = match store.runs() {
        Ok(runs) => runs
            .into_iter()
            .filter(|r| r.file.as_deref() == Some(file.as_str()))
            .collect(),
        Err(e) => {
            out.error(&e.to_string());
            return Err(exit::UNREACHABLE);
        }
    };
    if let Some(run) = runs.iter().find(|r| r.state != RunState::Succeeded) {
        return Ok((run.id.clone(), Some(run.settings())));
    }
    match runs.first() {
        Some(newest) => out.error(&format!(
            "the newest run of {} ({}) already succeeded, as did every earlier one; run it \
             again without --resume (unchanged tasks come from the cache)",
            args.compile.file.display(),
            shown(&newest.id)
        )),
        None => out.error(&format!(
            "no earlier run of {} in {} to resume",
            args.compile.file.display(),
            dir.display()
        )),
    }
    Err(exit::INVALID)
}

/// A path made absolute for the stored settings (resumes and exports may
/// run from another directory).
fn absolute_text(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The file (and a CWL document's job) as `run --resume` takes them,
/// quoted for a shell.
fn resume_words(compile: &CompileArgs) -> String {
    let mut words = shown(&compile.file.display().to_string()).into_owned();
    if let Some(job) = &compile.job {
        words.push(' ');
        words.push_str(&shown(&job.display().to_string()));
    }
    if let Some(bind) = &compile.bind {
        words.push_str(" --bind ");
        words.push_str(&shown(&bind.display().to_string()));
    }
    words
}

/// The settings stored with the run (`status --json` shows them as `args`).
fn stored_args(args: &RunArgs) -> RunSettings {
    RunSettings {
        file: Some(args.compile.file.display().to_string()),
        params: args.compile.params.clone(),
        // Absolute, so that exports and resumes from another directory find it.
        site: args.compile.site.as_ref().map(|s| {
            std::fs::canonicalize(s)
                .unwrap_or_else(|_| s.clone())
                .display()
                .to_string()
        }),
        local: args.compile.local,
        job: args.compile.job.as_ref().map(|j| absolute_text(j)),
        bind: args.compile.bind.as_ref().map(|b| absolute_text(b)),
    }
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
                lines.push(format!("  {}: {}", a.output, shown(&a.path)));
            }
        }
    }
    if !lines.is_empty() {
        eprintln!("results:\n{}", lines.join("\n"));
    }
    eprintln!(
        "  all files: {}",
        shown(&summary.run_dir.display().to_string())
    );
}
