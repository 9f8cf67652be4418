//! The supervisor: what starts a local executor's tasks, drains their
//! output, reaps them, kills what they leave behind and records how each
//! ended.
//!
//! It runs as a resident process of its own (`twinflow local-supervisor`,
//! or the crate's `twinflow-local-supervisor` binary), one per executor, in
//! its own session and as a child subreaper (`PR_SET_CHILD_SUBREAPER`): a
//! process a task orphans (a double fork, `setsid`, `nohup`) becomes its
//! child rather than init's. Every task's environment carries
//! [`MARK`]`=SUPERVISOR.TASK.ATTEMPT`; an orphan is told apart by that
//! variable (read from `/proc/PID/environ` only for children that are not
//! task shells, so the common path reads no one's environment) and killed,
//! with its descendants, when its task ends, times out or is cancelled
//! (see [`orphans`]).
//!
//! It appends a line to its record file when an attempt starts and when it
//! has ended (see `crate::wire`), so a twinflow that was killed and
//! restarted reads how its tasks ended instead of running them again. The
//! lines and replies of one turn of its loop (a batch of requests, the
//! attempts that ended together) go out together, the lines in one write
//! before the replies: the executor never hears of a start or an end that
//! is not on record. When
//! its executor says goodbye it kills what is left and exits; when the
//! executor vanishes (its pipe closes without a goodbye: a SIGKILL) it
//! keeps its tasks to their end, records them, and exits.
//!
//! Without a supervisor binary the same loop runs inside the executor's
//! process ([`serve`] on channels), which is not made a subreaper: there
//! orphans are not followed, and the tasks die with the process.

pub(crate) mod orphans;
mod outbox;
mod queue;
pub(crate) mod resident;

use crate::attempt;
use crate::capture::{Draining, Pipe};
use crate::wire::{Exit, Launch, Record, Reply, Request};
use crate::{process, spawn};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// The environment variable that marks every process of one attempt.
pub(crate) const MARK: &str = "TWINFLOW_LOCAL_MARK";

/// How long the logs of an ended task may take to reach their end of file:
/// only a process that left the task and escaped its mark (a cleared
/// environment) can hold a pipe open past the task's end; its later output
/// is still written, after the task's end has been reported.
const LOG_LINGER: Duration = Duration::from_secs(1);

/// How long a child's death (SIGCHLD) may wait to be reaped when it was not
/// a task shell: an orphan's zombie is harmless meanwhile, and most deaths
/// are task shells, whose ends look at the children anyway.
const REAP_DELAY: Duration = Duration::from_millis(50);

/// Creates a record file in `dir` (made if missing), named after the
/// process that writes it (`PID-START-N.rec`), so a later reader can tell
/// whether its writer still runs.
pub(crate) fn create_records(dir: &Path) -> std::io::Result<(PathBuf, File)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let me = std::process::id();
    let start = process::start_time(me).unwrap_or(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{me}-{start}-{n}.rec"));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)?;
    Ok((path, file))
}

/// How [`serve`] runs.
#[derive(Debug)]
pub(crate) struct Config {
    /// Whether this process is a child subreaper whose children are all
    /// task processes (the supervisor process): then orphans are marked,
    /// killed and reaped.
    pub(crate) subreaper: bool,
    /// Where started and ended attempts are recorded.
    pub(crate) records: Option<File>,
}

struct Shared {
    cfg: Config,
    env: spawn::BaseEnv,
    replies: mpsc::UnboundedSender<Reply>,
    /// Running attempts: their shells' pids.
    tasks: Mutex<HashMap<(u32, u32), u32>>,
    /// Attempts waiting for cores and GPUs, and those taken.
    queue: Mutex<queue::Queue>,
    /// The podman or docker container of each running attempt that has
    /// one: (program, name).
    containers: Mutex<HashMap<(u32, u32), (String, String)>>,
    orphans: Mutex<orphans::Known>,
    me: u32,
    changed: Notify,
    /// Record lines and replies of this turn of the loop.
    outbox: outbox::Outbox,
    /// Ended attempts waiting for their orphans to be looked for (and
    /// killed): woken when none is left.
    sweeps: Mutex<Vec<Sweep>>,
    /// Attempts whose shell is cloned and has not exec'd yet, with a signal
    /// that came meanwhile.
    spawning: Mutex<HashMap<(u32, u32), Option<Signal>>>,
}

/// An ended attempt, and how to tell its end that its orphans are gone.
type Sweep = ((u32, u32), oneshot::Sender<()>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Records `record` and then sends `reply`, with the rest of this turn.
    fn post(&self, record: Option<&Record>, reply: Reply) {
        self.outbox.post(record, self.cfg.records.is_some(), reply);
    }

    /// Appends this turn's lines in one write, then sends its replies.
    fn flush(&self) {
        self.outbox.flush(self.cfg.records.as_ref(), &self.replies);
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, u32), u32>> {
        lock(&self.tasks)
    }

    fn shell_pids(&self) -> Vec<u32> {
        self.tasks().values().copied().collect()
    }
}

/// Serves requests until the executor is gone and no task is left.
pub(crate) async fn serve(
    cfg: Config,
    mut requests: mpsc::UnboundedReceiver<Request>,
    replies: mpsc::UnboundedSender<Reply>,
) {
    let subreaper = cfg.subreaper;
    let shared = Arc::new(Shared {
        cfg,
        env: spawn::BaseEnv::capture(),
        replies,
        tasks: Mutex::default(),
        queue: Mutex::default(),
        containers: Mutex::default(),
        orphans: Mutex::default(),
        me: std::process::id(),
        changed: Notify::new(),
        outbox: outbox::Outbox::default(),
        sweeps: Mutex::default(),
        spawning: Mutex::default(),
    });
    let mut children = if subreaper {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok()
    } else {
        None
    };
    let mut open = true;
    // When a child that died is to be reaped, if no sweep does it first.
    let mut reap_at: Option<tokio::time::Instant> = None;
    loop {
        if !open && shared.tasks().is_empty() {
            break;
        }
        tokio::select! {
            request = requests.recv(), if open => {
                open = handle(&shared, request);
                // The rest of a batch, in the same turn.
                while open && let Ok(request) = requests.try_recv() {
                    open = handle(&shared, Some(request));
                }
            }
            Some(()) = async { children.as_mut()?.recv().await } => {
                reap_at.get_or_insert_with(|| tokio::time::Instant::now() + REAP_DELAY);
            }
            () = tokio::time::sleep_until(reap_at.unwrap_or_else(tokio::time::Instant::now)),
                if reap_at.is_some() => {
                reap_at = None;
                orphans::reap(&shared.orphans, &shared.shell_pids());
            }
            () = shared.changed.notified() => {}
        }
        if sweep(&shared) {
            reap_at = None;
        }
        run_queue(&shared);
        shared.flush();
    }
    shared.flush();
    if subreaper {
        orphans::kill_all(&shared.orphans, &[]).await;
    }
}

/// Carries out one request; whether the executor is still there.
fn handle(shared: &Arc<Shared>, request: Option<Request>) -> bool {
    match request {
        Some(Request::Spawn(launch)) => {
            lock(&shared.queue).waiting.push_back(launch);
            run_queue(shared);
        }
        Some(Request::Signal { key, signal }) => {
            if let Ok(signal) = Signal::try_from(signal) {
                signal_attempt(shared, key, signal);
            }
        }
        Some(Request::Hold { key, cost, devices }) => {
            lock(&shared.queue).hold(key, cost, devices);
        }
        Some(Request::Release { key }) => {
            release(shared, key);
            run_queue(shared);
        }
        Some(Request::Goodbye) => {
            drop_waiting(shared, "its executor said goodbye before it started");
            let keys: Vec<_> = shared.tasks().keys().copied().collect();
            for key in keys {
                signal_attempt(shared, key, Signal::SIGKILL);
            }
            return false;
        }
        // Gone without a goodbye: the tasks run on to their end; those not
        // started never start (a resumed run runs them).
        None => {
            drop_waiting(shared, "its executor went away before it started");
            return false;
        }
    }
    true
}

/// Starts waiting attempts, in order, while their cores and GPUs are free
/// (see [`queue`]).
fn run_queue(shared: &Arc<Shared>) {
    loop {
        let next = lock(&shared.queue).next();
        match next {
            queue::Next::Wait => return,
            queue::Next::Start(launch, devices) => start(shared, launch, &devices),
            queue::Next::Refuse(launch, why) => shared.post(
                None,
                Reply::Failed {
                    key: launch.key,
                    message: why,
                },
            ),
        }
    }
}

/// Frees the cores and GPUs of an attempt that ended (or failed to start).
fn release(shared: &Shared, key: (u32, u32)) {
    lock(&shared.queue).release(key);
}

/// Answers every waiting attempt with `why` instead of starting it.
fn drop_waiting(shared: &Shared, why: &str) {
    let waiting = std::mem::take(&mut lock(&shared.queue).waiting);
    for launch in waiting {
        shared.post(
            None,
            Reply::Failed {
                key: launch.key,
                message: why.to_owned(),
            },
        );
    }
}

/// Looks once at the children for every attempt that ended since the last
/// turn: with no orphan alive (the common case) they are done at once;
/// those whose mark an orphan carries get rounds of killing of their own.
/// Whether it looked (and so reaped what had died).
fn sweep(shared: &Arc<Shared>) -> bool {
    let ended = std::mem::take(&mut *lock(&shared.sweeps));
    if ended.is_empty() {
        return false;
    }
    // A shell is among `shell_pids` from its clone on (one that fails its
    // exec too, reaped by its follower), so what dies here is an orphan.
    let live = orphans::survey(&shared.orphans, &shared.shell_pids());
    for (key, done) in ended {
        let mark = orphans::Mark::new(shared.me, key);
        if !orphans::any_marked(&shared.orphans, &mark, &live) {
            let _ = done.send(());
            continue;
        }
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            orphans::kill_marked(&shared.orphans, &mark, &shared.shell_pids()).await;
            let _ = done.send(());
        });
    }
    true
}

/// Starts one attempt: the shell is cloned without waiting for its exec
/// (see `crate::clone_start`) and followed at once; a program looked up in
/// `PATH` is started by `posix_spawnp`, which holds the loop until the
/// exec.
fn start(shared: &Arc<Shared>, launch: Launch, devices: &[u32]) {
    let key = launch.key;
    let mark = format!("{MARK}={}.{}.{}", shared.me, key.0, key.1);
    let started = attempt::command(&launch, devices)
        .map_err(std::io::Error::other)
        .and_then(|command| Ok((command, Pipe::new()?)))
        .and_then(|(command, out)| Ok((command, out, Pipe::new()?)))
        .and_then(|(command, out, err)| {
            let spawned = spawn::spawn(
                &shared.env,
                &command,
                &launch.workdir,
                &mark,
                &out.task_end,
                &err.task_end,
            )?;
            Ok((spawned, out, err, command.container))
        });
    let (spawned, out, err, container) = match started {
        Ok(started) => started,
        Err(e) => {
            not_started(shared, key, e.to_string());
            return;
        }
    };
    // Our copies of the task's ends close here, so the captures see the end
    // of file when the task's processes have gone (the child has its own).
    let logs =
        [(out, launch.stdout), (err, launch.stderr)].map(|(pipe, path)| pipe.drain_into(path));
    let started = Started {
        key,
        devices: devices.to_vec(),
        cost: launch.cost,
        logs,
        container,
    };
    match spawned {
        spawn::Spawned::Execd(pid) => follow(shared, started, pid, None),
        spawn::Spawned::Starting(pid, watch) => {
            // Signals wait for its exec (see `signal_attempt`).
            lock(&shared.spawning).insert(key, None);
            follow(shared, started, pid, Some(watch));
        }
    }
}

/// An attempt whose shell is started, to be followed.
struct Started {
    key: (u32, u32),
    devices: Vec<u32>,
    cost: u32,
    logs: [std::io::Result<Draining>; 2],
    container: Option<(String, String)>,
}

/// An attempt that could not start: its cores are free again.
fn not_started(shared: &Shared, key: (u32, u32), message: String) {
    release(shared, key);
    shared.post(None, Reply::Failed { key, message });
}

/// Follows a started attempt to its end: recorded and reported as started
/// at once. A cloned shell's exec is waited for first (`watch`): then a
/// signal that came meanwhile is delivered, and a failed exec ends the
/// attempt as [`Exit::NotStarted`] (its shell exits with 127 and is
/// reaped here).
fn follow(
    shared: &Arc<Shared>,
    started: Started,
    pid: u32,
    watch: Option<crate::clone_start::ExecWatch>,
) {
    let Started {
        key,
        devices,
        cost,
        logs,
        container,
    } = started;
    let devices = devices.as_slice();
    // What was read of this pid while it was being started is not its.
    orphans::forget(&shared.orphans, pid);
    let start = process::start_time(pid).unwrap_or(0);
    shared.tasks().insert(key, pid);
    // What it holds, for an executor that adopts it after a restart.
    let holds = Record::Holds {
        key,
        cost: cost.max(1),
        devices: devices.to_vec(),
    };
    shared.outbox.record(&holds.line());
    if let Some((runtime, name)) = &container {
        lock(&shared.containers).insert(key, (runtime.clone(), name.clone()));
        let record = Record::Container {
            key,
            runtime: runtime.clone(),
            name: name.clone(),
        };
        shared.outbox.record(&record.line());
    }
    shared.post(
        Some(&Record::Started { key, pid, start }),
        Reply::Started { key, pid, start },
    );
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let execd = match watch {
            None => Ok(()),
            Some(watch) => {
                let execd = watch.exec_result().await;
                let pending = lock(&shared.spawning).remove(&key).flatten();
                if let (Ok(()), Some(signal)) = (&execd, pending) {
                    signal_attempt(&shared, key, signal);
                }
                execd
            }
        };
        let exit = spawn::wait(pid).await;
        // Its cores go to the next attempt at once (see
        // `Queue::release_cores`), started in this turn.
        lock(&shared.queue).release_cores(key);
        run_queue(&shared);
        shared.flush();
        // Whatever the script left behind in its group goes with it, and so
        // does its container (whose processes are not ours: `--rm` removes
        // it when it ends by itself, not when its runtime's client is
        // killed) and every orphan carrying its mark.
        process::signal_group(pid, Signal::SIGKILL);
        let container = lock(&shared.containers).remove(&key);
        if let Some((runtime, name)) = container {
            attempt::stop(&runtime, &name, Signal::SIGKILL).await;
        }
        if shared.cfg.subreaper {
            let (done, swept) = oneshot::channel();
            lock(&shared.sweeps).push((key, done));
            shared.changed.notify_one();
            let _ = swept.await;
        }
        let log = finish_logs(logs).await;
        let exit = match (execd, exit) {
            (Err(e), _) => Exit::NotStarted(e.to_string()),
            (Ok(()), exit) => exit_of(pid, exit),
        };
        release(&shared, key);
        shared.post(
            Some(&Record::Ended {
                key,
                exit: exit.clone(),
                log: log.clone(),
            }),
            Reply::Exited { key, exit, log },
        );
        shared.tasks().remove(&key);
        shared.changed.notify_one();
    });
}

/// How a shell that exec'd ended, as `waitpid` told it.
fn exit_of(pid: u32, status: std::io::Result<WaitStatus>) -> Exit {
    match status {
        Ok(WaitStatus::Exited(_, code)) => Exit::Code(code),
        Ok(WaitStatus::Signaled(_, signal, _)) => Exit::Signal(signal as i32),
        Ok(other) => Exit::WaitFailed(format!("ended with wait status {other:?}")),
        Err(e) => Exit::WaitFailed(format!("failed to wait for pid {pid}: {e}")),
    }
}

/// Sends `signal` to an attempt's process group and to every orphan that
/// carries its mark (and their groups).
fn signal_attempt(shared: &Shared, key: (u32, u32), signal: Signal) {
    if let Some(pending) = lock(&shared.spawning).get_mut(&key) {
        // Its shell has not exec'd yet (nor made its session): the signal
        // goes to it once it has.
        *pending = Some(signal);
        return;
    }
    let Some(pid) = shared.tasks().get(&key).copied() else {
        // Not started yet: it never will be.
        let mut queue = lock(&shared.queue);
        if let Some(at) = queue.waiting.iter().position(|l| l.key == key) {
            queue.waiting.remove(at);
            drop(queue);
            shared.post(
                None,
                Reply::Failed {
                    key,
                    message: format!("cancelled ({signal}) before it started"),
                },
            );
        }
        return;
    };
    process::signal_group(pid, signal);
    let container = lock(&shared.containers).get(&key).cloned();
    if let Some((runtime, name)) = container {
        tokio::spawn(async move { attempt::stop(&runtime, &name, signal).await });
    }
    if shared.cfg.subreaper {
        let mark = orphans::Mark::new(shared.me, key);
        for orphan in orphans::marked(&shared.orphans, &mark, &shared.shell_pids()) {
            process::signal_one(orphan, signal);
            process::signal_group(orphan, signal);
        }
    }
}

/// Waits (together at most [`LOG_LINGER`]) for both logs of an ended task;
/// why one is incomplete, if it is.
async fn finish_logs(logs: [std::io::Result<Draining>; 2]) -> Option<String> {
    let deadline = tokio::time::Instant::now() + LOG_LINGER;
    let mut lost = None;
    for log in logs {
        let result = match log {
            Ok(draining) => match tokio::time::timeout_at(deadline, draining).await {
                Ok(Ok(result)) => result.map_err(|e| e.to_string()),
                // Still draining (it goes on) or its task died: nothing to add.
                Ok(Err(_)) | Err(_) => Ok(()),
            },
            Err(e) => Err(format!("failed to capture its output: {e}")),
        };
        if let (Err(e), None) = (result, &lost) {
            lost = Some(e);
        }
    }
    lost
}
