//! Following a task's log file as it grows (`twinflow logs --follow`, the
//! log route's `follow=1`): bytes as they are written, until the attempt
//! has ended and its file is read to the end. Shared by the daemon, which
//! streams them, and the CLI without a daemon, which prints them.

use crate::query::{self, QueryError};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use twinflow_engine::{RunState, StateStore, TaskState};

/// How often a followed file is looked at again once read to its end.
pub const FOLLOW_TICK: Duration = Duration::from_millis(200);

/// Whether attempt `attempt` of task `task` (its name) of run `run` has
/// ended: it is in a final state, a later attempt began, or its run is
/// not running any more (its tasks go nowhere until it is taken up).
pub fn attempt_over(
    store: &StateStore,
    run: &str,
    task: &str,
    attempt: u32,
) -> Result<bool, QueryError> {
    let info = query::find_run(store, Some(run))?;
    if info.state != RunState::Running {
        return Ok(true);
    }
    let Some(row) = store.task(&info.id, task)? else {
        return Ok(true);
    };
    let live = matches!(
        row.state,
        TaskState::Queued | TaskState::Running | TaskState::Awaiting
    );
    Ok(row.attempt != attempt || !live)
}

/// Reads `path` from the start as it grows, handing each chunk to `emit`
/// (which answers false to stop), until `over` says the attempt ended and
/// the file holds nothing more. A file that does not exist yet is waited
/// for (the executor creates it on its first byte).
pub async fn follow<Over, OverFut, Emit, EmitFut>(
    path: &Path,
    mut over: Over,
    mut emit: Emit,
) -> std::io::Result<()>
where
    Over: FnMut() -> OverFut,
    OverFut: std::future::Future<Output = bool>,
    Emit: FnMut(Vec<u8>) -> EmitFut,
    EmitFut: std::future::Future<Output = bool>,
{
    let mut file = None;
    loop {
        if file.is_none() {
            match tokio::fs::File::open(path).await {
                Ok(f) => file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut read_any = false;
        if let Some(f) = file.as_mut() {
            loop {
                let mut chunk = vec![0; 64 * 1024];
                let n = f.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                read_any = true;
                chunk.truncate(n);
                if !emit(chunk).await {
                    return Ok(());
                }
            }
        }
        if !read_any {
            // Asked before the last look, so that bytes written just before
            // the end are read by that look.
            let ended = over().await;
            if let Some(f) = file.as_mut() {
                let mut rest = Vec::new();
                f.read_to_end(&mut rest).await?;
                if !rest.is_empty() && !emit(rest).await {
                    return Ok(());
                }
            } else if let Ok(mut f) = tokio::fs::File::open(path).await {
                let mut rest = Vec::new();
                f.read_to_end(&mut rest).await?;
                if !rest.is_empty() && !emit(rest).await {
                    return Ok(());
                }
                file = Some(f);
            }
            if ended {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_TICK).await;
        }
    }
}
