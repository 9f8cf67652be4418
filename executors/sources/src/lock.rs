//! The per-key lock of the cache: an exclusive `flock` on a lock file,
//! which excludes other tasks of this process (each opens the file anew)
//! and other processes alike, and is released when the guard drops (or
//! the process dies). Taken by polling, so that a waiting task can be
//! cancelled.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct Guard(#[expect(dead_code, reason = "held for its Drop")] Flock<File>);

/// Takes the exclusive lock of `path`, waiting as long as another holds it.
pub(crate) async fn lock(path: &Path) -> Result<Guard, String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("failed to create {}: {e}", parent.display()))?;
    }
    let mut told = false;
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("failed to open the lock {}: {e}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(Guard(held)),
            Err((_, Errno::EWOULDBLOCK)) => {
                if !told {
                    told = true;
                    crate::progress::note(
                        "another fetch of this source is under way (another task or run of \
                         this state directory): waiting for it",
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err((_, e)) => return Err(format!("failed to lock {}: {e}", path.display())),
        }
    }
}
