//! Per-step counts and durations of a run.

use crate::RunRecord;
use twinflow_engine::TaskState;

/// One step's numbers.
#[derive(Debug, Default, Clone)]
pub(super) struct StepStats {
    /// `role (kind)`.
    pub executor: String,
    pub total: usize,
    pub succeeded: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Launched and not ended, cancelled, lost, or never launched.
    pub unfinished: usize,
    /// Seconds of the tasks that ran (not cached), sorted.
    pub durations: Vec<f64>,
    /// Artefacts and their bytes.
    pub files: usize,
    pub bytes: u64,
}

impl StepStats {
    pub(super) fn other(&self) -> usize {
        self.unfinished
    }

    /// The `q`-quantile of the durations (0.5: median).
    pub(super) fn quantile(&self, q: f64) -> Option<f64> {
        if self.durations.is_empty() {
            return None;
        }
        let at = ((self.durations.len() - 1) as f64 * q).round() as usize;
        self.durations.get(at).copied()
    }
}

/// Every step's numbers, in step order.
pub(super) fn step_stats(record: &RunRecord) -> Vec<StepStats> {
    let plan = &record.plan;
    plan.steps
        .iter()
        .map(|step| {
            let executor = &plan.executors[step.executor.index()];
            let mut st = StepStats {
                executor: format!("{} ({})", executor.name, executor.backend.kind().as_str()),
                total: step.tasks.len(),
                ..StepStats::default()
            };
            for t in step.tasks.clone() {
                let files = &record.artefacts[t as usize];
                st.files += files.len();
                st.bytes += files.iter().map(|a| a.size).sum::<u64>();
                let Some(row) = &record.tasks[t as usize] else {
                    st.unfinished += 1;
                    continue;
                };
                match row.state {
                    TaskState::Succeeded => {
                        st.succeeded += 1;
                        if row.cached_from.is_some() {
                            st.cached += 1;
                        }
                    }
                    TaskState::Failed => st.failed += 1,
                    TaskState::Skipped => st.skipped += 1,
                    _ => st.unfinished += 1,
                }
                if row.cached_from.is_none()
                    && let (Some(a), Some(b)) = (row.started_ms, row.finished_ms)
                    && b >= a
                {
                    st.durations.push((b - a) as f64 / 1000.0);
                }
            }
            st.durations.sort_by(f64::total_cmp);
            st
        })
        .collect()
}
