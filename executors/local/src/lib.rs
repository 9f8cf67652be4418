//! twinflow-executor-local runs tasks as processes on this machine.
//!
//! Every attempt is `/bin/sh -e -c SCRIPT` in its working directory, in a
//! session and process group of its own (so it never holds the terminal and
//! never sees the user's Ctrl-C), with standard input from `/dev/null` and
//! standard output and error drained from pipes into the files the runtime
//! chose, each created on its first byte (a silent task leaves none; see
//! `capture.rs`). When the script
//! ends, anything it left running in its process group is killed, as Slurm
//! does at the end of a job. Cancelling sends SIGTERM to the whole group and
//! SIGKILL after a grace period.
//!
//! A handle is `pid:START` with the process's start time from
//! `/proc/PID/stat`, so a restarted runtime can tell its own orphan from an
//! unrelated process that reused the pid; such orphans are killed and run
//! again, since the exit status of a process that is not our child is out of
//! reach. Tasks of the run whose handle never reached the journal are found
//! by the `TWINFLOW_RUN_ID` in their environment (each leads its session).
//!
//! Executors built by one [`LocalFactory`] with a [`SlotPool`] (the daemon)
//! share the machine's cores across runs: an attempt that finds them busy
//! waits its run's turn (handle `local-waiting`, status `Queued`, so its
//! timeout clock has not started) and is announced with its real handle
//! when it starts.

mod capture;
mod executor;
mod pool;
mod process;
mod spawn;

pub use executor::{LocalExecutor, LocalFactory};
pub use pool::SlotPool;
