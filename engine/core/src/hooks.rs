//! Event hooks (`on:`) as compiled into a [`crate::Plan`]: which event of a
//! run fires which shell command or webhook, and the sender a runtime uses
//! to post webhooks ([`WebhookSender`]; the core and the runtime know no
//! HTTP, a crate that does implements it).

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// The default time a hook may take, in seconds.
pub const DEFAULT_HOOK_TIMEOUT_SECONDS: u64 = 30;

/// What a hook reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookEvent {
    /// A task failed for good (no attempt left).
    Failure,
    /// An attempt failed and the task will be retried.
    Retry,
    /// A task succeeded (also from the cache).
    Success,
    /// Workflow level: nothing runs, nothing is ready, and tasks are
    /// unfinished (held, or waiting behind a failed dependency while the
    /// run is not over). Fired once per stall.
    Stalled,
    /// Workflow level: the run ended (succeeded, failed or cancelled).
    Finished,
}

impl HookEvent {
    /// Every event, in the order the language documents them.
    pub const ALL: [HookEvent; 5] = [
        Self::Failure,
        Self::Retry,
        Self::Success,
        Self::Stalled,
        Self::Finished,
    ];

    /// Its name in a workflow file and in a hook's JSON (`"kind"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Retry => "retry",
            Self::Success => "success",
            Self::Stalled => "stalled",
            Self::Finished => "finished",
        }
    }

    /// Whether a step's `on:` may name it (`stalled` and `finished` are
    /// events of the whole run).
    pub fn of_tasks(self) -> bool {
        matches!(self, Self::Failure | Self::Retry | Self::Success)
    }
}

impl fmt::Display for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HookAction {
    /// `/bin/sh -c COMMAND` in the run directory, with the event as JSON on
    /// standard input and in `TWINFLOW_EVENT_*` variables.
    Run {
        /// The shell command.
        command: String,
    },
    /// An HTTP POST of the event as JSON.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// A file of `Name: value` lines sent as headers, read when the
        /// hook fires (absolute, or `~/…` in the home of the process that
        /// fires it); its values are never logged.
        headers_file: Option<PathBuf>,
    },
}

/// One hook of an `on:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hook {
    /// The event it reacts to.
    pub event: HookEvent,
    /// What it does.
    #[serde(flatten)]
    pub action: HookAction,
    /// Killed (or abandoned) after this many seconds.
    pub timeout_seconds: u64,
}

impl Hook {
    /// How the hook is named in messages: `on.failure[0] (run: notify.sh)`
    /// or `on.failure[1] (webhook https://host/path)`, prefixed by the
    /// step for a step's hook. A webhook's query string is left out (it may
    /// hold a token).
    pub fn describe(&self, step: Option<&str>, index: usize) -> String {
        let at = match step {
            Some(step) => format!("step `{step}` on.{}[{index}]", self.event),
            None => format!("on.{}[{index}]", self.event),
        };
        match &self.action {
            HookAction::Run { command } => {
                let short: String = command.chars().take(60).collect();
                let more = if command.chars().count() > 60 {
                    "…"
                } else {
                    ""
                };
                format!("{at} (run: {short}{more})")
            }
            HookAction::Webhook { url, .. } => {
                let bare = url.split(['?', '#']).next().unwrap_or(url);
                format!("{at} (webhook {bare})")
            }
        }
    }
}

/// Why a webhook was not delivered, in the sender's words (never with the
/// headers' values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookError(pub String);

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WebhookError {}

/// Posts webhooks for a runtime. A runtime without one refuses a plan with
/// a webhook at submit.
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync + fmt::Debug {
    /// POSTs `body` (JSON) to `url` with `headers`, giving up after
    /// `timeout`; a non-2xx answer is an error.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<(), WebhookError>;
}
