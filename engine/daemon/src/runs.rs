//! The runs a daemon carries: each one's canceller, controller (operator
//! actions) and the channel its
//! events go out on to whoever watches. A task per run drives it to its
//! end, then drops it from the table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;
use twinflow_engine::{Canceller, Controller, RunEvent, RunHandle};

/// How many events a slow watcher may fall behind before it misses some.
const WATCH_BUFFER: usize = 4096;

struct Live {
    canceller: Canceller,
    controller: Controller,
    events: broadcast::Sender<Arc<str>>,
    /// The `run-started` event, for watchers that come later.
    started: Option<Arc<str>>,
}

/// How many ended runs keep their last event for late watchers.
const ENDED_KEPT: usize = 10_000;

/// The live runs, by id, and the last event of runs that ended.
#[derive(Default, Clone)]
pub(crate) struct Runs {
    live: Arc<Mutex<HashMap<String, Live>>>,
    ended: Arc<Mutex<HashMap<String, Arc<str>>>>,
    /// Held while an ended run is taken up again (a rerun): a second
    /// action arriving meanwhile finds the run live once it gets it.
    taking_up: Arc<tokio::sync::Mutex<()>>,
    /// A run's own socket's table ([`Runs::for_one_run`]).
    one_run: bool,
}

/// Where a live run's events go out to its watchers.
pub(crate) struct Feed {
    runs: Runs,
    id: String,
    events: broadcast::Sender<Arc<str>>,
    last: Option<Arc<str>>,
}

impl Feed {
    /// Sends `event` to the run's watchers.
    pub(crate) fn send(&mut self, event: &RunEvent) {
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        let line: Arc<str> = line.into();
        if matches!(event, RunEvent::RunStarted { .. })
            && let Some(live) = self.runs.table().get_mut(&self.id)
        {
            live.started = Some(Arc::clone(&line));
        }
        // A hook failing after the run ended is sent to watchers,
        // but the run's last event stays its `run-finished`.
        if !matches!(event, RunEvent::HookFailed { .. }) {
            self.last = Some(Arc::clone(&line));
        }
        let _ = self.events.send(line);
    }

    /// The run sent its last event: late watchers get it from now on.
    pub(crate) fn end(self) {
        if let Some(last) = self.last {
            let mut ended = self
                .runs
                .ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if ended.len() >= ENDED_KEPT
                && let Some(old) = ended.keys().next().cloned()
            {
                ended.remove(&old);
            }
            ended.insert(self.id.clone(), last);
        }
    }

    /// The run is over: it leaves the table of live runs (its watchers'
    /// streams end).
    pub(crate) fn remove(&self) {
        self.runs.table().remove(&self.id);
    }
}

/// What a watcher gets: the events so far that matter, and what follows
/// (nothing, for a run that ended).
pub(crate) struct Watch {
    pub(crate) replay: Vec<Arc<str>>,
    pub(crate) rx: Option<broadcast::Receiver<Arc<str>>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").field("live", &self.ids()).finish()
    }
}

impl Runs {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drives `run` to its end on a task of its own.
    pub(crate) fn add(&self, mut run: RunHandle) {
        let mut feed = self.register(&run);
        tokio::spawn(async move {
            while let Some(event) = run.next_event().await {
                feed.send(&event);
            }
            let id = feed.id.clone();
            let me = feed.runs.clone();
            feed.end();
            match run.wait().await {
                Ok(summary) => tracing::info!("run {id} ended: {:?}", summary.outcome),
                Err(e) => tracing::warn!("run {id} ended with an error: {e}"),
            }
            me.table().remove(&id);
        });
    }

    /// Enters `run` in the table of live runs; its events go out through
    /// the [`Feed`], which the caller sends them to.
    pub(crate) fn register(&self, run: &RunHandle) -> Feed {
        let id = run.run_id().to_owned();
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        self.table().insert(
            id.clone(),
            Live {
                canceller: run.canceller(),
                controller: run.controller(),
                events: events.clone(),
                started: None,
            },
        );
        Feed {
            runs: self.clone(),
            id,
            events,
            last: None,
        }
    }

    /// A table for a run's own socket: it carries that run alone and takes
    /// no ended run up again.
    pub(crate) fn for_one_run() -> Self {
        Self {
            one_run: true,
            ..Self::default()
        }
    }

    /// Whether this table may take an ended run up again (a daemon's).
    pub(crate) fn takes_up(&self) -> bool {
        !self.one_run
    }

    /// Waits for the right to take an ended run up again (one at a time).
    pub(crate) async fn taking_up(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.taking_up).lock_owned().await
    }

    /// Cancels a live run; whether it was live.
    pub(crate) fn cancel(&self, id: &str) -> bool {
        self.table().get(id).map(|l| l.canceller.cancel()).is_some()
    }

    /// What sends operator actions to a live run.
    pub(crate) fn controller(&self, id: &str) -> Option<Controller> {
        self.table().get(id).map(|l| l.controller.clone())
    }

    /// A live run's `run-started` event and a receiver of what follows; an
    /// ended run's last event.
    pub(crate) fn watch(&self, id: &str) -> Option<Watch> {
        if let Some(l) = self.table().get(id) {
            return Some(Watch {
                replay: l.started.iter().cloned().collect(),
                rx: Some(l.events.subscribe()),
            });
        }
        let ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        ended.get(id).map(|last| Watch {
            replay: vec![Arc::clone(last)],
            rx: None,
        })
    }

    /// Ids of the live runs.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.table().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether `id` is a live run, or an ended one whose last event is kept.
    pub(crate) fn knows(&self, id: &str) -> bool {
        self.is_live(id)
            || self
                .ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(id)
    }

    pub(crate) fn is_live(&self, id: &str) -> bool {
        self.table().contains_key(id)
    }
}
