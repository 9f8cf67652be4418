//! Running a tool's process: its own process group, a clean environment
//! (`PATH`, `HOME` and `TMPDIR` plus `EnvVarRequirement`), standard streams
//! redirected to files, `/bin/sh -c` under `ShellCommandRequirement`, and
//! the whole group killed at `ToolTimeLimit`.

use crate::error::{CwlError, Result};
use crate::tool::cmdline::{Word, shell_quote};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The command-line words.
    pub words: Vec<Word>,
    /// Run the words, joined, through `/bin/sh -c`.
    pub shell: bool,
    /// The environment (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory (the output directory).
    pub cwd: PathBuf,
    /// Standard input from this file.
    pub stdin: Option<PathBuf>,
    /// Standard output to this file (else to ours).
    pub stdout: Option<PathBuf>,
    /// Standard error to this file (else to ours).
    pub stderr: Option<PathBuf>,
    /// Kill after this long.
    pub timelimit: Option<Duration>,
    /// Run in a container: the runtime's command line (the streams are
    /// redirected by its script, see [`container_script`]), and the runtime
    /// and name to remove it by at the time limit.
    pub container: Option<(twinflow_launch::Launch, &'static str)>,
}

/// The script a container runs: the command in `cwd` with its streams
/// redirected there (the container's own standard streams are not the
/// tool's).
pub fn container_script(l: &Launch) -> String {
    let line = if l.shell {
        shell_line(&l.words)
    } else {
        format!(
            "exec {}",
            shell_line(
                &l.words
                    .iter()
                    .map(|w| Word {
                        text: w.text.clone(),
                        quote: true
                    })
                    .collect::<Vec<_>>()
            )
        )
    };
    let mut script = format!(
        "cd {} && {{ {line}\n}}",
        shell_quote(&l.cwd.to_string_lossy())
    );
    for (op, path) in [("<", &l.stdin), (">", &l.stdout), ("2>", &l.stderr)] {
        if let Some(p) = path {
            script.push_str(&format!(" {op} {}", shell_quote(&p.to_string_lossy())));
        }
    }
    script
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code (128 + n for signal n).
    Exited(i32),
    /// It ran past the time limit and was killed.
    TimedOut,
}

/// The shell line of the words: each quoted unless its binding said
/// `shellQuote: false`.
pub fn shell_line(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| {
            if w.quote {
                shell_quote(&w.text)
            } else {
                w.text.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts the process and waits for it.
pub fn run(l: &Launch) -> Result<Ended> {
    if let Some((launch, runtime)) = &l.container {
        return run_container(l, launch, runtime);
    }
    let mut cmd = if l.shell {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(shell_line(&l.words));
        c
    } else {
        let Some((first, rest)) = l.words.split_first() else {
            return Err(CwlError::invalid(
                "the tool has no command (no baseCommand and no arguments)",
            ));
        };
        let mut c = Command::new(&first.text);
        c.args(rest.iter().map(|w| &w.text));
        c
    };
    cmd.env_clear()
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&l.cwd);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(match &l.stdin {
        Some(p) => Stdio::from(
            std::fs::File::open(p).map_err(|e| CwlError::io("cannot read stdin", p, &e))?,
        ),
        None => Stdio::null(),
    });
    if let Some(p) = &l.stdout {
        cmd.stdout(
            std::fs::File::create(p).map_err(|e| CwlError::io("cannot write stdout", p, &e))?,
        );
    } else {
        // Our standard output carries the output object: the tool's goes to
        // our standard error.
        cmd.stdout(Stdio::from(std::io::stderr()));
    }
    if let Some(p) = &l.stderr {
        cmd.stderr(
            std::fs::File::create(p).map_err(|e| CwlError::io("cannot write stderr", p, &e))?,
        );
    }
    let program = l.words.first().map(|w| w.text.clone()).unwrap_or_default();
    let child = cmd
        .spawn()
        .map_err(|e| CwlError::failed(format!("cannot start `{program}`: {e}")))?;
    wait(child, l.timelimit, &program, || {})
}

fn run_container(l: &Launch, launch: &twinflow_launch::Launch, runtime: &str) -> Result<Ended> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(CwlError::failed("an empty container command line"));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.workdir);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()));
    let shown = program.to_string_lossy().into_owned();
    let child = cmd
        .spawn()
        .map_err(|e| CwlError::failed(format!("cannot start `{shown}`: {e}")))?;
    let name = launch.container.clone();
    wait(child, l.timelimit, &shown, || {
        if let Some(name) = &name {
            let _ = Command::new(runtime).args(["rm", "-f", name]).output();
        }
    })
}

/// Waits for `child` (blocking, so its end is seen at once); with a
/// `timelimit`, a watchdog thread kills its process group when the limit
/// passes, and `on_timeout` then stops what runs outside it.
fn wait(
    mut child: std::process::Child,
    timelimit: Option<Duration>,
    program: &str,
    on_timeout: impl FnOnce(),
) -> Result<Ended> {
    use std::os::unix::process::ExitStatusExt;
    let failed = |e: std::io::Error| CwlError::failed(format!("waiting for `{program}`: {e}"));
    let Some(limit) = timelimit else {
        let status = child.wait().map_err(failed)?;
        return Ok(Ended::Exited(code_of(status)));
    };
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let late = matches!(
            finished.recv_timeout(limit),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        if late {
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        }
        late
    });
    let status = child.wait();
    let _ = done.send(());
    let killed = watchdog.join().unwrap_or(false);
    let status = status.map_err(failed)?;
    // Killed at the limit (not ended just before it, on its own).
    if killed && status.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32) {
        on_timeout();
        return Ok(Ended::TimedOut);
    }
    Ok(Ended::Exited(code_of(status)))
}

/// An exit status as a code (128 + n for signal n).
fn code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
