//! Whole-run reads for exports (`twinflow provenance`, `twinflow report`):
//! every task's full record with its times, every sealed artefact, and the
//! first and last event times. One query each, whatever the run's size.

use super::{StateError, StateStore, TaskState};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// The image a step of a run ran in, as its executor resolved it at submit
/// (recorded as an `image-resolved` event; the latest one of a step counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImage {
    /// The step's name.
    pub step: String,
    /// The image as the step names it.
    pub image: String,
    /// The runtime it was resolved for.
    pub runtime: String,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// Everything the store knows of one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Its id in the plan.
    pub task: u32,
    /// Its name.
    pub name: String,
    /// Its step's index.
    pub step: u32,
    /// Its executor's index in the plan.
    pub executor: u32,
    /// Its state.
    pub state: TaskState,
    /// Its latest attempt.
    pub attempt: u32,
    /// Its backend handle (local: the process id; Slurm: the job id).
    pub handle: Option<String>,
    /// When its latest attempt was launched (ms since the Unix epoch).
    pub started_ms: Option<i64>,
    /// When it ended (ms since the Unix epoch).
    pub finished_ms: Option<i64>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// The run whose result it reused.
    pub cached_from: Option<String>,
}

impl TaskRecord {
    /// The exit status of its latest attempt, where the store can tell: 0
    /// for a task that succeeded by running, N for one that failed with
    /// `exited with status N`; `None` otherwise (cached, skipped, killed,
    /// lost, not started).
    pub fn exit_status(&self) -> Option<i32> {
        match self.state {
            TaskState::Succeeded if self.cached_from.is_none() => Some(0),
            TaskState::Failed | TaskState::Retrying => {
                let reason = self.reason.as_deref()?;
                let rest = reason.strip_prefix("exited with status ")?;
                let digits: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '-')
                    .collect();
                digits.parse().ok()
            }
            _ => None,
        }
    }
}

/// A sealed artefact of a run, with the task that wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunArtefact {
    /// The task that sealed it.
    pub task: u32,
    /// The output's name.
    pub output: String,
    /// Its absolute path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

impl StateStore {
    /// Every task of a run that has a record, by id.
    pub fn task_records(&self, run: &str) -> Result<Vec<TaskRecord>, StateError> {
        self.rows(
            "SELECT task, name, step, executor, state, attempt, handle, started_ms,
                    finished_ms, reason, cached_from
             FROM tasks WHERE run_id = ?1 ORDER BY task",
            params![run],
            |r| {
                Ok(TaskRecord {
                    task: r.get(0)?,
                    name: r.get(1)?,
                    step: r.get(2)?,
                    executor: r.get(3)?,
                    state: r.get(4)?,
                    attempt: r.get(5)?,
                    handle: r.get(6)?,
                    started_ms: r.get(7)?,
                    finished_ms: r.get(8)?,
                    reason: r.get(9)?,
                    cached_from: r.get(10)?,
                })
            },
        )
    }

    /// Every artefact a run sealed, by task and output name.
    pub fn run_artefacts(&self, run: &str) -> Result<Vec<RunArtefact>, StateError> {
        self.rows(
            "SELECT task, output, path, size, sha256 FROM artefacts
             WHERE run_id = ?1 ORDER BY task, output",
            params![run],
            |r| {
                Ok(RunArtefact {
                    task: r.get(0)?,
                    output: r.get(1)?,
                    path: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                    sha256: r.get(4)?,
                })
            },
        )
    }

    /// The images the run's steps ran in, by step name (the latest
    /// resolution of each step; empty for a run without containers).
    pub fn run_images(&self, run: &str) -> Result<Vec<RunImage>, StateError> {
        let details = self.rows(
            "SELECT detail FROM events WHERE run_id = ?1 AND kind = 'image-resolved'
             ORDER BY seq",
            params![run],
            |r| r.get::<_, Option<String>>(0),
        )?;
        let mut images: Vec<RunImage> = Vec::new();
        for detail in details.into_iter().flatten() {
            // A detail this build cannot read is skipped, not an error: the
            // export then names the image without its digest.
            let Ok(image) = serde_json::from_str::<RunImage>(&detail) else {
                continue;
            };
            images.retain(|i| i.step != image.step);
            images.push(image);
        }
        images.sort_by(|a, b| a.step.cmp(&b.step));
        Ok(images)
    }

    /// The times (ms since the Unix epoch) of a run's first and last events.
    pub fn run_span(&self, run: &str) -> Result<Option<(i64, i64)>, StateError> {
        let found = self.rows(
            "SELECT MIN(at_ms), MAX(at_ms) FROM events WHERE run_id = ?1",
            params![run],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
        )?;
        Ok(match found.first() {
            Some((Some(first), Some(last))) => Some((*first, *last)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: TaskState, reason: Option<&str>, cached: bool) -> TaskRecord {
        TaskRecord {
            task: 0,
            name: "t".into(),
            step: 0,
            executor: 0,
            state,
            attempt: 1,
            handle: None,
            started_ms: None,
            finished_ms: None,
            reason: reason.map(str::to_owned),
            cached_from: cached.then(|| "r".to_owned()),
        }
    }

    #[test]
    fn exit_status_comes_from_the_state_and_the_failure_reason() {
        assert_eq!(
            record(TaskState::Succeeded, None, false).exit_status(),
            Some(0)
        );
        assert_eq!(record(TaskState::Succeeded, None, true).exit_status(), None);
        let failed = record(
            TaskState::Failed,
            Some("exited with status 3; stderr: boom"),
            false,
        );
        assert_eq!(failed.exit_status(), Some(3));
        assert_eq!(
            record(TaskState::Failed, Some("timed out after 5 s"), false).exit_status(),
            None
        );
        assert_eq!(record(TaskState::Skipped, None, false).exit_status(), None);
    }
}
