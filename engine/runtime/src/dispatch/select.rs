//! Answers a live run's selection query ([`crate::Controller::select`]):
//! the selectors resolved against the plan and each task's state as the
//! scheduler sees it, in the loop's order (after every change before it).

use super::Dispatch;
use crate::control::ControlError;
use crate::selection::{SelectedTask, Selection};

/// A selection query on its way into the loop, with where its answer goes.
#[derive(Debug)]
pub(crate) struct SelectRequest {
    pub selectors: Vec<String>,
    pub reply: tokio::sync::oneshot::Sender<Result<Selection, ControlError>>,
}

impl Dispatch {
    pub(super) fn on_select(&mut self, request: SelectRequest) {
        let answer = self.select(&request.selectors).map(|tasks| Selection {
            run_id: self.run_id.clone(),
            live: true,
            tasks: tasks
                .into_iter()
                .map(|t| SelectedTask {
                    task: t.0,
                    name: self.task_names[t.index()].to_string(),
                    state: self.scheduler.task_state(t),
                    attempt: self.key(t, self.scheduler.attempt(t)).attempt,
                    held: self.scheduler.is_held(t),
                })
                .collect(),
        });
        let _ = request.reply.send(answer);
    }
}
