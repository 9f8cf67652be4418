//! The three steps of [`Engine::submit`]: opening the run in the store (a
//! new one, or an earlier one taken up), letting each backend take back the
//! attempts an earlier process left in flight, and starting the dispatch
//! loop.

use super::rerun_ended::EndedRerun;
use super::{Canceller, Engine, EngineError, RunHandle, RunOptions, cores};
use crate::control::ActionReport;
use crate::dispatch::{Dispatch, DispatchSetup, Msg};
use crate::state::{NewRun, RunState};
use crate::{host, layout};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;
use twinflow_core::scheduler::SchedulerConfig;
use twinflow_core::{AttemptKey, Executor, Handle, Plan, TaskId};

/// The run a submission is about: its id and directory, the plan's digest,
/// and which process (here, now) takes it.
#[derive(Debug)]
pub(super) struct RunRef {
    pub(super) id: String,
    pub(super) dir: PathBuf,
    digest: String,
    pid: u32,
    pid_start: u64,
    hostname: String,
    now: i64,
}

impl RunRef {
    pub(super) fn new(state_dir: &Path, plan: &Plan) -> Self {
        let id = plan.workflow.run_id.clone();
        let pid = std::process::id();
        Self {
            dir: layout::run_dir(state_dir, &id),
            id,
            digest: crate::digest::plan_digest(plan),
            pid,
            pid_start: host::start_time(pid).unwrap_or(0),
            hostname: host::hostname(),
            now: crate::state::wall_ms(),
        }
    }

    fn as_core(&self) -> twinflow_core::RunRef<'_> {
        twinflow_core::RunRef {
            id: &self.id,
            dir: &self.dir,
        }
    }
}

/// The rerun that took an ended run up: its report, the tasks it reset
/// and who asked (`rerun by USER (action N)`).
#[derive(Debug)]
pub(super) struct TookUp {
    report: ActionReport,
    reset: Vec<u32>,
    by: String,
}

/// What the store knew of a run taken up (all empty for a new run).
#[derive(Debug, Default)]
pub(super) struct Opened {
    /// (task, next attempt number) of every task that has had an attempt.
    next_attempts: Vec<(u32, u32)>,
    /// (task, attempt, executor, handle) of attempts recorded in flight with
    /// a handle.
    in_flight: Vec<(u32, u32, u32, String)>,
    /// (task, attempt) of attempts recorded in flight, with a handle or not.
    open_attempts: Vec<(u32, u32)>,
    /// The rerun that took an ended run up.
    rerun: Option<TookUp>,
}

/// What a run taken up starts from: the attempt numbers used so far and the
/// attempts backends still follow (both empty for a new run).
#[derive(Debug, Default)]
pub(super) struct TakenUp {
    next_attempts: Vec<(u32, u32)>,
    adopted: Vec<(AttemptKey, Handle)>,
    /// The rerun that took an ended run up.
    rerun: Option<TookUp>,
}

type Channel = (mpsc::UnboundedSender<Msg>, mpsc::UnboundedReceiver<Msg>);

impl Engine {
    /// Records a new run, or (with `options.resume`) takes up the recorded
    /// one after checking it may be: not running, not succeeded (unless a
    /// rerun takes it up: [`RunOptions::rerun`]), the same plan.
    pub(super) fn open_or_resume(
        &self,
        run: &RunRef,
        plan: &Plan,
        options: &RunOptions,
    ) -> Result<Opened, EngineError> {
        let mut store = crate::lock(&self.store);
        let existing = store.run(&run.id)?.filter(|r| r.id == run.id);
        match (&existing, options.resume) {
            (Some(_), false) => return Err(EngineError::RunExists(run.id.clone())),
            (None, true) => return Err(EngineError::NoSuchRun(run.id.clone())),
            (Some(found), true) => {
                if found.state == RunState::Running {
                    return Err(EngineError::StillRunning {
                        run: run.id.clone(),
                        pid: found.pid,
                    });
                }
                if found.state == RunState::Succeeded && options.rerun.is_none() {
                    return Err(EngineError::AlreadySucceeded(run.id.clone()));
                }
                if found.plan_digest != run.digest {
                    return Err(EngineError::PlanChanged(run.id.clone()));
                }
            }
            (None, false) => {}
        }
        if existing.is_some() {
            let rerun = match (&options.rerun, options.resume) {
                (Some(action), true) => {
                    Some(EndedRerun::resolve(&store, &run.id, plan, action.clone())?)
                }
                _ => None,
            };
            return Ok(store.write(|tx| {
                // The rerun is journalled with the take-up, or neither is.
                let rerun = match &rerun {
                    Some(r) => {
                        let report = r.journal(tx, &run.id)?;
                        Some(TookUp {
                            by: r.by(report.seq),
                            reset: r.reset.clone(),
                            report,
                        })
                    }
                    None => None,
                };
                let opened = Opened {
                    next_attempts: tx.next_attempts(&run.id)?,
                    in_flight: tx.in_flight(&run.id)?,
                    open_attempts: tx.open_attempts(&run.id)?,
                    rerun,
                };
                tx.resume_run(&run.id, run.pid, run.pid_start, &run.hostname, run.now)?;
                Ok(opened)
            })?);
        }
        let file = plan.workflow.file.as_ref().map(|f| {
            std::fs::canonicalize(f)
                .unwrap_or_else(|_| f.clone())
                .display()
                .to_string()
        });
        let run_dir = run.dir.display().to_string();
        store.write(|tx| {
            tx.create_run(&NewRun {
                id: &run.id,
                workflow: &plan.workflow.name,
                file: file.as_deref(),
                run_dir: &run_dir,
                plan_digest: &run.digest,
                task_count: plan.task_count() as u64,
                now_ms: run.now,
                host: &run.hostname,
                pid: run.pid,
                pid_start: run.pid_start,
                args: &options.args.to_json(),
                steps: plan
                    .steps
                    .iter()
                    .map(|s| (s.name.as_str(), s.tasks.start, s.tasks.len() as u32))
                    .collect(),
            })
        })?;
        Ok(Opened::default())
    }

    /// Hands each backend the attempts an earlier process left in flight on
    /// it (with `resume`, every backend, even with none: the local one reads
    /// its supervisors' records) and returns those it still follows; the
    /// others are then recorded as lost and run again.
    pub(super) async fn reattach(
        &self,
        run: &RunRef,
        plan: &Plan,
        executors: &[Arc<dyn Executor>],
        opened: Opened,
        resume: bool,
    ) -> Result<TakenUp, EngineError> {
        let mut by_executor: HashMap<u32, Vec<(AttemptKey, Handle)>> = HashMap::new();
        for (task, attempt, executor, handle) in opened.in_flight {
            by_executor.entry(executor).or_default().push((
                AttemptKey {
                    task: TaskId(task),
                    attempt,
                },
                Handle(handle),
            ));
        }
        if resume {
            for e in 0..executors.len() as u32 {
                by_executor.entry(e).or_default();
            }
        }
        let open: HashSet<(u32, u32)> = opened.open_attempts.into_iter().collect();
        let next: HashMap<u32, u32> = opened.next_attempts.iter().copied().collect();
        let mut adopted = Vec::new();
        for (executor, attempts) in by_executor {
            let Some(exec) = executors.get(executor as usize) else {
                continue;
            };
            let handles: HashMap<AttemptKey, Handle> = attempts.iter().cloned().collect();
            let followed = exec.reattach(run.as_core(), attempts).await.map_err(|e| {
                EngineError::Executor {
                    executor: plan.executors[executor as usize].name.clone(),
                    message: e.message,
                }
            })?;
            // Followed attempts go on where they are; the rest run again.
            // A backend may also follow an attempt whose handle never
            // reached the store (the local executor reads its supervisor's
            // records): taken if the store knows no end of it (it is open,
            // or newer than any it recorded), under a blank handle until
            // the backend reports the real one.
            adopted.extend(
                followed
                    .into_iter()
                    .filter(|key| key.task.index() < plan.task_count())
                    .filter_map(|key| match handles.get(&key) {
                        Some(handle) => Some((key, handle.clone())),
                        None => {
                            let open = open.contains(&(key.task.0, key.attempt));
                            let next = next.get(&key.task.0).copied().unwrap_or(0);
                            (open || key.attempt >= next).then(|| (key, Handle(String::new())))
                        }
                    }),
            );
        }
        // Only now, once the backends said what they still follow, are the
        // other in-flight attempts recorded as lost: a crash before this
        // point leaves every handle where the next resume finds it.
        if resume {
            let followed: Vec<u32> = adopted.iter().map(|(k, _)| k.task.0).collect();
            crate::lock(&self.store).write(|tx| tx.mark_lost(&run.id, &followed, run.now))?;
        }
        Ok(TakenUp {
            next_attempts: opened.next_attempts,
            adopted,
            rerun: opened.rerun,
        })
    }

    /// Starts the dispatch loop of an opened run on the current tokio
    /// runtime.
    #[expect(
        clippy::too_many_arguments,
        reason = "the pieces submit prepared, each handed on once"
    )]
    pub(super) fn start_dispatch(
        &self,
        run: RunRef,
        plan: Plan,
        executors: Vec<Arc<dyn Executor>>,
        images: super::images::StepImages,
        options: &RunOptions,
        taken: TakenUp,
        (tx, rx): Channel,
    ) -> RunHandle {
        let default_slots = options.default_slots.unwrap_or_else(cores);
        let mut config = SchedulerConfig::for_plan(&plan, default_slots);
        // A backend that starts held attempts itself when capacity frees up
        // gets that many more (see `Executor::holds_ahead`).
        for (e, exec) in executors.iter().enumerate() {
            let ahead = exec.holds_ahead();
            if let (Some(capacity), true) = (config.capacity.get_mut(e), ahead > 0)
                && let Some(limit) = capacity.limit
            {
                capacity.limit = Some(limit.saturating_add(ahead));
                // A group instance launches within the part that starts.
                config.held_ahead.resize(e + 1, 0);
                config.held_ahead[e] = ahead;
            }
        }
        config.fail_fast = options.fail_fast;
        config.announce_ready = true;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let plan = Arc::new(plan);
        let hooks = crate::hooks::HookFeed::start(
            Arc::clone(&plan),
            run.dir.clone(),
            events_tx.clone(),
            self.webhooks.clone(),
        );
        let dispatch = Dispatch::new(DispatchSetup {
            plan,
            hooks,
            run_dir: run.dir.clone(),
            store: Arc::clone(&self.store),
            journals: Arc::clone(&self.journals),
            executors,
            images: images.into_iter().map(|i| i.map(|i| i.digest)).collect(),
            config,
            cache: options.cache,
            resumed: options.resume,
            next_attempts: taken.next_attempts,
            adopted: taken.adopted,
            rerun: taken
                .rerun
                .as_ref()
                .map(|t| (t.by.clone(), t.reset.clone())),
            rx,
            tx: tx.clone(),
            events: events_tx,
        });
        let join = tokio::spawn(dispatch.run());
        RunHandle {
            run_id: run.id,
            run_dir: run.dir,
            events: events_rx,
            control: Canceller(tx),
            join,
            rerun: taken.rerun.map(|t| t.report),
        }
    }
}
