//! Starting and reaping task processes.
//!
//! A task is started with `posix_spawn` (vfork + exec: nothing of this
//! process's memory is copied, which matters when thousands of short tasks
//! start) with `POSIX_SPAWN_SETSID`, so it leads a new session and process
//! group and has no controlling terminal. Its standard input is `/dev/null`
//! and its standard output and error are opened (created) by the child
//! itself, so creating the log files costs the dispatcher nothing. Every
//! signal disposition is reset to the default (this process ignores SIGPIPE).
//!
//! It is reaped through a pidfd (Linux 5.3 and later) watched by tokio, or
//! by polling `waitpid` with a growing interval where pidfds are missing.

#![expect(
    unsafe_code,
    reason = "posix_spawn with POSIX_SPAWN_SETSID and pidfd_open have no safe wrapper in std, \
              nix or tokio; every unsafe block below documents its invariants"
)]

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;
use twinflow_core::Job;

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

/// The environment of a task: this process's, with the job's on top.
fn environment(job: &Job) -> io::Result<Vec<CString>> {
    let mut env: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
        .filter(|(k, _)| !job.env.iter().any(|(n, _)| OsStr::new(n) == k.as_os_str()))
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    env.extend(
        job.env
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())),
    );
    env.into_iter()
        .map(|(mut k, v)| {
            k.push(b'=');
            k.extend_from_slice(&v);
            cstring(&k, "an environment variable")
        })
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

/// Starts `/bin/sh -e -c SCRIPT` for a job; returns its pid.
pub(crate) fn spawn(job: &Job) -> io::Result<u32> {
    let sh = c"/bin/sh";
    let argv_owned = [
        CString::from(c"sh"),
        CString::from(c"-e"),
        CString::from(c"-c"),
        cstring(job.script.as_bytes(), "the task's script")?,
    ];
    let env_owned = environment(job)?;
    let stdout = path_cstring(&job.stdout)?;
    let stderr = path_cstring(&job.stderr)?;
    let workdir = path_cstring(&job.workdir)?;
    let mut argv: Vec<*mut libc::c_char> =
        argv_owned.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> =
        env_owned.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());

    let mut setup = SpawnSetup::new()?;
    let s = &mut *setup;
    let log_flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    // SAFETY: every pointer is to a live, NUL-terminated CString or to the
    // initialised setup objects; posix_spawn copies what it needs before it
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
        check(
            libc::posix_spawn_file_actions_addopen(
                &mut s.actions,
                1,
                stdout.as_ptr(),
                log_flags,
                0o644,
            ),
            "posix_spawn_file_actions_addopen",
        )?;
        check(
            libc::posix_spawn_file_actions_addopen(
                &mut s.actions,
                2,
                stderr.as_ptr(),
                log_flags,
                0o644,
            ),
            "posix_spawn_file_actions_addopen",
        )?;
        check(
            libc::posix_spawn_file_actions_addchdir_np(&mut s.actions, workdir.as_ptr()),
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
        let rc = libc::posix_spawn(
            &mut pid,
            sh.as_ptr(),
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
                    "{e} (working directory {}, logs {} and {})",
                    job.workdir.display(),
                    job.stdout.display(),
                    job.stderr.display()
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
