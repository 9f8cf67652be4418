//! Starting and reaping task processes.
//!
//! A task's shell (a program given by path) is started by
//! [`crate::clone_start`]: cloned without waiting for its exec. A container
//! runtime looked up in `PATH` is started with `posix_spawn` (vfork + exec:
//! nothing of this process's memory is copied, which matters when
//! thousands of short tasks start) with `POSIX_SPAWN_SETSID`. Either way it
//! leads a new session and process
//! group and has no controlling terminal. Its standard input is `/dev/null`
//! and its standard output and error are the write ends of two pipes
//! ([`crate::capture`]). Every signal disposition is reset to the default
//! (this process ignores SIGPIPE).
//!
//! It is reaped through a pidfd (Linux 5.3 and later) watched by tokio, or
//! by polling `waitpid` with a growing interval where pidfds are missing.

#![expect(
    unsafe_code,
    reason = "posix_spawn with POSIX_SPAWN_SETSID and pidfd_open have no safe wrapper in std, \
              nix or tokio; every unsafe block below documents its invariants"
)]

use crate::attempt::Command;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

fn cstring(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

fn path_cstring(path: &Path) -> io::Result<CString> {
    cstring(path.as_os_str().as_bytes(), &path.display().to_string())
}

/// This process's environment as `NAME=value` strings, taken once (when the
/// executor is built) rather than for every task.
#[derive(Debug)]
pub(crate) struct BaseEnv(Vec<CString>);

impl BaseEnv {
    /// The environment now; variables holding a NUL byte cannot be passed
    /// on and are left out.
    pub(crate) fn capture() -> Self {
        Self(
            std::env::vars_os()
                .filter_map(|(k, v)| {
                    let mut entry = k.as_bytes().to_vec();
                    entry.push(b'=');
                    entry.extend_from_slice(v.as_bytes());
                    CString::new(entry).ok()
                })
                .collect(),
        )
    }
}

/// The environment of a task (pointers into `base` and `own`, ending in
/// null): `base` without the names `own` sets, then `own`: the job's own
/// variables and its attempt's mark (see [`job_env`]).
fn environment(base: &BaseEnv, own: &[CString]) -> Vec<*mut libc::c_char> {
    let names: Vec<&[u8]> = own
        .iter()
        .filter_map(|e| e.as_bytes().split(|b| *b == b'=').next())
        .collect();
    let overridden = |entry: &CString| {
        let bytes = entry.as_bytes();
        names.iter().any(|name| {
            bytes.len() > name.len() && bytes.starts_with(name) && bytes[name.len()] == b'='
        })
    };
    base.0
        .iter()
        .filter(|e| !overridden(e))
        .chain(own)
        .map(|e| e.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// The job's own variables as `NAME=value` strings, then `mark` (the
/// variable that tells this attempt's processes apart, see
/// `crate::supervisor`).
fn job_env(env: &[(String, String)], mark: &str) -> io::Result<Vec<CString>> {
    env.iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes(), "an environment variable"))
        .chain(std::iter::once(cstring(
            mark.as_bytes(),
            "an environment variable",
        )))
        .collect()
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(rc).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(rc)),
        ))
    }
}

/// Owns posix_spawn's attribute and file-action objects.
struct SpawnSetup {
    attr: libc::posix_spawnattr_t,
    actions: libc::posix_spawn_file_actions_t,
}

impl SpawnSetup {
    fn new() -> io::Result<Box<Self>> {
        // SAFETY: both objects are plain C structs that the init functions
        // fill in; zeroed memory is a valid state to initialise from. They
        // live in a Box so their addresses stay put until Drop destroys them.
        let mut setup = Box::new(unsafe { std::mem::zeroed::<Self>() });
        // SAFETY: pointers to owned, writable objects.
        check(
            unsafe { libc::posix_spawnattr_init(&mut setup.attr) },
            "posix_spawnattr_init",
        )?;
        // SAFETY: as above.
        let rc = unsafe { libc::posix_spawn_file_actions_init(&mut setup.actions) };
        if rc != 0 {
            // SAFETY: attr was initialised just above.
            unsafe { libc::posix_spawnattr_destroy(&mut setup.attr) };
            return check(rc, "posix_spawn_file_actions_init").map(|()| setup);
        }
        Ok(setup)
    }
}

impl Drop for SpawnSetup {
    fn drop(&mut self) {
        // SAFETY: both were initialised in `new` and are destroyed once.
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
            libc::posix_spawnattr_destroy(&mut self.attr);
        }
    }
}

/// A started task process.
#[derive(Debug)]
pub(crate) enum Spawned {
    /// Exec'd already (`posix_spawn` returns after the exec).
    Execd(u32),
    /// Cloned; its exec is confirmed, or its failure told, by the watch
    /// (see [`crate::clone_start`]).
    Starting(u32, crate::clone_start::ExecWatch),
}

/// Starts `command` (`/bin/sh -e -c SCRIPT`, or a container runtime
/// running it; `argv[0]` is looked up in `PATH` when it has no `/`) in
/// `workdir` with `stdout` and `stderr` as its descriptors 1 and 2, and
/// `mark` (`NAME=value`) in its environment. A program given by path is
/// started without waiting for its exec ([`crate::clone_start`]); one
/// looked up in `PATH` by `posix_spawnp`.
pub(crate) fn spawn(
    base: &BaseEnv,
    command: &Command,
    workdir: &Path,
    mark: &str,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> io::Result<Spawned> {
    let argv = argv_cstrings(command)?;
    let own_env = job_env(&command.env, mark)?;
    let envp = environment(base, &own_env);
    let workdir_c = path_cstring(workdir)?;
    if argv
        .first()
        .is_some_and(|a| crate::clone_start::applies(std::ffi::OsStr::from_bytes(a.as_bytes())))
    {
        let (pid, watch) =
            crate::clone_start::start(argv, envp, own_env, workdir_c, stdout, stderr)?;
        return Ok(Spawned::Starting(pid, watch));
    }
    posix_spawn(&argv, &envp, &workdir_c, stdout, stderr).map(Spawned::Execd)
}

/// The command's arguments as C strings (one holding a NUL byte is refused).
fn argv_cstrings(command: &Command) -> io::Result<Vec<CString>> {
    command
        .argv
        .iter()
        .map(|a| cstring(a.as_bytes(), "an argument of the task's command"))
        .collect()
}

/// [`spawn`] through `posix_spawnp` (`envp` ends in null): returns once the
/// child has exec'd.
fn posix_spawn(
    argv_owned: &[CString],
    envp: &[*mut libc::c_char],
    workdir_c: &CString,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> io::Result<u32> {
    let Some(program) = argv_owned.first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the task's command is empty",
        ));
    };
    let mut argv: Vec<*mut libc::c_char> =
        argv_owned.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());

    let mut setup = SpawnSetup::new()?;
    let s = &mut *setup;
    // SAFETY: every pointer is to a live, NUL-terminated CString or to the
    // initialised setup objects, and both descriptors are open (borrowed
    // from their owners); posix_spawn copies what it needs before it
    // returns, and all of them outlive the call.
    unsafe {
        check(
            libc::posix_spawn_file_actions_addopen(
                &mut s.actions,
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            ),
            "posix_spawn_file_actions_addopen",
        )?;
        for (fd, target) in [(stdout, 1), (stderr, 2)] {
            check(
                libc::posix_spawn_file_actions_adddup2(&mut s.actions, fd.as_raw_fd(), target),
                "posix_spawn_file_actions_adddup2",
            )?;
        }
        check(
            libc::posix_spawn_file_actions_addchdir_np(&mut s.actions, workdir_c.as_ptr()),
            "posix_spawn_file_actions_addchdir_np",
        )?;
        let mut empty: libc::sigset_t = std::mem::zeroed();
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigfillset(&mut all);
        check(
            libc::posix_spawnattr_setsigmask(&mut s.attr, &empty),
            "posix_spawnattr_setsigmask",
        )?;
        check(
            libc::posix_spawnattr_setsigdefault(&mut s.attr, &all),
            "posix_spawnattr_setsigdefault",
        )?;
        let flags = libc::POSIX_SPAWN_SETSID
            | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
            | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
        check(
            libc::posix_spawnattr_setflags(&mut s.attr, flags),
            "posix_spawnattr_setflags",
        )?;
        let mut pid: libc::pid_t = 0;
        let rc = libc::posix_spawnp(
            &mut pid,
            program.as_ptr(),
            &s.actions,
            &s.attr,
            argv.as_ptr(),
            envp.as_ptr(),
        );
        if rc != 0 {
            let e = io::Error::from_raw_os_error(rc);
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "{e} (program {}, working directory {})",
                    program.to_string_lossy(),
                    workdir_c.to_string_lossy()
                ),
            ));
        }
        u32::try_from(pid).map_err(|_| io::Error::other("posix_spawn returned a negative pid"))
    }
}

/// A pidfd for `pid`, or `None` where the kernel has none.
fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // (or -1); nothing else is touched.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = libc::c_int::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor was just returned to us and is owned by no one else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits for our child `pid` to end and reaps it.
pub(crate) async fn wait(pid: u32) -> io::Result<WaitStatus> {
    let target = Pid::from_raw(pid as libc::pid_t);
    // SAFETY: an OwnedFd's descriptor is valid and open, and the AsyncFd
    // owns it (and so keeps it open and unchanged) for its whole life.
    let registered = pidfd(pid).and_then(|fd| unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE).ok()
    });
    if let Some(fd) = registered {
        let _ready = fd.readable().await?;
        return reap(target, WaitPidFlag::empty());
    }
    let mut delay = Duration::from_millis(1);
    loop {
        match reap(target, WaitPidFlag::WNOHANG)? {
            WaitStatus::StillAlive => {}
            status => return Ok(status),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

fn reap(pid: Pid, flags: WaitPidFlag) -> io::Result<WaitStatus> {
    loop {
        match waitpid(pid, Some(flags)) {
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
            Ok(status) => return Ok(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn a_job_variable_replaces_only_the_variable_of_its_exact_name() {
        let base = BaseEnv(
            ["A=1", "AB=2", "PATH=/bin", "B=old"]
                .iter()
                .map(|e| CString::new(*e).unwrap())
                .collect(),
        );
        let env = vec![
            ("A".to_owned(), "9".to_owned()),
            ("B".to_owned(), String::new()),
        ];
        let own = job_env(&env, "M=1").unwrap();
        let envp = environment(&base, &own);
        assert_eq!(envp.last(), Some(&std::ptr::null_mut()));
        // SAFETY: every pointer but the last points into `base` or `own`,
        // both alive here.
        let seen: Vec<&str> = envp[..envp.len() - 1]
            .iter()
            .map(|p| unsafe { CStr::from_ptr(*p) }.to_str().unwrap())
            .collect();
        assert_eq!(seen, ["AB=2", "PATH=/bin", "A=9", "B=", "M=1"]);
    }
}
