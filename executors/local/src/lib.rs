//! twinflow-executor-local runs tasks as processes on this machine.
//!
//! Every attempt is `/bin/sh -e -c SCRIPT` (for a step in a container, the
//! runtime running it inside the image, and after the executor's prologue
//! if it has one; see `attempt.rs`) in its working directory, in a
//! session and process group of its own (so it never holds the terminal and
//! never sees the user's Ctrl-C), with standard input from `/dev/null` and
//! standard output and error drained from pipes into the files the runtime
//! chose, each created on its first byte (a silent task leaves none; see
//! `capture.rs`). Cancelling sends SIGTERM to the whole group and SIGKILL
//! after a grace period.
//!
//! Tasks are started, drained, reaped and killed by the executor's
//! **supervisor** (`supervisor/`): with a [`SupervisorBinary`] (what the
//! `twinflow` CLI and daemon use: `twinflow local-supervisor`), a resident
//! process of its own per executor, in its own session and a child
//! subreaper, so that whatever a task leaves behind (its process group,
//! and processes that left it: double forks, `setsid`, `nohup`) is killed
//! at its end, timeout or cancel; and so that the tasks outlive a killed
//! twinflow, which reads how they ended from the supervisor's record file
//! when the run is resumed (`executor/adopt.rs`) instead of running them again.
//! Without one, the same supervisor loop runs inside this process: process
//! groups are still killed, but orphans that left them are not followed,
//! and tasks die with the process (a resumed run still reads the records of
//! the attempts that had ended).
//!
//! `submit` returns once the supervisor has the attempt (handle
//! `local-starting`), not once it runs: the runtime goes on while the shell
//! starts, and the attempt's handle `pid:START` (the process's start time
//! from `/proc/PID/stat`, so a restarted runtime can tell its own task from
//! an unrelated process that reused the pid; a zombie counts as dead)
//! follows as [`twinflow_core::AttemptStatus::Submitted`], then `Running`,
//! or a failure to start as an error status. An executor with `slots` holds
//! as many attempts again ([`twinflow_core::Executor::holds_ahead`]): they
//! wait in the supervisor (`Queued`) and it starts each the moment an
//! attempt ends, without a round trip through the runtime. Tasks of the run
//! that nothing recorded are found by the `TWINFLOW_RUN_ID` in their
//! environment (each leads its session) and killed.
//!
//! Executors built by one [`LocalFactory`] with a [`SlotPool`] (the daemon)
//! share the machine's cores across runs: an attempt that finds them busy
//! waits its run's turn (handle `local-waiting`, status `Queued`, so its
//! timeout clock has not started) and is announced with its real handle
//! when it starts.

mod attempt;
mod capture;
mod clone_start;
mod executor;
mod link;
mod pool;
mod process;
mod spawn;
mod supervisor;
mod wire;

pub use executor::{LocalExecutor, LocalFactory};
pub use link::SupervisorBinary;
pub use pool::SlotPool;
pub use supervisor::resident::supervise;
