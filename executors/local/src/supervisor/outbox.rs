//! What one turn of the supervisor says: record lines and replies,
//! collected from the loop and from the tasks that follow attempts, and
//! sent in the order they were posted. The outbox stays locked from taking
//! its contents to the last reply sent: two flushes at once (the loop's,
//! and an ended attempt's that hands its cores on) could otherwise send
//! their replies out of order, and the executor drops an exit that comes
//! before its attempt's start (the task then stayed running for ever).

use crate::wire::{Record, Reply};
use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, PoisonError};
use tokio::sync::mpsc;

/// Record lines and replies not sent yet.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    inner: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    lines: String,
    replies: Vec<Reply>,
}

impl Outbox {
    /// Records `record` (when records are kept) and then sends `reply`,
    /// with the rest of this turn.
    pub(super) fn post(&self, record: Option<&Record>, keep_records: bool, reply: Reply) {
        let mut pending = self.lock();
        if let (Some(record), true) = (record, keep_records) {
            pending.lines.push_str(&record.line());
        }
        pending.replies.push(reply);
    }

    /// Adds a record line with no reply.
    pub(super) fn record(&self, line: &str) {
        self.lock().lines.push_str(line);
    }

    /// Appends the pending lines to `records` in one write, then sends the
    /// replies, all under the lock.
    pub(super) fn flush(&self, records: Option<&File>, replies: &mpsc::UnboundedSender<Reply>) {
        let mut pending = self.lock();
        let Pending {
            lines,
            replies: out,
        } = std::mem::take(&mut *pending);
        if let (Some(mut file), false) = (records, lines.is_empty())
            && let Err(e) = file.write_all(lines.as_bytes())
        {
            tracing::warn!("failed to append to the local supervisor's record file: {e}");
        }
        for reply in out {
            let _ = replies.send(reply);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Exit;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn an_exit_never_overtakes_its_start_when_two_threads_flush() {
        const N: u32 = 20_000;
        let outbox = Arc::new(Outbox::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        // The loop posts starts and flushes; a follower waits for each
        // start to be posted, then posts its exit and flushes too.
        let posted = Arc::new(AtomicU32::new(0));
        let starter = {
            let (outbox, tx, posted) = (Arc::clone(&outbox), tx.clone(), Arc::clone(&posted));
            std::thread::spawn(move || {
                for k in 0..N {
                    outbox.post(
                        None,
                        false,
                        Reply::Started {
                            key: (k, 0),
                            pid: k,
                            start: 1,
                        },
                    );
                    posted.store(k + 1, Ordering::Release);
                    outbox.flush(None, &tx);
                }
            })
        };
        let follower = {
            let (outbox, tx, posted) = (Arc::clone(&outbox), tx.clone(), Arc::clone(&posted));
            std::thread::spawn(move || {
                for k in 0..N {
                    while posted.load(Ordering::Acquire) <= k {
                        std::hint::spin_loop();
                    }
                    outbox.post(
                        None,
                        false,
                        Reply::Exited {
                            key: (k, 0),
                            exit: Exit::Code(0),
                            log: None,
                        },
                    );
                    outbox.flush(None, &tx);
                }
            })
        };
        let (a, b) = (starter.join(), follower.join());
        assert!(a.is_ok() && b.is_ok());
        drop(tx);
        let mut started = vec![false; N as usize];
        let mut seen = 0;
        while let Ok(reply) = rx.try_recv() {
            match reply {
                Reply::Started { key, .. } => started[key.0 as usize] = true,
                Reply::Exited { key, .. } => {
                    assert!(
                        started[key.0 as usize],
                        "the exit of {key:?} came before its start"
                    );
                    seen += 1;
                }
                Reply::Failed { .. } => {}
            }
        }
        assert_eq!(seen, N);
    }
}
