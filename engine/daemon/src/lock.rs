//! One daemon per state directory: an exclusive `flock` on
//! `daemon/daemon.lock`, held for the daemon's life, with its pid inside.
//! The kernel drops the lock when the process dies, however it dies, so a
//! stale file never blocks a new daemon.

use crate::{DaemonError, DaemonPaths};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct PidLock {
    _file: Flock<File>,
}

fn open(paths: &DaemonPaths) -> Result<File, DaemonError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&paths.lock)
        .map_err(|e| DaemonError::io(&paths.lock, &e))
}

fn pid_in(mut file: &File) -> u32 {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    text.trim().parse().unwrap_or(0)
}

/// Takes the lock and writes this process's pid into it.
pub(crate) fn acquire(paths: &DaemonPaths, state_dir: &str) -> Result<PidLock, DaemonError> {
    let file = open(paths)?;
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => f,
        Err((file, _)) => {
            return Err(DaemonError::AlreadyRunning {
                pid: pid_in(&file),
                state_dir: state_dir.to_owned(),
            });
        }
    };
    let pid = std::process::id();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{pid}"))
        .map_err(|e| DaemonError::io(&paths.lock, &e))?;
    Ok(PidLock { _file: file })
}

/// The pid of the daemon that holds the state directory, if one does.
pub fn running_pid(paths: &DaemonPaths) -> Option<u32> {
    let file = File::open(&paths.lock).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        // We could lock it: nobody holds it.
        Ok(_) => None,
        Err((file, _)) => Some(pid_in(&file)),
    }
}
