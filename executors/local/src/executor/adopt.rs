//! Taking back the attempts of an earlier process from its supervisors'
//! record files (`RUN_DIR/local/EXECUTOR/*.rec`, see `crate::wire`).
//!
//! For each task, its latest recorded attempt is:
//! - **ended**: followed, and its recorded status reported at once (the
//!   runtime seals its outputs as usual; it does not run again);
//! - **started, its supervisor alive** (pid and start time, not a zombie):
//!   followed; the supervisor keeps it to its end and records it, and a
//!   watcher reads that record. Cancelling it signals its process group;
//!   its supervisor kills its orphans when it ends. The cores and GPU
//!   devices it holds (its `R` record) stay taken: the executor's new
//!   supervisor is told to hold them when it starts, and to release them
//!   when the watcher reads the end;
//! - **started, its supervisor dead**: its process group is killed (if its
//!   pid still names it) and the runtime runs it again.
//!
//! Journalled attempts with no record (a twinflow older than the records,
//! or a supervisor killed before it wrote one), and any process that leads
//! a session with the run's id and directory in its environment and is not
//! followed, are killed, as before.

use super::{Inner, Running, lock, status_of};
use crate::process;
use crate::wire::{Exit, Record, Request};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use twinflow_core::{AttemptKey, AttemptStatus, Handle, RunRef, TaskId, Update};

/// Where the supervisors of executor `name` of the run in `run_dir` record.
pub(crate) fn records_dir(run_dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    run_dir.join("local").join(safe)
}

/// One record file: whether its writer still runs, and what it says.
#[derive(Debug)]
struct File {
    path: PathBuf,
    alive: bool,
}

/// A recorded end: how it exited, and why a log is incomplete.
type End = (Exit, Option<String>);

/// What the records say of one attempt.
#[derive(Debug, Default)]
struct Seen {
    started: Option<(u32, u64)>,
    ended: Option<End>,
    /// Its podman or docker container: (program, name).
    container: Option<(String, String)>,
    /// The cores and GPU devices it holds (`None`: an older record).
    holds: Option<(u32, Vec<u32>)>,
    /// Index of its file in the list.
    file: usize,
}

/// Whether the process that wrote a record file (named `PID-START-N.rec`)
/// still runs.
fn writer_alive(name: &str) -> Option<bool> {
    let stem = name.strip_suffix(".rec")?;
    let mut parts = stem.split('-');
    let pid: u32 = parts.next()?.parse().ok()?;
    let start: u64 = parts.next()?.parse().ok()?;
    Some(process::live_start_time(pid) == Some(start))
}

fn read_files(dir: &Path) -> (Vec<File>, HashMap<(u32, u32), Seen>) {
    let mut files = Vec::new();
    let mut seen: HashMap<(u32, u32), Seen> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (files, seen);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(alive) = writer_alive(&name) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let index = files.len();
        files.push(File {
            path: entry.path(),
            alive,
        });
        for record in Record::parse_all(&text) {
            match record {
                Record::Started { key, pid, start } => {
                    let s = seen.entry(key).or_default();
                    s.started = Some((pid, start));
                    s.file = index;
                }
                Record::Ended { key, exit, log } => {
                    let s = seen.entry(key).or_default();
                    s.ended = Some((exit, log));
                    s.file = index;
                }
                Record::Holds { key, cost, devices } => {
                    seen.entry(key).or_default().holds = Some((cost, devices));
                }
                Record::Container { key, runtime, name } => {
                    // Only a runtime the supervisor names by itself is run.
                    if matches!(runtime.as_str(), "podman" | "docker") {
                        seen.entry(key).or_default().container = Some((runtime, name));
                    }
                }
            }
        }
    }
    (files, seen)
}

/// See the module documentation; the attempts followed.
pub(crate) fn reattach(
    inner: &Arc<Inner>,
    run: RunRef<'_>,
    attempts: Vec<(AttemptKey, Handle)>,
) -> Vec<AttemptKey> {
    let (files, seen) = read_files(&records_dir(run.dir, &inner.name));
    // Each task's latest recorded attempt.
    let mut latest: HashMap<u32, u32> = HashMap::new();
    for &(task, attempt) in seen.keys() {
        let a = latest.entry(task).or_insert(attempt);
        *a = (*a).max(attempt);
    }
    let mut followed = Vec::new();
    let mut followed_pids = Vec::new();
    let mut watched: Vec<(AttemptKey, usize)> = Vec::new();
    for (task, attempt) in latest {
        let Some(s) = seen.get(&(task, attempt)) else {
            continue;
        };
        let key = AttemptKey {
            task: TaskId(task),
            attempt,
        };
        let alive = files[s.file].alive;
        let submitted = |pid, start| {
            inner.sink.send(Update {
                key,
                status: AttemptStatus::Submitted(process::handle(pid, Some(start))),
            });
        };
        match (&s.ended, s.started) {
            (Some((exit, log)), started) => {
                if let Some((pid, start)) = started {
                    followed_pids.push(pid);
                    submitted(pid, start);
                }
                followed.push(key);
                inner.sink.send(Update {
                    key,
                    status: status_of(exit.clone(), log.clone(), false),
                });
            }
            (None, Some((pid, start))) if alive => {
                followed_pids.push(pid);
                submitted(pid, start);
                followed.push(key);
                let (cost, devices) = s.holds.clone().unwrap_or_default();
                let mut running = Running::adopted(pid, cost, devices);
                running.container.clone_from(&s.container);
                lock(&inner.table).running.insert(key, running);
                watched.push((key, s.file));
            }
            (None, Some((pid, start))) => {
                // Its supervisor died with it: end what is left; it runs again.
                if process::live_start_time(pid) == Some(start) {
                    process::signal_group_or_leader(pid, start, Signal::SIGKILL);
                }
            }
            (None, None) => {}
        }
    }
    for (key, handle) in attempts {
        if followed.contains(&key) {
            continue;
        }
        let Some((pid, start)) = process::parse_handle(&handle) else {
            continue;
        };
        // Ours if the pid still names the process we started, or names
        // nothing (then only its group, which no one else can own, may be
        // left). A reused pid is left alone.
        match process::start_time(pid) {
            Some(now) if now != start => {}
            _ => process::signal_group_or_leader(pid, start, Signal::SIGKILL),
        }
    }
    // Tasks of the run that nothing recorded: every task leads its own
    // session and carries the run's id and directory in its environment.
    for pid in process::session_leaders_of_run(run.id, run.dir) {
        if !followed_pids.contains(&pid) {
            process::signal_group(pid, Signal::SIGKILL);
        }
    }
    // Containers of the run's attempts that are not running on under a live
    // supervisor: their processes are not in any group killed above.
    let adopted: Vec<(u32, u32)> = watched.iter().map(|(k, _)| (k.task.0, k.attempt)).collect();
    let mut stale: HashMap<&str, Vec<&str>> = HashMap::new();
    for (key, s) in &seen {
        if let Some((runtime, name)) = &s.container
            && !adopted.contains(key)
        {
            stale.entry(runtime).or_default().push(name);
        }
    }
    for (runtime, names) in stale {
        remove_containers(runtime, &names);
    }
    if !watched.is_empty() {
        tokio::spawn(watch(Arc::clone(inner), files, watched));
    }
    followed
}

/// `RUNTIME rm -f NAME…`: a name that is already gone is no error.
fn remove_containers(runtime: &str, names: &[&str]) {
    let mut command = std::process::Command::new(runtime);
    command.args(["rm", "-f"]);
    if runtime == "podman" {
        command.args(["--ignore", "--time=0"]);
    }
    let out = command
        .args(names)
        .stdin(std::process::Stdio::null())
        .output();
    if let Err(e) = out {
        tracing::warn!("failed to run `{runtime} rm -f` for the run's stale containers: {e}");
    }
}

/// Reads the record files of live supervisors until each watched attempt
/// has ended there, and reports it; an attempt whose supervisor dies before
/// it recorded its end is lost (its group is killed first).
async fn watch(inner: Arc<Inner>, files: Vec<File>, mut watched: Vec<(AttemptKey, usize)>) {
    let mut delay = Duration::from_millis(20);
    while !watched.is_empty() {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
        let mut ends: HashMap<(usize, (u32, u32)), End> = HashMap::new();
        let mut alive = Vec::with_capacity(files.len());
        for (i, file) in files.iter().enumerate() {
            // Whether it lives is read before its records, so an end written
            // just before it exited is not missed.
            let name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            alive.push(name.as_deref().and_then(writer_alive).unwrap_or(false));
            let text = std::fs::read_to_string(&file.path).unwrap_or_default();
            for record in Record::parse_all(&text) {
                if let Record::Ended { key, exit, log } = record {
                    ends.insert((i, key), (exit, log));
                }
            }
        }
        watched.retain(|(key, file)| {
            let raw = (key.task.0, key.attempt);
            let ended = ends.remove(&(*file, raw));
            if ended.is_none() && alive[*file] {
                return true;
            }
            let Some(running) = lock(&inner.table).running.remove(key) else {
                return false;
            };
            // Its cores and GPUs are the new supervisor's again.
            let link = lock(&inner.link).clone();
            if let Some(link) = link {
                let _ = link.send(&[Request::Release { key: raw }]);
            }
            let status = match ended {
                Some((exit, log)) => status_of(exit, log, running.cancelled),
                None => {
                    process::signal_group(running.pid, Signal::SIGKILL);
                    AttemptStatus::Lost
                }
            };
            inner.sink.send(Update { key: *key, status });
            false
        });
    }
}
