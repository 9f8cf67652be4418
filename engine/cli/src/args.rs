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
    /// Run a workflow here and now, with live progress; exits 0 when every
    /// task succeeded, 1 when one failed, 130 when interrupted.
    Run(RunArgs),
    /// List the runs of the state directory, newest first.
    Runs {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a run: its state, per-step counts, failures and where its files are.
    Status {
        /// Run id, a unique prefix of one, or `latest` (default: the newest run).
        run: Option<String>,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(flatten)]
        list: StatusArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A terminal UI over a daemon: runs, per-step progress, a task table
    /// with filter and sort, a log that follows, and operator actions with
    /// confirmation (`?` lists the keys, `q` quits).
    Tui {
        /// Run id, a unique prefix of one, or `latest` (default: the list
        /// of runs).
        run: Option<String>,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Print the standard output and error of a task.
    Logs {
        /// Run id, a unique prefix of one, or `latest`.
        run: String,
        /// The task's name, as `status --tasks` lists it: `step[key=value]@point`.
        task: String,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
        /// Which attempt (default: the latest).
        #[arg(long)]
        attempt: Option<u32>,
        /// Only standard output, or only standard error.
        #[arg(long, value_enum)]
        stream: Option<Stream>,
        /// Keep printing what the attempt writes until it ends (its
        /// standard output to stdout, its standard error to stderr).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Write a run's provenance as a Workflow Run RO-Crate (Provenance Run
    /// Crate 0.5): a directory, or a zip archive when OUT ends in `.zip`.
    Provenance {
        /// Run id, a unique prefix of one, or `latest`.
        run: String,
        /// The crate directory or `.zip` file to write.
        #[arg(long, short = 'o', value_name = "DIR|FILE.zip")]
        out: PathBuf,
        /// Copy artefacts up to this many bytes into the crate (larger ones
        /// are described by path, size and SHA-256 only).
        #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
        max_file_bytes: u64,
        /// The crate's licence: an SPDX identifier (e.g. CC-BY-4.0), a URL or
        /// text (default: a sentence saying none was given).
        #[arg(long, value_name = "LICENSE")]
        license: Option<String>,
        /// Write the crate even when sealed files changed since the run:
        /// they are left out, marked as altered, and listed on stderr
        /// (without this, such files fail the export).
        #[arg(long)]
        allow_altered: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Write a run's report: one self-contained HTML file (step graph,
    /// timeline, counts and durations, failures with log tails, artefacts).
    Report {
        /// Run id, a unique prefix of one, or `latest`.
        run: String,
        /// The HTML file to write.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Print the JSON Schema of workflow files (or of site files).
    Schema {
        /// The site-file schema instead.
        #[arg(long)]
        site: bool,
    },
    /// The long-lived daemon that carries runs on a login node.
    Daemon {
        /// What to do.
        #[command(subcommand)]
        action: DaemonAction,
    },
    /// Hand a workflow to the daemon and return: prints the run id.
    Submit(SubmitArgs),
    /// Follow a run the daemon carries until it ends (exit code as `run`);
    /// with selectors, follow those tasks (their states and output) until
    /// they end.
    Watch {
        /// Run id, a unique prefix of one, or `latest`.
        run: String,
        /// Task names, step names, or globs over task names (`*`, `?`;
        /// quote them): follow only these tasks, printing their state
        /// changes and their output, until every one has ended (exit 0
        /// when all succeeded, 1 otherwise).
        #[arg(value_name = "SELECTOR")]
        selectors: Vec<String>,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
        /// Print the events as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run the daemon carries.
    Cancel {
        /// Run id, a unique prefix of one, or `latest`.
        run: String,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Hold tasks of a run the daemon carries: they do not start (running ones finish).
    Hold(ActionArgs),
    /// Release held tasks of a run the daemon carries.
    Release(ActionArgs),
    /// Kill running tasks of a run the daemon carries: they fail, not retried; their dependents are skipped.
    Kill(ActionArgs),
    /// Run finished tasks of a run the daemon carries again, as new
    /// attempts (never from the cache); their unfinished or skipped
    /// dependents wait for them (running ones are killed and run again).
    Rerun {
        #[command(flatten)]
        action: ActionArgs,
        /// Also run every finished dependent again, transitively.
        #[arg(long)]
        downstream: bool,
    },
    /// Start tasks of a run the daemon carries now, although their
    /// dependencies are not done: they run with their inputs as they are
    /// (missing ones are left out and named); a hold on them is lifted.
    Trigger(ActionArgs),
    /// Mark tasks of a run the daemon carries that are not running by hand:
    /// succeeded seals their declared outputs as they are in their task
    /// directory (refused if one is missing) and readies their dependents;
    /// failed fails them for good and skips their dependents.
    Set {
        #[command(flatten)]
        action: ActionArgs,
        /// What they become.
        #[arg(long, value_enum)]
        outcome: SetOutcome,
    },
    /// Run the tasks of a packed Slurm job (inside its allocation; the
    /// Slurm executor writes the job script that calls this).
    #[command(hide = true)]
    Worker {
        /// The pack's manifest.
        manifest: PathBuf,
    },
    /// Run one attempt of a cloud executor (on the VM; the cloud executor
    /// installs this binary there and starts it).
    #[command(hide = true)]
    CloudTask {
        /// The attempt's control directory (holding `task.json`).
        dir: PathBuf,
    },
    /// Supervise the tasks of one local executor (started by `twinflow run`
    /// and the daemon; requests on standard input, replies on standard
    /// output, records in DIR).
    #[command(hide = true)]
    LocalSupervisor {
        /// Where to keep its record file.
        dir: Option<PathBuf>,
    },
    /// Run a CWL document as the CWL conformance runner contract says:
    /// compile it and its job object into a plan, run it here with the local
    /// executor in a private state directory, copy the outputs into
    /// `--outdir` and print the output object as JSON (exit 33: a feature
    /// twinflow does not support).
    CwlRunner {
        /// Where the outputs go (default: the current directory).
        #[arg(long, default_value = ".")]
        outdir: PathBuf,
        /// Accepted for the contract; twinflow prints only the output object
        /// on stdout anyway.
        #[arg(long)]
        quiet: bool,
        /// Keep the private state directory (its path goes to stderr).
        #[arg(long)]
        keep_state: bool,
        /// The binding file of the document's abstract `Operation` steps.
        #[arg(long, value_name = "FILE")]
        bind: Option<PathBuf>,
        /// The CWL document (`tool.cwl` or `tool.cwl#id`).
        document: PathBuf,
        /// The job object (YAML or JSON).
        job: Option<PathBuf>,
    },
    /// Run one CWL tool in the current directory (what the tasks of a CWL
    /// plan run).
    #[command(hide = true)]
    CwlStep {
        /// The tool's document (`tool.cwl` or `tool.cwl#id`).
        #[arg(long)]
        tool: PathBuf,
        /// The job object, as JSON with absolute paths.
        #[arg(long)]
        job: String,
        /// Run this step of the document's workflow (not the whole document).
        #[arg(long, conflicts_with = "collect")]
        step: Option<String>,
        /// Assemble the workflow's output object from its producers.
        #[arg(long)]
        collect: bool,
        /// This task's scatter job: the scattered inputs' values (JSON).
        #[arg(long, requires = "step")]
        scattered: Option<String>,
        /// Where a producer's outputs are staged: STEP=OBJ|DIR;...[@DIMS].
        #[arg(long)]
        from: Vec<String>,
        /// The binding file of the workflow's abstract steps.
        #[arg(long)]
        bind: Option<PathBuf>,
        /// The run's id: given to steps with `WorkReuse: {enableReuse:
        /// false}`, it makes their command (so their cache key) unique to
        /// the run. Not otherwise used.
        #[arg(long)]
        run: Option<String>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `twinflow daemon ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DaemonAction {
    /// Start the daemon in the background (returns once it answers).
    Start {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Run the daemon in the foreground (for systemd); SIGTERM stops it.
    Run {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        serve: ServeArgs,
        /// Leave the terminal's session (what `start` asks of it).
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Stop the daemon; its runs are taken up by the next one.
    Stop {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Replace the token of the daemon's TCP listener without a restart:
    /// the new one is written to its access file, the old one is refused
    /// from then on (no grace period); runs go on. Through the Unix socket.
    RotateToken {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Whether a daemon runs, with its pid and runs.
    Status {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
}

/// How the daemon serves its runs.
#[derive(Debug, Args, Clone)]
pub(crate) struct ServeArgs {
    /// Cores that all runs' local tasks share (default: this machine's);
    /// each run also keeps to its own executors' `slots`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub slots: Option<u32>,
    /// Also listen on TCP at HOST:PORT (none by default), with HTTPS: the
    /// daemon makes a self-signed certificate on its first start and keeps
    /// it. Every request there needs the token of the access file
    /// `<state dir>/daemon/token` (mode 0600; refused if others may read
    /// it), which also holds the address and the certificate's SHA-256
    /// fingerprint that clients pin.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Speak plain HTTP on --listen instead of HTTPS: the token and
    /// everything else travel in clear (warned at start and in the log).
    #[arg(long, requires = "listen")]
    pub listen_plain_http: bool,
}

/// Which daemon a client command asks.
#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// The daemon to ask: `tcp://HOST:PORT` or `unix:SOCKET` (default:
    /// $TWINFLOW_DAEMON, else the socket of the state directory; `runs`,
    /// `status` and `logs` then read the state store when no daemon runs).
    #[arg(long, value_name = "URL")]
    pub daemon: Option<String>,
    /// The access file of a daemon's TCP listener (its `<state
    /// dir>/daemon/token`, copied from its login node): its token,
    /// address and certificate pin. Without --daemon, the daemon is asked
    /// at the file's address (also from $TWINFLOW_ACCESS_FILE); with
    /// `--daemon tcp://HOST:PORT`, there (default: $TWINFLOW_ACCESS_FILE,
    /// $TWINFLOW_TOKEN_FILE, else `<state dir>/daemon/token`). No one but
    /// its owner may read it.
    #[arg(long, value_name = "FILE", visible_alias = "token-file")]
    pub access_file: Option<PathBuf>,
}

/// `twinflow submit`.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Run every task, even those whose earlier result could be reused.
    #[arg(long)]
    pub no_cache: bool,
    /// Cancel the run at the first task that fails for good.
    #[arg(long)]
    pub fail_fast: bool,
}

/// The outcome `twinflow set` gives tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SetOutcome {
    /// Succeeded, with their outputs as they are on disk.
    Succeeded,
    /// Failed for good.
    Failed,
}

/// The arguments of the operator actions (`hold`, `release`, `kill`,
/// `rerun`, `trigger`, `set`).
#[derive(Debug, clap::Args)]
pub(crate) struct ActionArgs {
    /// Run id, unique prefix, or `latest`.
    pub run: String,
    /// Task names, step names, or globs over task names (`*`, `?`; quote them).
    #[arg(required = true, value_name = "SELECTOR")]
    pub selectors: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
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
#[derive(Debug, Clone, Args)]
pub(crate) struct CompileArgs {
    /// The workflow file (YAML), or a CWL document (`.cwl`, `file.cwl#id`).
    pub file: PathBuf,
    /// The job object of a CWL document (YAML or JSON).
    pub job: Option<PathBuf>,
    /// A CWL document's binding file: what its abstract `Operation` steps
    /// run (docs/cwl.md).
    #[arg(long, value_name = "FILE")]
    pub bind: Option<PathBuf>,
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

/// What `twinflow status` lists besides the run's counts.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// Only the summary: the run's state, per-step counts and its first
    /// failed and awaiting tasks, the same size whatever the run's size
    /// (with --json: the daemon API's `StatusSummary`).
    #[arg(long, conflicts_with_all = ["tasks", "step", "task_state", "name", "order", "limit", "after"])]
    pub(crate) summary: bool,
    /// List the tasks that have a record, with their state (implied by the
    /// filters below).
    #[arg(long)]
    pub(crate) tasks: bool,
    /// Only the tasks of this step.
    #[arg(long, value_name = "NAME")]
    pub(crate) step: Option<String>,
    /// Only tasks in this state (repeatable: any of them).
    #[arg(long = "state", value_name = "STATE", value_parser = parse_task_state)]
    pub(crate) task_state: Vec<twinflow_engine::TaskState>,
    /// Only tasks whose name matches this glob (`*`, `?`, `[...]`).
    #[arg(long, value_name = "GLOB")]
    pub(crate) name: Option<String>,
    /// At most this many tasks (default: all in text, 100 with --json;
    /// at most 10000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) limit: Option<u64>,
    /// List the tasks in this order: `id` (task order, the default),
    /// `longest` (running tasks first, the longest running first, then the
    /// longest ended), `latest` (the most recently started first); tasks
    /// never started come last.
    #[arg(long, value_name = "ORDER", value_parser = parse_task_order)]
    pub(crate) order: Option<twinflow_engine::TaskOrder>,
    /// Only tasks after this position: the `next_after` of the previous
    /// --json page (a task id in task order, else `ORDER:KEY:TASK`; give
    /// the same --order).
    #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
    pub(crate) after: Option<twinflow_engine::TaskCursor>,
}

impl StatusArgs {
    /// Whether tasks are listed.
    pub(crate) fn lists_tasks(&self) -> bool {
        self.tasks
            || self.step.is_some()
            || !self.task_state.is_empty()
            || self.name.is_some()
            || self.limit.is_some()
            || self.order.is_some()
            || self.after.is_some()
    }
}

fn parse_task_order(text: &str) -> Result<twinflow_engine::TaskOrder, String> {
    text.parse()
        .map_err(|e: twinflow_engine::UnknownOrder| e.to_string())
}

fn parse_cursor(text: &str) -> Result<twinflow_engine::TaskCursor, String> {
    text.parse()
        .map_err(|e: twinflow_engine::BadCursor| e.to_string())
}

fn parse_task_state(text: &str) -> Result<twinflow_engine::TaskState, String> {
    text.parse().map_err(|_| {
        let all: Vec<&str> = twinflow_engine::TaskState::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        format!("expected one of {}", all.join(", "))
    })
}

/// Where runs are recorded.
#[derive(Debug, Args)]
pub(crate) struct StateArgs {
    /// The state directory (default: $TWINFLOW_STATE_DIR, else
    /// $XDG_STATE_HOME/twinflow, else ~/.local/state/twinflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `twinflow run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub compile: CompileArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Take up an interrupted or failed run of this workflow (the newest one,
    /// or the run given as `--resume=RUN`): what finished is kept, the rest runs.
    #[arg(long, value_name = "RUN", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub resume: Option<String>,
    /// Run every task, even those whose earlier result could be reused.
    #[arg(long)]
    pub no_cache: bool,
    /// Cancel the run at the first task that fails for good.
    #[arg(long)]
    pub fail_fast: bool,
    /// Slots of local executors that do not set `slots` (default: the cores).
    #[arg(long, value_name = "N")]
    pub slots: Option<u32>,
    /// Stream events as JSON lines on stdout instead of showing progress.
    #[arg(long)]
    pub json: bool,
    /// Report every task, not only failures and finished steps (without a terminal).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// When the run ends (succeeded or failed), write its provenance crate
    /// here (a directory, or a `.zip`), as `twinflow provenance` does.
    #[arg(long, value_name = "DIR|FILE.zip")]
    pub provenance: Option<PathBuf>,
    /// When the run ends, write its HTML report here, as `twinflow report` does.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// A task's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}
