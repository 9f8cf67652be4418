//! Process plumbing: naming a process by pid and start time (a zombie, dead
//! but not yet reaped, is no longer that process) and signalling a process
//! or a whole process group.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use twinflow_core::Handle;

/// A small file of `/proc` (a process's `stat`, a `children` list), read
/// with one `read` into `buf` when it fits, as they do: no `stat` for a
/// size hint (`/proc` reports 0) and no doubling reads. `buf` is cleared
/// first; the bytes read are in it.
pub(crate) fn read_proc(path: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    if buf.capacity() < 1024 {
        buf.reserve(1024);
    }
    let mut file = std::fs::File::open(path)?;
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        match file.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(());
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        }
    }
}

/// `/proc/PID/stat` as text, or `None` when there is no such process.
pub(crate) fn stat_of(pid: u32) -> Option<String> {
    let mut buf = Vec::new();
    read_proc(&format!("/proc/{pid}/stat"), &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// The start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), or `None` when there is no such process.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    parse_start_time(&stat_of(pid)?)
}

/// The start time of a live process: `None` when there is none, or only its
/// zombie (state `Z`, dead and waiting to be reaped) or its last trace (`X`).
pub(crate) fn live_start_time(pid: u32) -> Option<u64> {
    let stat = stat_of(pid)?;
    if matches!(state_of(&stat), Some('Z' | 'X')) {
        return None;
    }
    parse_start_time(&stat)
}

/// Field 3 (the state letter) of a `/proc/PID/stat` line.
pub(crate) fn state_of(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
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

/// Sends a signal to the process `pid`; one that is already gone is not an
/// error.
pub(crate) fn signal_one(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = nix::sys::signal::kill(Pid::from_raw(raw), signal);
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

/// Sends a signal to the process group led by `pid`, or, when there is no
/// such group yet, to `pid` itself if it is still the process that started
/// at `start`: a task shell is reported started as soon as it is cloned
/// (see `crate::clone_start`), before it has made its session, and a
/// signal meanwhile must not be lost. (SIGKILL ends it at once; another
/// signal waits, blocked, until its exec, and then acts.)
pub(crate) fn signal_group_or_leader(pid: u32, start: u64, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) => {}
        Err(nix::errno::Errno::ESRCH) => {
            if live_start_time(pid) == Some(start) {
                signal_one(pid, signal);
            }
        }
        Err(e) => tracing::warn!("failed to send {signal} to process group {pid}: {e}"),
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
        assert_eq!(state_of(stat), Some('S'));
    }

    #[test]
    fn a_zombie_has_no_live_start_time() {
        // A child that exits and is not reaped stays a zombie with its pid.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            if state_of(&stat) == Some('Z') {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no zombie: {stat}");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(start_time(pid).is_some(), "its stat is still there");
        assert_eq!(live_start_time(pid), None, "a zombie is dead");
        child.wait().unwrap();
        assert!(live_start_time(std::process::id()).is_some());
    }

    #[test]
    fn handles_round_trip() {
        let h = handle(123, Some(456));
        assert_eq!(h.0, "pid:123:456");
        assert_eq!(parse_handle(&h), Some((123, 456)));
        assert_eq!(parse_handle(&Handle("job:7".into())), None);
    }

    #[test]
    fn proc_files_are_read_whole_whatever_their_length() {
        let mut buf = Vec::new();
        read_proc("/proc/self/stat", &mut buf).unwrap();
        // The counters in it move between two reads (page faults, CPU
        // time): compare the whole line's shape and the start time, which
        // does not move.
        let again = std::fs::read("/proc/self/stat").unwrap();
        let start = |line: &[u8]| {
            let text = String::from_utf8_lossy(line).into_owned();
            let after = text.rsplit(')').next().unwrap_or_default().to_owned();
            after.split_whitespace().nth(19).map(str::to_owned)
        };
        assert!(buf.ends_with(b"\n") && buf.iter().filter(|b| **b == b'\n').count() == 1);
        assert_eq!(start(&buf), start(&again), "a stat line in one read");
        assert!(start(&buf).is_some());
        // Longer than the first buffer: it grows.
        read_proc("/proc/self/maps", &mut buf).unwrap();
        assert!(buf.len() > 1024, "{}", buf.len());
        assert!(buf.ends_with(b"\n"));
        assert!(read_proc("/proc/0/stat", &mut buf).is_err());
    }

    #[test]
    fn our_own_start_time_is_readable() {
        assert!(start_time(std::process::id()).is_some());
    }
}
