//! What ends one attempt on the VM (cancel, a timeout, shutdown, an
//! attempt of a resumed run that has no handle): one `sh` script over the
//! SSH connection, built here from the control directory alone, so it
//! needs nothing the executor might have lost.
//!
//! 1. `cancelled` is written (a runner that has not started the task yet
//!    then never does).
//! 2. SIGTERM goes to the runner's process group (pid in `pid`): the runner,
//!    the task's shell, or the runtime's client (`podman run` hands the
//!    signal to the container, Apptainer's processes are the group's own).
//! 3. A podman or docker container named in `container` (written by the
//!    runner before it starts the container) is sent SIGTERM by name too
//!    (`podman kill --signal=TERM NAME`): its processes are not the group's
//!    (they belong to `conmon`).
//! 4. After the grace period, in the background: SIGKILL to the group and
//!    to every process of the runner's session (`pkill -s`, where it is
//!    installed: MPI ranks, which `mpirun` puts in process groups of their
//!    own, would outlive a group kill of an `mpirun` ignoring SIGTERM),
//!    then `podman rm -f --time=0 NAME` (docker: `docker rm -f NAME`), so no
//!    container outlives its attempt even when its task ignores SIGTERM.

use twinflow_core::shell_quote;

/// The script that ends the attempt of control directory `ctl`, with
/// `grace` seconds between SIGTERM and SIGKILL.
pub(crate) fn script(ctl: &str, grace: u32) -> String {
    let c = shell_quote(ctl);
    format!(
        "touch {c}/cancelled 2>/dev/null; pid=$(cat {c}/pid 2>/dev/null || true); \
         rt=; name=; if [ -f {c}/container ]; then {{ read -r rt; read -r name; }} < {c}/container; fi; \
         case \"$rt\" in podman) rm_opts='-f --time=0';; docker) rm_opts=-f;; *) rt=;; esac; \
         if [ -n \"$pid\" ]; then kill -TERM -- -\"$pid\" 2>/dev/null || true; fi; \
         if [ -n \"$rt\" ]; then \"$rt\" kill --signal=TERM -- \"$name\" >/dev/null 2>&1 || true; fi; \
         if [ -n \"$pid\" ] || [ -n \"$rt\" ]; then \
         (sleep {grace}; if [ -n \"$pid\" ]; then kill -KILL -- -\"$pid\" 2>/dev/null; \
         pkill -KILL -s \"$pid\" 2>/dev/null; fi; \
         if [ -n \"$rt\" ]; then \"$rt\" rm $rm_opts -- \"$name\"; fi) </dev/null >/dev/null 2>&1 & fi"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The script against stand-ins: a `podman` that logs its arguments, a
    /// control directory naming a container, no pid (the runner gone).
    #[test]
    fn stops_the_named_container_then_removes_it() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let bin = dir.path().join("bin");
        let ctl = dir.path().join("a b.cloud");
        let log = dir.path().join("podman.log");
        std::fs::create_dir_all(&bin).ok();
        std::fs::create_dir_all(&ctl).ok();
        let fake = format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display());
        std::fs::write(bin.join("podman"), fake).ok();
        let _ = Command::new("chmod")
            .arg("+x")
            .arg(bin.join("podman"))
            .status();
        std::fs::write(ctl.join("container"), "podman\ntf-run-1-4-0\n").ok();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let ok = Command::new("/bin/sh")
            .arg("-c")
            .arg(script(&ctl.display().to_string(), 0))
            .env("PATH", path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok);
        let mut text = String::new();
        for _ in 0..50 {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().count() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(
            text,
            "kill --signal=TERM -- tf-run-1-4-0\nrm -f --time=0 -- tf-run-1-4-0\n"
        );
        assert!(ctl.join("cancelled").exists());
    }

    #[test]
    fn a_control_directory_without_a_container_only_signals_the_group() {
        let s = script("/r/1.0.cloud", 5);
        assert!(s.contains("kill -TERM -- -\"$pid\""), "{s}");
        assert!(s.contains("sleep 5"), "{s}");
    }

    /// A process of the runner's session in a group of its own (as
    /// `mpirun` starts each rank) that ignores SIGTERM dies too.
    #[test]
    fn processes_of_the_session_in_other_groups_die_after_the_grace() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let ctl = dir.path().join("1.0.cloud");
        std::fs::create_dir_all(&ctl).ok();
        let word = format!("1000.{}7", std::process::id() % 100_000);
        // `set -m`: the background job gets a process group of its own.
        let runner = format!(
            "echo $$ > '{}/pid'; set -m; trap '' TERM; sleep {word} & wait",
            ctl.display()
        );
        let mut child = Command::new("setsid")
            .args(["/bin/sh", "-c", &runner])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("setsid");
        let alive = |w: &str| {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    String::from_utf8_lossy(&cmd).starts_with("sleep\0")
                        && String::from_utf8_lossy(&cmd).contains(w)
                        && !stat.contains(") Z")
                })
        };
        for _ in 0..100 {
            if alive(&word) && ctl.join("pid").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(alive(&word), "the stand-in rank runs");
        let ok = Command::new("/bin/sh")
            .arg("-c")
            .arg(script(&ctl.display().to_string(), 0))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok);
        let mut gone = false;
        for _ in 0..100 {
            if !alive(&word) {
                gone = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            gone,
            "the process in another group of the session was killed"
        );
    }
}
