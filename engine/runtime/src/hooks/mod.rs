//! The hooks of a run (`on:`): the dispatch loop hands each run event to a
//! [`HookFeed`], which picks the hooks it fires and passes them to a task of
//! their own through a bounded channel — the loop never waits for a hook;
//! when the channel is full the fire is dropped, counted and logged. The
//! runner runs at most [`CONCURRENT`] hooks at once, each killed (its
//! process group) or abandoned at its timeout; every hook's end goes to
//! `<run dir>/logs/hooks.log`, and a failure also becomes a
//! [`RunEvent::HookFailed`]. Nothing a hook does is fatal to the run.

mod exec;
pub(crate) mod payload;

use crate::event::RunEvent;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use twinflow_core::{Hook, HookAction, Plan, WebhookSender};

/// Fires waiting for the runner; more are dropped (and counted).
const QUEUE: usize = 1024;

/// Hooks running at once.
const CONCURRENT: usize = 8;

/// The run's log of hooks, relative to its run directory.
pub(crate) const HOOKS_LOG: &str = "logs/hooks.log";

/// Hooks to run for one event.
#[derive(Debug)]
struct Fire {
    /// Each hook with how messages name it.
    hooks: Vec<(String, Hook)>,
    payload: Map<String, Value>,
}

/// The dispatch loop's end of the hooks: cheap when nothing listens.
#[derive(Debug)]
pub(crate) struct HookFeed {
    plan: Arc<Plan>,
    run_dir: PathBuf,
    tx: mpsc::Sender<Fire>,
    dropped: Arc<AtomicU64>,
}

/// The first webhook of a plan, named as messages name it.
pub(crate) fn first_webhook(plan: &Plan) -> Option<String> {
    let workflow = plan.hooks.iter().enumerate().map(|(i, h)| (None, i, h));
    let steps = plan.steps.iter().flat_map(|s| {
        s.hooks
            .iter()
            .enumerate()
            .map(|(i, h)| (Some(&s.name), i, h))
    });
    workflow.chain(steps).find_map(|(step, i, h)| {
        matches!(h.action, HookAction::Webhook { .. })
            .then(|| h.describe(step.map(String::as_str), index_in_event(plan, step, i)))
    })
}

/// A hook's position among the hooks of its event and scope, from its
/// position among all the scope's hooks.
fn index_in_event(plan: &Plan, step: Option<&String>, i: usize) -> usize {
    let hooks = match step {
        None => &plan.hooks,
        Some(name) => match plan.steps.iter().find(|s| &s.name == name) {
            Some(s) => &s.hooks,
            None => return i,
        },
    };
    let event = hooks[i].event;
    hooks[..i].iter().filter(|h| h.event == event).count()
}

impl HookFeed {
    /// Starts the runner of `plan`'s hooks; `None` when it has none. Failures
    /// are sent to `events`; the runner ends, dropping its sender, once the
    /// feed is dropped and its last hook is done.
    pub(crate) fn start(
        plan: Arc<Plan>,
        run_dir: PathBuf,
        events: mpsc::UnboundedSender<RunEvent>,
        webhooks: Option<Arc<dyn WebhookSender>>,
    ) -> Option<Self> {
        if plan.hooks.is_empty() && plan.steps.iter().all(|s| s.hooks.is_empty()) {
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let runner = Runner {
            run_dir: run_dir.clone(),
            events,
            webhooks,
            dropped: Arc::clone(&dropped),
        };
        tokio::spawn(runner.serve(rx));
        Some(Self {
            plan,
            run_dir,
            tx,
            dropped,
        })
    }

    /// Fires the hooks `event` calls for, without waiting.
    pub(crate) fn observe(&self, event: &RunEvent) {
        let Some((kind, step)) = payload::classify(event) else {
            return;
        };
        let mut hooks = Vec::new();
        let pick = |hooks: &mut Vec<(String, Hook)>, list: &[Hook], step: Option<&str>| {
            for (index, hook) in list.iter().filter(|h| h.event == kind).enumerate() {
                hooks.push((hook.describe(step, index), hook.clone()));
            }
        };
        pick(&mut hooks, &self.plan.hooks, None);
        if let Some(spec) = step.and_then(|s| self.plan.steps.get(s as usize)) {
            pick(&mut hooks, &spec.hooks, Some(&spec.name));
        }
        if hooks.is_empty() {
            return;
        }
        let payload = payload::payload(&self.plan, &self.run_dir, kind, event);
        match self.tx.try_send(Fire { hooks, payload }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(fire)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    "hooks fall behind: dropped the {} hook(s) of a `{kind}` event ({n} dropped so far)",
                    fire.hooks.len()
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// The task that runs the hooks.
struct Runner {
    run_dir: PathBuf,
    events: mpsc::UnboundedSender<RunEvent>,
    webhooks: Option<Arc<dyn WebhookSender>>,
    dropped: Arc<AtomicU64>,
}

impl Runner {
    async fn serve(self, mut rx: mpsc::Receiver<Fire>) {
        let permits = Arc::new(Semaphore::new(CONCURRENT));
        let mut running = JoinSet::new();
        let log = Arc::new(self.run_dir.join(HOOKS_LOG));
        while let Some(fire) = rx.recv().await {
            let body = Arc::new(Value::Object(fire.payload));
            for (label, hook) in fire.hooks {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (run_dir, events, webhooks, log, body) = (
                    self.run_dir.clone(),
                    self.events.clone(),
                    self.webhooks.clone(),
                    Arc::clone(&log),
                    Arc::clone(&body),
                );
                running.spawn(async move {
                    run_one(
                        &run_dir,
                        &log,
                        &events,
                        webhooks.as_deref(),
                        &label,
                        &hook,
                        &body,
                    )
                    .await;
                    drop(permit);
                });
                while running.try_join_next().is_some() {}
            }
        }
        while running.join_next().await.is_some() {}
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            let reason = format!(
                "{dropped} event(s) fired no hooks: they came faster than the hooks ran \
                 (at most {QUEUE} wait, {CONCURRENT} run at once)"
            );
            append(&log, &format!("dropped: {reason}"));
            let _ = self.events.send(RunEvent::HookFailed {
                hook: "hooks".to_owned(),
                kind: String::new(),
                task: None,
                reason,
            });
        }
    }
}

/// Runs one hook; logs how it ended and announces a failure.
async fn run_one(
    run_dir: &Path,
    log: &Path,
    events: &mpsc::UnboundedSender<RunEvent>,
    webhooks: Option<&dyn WebhookSender>,
    label: &str,
    hook: &Hook,
    body: &Value,
) {
    let started = std::time::Instant::now();
    let result = exec::run(run_dir, webhooks, hook, body).await;
    let task = body.get("task").and_then(Value::as_str).map(str::to_owned);
    let about = match &task {
        Some(t) => format!(" for {t}"),
        None => String::new(),
    };
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => append(log, &format!("ok {label}{about} in {seconds:.1} s")),
        Err(reason) => {
            append(
                log,
                &format!("FAILED {label}{about} after {seconds:.1} s: {reason}"),
            );
            let _ = events.send(RunEvent::HookFailed {
                hook: label.to_owned(),
                kind: hook.event.as_str().to_owned(),
                task,
                reason,
            });
        }
    }
}

/// Appends a line, stamped with the time, to the hooks log.
fn append(log: &Path, line: &str) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let written = log
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
        })
        .and_then(|mut f| writeln!(f, "{stamp} {line}"));
    if let Err(e) = written {
        tracing::warn!("failed to write {}: {e}; {line}", log.display());
    }
}
