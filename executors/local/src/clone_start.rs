//! Starting a task's shell without waiting for its exec (Linux on x86_64).
//!
//! `posix_spawn` clones with `CLONE_VM | CLONE_VFORK`: its caller sleeps
//! until the child has exec'd, and the kernel then wakes it on the child's
//! core, queued behind the child. With every core running a task, the
//! supervisor waited there until that task ended (p90 0.84 ms, `perf
//! sched`), and a task ending on another core meanwhile found no one to
//! start the next: that core idled (docs/benchmarks.md, "At scale").
//!
//! Here the child is cloned with `CLONE_VM` but without `CLONE_VFORK`, on a
//! stack of its own: the caller goes on at once. The child shares this
//! process's memory until its exec, so it touches nothing but its stack and
//! the arguments prepared for it, makes raw system calls (no libc wrapper,
//! which could write this thread's `errno`), and runs with every signal
//! blocked until it has set their dispositions to the default. Whether the
//! exec happened comes through a close-on-exec pipe: its end of file (the
//! exec closed the child's end, or the child died) or the `errno` of what
//! failed, written before the child exits with status 127. [`ExecWatch`]
//! keeps the stack and the arguments alive until then.
//!
//! Only for programs given by path (the task shell `/bin/sh`); a program
//! looked up in `PATH` (a container runtime) is started by `posix_spawnp`.

#![expect(
    unsafe_code,
    reason = "clone on a stack of our own and the child's raw system calls have no safe \
              wrapper; every unsafe block documents its invariants"
)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// The child's stack: enough for its few frames, with a guard page below.
const STACK: usize = 64 * 1024;
const GUARD: usize = 4096;

/// What the child reads, made before the clone.
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *mut libc::c_char,
    envp: *const *mut libc::c_char,
    workdir: *const libc::c_char,
    stdout: libc::c_int,
    stderr: libc::c_int,
    status: libc::c_int,
}

/// What a started child needs kept until its exec, and how to learn of it.
pub(crate) struct ExecWatch {
    /// Read end of the status pipe (close-on-exec, non-blocking).
    status: OwnedFd,
    memory: ChildMemory,
    /// For messages: the program and the working directory.
    program: String,
    workdir: String,
}

/// What the child runs on and reads until its exec: its stack, its
/// arguments and the strings they point into.
struct ChildMemory {
    stack: Stack,
    _args: Box<ChildArgs>,
    _strings: Vec<CString>,
    _pointers: [Vec<*mut libc::c_char>; 2],
}

// SAFETY: the raw pointers point into the strings it owns (or into the
// supervisor's captured environment, which outlives it); nothing reads
// them through it, which only keeps them alive for the child.
unsafe impl Send for ChildMemory {}

impl std::fmt::Debug for ExecWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecWatch")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl ExecWatch {
    /// Waits until the child has exec'd (`Ok`) or failed to (the error,
    /// as `posix_spawn` would have put it); the child's memory is freed
    /// then.
    pub(crate) async fn exec_result(self) -> io::Result<()> {
        let Self {
            status,
            memory: keep,
            program,
            workdir,
        } = self;
        // What the child may still be using is never freed on a way out
        // that has not seen it exec or exit: a mapping given back while it
        // runs there could be handed out again, under its feet.
        let unsure = |e: io::Error, keep| {
            std::mem::forget(keep);
            e
        };
        // SAFETY: the AsyncFd owns the descriptor (open, and ours alone)
        // for its whole life, so it stays open and unchanged meanwhile.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(status, tokio::io::Interest::READABLE)
        };
        let fd = match registered {
            Ok(fd) => fd,
            Err(e) => return Err(unsure(io::Error::from(e), keep)),
        };
        let mut errno = [0u8; 4];
        let mut got = 0;
        let mut buf = [0u8; 8];
        loop {
            let mut ready = match fd.readable().await {
                Ok(ready) => ready,
                Err(e) => return Err(unsure(e, keep)),
            };
            // SAFETY: reads into a live buffer of that length.
            let n =
                unsafe { libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                0 => break,
                // Read on to the end of file even after the errno: the
                // child still runs on its stack until it has exited.
                n if n > 0 => {
                    for b in &buf[..n as usize] {
                        if got < errno.len() {
                            errno[got] = *b;
                            got += 1;
                        }
                    }
                }
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::WouldBlock {
                        ready.clear_ready();
                    } else if e.kind() != io::ErrorKind::Interrupted {
                        return Err(unsure(e, keep));
                    }
                }
            }
        }
        drop(fd);
        // The child is off its stack (exec'd or gone): the next may use it.
        let ChildMemory { stack, .. } = keep;
        stack.recycle();
        if got < errno.len() {
            return Ok(());
        }
        let e = io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
        Err(io::Error::new(
            e.kind(),
            format!("{e} (program {program}, working directory {workdir})"),
        ))
    }

    /// The child's stack, for tests.
    #[cfg(test)]
    fn stack_len(&self) -> usize {
        self.memory.stack.len
    }
}

/// An anonymous mapping for the child's stack, unmapped on drop.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: a Stack owns its mapping alone (nothing else points into it once
// its child is off it), so it may move to another thread.
unsafe impl Send for Stack {}

/// Stacks whose child has exec'd or died, kept for the next starts: a
/// mapping, its guard page and its unmapping (a TLB flush) fewer per task.
static SPARE: std::sync::Mutex<Vec<Stack>> = std::sync::Mutex::new(Vec::new());

/// How many stacks [`SPARE`] keeps at most (64 KiB each).
const SPARE_MAX: usize = 16;

impl Stack {
    /// A spare stack, or a new one.
    fn take() -> io::Result<Self> {
        let spare = SPARE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        spare.map_or_else(Self::new, Ok)
    }

    /// Keeps this stack for a later start (its child must be off it), or
    /// unmaps it when enough are kept.
    fn recycle(self) {
        let mut spare = SPARE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if spare.len() < SPARE_MAX {
            spare.push(self);
        }
    }

    fn new() -> io::Result<Self> {
        let len = STACK + GUARD;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched. The lowest page is made inaccessible, so an overflow
        // faults instead of writing below the mapping.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let stack = Self { base, len };
            if libc::mprotect(base, GUARD, libc::PROT_NONE) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, where a stack that grows
        // down starts.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` and is unmapped once; the
        // watch owning it is dropped only after the child's exec or death.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// A system call with up to four arguments, without libc (no `errno`).
#[cfg(target_arch = "x86_64")]
unsafe fn sys(n: libc::c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid system call and arguments; the
    // `syscall` instruction clobbers rcx and r11 only.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// The child: default signal dispositions, a session of its own, standard
/// input from `/dev/null`, the two pipes as 1 and 2, the working directory,
/// no blocked signal, the exec. A failure writes its `errno` to the status
/// pipe and exits with 127.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent keeps alive until this
    // child has exec'd or exited; every call below is a raw system call on
    // descriptors and strings it holds.
    unsafe {
        let a = &*arg.cast::<ChildArgs>();
        let default = [0u64; 4];
        for sig in 1..=64usize {
            if sig != libc::SIGKILL as usize && sig != libc::SIGSTOP as usize {
                sys(libc::SYS_rt_sigaction, sig, default.as_ptr() as usize, 0, 8);
            }
        }
        let fail = |err: isize| fail(a.status, err);
        let rc = sys(libc::SYS_setsid, 0, 0, 0, 0);
        if rc < 0 {
            fail(rc);
        }
        let null = sys(
            libc::SYS_openat,
            libc::AT_FDCWD as isize as usize,
            c"/dev/null".as_ptr() as usize,
            (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
            0,
        );
        if null < 0 {
            fail(null);
        }
        for (from, to) in [
            (null as usize, 0),
            (a.stdout as usize, 1),
            (a.stderr as usize, 2),
        ] {
            // Already there (a descriptor this process did not have
            // open): only its close-on-exec flag goes.
            let rc = if from == to {
                sys(libc::SYS_fcntl, from, libc::F_SETFD as usize, 0, 0)
            } else {
                sys(libc::SYS_dup3, from, to, 0, 0)
            };
            if rc < 0 {
                fail(rc);
            }
        }
        let rc = sys(libc::SYS_chdir, a.workdir as usize, 0, 0, 0);
        if rc < 0 {
            fail(rc);
        }
        let empty = 0u64;
        sys(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &raw const empty as usize,
            0,
            8,
        );
        let rc = sys(
            libc::SYS_execve,
            a.program as usize,
            a.argv as usize,
            a.envp as usize,
            0,
        );
        fail(rc)
    }
}

/// Tells the parent the `errno` of what failed and exits with 127.
unsafe fn fail(status: libc::c_int, err: isize) -> ! {
    let bytes = ((-err) as i32).to_ne_bytes();
    // SAFETY: a write of a live 4-byte buffer, then the end of the process.
    unsafe {
        sys(
            libc::SYS_write,
            status as usize,
            bytes.as_ptr() as usize,
            4,
            0,
        );
        sys(libc::SYS_exit_group, 127, 0, 0, 0);
    }
    loop {
        core::hint::spin_loop();
    }
}

/// Starts `argv` (whose first string is a path) with the environment
/// `envp` (pointers into `strings` or into memory that outlives the
/// watch), in `workdir`, with `stdout` and `stderr` as its descriptors 1
/// and 2: its pid and the watch of its exec.
pub(crate) fn start(
    argv: Vec<CString>,
    envp: Vec<*mut libc::c_char>,
    env_strings: Vec<CString>,
    workdir: CString,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> io::Result<(u32, ExecWatch)> {
    let Some(program) = argv.first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the task's command is empty",
        ));
    };
    let (status_read, status_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    let stack = Stack::take()?;
    let mut argv_ptrs: Vec<*mut libc::c_char> =
        argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_ptrs.push(std::ptr::null_mut());
    let args = Box::new(ChildArgs {
        program: program.as_ptr(),
        argv: argv_ptrs.as_ptr(),
        envp: envp.as_ptr(),
        workdir: workdir.as_ptr(),
        stdout: stdout.as_raw_fd(),
        stderr: stderr.as_raw_fd(),
        status: status_write.as_raw_fd(),
    });
    let program_text = program.to_string_lossy().into_owned();
    let workdir_text = workdir.to_string_lossy().into_owned();
    // SAFETY: every signal is blocked around the clone, so the child runs
    // no handler of this process on its memory before it has reset them;
    // the child runs `child` on its own stack with `args`, both alive until
    // the watch is dropped; without CLONE_VFORK this thread goes on.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            stack.top(),
            libc::CLONE_VM | libc::SIGCHLD,
            (&raw const *args).cast_mut().cast(),
        );
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        pid as u32
    };
    // The child has its own copy of the write end; ours goes, so the read
    // end sees the end of file once the child's is closed by its exec.
    drop(status_write);
    let mut strings = argv;
    strings.extend(env_strings);
    strings.push(workdir);
    Ok((
        pid,
        ExecWatch {
            status: status_read,
            memory: ChildMemory {
                stack,
                _args: args,
                _strings: strings,
                _pointers: [argv_ptrs, envp],
            },
            program: program_text,
            workdir: workdir_text,
        },
    ))
}

/// Whether a command can be started by [`start`]: a program given by path,
/// on an architecture whose raw system calls this module makes.
pub(crate) fn applies(argv0: &std::ffi::OsStr) -> bool {
    cfg!(target_arch = "x86_64") && std::os::unix::ffi::OsStrExt::as_bytes(argv0).contains(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (r, w)
    }

    /// Held by every test here: they share the spare stacks.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spare_bases() -> Vec<usize> {
        SPARE
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.base as usize)
            .collect()
    }

    fn run(script: &str, workdir: &str) -> (io::Result<()>, Option<i32>, String) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (out_r, out_w) = pipe();
            let (_err_r, err_w) = pipe();
            let argv = ["/bin/sh", "-c", script]
                .map(|a| CString::new(a).unwrap())
                .to_vec();
            let env = vec![CString::new("GREETING=hello").unwrap()];
            let mut envp: Vec<*mut libc::c_char> =
                env.iter().map(|e| e.as_ptr().cast_mut()).collect();
            envp.push(std::ptr::null_mut());
            let (pid, watch) = start(
                argv,
                envp,
                env,
                CString::new(workdir).unwrap(),
                &out_w,
                &err_w,
            )
            .unwrap();
            drop((out_w, err_w));
            assert_eq!(watch.stack_len(), STACK + GUARD);
            let exec = watch.exec_result().await;
            let status = crate::spawn::wait(pid).await.unwrap();
            let code = match status {
                nix::sys::wait::WaitStatus::Exited(_, c) => Some(c),
                _ => None,
            };
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(out_r), &mut text).unwrap();
            (exec, code, text)
        })
    }

    #[test]
    fn a_stack_is_reused_once_its_child_has_exec_d_and_only_so_many_are_kept() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (exec, _, _) = run("true", dir.path().to_str().unwrap());
        exec.unwrap();
        let spare = spare_bases();
        assert!(!spare.is_empty(), "the exec'd child's stack is kept");
        let taken = Stack::take().unwrap();
        assert_eq!(Some(&(taken.base as usize)), spare.last(), "and taken next");
        taken.recycle();
        let fresh: Vec<Stack> = (0..SPARE_MAX + 3).map(|_| Stack::new().unwrap()).collect();
        for s in fresh {
            s.recycle();
        }
        assert_eq!(spare_bases().len(), SPARE_MAX, "the rest are unmapped");
    }

    #[test]
    fn a_started_shell_runs_in_its_directory_with_its_environment() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let (exec, code, out) = run(
            "echo $GREETING; pwd; [ $(cut -d' ' -f6 /proc/$$/stat) -eq $$ ] && echo leads",
            dir.path().to_str().unwrap(),
        );
        exec.unwrap();
        assert_eq!(code, Some(0));
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            out,
            format!("hello\n{}\nleads\n", real.display()),
            "its own session, its directory, its variables"
        );
    }

    #[test]
    fn a_missing_directory_is_told_as_posix_spawn_would() {
        let _serial = serial();
        let (exec, code, _) = run("true", "/no/such/dir");
        let e = exec.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(
            e.to_string().contains("working directory /no/such/dir"),
            "{e}"
        );
        assert_eq!(code, Some(127));
    }
}
