//! What a compile is told besides the file: `--param`, `--site`, `--local`,
//! the run id and limits.

use crate::diag::{CompileError, Diagnostic};
use std::path::{Path, PathBuf};

/// Default for [`CompileOptions::max_tasks`].
pub const DEFAULT_MAX_TASKS: usize = 5_000_000;

/// Default for [`CompileOptions::max_edges`].
pub const DEFAULT_MAX_EDGES: u64 = 50_000_000;

/// Default for [`CompileOptions::max_command_bytes`]: 1 GiB.
pub const DEFAULT_MAX_COMMAND_BYTES: u64 = 1 << 30;

/// `run.id` substituted when no run exists yet (`validate`, `plan`, `graph`).
pub const DRY_RUN_ID: &str = "dry-run";

/// A site file's name and text.
#[derive(Debug, Clone)]
pub struct SiteSource {
    /// Shown in diagnostics and recorded as the executors' binding.
    pub name: String,
    /// YAML text.
    pub text: String,
}

impl SiteSource {
    /// Reads a site file.
    pub fn read(path: &Path) -> Result<Self, CompileError> {
        let text = crate::read_source(path, "site file")?;
        Ok(Self {
            name: path.display().to_string(),
            text,
        })
    }
}

/// Options of a compile.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// `--param key=value` overrides, in order (a list param splits on commas).
    pub params: Vec<(String, String)>,
    /// `--site FILE`: rebinds executor roles to a site's backends.
    pub site: Option<SiteSource>,
    /// `--local`: binds every executor to a local one.
    pub local: bool,
    /// Substituted for `run.id`.
    pub run_id: String,
    /// `workflow.dir`; [`crate::compile_file`] sets it to the file's directory.
    pub workflow_dir: PathBuf,
    /// The workflow file, when there is one.
    pub file: Option<PathBuf>,
    /// Refuse plans with more tasks than this.
    pub max_tasks: usize,
    /// Refuse plans with more dependency edges than this.
    pub max_edges: u64,
    /// Refuse plans whose commands would take more bytes than this.
    pub max_command_bytes: u64,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            params: Vec::new(),
            site: None,
            local: false,
            run_id: DRY_RUN_ID.to_owned(),
            workflow_dir: PathBuf::from("."),
            file: None,
            max_tasks: DEFAULT_MAX_TASKS,
            max_edges: DEFAULT_MAX_EDGES,
            max_command_bytes: DEFAULT_MAX_COMMAND_BYTES,
        }
    }
}

/// Splits `key=value` as given to `--param`.
pub fn parse_param_arg(arg: &str) -> Result<(String, String), Diagnostic> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(Diagnostic::new(
            "twinflow::bad-param-arg",
            format!("`--param {arg}` is not of the form key=value"),
        )
        .help("for example `--param region=north` or `--param climate=ssp126,ssp585`")),
    }
}
