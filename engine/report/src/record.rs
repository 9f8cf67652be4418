//! A finished (or failed, or interrupted) run as the exports see it: the
//! plan it ran, compiled again from its workflow file with its stored
//! settings, and what the state store recorded of every task and artefact.

use crate::ReportError;
use std::path::{Path, PathBuf};
use twinflow_core::{Plan, TaskId};
use twinflow_engine::{RunArtefact, RunImage, RunInfo, StateStore, TaskRecord};

/// One run, loaded whole.
#[derive(Debug)]
pub struct RunRecord {
    /// The run's row.
    pub run: RunInfo,
    /// The plan it ran (its digest matches the stored one).
    pub plan: Plan,
    /// Each task's record, by task id (`None`: never launched).
    pub tasks: Vec<Option<TaskRecord>>,
    /// Each task's sealed artefacts, by task id.
    pub artefacts: Vec<Vec<RunArtefact>>,
    /// First and last event times (ms since the Unix epoch).
    pub span: Option<(i64, i64)>,
    /// The images its steps ran in, with the digests their executors
    /// resolved (empty for a run without containers).
    pub images: Vec<RunImage>,
    /// The operator actions journalled on it, in order.
    pub actions: Vec<twinflow_engine::ActionRecord>,
}

impl RunRecord {
    /// Reads run `run_id` from `store`; `plan` must be the run's plan (the
    /// CLI compiles the run's workflow file again with the settings the run
    /// stored, as `--resume` does). A plan whose digest differs, because
    /// the workflow file changed since, is refused.
    pub fn load(store: &StateStore, run_id: &str, plan: Plan) -> Result<Self, ReportError> {
        let run = store
            .run(run_id)?
            .ok_or_else(|| ReportError::NoSuchRun(run_id.to_owned()))?;
        if twinflow_engine::plan_digest(&plan) != run.plan_digest {
            return Err(ReportError::PlanChanged {
                run: run.id.clone(),
                file: run.file.clone().unwrap_or_default(),
            });
        }
        let count = plan.task_count();
        let mut tasks: Vec<Option<TaskRecord>> = vec![None; count];
        for t in store.task_records(&run.id)? {
            if let Some(slot) = tasks.get_mut(t.task as usize) {
                *slot = Some(t);
            }
        }
        let mut artefacts: Vec<Vec<RunArtefact>> = vec![Vec::new(); count];
        for a in store.run_artefacts(&run.id)? {
            if let Some(slot) = artefacts.get_mut(a.task as usize) {
                slot.push(a);
            }
        }
        let span = store.run_span(&run.id)?;
        let images = store.run_images(&run.id)?;
        let actions = store.actions(&run.id)?;
        Ok(Self {
            run,
            plan,
            tasks,
            artefacts,
            span,
            images,
            actions,
        })
    }

    /// The run directory.
    pub fn run_dir(&self) -> PathBuf {
        PathBuf::from(&self.run.run_dir)
    }

    /// The artefact task `task` sealed for output `output`.
    pub fn artefact(&self, task: TaskId, output: &str) -> Option<&RunArtefact> {
        self.artefacts
            .get(task.index())?
            .iter()
            .find(|a| a.output == output)
    }

    /// The stdout and stderr files of a task's latest attempt.
    pub fn log_paths(&self, task: TaskId) -> Option<(PathBuf, PathBuf)> {
        let record = self.tasks.get(task.index())?.as_ref()?;
        let step = self.plan.step_of(task);
        let paths = twinflow_engine::task_paths(
            &self.run_dir(),
            &step.name,
            self.plan.instance_index(task),
            record.attempt,
        );
        Some((paths.stdout, paths.stderr))
    }

    /// When the run ended, if it did: the last event of a run that is no
    /// longer running.
    pub fn ended_ms(&self) -> Option<i64> {
        match self.run.state {
            twinflow_engine::RunState::Running => None,
            _ => Some(self.span.map_or(self.run.updated_ms, |(_, last)| last)),
        }
    }
}

/// The last `max_lines` non-empty lines of a file's last 8 KiB, or `None`
/// when it cannot be read or is empty.
pub fn tail(path: &Path, max_lines: usize) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(8192))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(max_lines);
    let out = lines[start..].join("\n");
    (!out.is_empty()).then_some(out)
}

/// Milliseconds since the Unix epoch as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => String::new(),
    }
}
