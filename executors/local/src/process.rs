//! Process plumbing: spawning a detached shell, naming a process by pid and
//! start time, and signalling a whole process group.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::File;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use twinflow_core::{AttemptStatus, Handle, Job};

/// Starts `/bin/sh -e -c SCRIPT` for a job in a new session.
pub(crate) fn spawn(job: &Job) -> io::Result<tokio::process::Child> {
    let stdout = File::create(&job.stdout)
        .map_err(|e| with_path(e, "failed to create log file", &job.stdout))?;
    let stderr = File::create(&job.stderr)
        .map_err(|e| with_path(e, "failed to create log file", &job.stderr))?;
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-e")
        .arg("-c")
        .arg(&job.script)
        .current_dir(&job.workdir)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(false);
    #[expect(
        unsafe_code,
        reason = "setsid in the child between fork and exec detaches the task from the \
                  terminal and makes it the leader of its own process group; setsid is \
                  async-signal-safe and touches no memory of the parent"
    )]
    // SAFETY: only an async-signal-safe system call runs in the forked child.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    command.spawn()
}

fn with_path(e: io::Error, what: &str, path: &std::path::Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// The start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), or `None` when there is no such process.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/PID/stat` line; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
pub(crate) fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// `pid:START`, see the crate documentation.
pub(crate) fn handle(pid: u32, start: Option<u64>) -> Handle {
    Handle(format!("pid:{pid}:{}", start.unwrap_or(0)))
}

/// The pid and start time a handle names.
pub(crate) fn parse_handle(handle: &Handle) -> Option<(u32, u64)> {
    let rest = handle.0.strip_prefix("pid:")?;
    let (pid, start) = rest.split_once(':')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Sends a signal to the process group led by `pid`; a group that is
/// already gone is not an error.
pub(crate) fn signal_group(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!("failed to send {signal} to process group {pid}: {e}"),
    }
}

/// What an exit status means for the runtime.
pub(crate) fn status_of(exit: ExitStatus, cancelled: bool) -> AttemptStatus {
    if cancelled {
        return AttemptStatus::Cancelled;
    }
    match (exit.code(), exit.signal()) {
        (Some(code), _) => AttemptStatus::Exited(code),
        (None, Some(signal)) => AttemptStatus::Signalled(signal_name(signal)),
        (None, None) => AttemptStatus::Error(format!("ended with status {exit}")),
    }
}

fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(s) => format!("killed by {}", s.as_str()),
        Err(_) => format!("killed by signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_parentheses_in_the_name() {
        let stat = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn handles_round_trip() {
        let h = handle(123, Some(456));
        assert_eq!(h.0, "pid:123:456");
        assert_eq!(parse_handle(&h), Some((123, 456)));
        assert_eq!(parse_handle(&Handle("job:7".into())), None);
    }

    #[test]
    fn our_own_start_time_is_readable() {
        assert!(start_time(std::process::id()).is_some());
    }
}
