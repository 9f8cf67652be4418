//! The `twinflow` command: parses arguments, runs a command, renders its
//! result and maps it to a documented exit code. No scheduling logic here.

mod args;
mod commands;
mod exit;
mod output;

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
        Command::Schema { site } => commands::schema(&out, site),
        Command::Completions { shell } => commands::completions(shell),
    };
    ExitCode::from(code)
}
