//! `twinflow provenance` and `twinflow report`, and the same exports at the
//! end of `twinflow run --provenance/--report`: read a run from the state
//! store (directly, not through the daemon), compile its workflow file
//! again with the settings the run stored (as `--resume` does), and hand
//! both to twinflow-report.

use super::compile_for_run;
use crate::args::{CompileArgs, StateArgs};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{find_run, open_store, state_dir, stored_settings};
use crate::term::{count, shown};
use std::path::{Path, PathBuf};
use twinflow_engine::RunInfo;
use twinflow_report::{CrateOptions, ReportOptions, RunRecord};

/// `twinflow provenance RUN --out DIR|FILE.zip`.
pub(crate) fn provenance(
    out: &Output,
    state: &StateArgs,
    run: &str,
    target: &Path,
    max_file_bytes: u64,
    license: Option<String>,
    allow_altered: bool,
) -> u8 {
    let options = CrateOptions {
        max_file_bytes,
        license,
        allow_altered,
        ..CrateOptions::default()
    };
    export(out, &state_dir(state), run, Some((target, &options)), None)
}

/// `twinflow report RUN --out FILE`.
pub(crate) fn report(out: &Output, state: &StateArgs, run: &str, target: &Path) -> u8 {
    export(out, &state_dir(state), run, None, Some(target))
}

/// Writes the provenance crate and/or the report of `run` (an id, a unique
/// prefix, or `latest`); prints where each went.
pub(crate) fn export(
    out: &Output,
    dir: &Path,
    run: &str,
    provenance: Option<(&Path, &CrateOptions)>,
    report: Option<&Path>,
) -> u8 {
    let store = match open_store(out, dir) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let info = match find_run(out, &store, run) {
        Ok(Some(info)) => info,
        Ok(None) => {
            out.error(&format!("no run `{run}` in {}", dir.display()));
            return exit::INVALID;
        }
        Err(code) => return code,
    };
    let Some(plan) = compile_run_plan(out, &info) else {
        return exit::INVALID;
    };
    let record = match RunRecord::load(&store, &info.id, plan) {
        Ok(record) => record,
        Err(e) => {
            out.error(&e.to_string());
            return exit::INVALID;
        }
    };
    drop(store);
    if let Some((target, options)) = provenance {
        match twinflow_report::write_provenance(&record, target, options) {
            Ok(s) if !s.altered.is_empty() => {
                eprintln!(
                    "warning: {} sealed file(s) changed since the run and are marked as \
                     altered in the crate, not copied: {}",
                    s.altered.len(),
                    s.altered.join(", ")
                );
                eprintln!(
                    "provenance crate: {} ({} task actions, {} files, {} copied in, {} bytes)",
                    s.path.display(),
                    s.actions,
                    s.files,
                    s.files_included,
                    s.bytes_included
                );
            }
            Ok(s) => eprintln!(
                "provenance crate: {} ({}, {}, {} copied in, {} bytes)",
                shown(&s.path.display().to_string()),
                count(s.actions as u64, "task action"),
                count(s.files as u64, "file"),
                s.files_included,
                s.bytes_included
            ),
            Err(e) => {
                out.error(&format!("failed to write the provenance crate: {e}"));
                return exit::UNREACHABLE;
            }
        }
    }
    if let Some(target) = report {
        match twinflow_report::write_report(&record, target, &ReportOptions::default()) {
            Ok(s) => eprintln!(
                "report: {} ({} bytes)",
                shown(&s.path.display().to_string()),
                s.bytes
            ),
            Err(e) => {
                out.error(&format!("failed to write the report: {e}"));
                return exit::UNREACHABLE;
            }
        }
    }
    exit::SUCCESS
}

/// The run's plan, compiled again with its stored settings: from the
/// workflow file as the run was given it (its directory is `workflow.dir`
/// in commands), when that path still names a file from here, else from
/// the stored absolute path. The first whose digest matches the run's
/// wins; with none, the last one compiled (`RunRecord::load` then says the
/// workflow changed).
fn compile_run_plan(out: &Output, info: &RunInfo) -> Option<twinflow_workflow::Plan> {
    let settings = info.settings();
    let given = settings
        .file
        .as_ref()
        .map(PathBuf::from)
        .filter(|f| f.is_file());
    let mut candidates: Vec<PathBuf> = given.into_iter().collect();
    candidates.extend(info.file.as_ref().map(PathBuf::from));
    if candidates.is_empty() {
        out.error(&format!(
            "run {} was not started from a workflow file; nothing to compile its plan from",
            info.id
        ));
        return None;
    }
    let mut last = None;
    for file in candidates {
        let args = CompileArgs {
            file,
            job: None,
            bind: None,
            params: Vec::new(),
            site: None,
            local: false,
            max_tasks: twinflow_workflow::DEFAULT_MAX_TASKS,
        };
        let (compile, _) = stored_settings(&args, &settings);
        let Ok(plan) = compile_for_run(out, &compile, Some(&info.id)) else {
            return None;
        };
        if twinflow_engine::plan_digest(&plan) == info.plan_digest {
            return Some(plan);
        }
        last = Some(plan);
    }
    last
}
