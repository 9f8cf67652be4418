//! The `twinflow` command: parses arguments, runs a command, renders its
//! result and maps it to a documented exit code. No scheduling logic here.

mod args;
mod commands;
mod exit;
mod output;
mod plumbing;
mod progress;
mod term;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = output::Output::new(cli.color);
    let code = match cli.command {
        Command::Validate(compile) => commands::validate(&out, &compile),
        Command::Plan { compile, json } => commands::plan(&out, &compile, json),
        Command::Graph {
            compile,
            tasks,
            format,
        } => commands::graph(&out, &compile, tasks, format),
        Command::Run(args) => commands::run(&out, &args),
        Command::Runs {
            state,
            daemon,
            json,
        } => commands::runs(&out, &state, &daemon, json),
        Command::Status {
            run,
            state,
            daemon,
            list,
            json,
        } => commands::status(&out, &state, &daemon, run.as_deref(), &list, json),
        Command::Tui { run, state, daemon } => commands::tui(&out, &state, &daemon, run.as_deref()),
        Command::Logs {
            run,
            task,
            state,
            daemon,
            attempt,
            stream,
            follow,
        } => {
            let wanted = commands::LogsArgs {
                run: &run,
                task: &task,
                attempt,
                stream,
                follow,
            };
            commands::logs(&out, &state, &daemon, &wanted)
        }
        Command::Provenance {
            run,
            out: dir,
            max_file_bytes,
            license,
            allow_altered,
            state,
        } => commands::provenance(
            &out,
            &state,
            &run,
            &dir,
            max_file_bytes,
            license,
            allow_altered,
        ),
        Command::Report {
            run,
            out: file,
            state,
        } => commands::report(&out, &state, &run, &file),
        Command::Schema { site } => commands::schema(&out, site),
        Command::Completions { shell } => commands::completions(shell),
        Command::CwlRunner {
            outdir,
            quiet: _,
            keep_state,
            bind,
            document,
            job,
        } => commands::cwl_runner(
            &out,
            &commands::RunnerArgs {
                outdir,
                document,
                job,
                keep: keep_state,
                bind,
            },
        ),
        Command::CwlStep {
            tool,
            job,
            step,
            collect,
            scattered,
            from,
            bind,
            run: _,
        } => {
            let mode = match (step, collect) {
                (Some(id), _) => twinflow_cwl::step::Mode::Step { id, scattered },
                (None, true) => twinflow_cwl::step::Mode::Collect,
                (None, false) => twinflow_cwl::step::Mode::Whole,
            };
            let args = twinflow_cwl::step::StepArgs {
                document: tool,
                mode,
                job,
                from,
                bind,
            };
            commands::cwl_step(&out, &args)
        }
        Command::Worker { manifest } => commands::worker(&out, &manifest),
        Command::CloudTask { dir } => commands::cloud_task(&out, &dir),
        Command::LocalSupervisor { dir } => commands::local_supervisor(&out, dir.as_deref()),
        Command::Daemon { action } => commands::daemon(&out, &action),
        Command::Submit(args) => commands::submit(&out, &args),
        Command::Watch {
            run,
            selectors,
            state,
            daemon,
            json,
        } if !selectors.is_empty() => {
            commands::watch_tasks(&out, &state, &daemon, &run, &selectors, json)
        }
        Command::Watch {
            run,
            state,
            daemon,
            json,
            ..
        } => commands::watch(&out, &state, &daemon, &run, json),
        Command::Cancel { run, state, daemon } => commands::cancel(&out, &state, &daemon, &run),
        Command::Hold(a) => act(&out, a, twinflow_engine::ActionKind::Hold),
        Command::Release(a) => act(&out, a, twinflow_engine::ActionKind::Release),
        Command::Kill(a) => act(&out, a, twinflow_engine::ActionKind::Kill),
        Command::Rerun { action, downstream } => {
            let kind = if downstream {
                twinflow_engine::ActionKind::RerunDownstream
            } else {
                twinflow_engine::ActionKind::Rerun
            };
            act(&out, action, kind)
        }
        Command::Trigger(a) => act(&out, a, twinflow_engine::ActionKind::Trigger),
        Command::Set { action, outcome } => {
            let kind = match outcome {
                args::SetOutcome::Succeeded => twinflow_engine::ActionKind::SetSucceeded,
                args::SetOutcome::Failed => twinflow_engine::ActionKind::SetFailed,
            };
            act(&out, action, kind)
        }
    };
    ExitCode::from(code)
}

fn act(out: &output::Output, a: args::ActionArgs, kind: twinflow_engine::ActionKind) -> u8 {
    commands::act(out, &a.state, &a.daemon, &a.run, kind, &a.selectors)
}
