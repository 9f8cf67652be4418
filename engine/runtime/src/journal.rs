//! Changes waiting to be written: the dispatch loop pushes [`Op`]s as it
//! goes and writes them in one transaction when the most urgent of them is
//! due ([`Urgency`]): at once for what a crash must not lose (the handle of
//! a Slurm job), within [`SOON`] for task states, so that a run of many
//! short tasks writes one transaction per 20 ms rather than one per task.
//!
//! The runs of one engine (a daemon's fifty) share a [`Hub`]: a flush
//! writes the pending changes of every run in the same transaction (a
//! group commit), so fifty runs commit about as often as one, and each
//! run's changes are still written within their own deadline.

use crate::artefact::Sealed;
use crate::state::wall_ms;
use crate::state::write::{AttemptRow, SealedRow, Tx};
use crate::state::{RunState, StateError, StateStore, TaskState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use twinflow_core::{Plan, TaskId};

mod collapse;

/// One change.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A task's new state.
    State {
        task: u32,
        attempt: u32,
        state: TaskState,
        reason: Option<String>,
    },
    /// The backend handle of a submitted attempt.
    Handle {
        task: u32,
        attempt: u32,
        handle: String,
    },
    /// The attempt began running.
    Running { task: u32 },
    /// An operator put the task back to wait (see `dispatch/rerun.rs`).
    Waiting { task: u32, reason: String },
    /// The task's cache key (and the run its result was reused from).
    Cache {
        task: u32,
        key: String,
        from: Option<String>,
    },
    /// Its sealed outputs.
    Sealed { task: u32, artefacts: Vec<Sealed> },
    /// The run ended.
    RunFinished { state: RunState },
}

impl Op {
    /// The task it changes, if it is about one.
    fn task(&self) -> Option<u32> {
        match self {
            Self::State { task, .. }
            | Self::Handle { task, .. }
            | Self::Running { task }
            | Self::Waiting { task, .. }
            | Self::Cache { task, .. }
            | Self::Sealed { task, .. } => Some(*task),
            Self::RunFinished { .. } => None,
        }
    }
}

/// How long a pending change may wait to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// "Began running" marks: a resumed run treats queued and running
    /// attempts alike, so they wait up to [`LAZY`].
    Lazy,
    /// Task states, cache keys, sealed outputs, handles a backend can do
    /// without: a killed run loses at most the last [`SOON`] of them (those
    /// tasks run again when it is resumed), and a busy run writes one
    /// transaction per [`SOON`] rather than one per task.
    Soon,
    /// Handles of work that outlives this process (a Slurm job), the end of
    /// the run: written before the loop waits or hands more work out.
    Now,
}

impl Urgency {
    fn wait(self) -> Duration {
        match self {
            Self::Lazy => LAZY,
            Self::Soon => SOON,
            Self::Now => Duration::ZERO,
        }
    }
}

/// How long "began running" marks may wait.
pub(crate) const LAZY: Duration = Duration::from_millis(200);
/// How long other changes may wait (see [`Urgency::Soon`]).
pub(crate) const SOON: Duration = Duration::from_millis(20);
/// Past this many pending changes they are written whatever their urgency.
const MAX_PENDING: usize = 4096;

/// The pending changes of every run of one engine (see the module
/// documentation).
#[derive(Debug, Default)]
pub(crate) struct Hub {
    runs: Mutex<HashMap<u64, Pending>>,
    next: AtomicU64,
}

impl Hub {
    fn runs(&self) -> MutexGuard<'_, HashMap<u64, Pending>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pending changes of one run, each with the wall-clock time (ms) it
/// happened at.
#[derive(Debug)]
struct Pending {
    plan: Arc<Plan>,
    run_id: String,
    ops: Vec<(i64, Op)>,
    /// When the pending changes must be written at the latest: the
    /// earliest of their deadlines.
    deadline: Option<Instant>,
}

impl Pending {
    fn push(&mut self, op: Op, urgency: Urgency) {
        let urgency = if self.ops.len() >= MAX_PENDING {
            Urgency::Now
        } else {
            urgency
        };
        let due = Instant::now() + urgency.wait();
        self.deadline = Some(self.deadline.map_or(due, |held| held.min(due)));
        self.ops.push((wall_ms(), op));
    }
}

/// One run's journal: its pending changes, kept in its engine's [`Hub`].
#[derive(Debug)]
pub(crate) struct Journal {
    hub: Arc<Hub>,
    key: u64,
}

/// What one run has pending, taken out of the hub to be written.
struct Batch {
    key: u64,
    plan: Arc<Plan>,
    run_id: String,
    ops: Vec<(i64, Op)>,
    deadline: Option<Instant>,
}

impl Journal {
    /// The journal of run `run_id`, in `hub`.
    pub(crate) fn new(hub: Arc<Hub>, plan: Arc<Plan>, run_id: String) -> Self {
        let key = hub.next.fetch_add(1, Ordering::Relaxed);
        hub.runs().insert(
            key,
            Pending {
                plan,
                run_id,
                ops: Vec::new(),
                deadline: None,
            },
        );
        Self { hub, key }
    }

    /// Adds a change; how urgent it is follows from its kind (a handle is
    /// [`Urgency::Now`]; see [`Journal::push_handle`]).
    pub(crate) fn push(&mut self, op: Op) {
        let urgency = match op {
            Op::Running { .. } => Urgency::Lazy,
            Op::State { .. } | Op::Waiting { .. } | Op::Cache { .. } | Op::Sealed { .. } => {
                Urgency::Soon
            }
            Op::Handle { .. } | Op::RunFinished { .. } => Urgency::Now,
        };
        self.push_with(op, urgency);
    }

    /// Adds a handle; `durable`: its backend needs it written at once (see
    /// `Executor::handles_must_be_durable`).
    pub(crate) fn push_handle(&mut self, task: u32, attempt: u32, handle: String, durable: bool) {
        let urgency = if durable { Urgency::Now } else { Urgency::Soon };
        self.push_with(
            Op::Handle {
                task,
                attempt,
                handle,
            },
            urgency,
        );
    }

    fn push_with(&mut self, op: Op, urgency: Urgency) {
        if let Some(pending) = self.hub.runs().get_mut(&self.key) {
            pending.push(op, urgency);
        }
    }

    /// Whether the pending changes must be written now.
    pub(crate) fn due(&self) -> bool {
        self.deadline().is_some_and(|at| at <= Instant::now())
    }

    /// When the pending changes must be written at the latest (`None`
    /// once another run's flush has written them).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.hub.runs().get(&self.key).and_then(|p| p.deadline)
    }

    /// Writes everything pending, this run's and every other run's of the
    /// hub, in one transaction. Should that fail, this run's changes are
    /// tried alone (the error is its own only if that fails too) and the
    /// others' stay pending for their runs to write.
    pub(crate) fn flush(&mut self, store: &mut StateStore) -> Result<(), StateError> {
        let batches = self.take(true);
        let alone = batches.len() > 1;
        match self.write(store, batches, true) {
            Err(_) if alone => self.flush_rows(store, true),
            written => written,
        }
    }

    /// Writes this run's pending changes alone in one transaction;
    /// `collapse`: a task's row once per batch where it can be (see
    /// [`collapse`]), else one statement per change (what the tests
    /// compare it with).
    fn flush_rows(&mut self, store: &mut StateStore, collapse: bool) -> Result<(), StateError> {
        let batches = self.take(false);
        self.write(store, batches, collapse)
    }

    /// Writes `batches` in one transaction; should that fail, they go back
    /// to the hub.
    fn write(
        &self,
        store: &mut StateStore,
        batches: Vec<Batch>,
        collapse: bool,
    ) -> Result<(), StateError> {
        if batches.is_empty() {
            return Ok(());
        }
        let written = store.write(|tx| {
            for b in &batches {
                write_ops(tx, &b.plan, &b.run_id, &b.ops, collapse)?;
            }
            Ok(())
        });
        if written.is_err() {
            self.put_back(batches);
        }
        written
    }

    /// Takes what is pending out of the hub: every run's (`all`) or this
    /// run's alone.
    fn take(&self, all: bool) -> Vec<Batch> {
        let mut runs = self.hub.runs();
        runs.iter_mut()
            .filter(|(key, p)| (all || **key == self.key) && !p.ops.is_empty())
            .map(|(key, p)| Batch {
                key: *key,
                plan: Arc::clone(&p.plan),
                run_id: p.run_id.clone(),
                ops: std::mem::take(&mut p.ops),
                deadline: p.deadline.take(),
            })
            .collect()
    }

    /// Puts what failed to be written back in front of what came since.
    fn put_back(&self, batches: Vec<Batch>) {
        let mut runs = self.hub.runs();
        for b in batches {
            if let Some(p) = runs.get_mut(&b.key) {
                let newer = std::mem::replace(&mut p.ops, b.ops);
                p.ops.extend(newer);
                p.deadline = match (p.deadline, b.deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.hub.runs().remove(&self.key);
    }
}

/// Writes the changes `ops` of run `run` in the transaction `tx`.
fn write_ops(
    tx: &Tx<'_>,
    plan: &Plan,
    run: &str,
    ops: &[(i64, Op)],
    collapse: bool,
) -> rusqlite::Result<()> {
    let rows = if collapse {
        collapse::collapse(ops)
    } else {
        HashMap::new()
    };
    for (i, (at, op)) in ops.iter().enumerate() {
        let now = *at;
        if let Some(row) = op.task().and_then(|t| rows.get(&t).map(|r| (t, r))) {
            write_collapsed(tx, plan, run, i, row, op, now)?;
            continue;
        }
        match op {
            Op::State {
                task,
                attempt,
                state,
                reason,
            } => {
                let id = TaskId(*task);
                let t = plan.task(id);
                tx.task_state(
                    run,
                    *task,
                    &plan.task_name(id),
                    t.step.0,
                    plan.step_of(id).executor.0,
                    *attempt,
                    *state,
                    reason.as_deref(),
                    now,
                )?;
            }
            Op::Handle {
                task,
                attempt,
                handle,
            } => tx.task_handle(run, *task, *attempt, handle, now)?,
            Op::Running { task } => tx.task_running(run, *task)?,
            Op::Waiting { task, reason } => tx.task_waiting(run, *task, reason)?,
            Op::Cache { task, key, from } => {
                tx.task_cache(run, *task, key, from.as_deref())?;
            }
            Op::Sealed { task, artefacts } => write_sealed(tx, run, *task, artefacts)?,
            Op::RunFinished { state } => tx.finish_run(run, *state, now)?,
        }
    }
    Ok(())
}

/// Writes one change of a task whose row is written once (see
/// [`collapse`]): the row at its first change, an event per state and
/// handle, the sealed outputs; running marks and cache keys are in the row.
fn write_collapsed(
    tx: &Tx<'_>,
    plan: &Plan,
    run: &str,
    index: usize,
    (task, row): (u32, &collapse::Collapsed<'_>),
    op: &Op,
    now: i64,
) -> rusqlite::Result<()> {
    if index == row.first {
        let id = TaskId(task);
        tx.attempt_row(
            run,
            &AttemptRow {
                task,
                name: &plan.task_name(id),
                step: plan.task(id).step.0,
                executor: plan.step_of(id).executor.0,
                changes: row.changes,
            },
        )?;
    }
    match op {
        Op::State {
            attempt,
            state,
            reason,
            ..
        } => tx.event(
            run,
            Some(task),
            Some(*attempt),
            state.as_str(),
            reason.as_deref(),
            now,
        ),
        Op::Handle {
            attempt, handle, ..
        } => tx.event(
            run,
            Some(task),
            Some(*attempt),
            "submitted",
            Some(handle),
            now,
        ),
        Op::Sealed { artefacts, .. } => write_sealed(tx, run, task, artefacts),
        Op::Running { .. } | Op::Cache { .. } | Op::Waiting { .. } | Op::RunFinished { .. } => {
            Ok(())
        }
    }
}

fn write_sealed(tx: &Tx<'_>, run: &str, task: u32, artefacts: &[Sealed]) -> rusqlite::Result<()> {
    for a in artefacts {
        let path = a.path.display().to_string();
        tx.artefact(
            run,
            task,
            &SealedRow {
                output: &a.output,
                path: &path,
                size: a.size,
                sha256: &a.sha256,
                mtime_ns: a.mtime_ns,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Journal {
        journal_of(1)
    }

    /// A journal of run `r` of a plan with one step `a` of `n` tasks.
    fn journal_of(n: usize) -> Journal {
        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let each = if n > 1 {
            format!("    for_each: {{ i: [{}] }}\n", values.join(","))
        } else {
            String::new()
        };
        let yaml = format!(
            "version: 1\nname: j\nexecutors: {{ here: {{ kind: local }} }}\n\
             steps:\n  a:\n    executor: here\n{each}    run: 'true'\n"
        );
        let plan = twinflow_workflow::compile_str(
            "j.yaml",
            &yaml,
            &twinflow_workflow::CompileOptions::default(),
        )
        .unwrap();
        Journal::new(Arc::new(Hub::default()), Arc::new(plan), "r".to_owned())
    }

    impl Journal {
        /// Adds a change as if it had happened at `at` (ms).
        fn push_at(&mut self, at: i64, op: Op) {
            if let Some(p) = self.hub.runs().get_mut(&self.key) {
                p.push(op, Urgency::Soon);
                if let Some(last) = p.ops.last_mut() {
                    last.0 = at;
                }
            }
        }
    }

    fn state(state: TaskState) -> Op {
        Op::State {
            task: 0,
            attempt: 0,
            state,
            reason: None,
        }
    }

    /// The deadline, as an offset from a time taken just before the push.
    fn wait_after(j: &mut Journal, push: impl FnOnce(&mut Journal)) -> Duration {
        let before = Instant::now();
        push(j);
        j.deadline().unwrap().duration_since(before)
    }

    #[test]
    fn each_kind_of_change_waits_as_long_as_a_crash_can_afford() {
        let mut j = journal();
        assert_eq!(j.deadline(), None);
        // Running marks alone wait longest.
        let lazy = wait_after(&mut j, |j| j.push(Op::Running { task: 0 }));
        assert!(lazy >= LAZY && lazy < LAZY + SOON, "{lazy:?}");
        // A task state brings the deadline forward...
        let soon = wait_after(&mut j, |j| j.push(state(TaskState::Succeeded)));
        assert!(soon >= SOON && soon < LAZY, "{soon:?}");
        // ...and a later one does not push it back.
        let first = j.deadline();
        std::thread::sleep(Duration::from_millis(2));
        j.push(state(TaskState::Queued));
        assert_eq!(j.deadline(), first);
        // A handle the backend can do without waits like a state; one of a
        // Slurm job must be written before the loop waits.
        j.push_handle(0, 0, "pid:1:2".to_owned(), false);
        assert_eq!(j.deadline(), first);
        j.push_handle(0, 0, "slurm:7".to_owned(), true);
        assert!(j.due());
    }

    #[test]
    fn a_long_backlog_is_written_whatever_its_urgency() {
        let mut j = journal();
        for _ in 0..MAX_PENDING {
            j.push(Op::Running { task: 0 });
        }
        let lazy = j.deadline();
        j.push(Op::Running { task: 0 });
        assert!(j.deadline() < lazy);
        assert!(j.due());
    }

    fn op_state(task: u32, attempt: u32, state: TaskState, reason: Option<&str>) -> Op {
        Op::State {
            task,
            attempt,
            state,
            reason: reason.map(str::to_owned),
        }
    }

    /// Batches of changes written with rows collapsed and one by one leave
    /// the same tables (times included: each change keeps its own).
    #[test]
    fn a_row_written_once_per_batch_is_the_row_the_changes_one_by_one_leave() {
        use TaskState::{Failed, Queued, Retrying, Succeeded};
        let sealed = Sealed {
            output: "o".to_owned(),
            path: "/r/o.txt".into(),
            size: 3,
            sha256: "abc".to_owned(),
            mtime_ns: 7,
        };
        let cache = |task, key: &str, from: Option<&str>| Op::Cache {
            task,
            key: key.to_owned(),
            from: from.map(str::to_owned),
        };
        let handle = |task, attempt, h: &str| Op::Handle {
            task,
            attempt,
            handle: h.to_owned(),
        };
        let batches: Vec<Vec<(i64, Op)>> = vec![
            vec![
                // Succeeds within the batch, with outputs and a cache key.
                (10, op_state(0, 1, Queued, None)),
                (11, handle(0, 1, "pid:1")),
                (12, Op::Running { task: 0 }),
                (
                    13,
                    Op::Sealed {
                        task: 0,
                        artefacts: vec![sealed.clone()],
                    },
                ),
                (14, op_state(0, 1, Succeeded, None)),
                (14, cache(0, "k0", None)),
                // Fails, to be retried in the next batch.
                (10, op_state(1, 1, Queued, Some("triggered"))),
                (12, handle(1, 1, "pid:2")),
                (15, op_state(1, 1, Retrying, Some("exited with status 1"))),
                // Still running when the batch is written.
                (16, op_state(2, 1, Queued, None)),
                (17, handle(2, 1, "pid:3")),
                (18, Op::Running { task: 2 }),
            ],
            vec![
                // A second attempt over the first's row, still queued.
                (20, op_state(1, 2, Queued, None)),
                (21, handle(1, 2, "pid:4")),
                // Ends: not collapsed (its batch does not start it).
                (22, op_state(2, 1, Failed, Some("killed"))),
                // Reused from a cache: its state, then its key.
                (23, op_state(3, 1, Queued, None)),
                (
                    23,
                    op_state(3, 1, Succeeded, Some("reused the result of run r0")),
                ),
                (23, cache(3, "k3", Some("r0"))),
            ],
            vec![
                // Two attempts in one batch, and an operator's reset.
                (30, op_state(1, 2, Retrying, Some("again"))),
                (31, op_state(1, 3, Queued, None)),
                (32, op_state(1, 3, Succeeded, None)),
                (
                    33,
                    Op::Waiting {
                        task: 0,
                        reason: "rerun by ana".to_owned(),
                    },
                ),
            ],
        ];
        let tables = |collapse: bool| {
            let dir = tempfile::tempdir().unwrap();
            let mut store = StateStore::open(dir.path()).unwrap();
            let mut j = journal_of(4);
            for batch in &batches {
                for (at, op) in batch {
                    j.push_at(*at, op.clone());
                }
                j.flush_rows(&mut store, collapse).unwrap();
            }
            [
                "SELECT * FROM tasks ORDER BY task",
                "SELECT run_id, at_ms, task, attempt, kind, detail FROM events ORDER BY seq",
                "SELECT * FROM artefacts ORDER BY task, output",
                "SELECT * FROM cache ORDER BY key",
                "SELECT * FROM task_counts WHERE n <> 0 ORDER BY step, state, cached",
            ]
            .map(|sql| store.dump(sql))
        };
        let collapsible = |batch: &[(i64, Op)]| {
            let mut tasks: Vec<u32> = collapse::collapse(batch).into_keys().collect();
            tasks.sort_unstable();
            tasks
        };
        assert_eq!(collapsible(&batches[0]), [0, 1, 2]);
        assert_eq!(
            collapsible(&batches[1]),
            [1, 3],
            "task 2 ends: not started here"
        );
        assert!(
            collapsible(&batches[2]).is_empty(),
            "a second attempt, a reset"
        );
        let (collapsed, one_by_one) = (tables(true), tables(false));
        assert!(!one_by_one[0].is_empty() && !one_by_one[1].is_empty());
        assert_eq!(collapsed, one_by_one);
    }

    #[test]
    fn changes_keep_the_time_they_happened_not_the_time_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        let mut j = journal();
        j.push(state(TaskState::Queued));
        std::thread::sleep(Duration::from_millis(60));
        j.push(state(TaskState::Succeeded));
        j.flush(&mut store).unwrap();
        assert_eq!(j.deadline(), None);
        let seconds = store.task("r", "a").unwrap().unwrap().seconds.unwrap();
        assert!(seconds >= 0.06, "{seconds} s between the two changes");
    }

    #[test]
    fn one_flush_writes_the_changes_of_every_run_of_the_hub() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        let hub = Arc::new(Hub::default());
        let plan = journal()
            .hub
            .runs()
            .values()
            .next()
            .map(|p| Arc::clone(&p.plan));
        let plan = plan.unwrap();
        let mut a = Journal::new(Arc::clone(&hub), Arc::clone(&plan), "ra".to_owned());
        let mut b = Journal::new(Arc::clone(&hub), Arc::clone(&plan), "rb".to_owned());
        a.push(state(TaskState::Queued));
        b.push(state(TaskState::Succeeded));
        assert!(b.deadline().is_some());
        a.flush(&mut store).unwrap();
        // Run b's change went in a's transaction: nothing is left for b.
        assert_eq!(b.deadline(), None);
        assert_eq!(
            store.task("rb", "a").unwrap().unwrap().state,
            TaskState::Succeeded
        );
        assert_eq!(
            store.task("ra", "a").unwrap().unwrap().state,
            TaskState::Queued
        );
        b.flush(&mut store).unwrap();
        // A run that ended leaves the hub.
        drop(a);
        assert_eq!(hub.runs().len(), 1);
    }

    #[test]
    fn what_could_not_be_written_goes_back_in_front_of_what_came_since() {
        let mut j = journal();
        j.push_at(1, state(TaskState::Queued));
        let taken = j.take(true);
        assert_eq!(taken.len(), 1);
        assert_eq!(j.deadline(), None);
        j.push_at(2, state(TaskState::Succeeded));
        j.put_back(taken);
        let times: Vec<i64> = j.hub.runs()[&j.key].ops.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [1, 2]);
        assert!(j.deadline().is_some(), "its deadline is back too");
    }
}
