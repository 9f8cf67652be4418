//! The command line, declared with clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Workflow orchestration for coupled digital twins on HPC.
///
/// Exit codes: 0 success, 1 a task failed, 2 invalid workflow or arguments,
/// 3 could not reach the daemon, scheduler or store, 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "twinflow", version, about, long_about)]
pub(crate) struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// When stderr is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a workflow and summarise its tasks per step.
    Validate(CompileArgs),
    /// Print the task DAG: ids, dependencies, commands, executors, resources.
    Plan {
        #[command(flatten)]
        compile: CompileArgs,
        /// Print the documented JSON form (docs/plan-json.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Draw the step graph (or the task graph) as Graphviz dot or Mermaid.
    Graph {
        #[command(flatten)]
        compile: CompileArgs,
        /// Draw every task instead of every step.
        #[arg(long)]
        tasks: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Print the JSON Schema of workflow files (or of site files).
    Schema {
        /// The site-file schema instead.
        #[arg(long)]
        site: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Graph formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// What every compiling command takes.
#[derive(Debug, Args)]
pub(crate) struct CompileArgs {
    /// The workflow file.
    pub file: PathBuf,
    /// Override a parameter: `key=value`; a list parameter takes `a,b,c`.
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Rebind executor roles to the backends of a site file.
    #[arg(long, value_name = "FILE")]
    pub site: Option<PathBuf>,
    /// Bind every executor to a local one (runs anywhere).
    #[arg(long)]
    pub local: bool,
    /// Refuse workflows with more tasks than this.
    #[arg(long, value_name = "N", default_value_t = twinflow_workflow::DEFAULT_MAX_TASKS)]
    pub max_tasks: usize,
}
