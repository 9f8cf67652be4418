//! Starting task shells off the supervisor's loop.
//!
//! `posix_spawn` (vfork + exec) holds the thread that calls it until the
//! child has replaced itself with `/bin/sh`: 0.2 to 0.5 ms on the machine of
//! docs/benchmarks.md. On the loop's own thread that held up everything
//! else: the second of two attempts handed over together, and the end of a
//! task that finished meanwhile (its successor waited for the loop to reap
//! it). A few threads of their own start the shells instead, several at
//! once, and hand each pid back to the loop.
//!
//! The shells are so the children of these threads, and orphans those of
//! the main thread (the kernel hands them to a subreaper's first live
//! thread): the orphan sweeps read only the other threads' lists
//! ([`is_spawner`]), so they never reap a shell that ended before its pid
//! reached the loop.

use crate::capture::Pipe;
use crate::process;
use crate::spawn::{self, BaseEnv};
use crate::wire::Launch;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

/// The thread ids of every spawner thread of this process.
static SPAWNERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Whether thread `tid` of this process starts shells.
pub(crate) fn is_spawner(tid: u32) -> bool {
    SPAWNERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&tid)
}

/// One attempt to start: the request and its two pipes.
pub(crate) struct Job {
    pub(crate) launch: Launch,
    pub(crate) mark: String,
    pub(crate) out: Pipe,
    pub(crate) err: Pipe,
}

/// A started (or failed) attempt: the pipes come back with its pid and
/// start time.
pub(crate) struct Spawned {
    pub(crate) job: Box<Job>,
    pub(crate) started: std::io::Result<(u32, u64)>,
}

/// The threads that start shells; they end when it is dropped.
pub(crate) struct Spawner {
    jobs: std_mpsc::Sender<Box<Job>>,
}

impl Spawner {
    /// `threads` threads (at least one) starting shells with `env`,
    /// reporting each into `done`.
    pub(crate) fn new(
        env: Arc<BaseEnv>,
        threads: usize,
        done: &mpsc::UnboundedSender<Spawned>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = std_mpsc::channel::<Box<Job>>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let (env, queue, done) = (Arc::clone(&env), Arc::clone(&queue), done.clone());
            std::thread::Builder::new()
                .name(format!("twinflow-spawn-{i}"))
                .spawn(move || {
                    let me = nix::unistd::gettid().as_raw().unsigned_abs();
                    SPAWNERS
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(me);
                    loop {
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = next else { break };
                        let started = spawn::spawn(
                            &env,
                            &job.launch,
                            &job.mark,
                            &job.out.task_end,
                            &job.err.task_end,
                        )
                        .map(|pid| (pid, process::start_time(pid).unwrap_or(0)));
                        if done.send(Spawned { job, started }).is_err() {
                            break;
                        }
                    }
                    SPAWNERS
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retain(|t| *t != me);
                })?;
        }
        Ok(Self { jobs })
    }

    /// Hands `job` to a free thread; it comes back as [`Spawned`].
    pub(crate) fn start(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        self.jobs.send(job).map_err(|e| e.0)
    }
}
