//! Progress and retry lines of a fetch: every fetcher calls [`note`],
//! which logs through `tracing` and, inside [`with_log`] (the fetch
//! executor wraps each fetch in one), also hands the line to the task's
//! log (its stderr file).

use std::future::Future;
use std::sync::Arc;

/// Where a fetch's lines go besides `tracing`.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

tokio::task_local! {
    static LOG: LogFn;
}

/// Reports one line of the current fetch (a retry, a wait, progress).
pub fn note(line: &str) {
    tracing::info!("{line}");
    let _ = LOG.try_with(|log| log(line));
}

/// Runs `fut` with its [`note`]s also going to `log`.
pub async fn with_log<F: Future>(log: LogFn, fut: F) -> F::Output {
    LOG.scope(log, fut).await
}
