//! The supervisor's orphans: processes a task left behind (a double fork,
//! `setsid`, `nohup`) that the kernel handed to the supervisor, a child
//! subreaper, when their parents died.
//!
//! Its children are listed from `/proc/self/task/*/children` (no scan of
//! `/proc`); a child that is not a task shell is told apart by the
//! [`super::MARK`] variable in its environment, read once per process. At
//! the end of an attempt every live orphan with its mark is killed with its
//! descendants and process group, round after round (a killed orphan's
//! children come to the supervisor in turn), and every dead child that is
//! not a task shell is reaped. A process that cleared its environment
//! carries no mark: it is killed when the supervisor exits.
//!
//! The common case, tasks that leave nothing behind, costs one listing of
//! the children for all the attempts that ended together ([`survey`]): only
//! when it finds a live child that is not a task shell are marks read and
//! rounds of killing run.

use crate::process;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The mark of one attempt of one supervisor (`PID.TASK.ATTEMPT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark(String);

impl Mark {
    pub(crate) fn new(supervisor: u32, key: (u32, u32)) -> Self {
        Self(format!("{supervisor}.{}.{}", key.0, key.1))
    }
}

/// The marks of the orphans seen so far (`None`: it has none).
#[derive(Debug, Default)]
pub(crate) struct Known(HashMap<u32, Option<String>>);

/// The children of this process: each thread's list.
fn children() -> Vec<u32> {
    children_of("self")
}

fn children_of(pid: &str) -> Vec<u32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut buf = Vec::new();
    for thread in threads.flatten() {
        let path = format!(
            "/proc/{pid}/task/{}/children",
            thread.file_name().to_string_lossy()
        );
        if process::read_proc(&path, &mut buf).is_ok() {
            found.extend(
                buf.split(u8::is_ascii_whitespace)
                    .filter_map(|p| std::str::from_utf8(p).ok()?.parse::<u32>().ok()),
            );
        }
    }
    found
}

fn is_zombie(pid: u32) -> bool {
    process::stat_of(pid)
        .and_then(|stat| process::state_of(&stat))
        .is_none_or(|state| matches!(state, 'Z' | 'X'))
}

/// The value of [`super::MARK`] in a process's environment.
fn mark_of(pid: u32) -> Option<String> {
    let mut env = Vec::new();
    process::read_proc(&format!("/proc/{pid}/environ"), &mut env).ok()?;
    let prefix = format!("{}=", super::MARK);
    env.split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

fn lock(known: &Mutex<Known>) -> std::sync::MutexGuard<'_, Known> {
    known.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Live children that are not task shells and carry `mark` (every such
/// child when `mark` is `None`).
fn live_orphans(known: &Mutex<Known>, mark: Option<&Mark>, shells: &[u32]) -> Vec<u32> {
    let mut known = lock(known);
    children()
        .into_iter()
        .filter(|pid| !shells.contains(pid) && !is_zombie(*pid))
        .filter(|pid| {
            let Some(mark) = mark else { return true };
            let seen = known.0.entry(*pid).or_insert_with(|| mark_of(*pid));
            seen.as_deref() == Some(mark.0.as_str())
        })
        .collect()
}

/// One look at the children for attempts that have ended: reaps every dead
/// child that is not one of `shells`, and returns the live ones (orphans of
/// some attempt, or of none); empty in the common case, in which no mark is
/// read.
pub(crate) fn survey(known: &Mutex<Known>, shells: &[u32]) -> Vec<u32> {
    let mut live = Vec::new();
    let mut known = lock(known);
    for pid in children() {
        if shells.contains(&pid) {
            continue;
        }
        if !is_zombie(pid) {
            live.push(pid);
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)).is_ok() {
            known.0.remove(&pid);
        }
    }
    live
}

/// Forgets what was read of `pid` (it is a task shell now: a mark read
/// while it was being started, before its exec, is not its own).
pub(crate) fn forget(known: &Mutex<Known>, pid: u32) {
    lock(known).0.remove(&pid);
}

/// Whether any of `orphans` carries `mark` (their marks are read once).
pub(crate) fn any_marked(known: &Mutex<Known>, mark: &Mark, orphans: &[u32]) -> bool {
    let mut known = lock(known);
    orphans.iter().any(|pid| {
        let seen = known.0.entry(*pid).or_insert_with(|| mark_of(*pid));
        seen.as_deref() == Some(mark.0.as_str())
    })
}

/// Live orphans carrying `mark`.
pub(crate) fn marked(known: &Mutex<Known>, mark: &Mark, shells: &[u32]) -> Vec<u32> {
    live_orphans(known, Some(mark), shells)
}

/// Reaps every dead child that is not a task shell.
pub(crate) fn reap(known: &Mutex<Known>, shells: &[u32]) {
    let mut known = lock(known);
    for pid in children() {
        if shells.contains(&pid) || !is_zombie(pid) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)).is_ok() {
            known.0.remove(&pid);
        }
    }
}

/// Every descendant of `pid` (its children, theirs, ...).
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for child in children_of(&p.to_string()) {
            if !found.contains(&child) && found.len() < 100_000 {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// Kills the orphans carrying `mark` (every orphan when `None`), their
/// descendants and process groups, until none is left alive, and reaps
/// them.
async fn kill(known: &Mutex<Known>, mark: Option<&Mark>, shells: &[u32]) {
    // A bounded number of rounds: a process stuck in the kernel
    // (uninterruptible sleep) must not hold the supervisor for ever.
    for _ in 0..500 {
        let targets = live_orphans(known, mark, shells);
        if targets.is_empty() {
            break;
        }
        for pid in targets {
            for d in descendants(pid) {
                process::signal_one(d, Signal::SIGKILL);
            }
            process::signal_group(pid, Signal::SIGKILL);
            process::signal_one(pid, Signal::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        reap(known, shells);
    }
    reap(known, shells);
}

/// Kills and reaps every orphan carrying `mark`.
pub(crate) async fn kill_marked(known: &Mutex<Known>, mark: &Mark, shells: &[u32]) {
    kill(known, Some(mark), shells).await;
}

/// Kills and reaps every child that is not one of `shells` (all of them
/// descend from tasks).
pub(crate) async fn kill_all(known: &Mutex<Known>, shells: &[u32]) {
    kill(known, None, shells).await;
}
