//! Which process runs a run: host name, pid and the pid's start time, so a
//! reused pid is never mistaken for a live run.

/// This machine's host name.
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that recorded (`host`, `pid`, `start`) still runs.
/// A process on another host is assumed alive: only that host can tell.
pub(crate) fn is_alive(host: &str, pid: u32, start: u64) -> bool {
    if host != hostname() {
        return true;
    }
    start_time(pid) == Some(start)
}
