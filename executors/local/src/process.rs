//! Process plumbing: naming a process by pid and start time, signalling a
//! whole process group, and what a wait status means.

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use twinflow_core::{AttemptStatus, Handle};

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

/// Processes of this user that lead their own session and have
/// `TWINFLOW_RUN_ID=run_id` and `TWINFLOW_RUN_DIR=run_dir` in their
/// environment: task roots of that run (the directory tells apart two runs
/// that happen to share an id in different state directories).
pub(crate) fn session_leaders_of_run(run_id: &str, run_dir: &std::path::Path) -> Vec<u32> {
    let id = format!("TWINFLOW_RUN_ID={run_id}");
    let dir = format!("TWINFLOW_RUN_DIR={}", run_dir.display());
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| session_of(&stat))
                == Some(pid)
        })
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                let has = |needle: &str| env.split(|b| *b == 0).any(|var| var == needle.as_bytes());
                has(&id) && has(&dir)
            })
        })
        .collect()
}

/// Field 6 (session id) of a `/proc/PID/stat` line.
pub(crate) fn session_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(3)?.parse().ok()
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

/// What a wait status means for the runtime.
pub(crate) fn status_of(status: WaitStatus, cancelled: bool) -> AttemptStatus {
    if cancelled {
        return AttemptStatus::Cancelled;
    }
    match status {
        WaitStatus::Exited(_, code) => AttemptStatus::Exited(code),
        WaitStatus::Signaled(_, signal, _) => {
            AttemptStatus::Signalled(format!("killed by {}", signal.as_str()))
        }
        other => AttemptStatus::Error(format!("ended with wait status {other:?}")),
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
        assert_eq!(session_of(stat), Some(4242));
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
