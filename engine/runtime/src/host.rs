//! Which process runs a run: host name, pid and the pid's start time, so a
//! reused pid is never mistaken for a live run. A zombie (state `Z`: dead,
//! waiting for its parent to reap it, as a `kill -9`ed daemon is until its
//! parent looks) counts as dead.

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
    stat(pid).map(|(_, start)| start)
}

/// The state letter (field 3) and start time (field 22) of a process; the
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// The start time of a live process: `None` when there is none, or only
/// its zombie (`Z`) or its last trace (`X`).
fn live_start_time(pid: u32) -> Option<u64> {
    stat(pid)
        .filter(|(state, _)| !matches!(state, 'Z' | 'X'))
        .map(|(_, start)| start)
}

/// This process's start time, read once: a daemon asks about its own runs
/// on every `runs` request.
fn own_start_time() -> Option<u64> {
    static OWN: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *OWN.get_or_init(|| start_time(std::process::id()))
}

/// Whether the process that recorded (`host`, `pid`, `start`) still runs.
/// A process on another host is assumed alive: only that host can tell.
pub(crate) fn is_alive(host: &str, pid: u32, start: u64) -> bool {
    if host != hostname() {
        return true;
    }
    if pid == std::process::id() {
        return own_start_time() == Some(start);
    }
    live_start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = std::process::id();
        let start = start_time(me);
        assert!(start.is_some());
        let start = start.unwrap_or_default();
        assert!(is_alive(&hostname(), me, start));
        assert!(!is_alive(&hostname(), me, start + 1), "another start time");
        assert!(is_alive("elsewhere.invalid", me, 0), "another host's word");
        // A pid that names no process.
        assert!(!is_alive(&hostname(), u32::MAX - 1, start));
    }

    #[test]
    fn a_zombie_is_dead() {
        // A child that exits and is not reaped stays a zombie (`Z`) with
        // its pid and start time, as a `kill -9`ed daemon does until its
        // parent reaps it.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let start = loop {
            match stat(pid) {
                Some(('Z', start)) => break start,
                Some(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => panic!("child {pid} did not become a zombie: {other:?}"),
            }
        };
        assert_eq!(start_time(pid), Some(start), "its stat is still there");
        assert!(
            !is_alive(&hostname(), pid, start),
            "a zombie counts as dead"
        );
        child.wait().unwrap();
    }
}
