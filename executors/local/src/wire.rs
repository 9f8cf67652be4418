//! What the executor and its supervisor say to each other, and the lines of
//! the supervisor's record file.
//!
//! Over the pipes, every message is a frame: its length (u32, little
//! endian) and its fields (integers little endian, byte strings as a u32
//! length and the bytes). A request is written in one `write`, so a batch
//! of them costs one system call.
//!
//! The record file is text, one line per event, each appended with one
//! `O_APPEND` write: `S TASK ATTEMPT PID START` when an attempt's shell has
//! started, `E TASK ATTEMPT STATUS [LOG ERROR]` when it has ended and its
//! logs are complete (`STATUS` is `cCODE`, `sSIGNAL` or `w`: it could not
//! be waited for). A line cut short by a crash is ignored. An attempt in a
//! container also gets `C TASK ATTEMPT RUNTIME NAME` just before its `S`
//! line, so a later executor can remove a container it does not adopt, and
//! `R TASK ATTEMPT CORES DEVICES` (`DEVICES`: GPU ids joined by commas, or
//! `-`), so a later executor that adopts a running attempt keeps its new
//! supervisor from handing its cores and GPUs to another (request kinds 6,
//! hold, and 7, release). A reader that does not know a kind of line skips
//! it.
//!
//! Versions: a plain attempt is request kind 1, as it always was; one with
//! more ([`crate::attempt::Extra`]: a container, GPUs, a prologue) is kind
//! 4, kind 1's fields followed by the extra ones, so a supervisor of either
//! version reads the attempts it can run; one with `mpirun` ranks is kind
//! 5 (kind 4's fields, then the ranks), which an older supervisor refuses
//! rather than run its command once.

use crate::attempt::Extra;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// One attempt to start, as the supervisor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    pub(crate) key: (u32, u32),
    /// The cores it takes of `slots` (at least 1).
    pub(crate) cost: u32,
    /// How many cores the supervisor's tasks may take together; 0: no
    /// limit (the executor keeps to its limit itself). An attempt that does
    /// not fit waits in the supervisor, in order, and starts the moment
    /// enough of them free up (one that takes more than all of them starts
    /// alone).
    pub(crate) slots: u32,
    pub(crate) script: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) workdir: PathBuf,
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
    /// What it runs in and with beyond its script.
    pub(crate) extra: Box<Extra>,
}

/// From the executor to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Spawn(Launch),
    /// Signal an attempt's process group and every orphan it left.
    Signal {
        key: (u32, u32),
        signal: i32,
    },
    /// The executor is done: kill what is left and exit once it is gone.
    Goodbye,
    /// An attempt of an earlier supervisor (adopted on resume) holds
    /// `cost` cores and the GPU `devices`: not to be handed out until its
    /// [`Request::Release`].
    Hold {
        key: (u32, u32),
        cost: u32,
        devices: Vec<u32>,
    },
    /// The held attempt has ended: what it held is free.
    Release {
        key: (u32, u32),
    },
}

/// How an attempt's shell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    /// `waitpid` failed (its words).
    WaitFailed(String),
    /// Its shell, cloned and reported started, failed its exec (why, as
    /// `posix_spawn` would have put it); it never ran.
    NotStarted(String),
}

/// From the supervisor to the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Started {
        key: (u32, u32),
        pid: u32,
        start: u64,
    },
    Failed {
        key: (u32, u32),
        message: String,
    },
    /// Ended, its logs complete (or why one is not).
    Exited {
        key: (u32, u32),
        exit: Exit,
        log: Option<String>,
    },
}

/// Appends one frame holding `body` to `out`.
fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(bytes);
}

fn put_key(out: &mut Vec<u8>, key: (u32, u32)) {
    put_u32(out, key.0);
    put_u32(out, key.1);
}

impl Request {
    /// Appends its frame to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        frame(out, |out| match self {
            Self::Spawn(l) => {
                out.push(l.extra.kind());
                put_key(out, l.key);
                put_u32(out, l.cost);
                put_u32(out, l.slots);
                put_bytes(out, l.script.as_bytes());
                put_u32(out, u32::try_from(l.env.len()).unwrap_or(u32::MAX));
                for (k, v) in &l.env {
                    put_bytes(out, k.as_bytes());
                    put_bytes(out, v.as_bytes());
                }
                for path in [&l.workdir, &l.stdout, &l.stderr] {
                    put_bytes(out, path.as_os_str().as_bytes());
                }
                if !l.extra.is_plain() {
                    l.extra.encode(out);
                }
            }
            Self::Signal { key, signal } => {
                out.push(2);
                put_key(out, *key);
                out.extend_from_slice(&signal.to_le_bytes());
            }
            Self::Goodbye => out.push(3),
            Self::Hold { key, cost, devices } => {
                out.push(6);
                put_key(out, *key);
                put_u32(out, *cost);
                put_u32(out, u32::try_from(devices.len()).unwrap_or(u32::MAX));
                for d in devices {
                    put_u32(out, *d);
                }
            }
            Self::Release { key } => {
                out.push(7);
                put_key(out, *key);
            }
        });
    }

    /// The request in a frame's body.
    pub(crate) fn decode(body: &[u8]) -> io::Result<Self> {
        let mut r = Reader(body);
        let request = match r.u8()? {
            kind @ (1 | 4 | 5) => {
                let key = r.key()?;
                let (cost, slots) = (r.u32()?, r.u32()?);
                let script = r.string()?;
                let n = r.u32()?;
                let mut env = Vec::new();
                for _ in 0..n {
                    env.push((r.string()?, r.string()?));
                }
                let (workdir, stdout, stderr) = (r.path()?, r.path()?, r.path()?);
                let extra = Box::new(if kind == 1 {
                    Extra::default()
                } else {
                    Extra::decode(&mut r, kind)?
                });
                Self::Spawn(Launch {
                    key,
                    cost,
                    slots,
                    script,
                    env,
                    workdir,
                    stdout,
                    stderr,
                    extra,
                })
            }
            2 => Self::Signal {
                key: r.key()?,
                signal: r.u32()? as i32,
            },
            3 => Self::Goodbye,
            6 => Self::Hold {
                key: r.key()?,
                cost: r.u32()?,
                devices: (0..r.u32()?).map(|_| r.u32()).collect::<io::Result<_>>()?,
            },
            7 => Self::Release { key: r.key()? },
            other => return Err(bad(&format!("unknown request {other}"))),
        };
        Ok(request)
    }
}

impl Reply {
    /// Appends its frame to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        frame(out, |out| match self {
            Self::Started { key, pid, start } => {
                out.push(1);
                put_key(out, *key);
                put_u32(out, *pid);
                out.extend_from_slice(&start.to_le_bytes());
            }
            Self::Failed { key, message } => {
                out.push(2);
                put_key(out, *key);
                put_bytes(out, message.as_bytes());
            }
            Self::Exited { key, exit, log } => {
                out.push(3);
                put_key(out, *key);
                put_bytes(out, exit_text(exit).as_bytes());
                put_bytes(out, log.as_deref().unwrap_or("").as_bytes());
            }
        });
    }

    /// The reply in a frame's body.
    pub(crate) fn decode(body: &[u8]) -> io::Result<Self> {
        let mut r = Reader(body);
        let reply = match r.u8()? {
            1 => Self::Started {
                key: r.key()?,
                pid: r.u32()?,
                start: u64::from(r.u32()?) | (u64::from(r.u32()?) << 32),
            },
            2 => Self::Failed {
                key: r.key()?,
                message: r.string()?,
            },
            3 => {
                let key = r.key()?;
                let exit = parse_exit(&r.string()?).ok_or_else(|| bad("bad exit"))?;
                let log = Some(r.string()?).filter(|l| !l.is_empty());
                Self::Exited { key, exit, log }
            }
            other => return Err(bad(&format!("unknown reply {other}"))),
        };
        Ok(reply)
    }
}

pub(crate) fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed message: {what}"),
    )
}

pub(crate) struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn key(&mut self) -> io::Result<(u32, u32)> {
        Ok((self.u32()?, self.u32()?))
    }

    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    pub(crate) fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| bad("not UTF-8"))
    }

    pub(crate) fn path(&mut self) -> io::Result<PathBuf> {
        Ok(PathBuf::from(OsString::from_vec(self.bytes()?)))
    }
}

fn exit_text(exit: &Exit) -> String {
    match exit {
        Exit::Code(c) => format!("c{c}"),
        Exit::Signal(s) => format!("s{s}"),
        Exit::WaitFailed(why) => format!("w{why}"),
        Exit::NotStarted(why) => format!("n{why}"),
    }
}

fn parse_exit(text: &str) -> Option<Exit> {
    let (kind, rest) = text.split_at_checked(1)?;
    match kind {
        "c" => Some(Exit::Code(rest.parse().ok()?)),
        "s" => Some(Exit::Signal(rest.parse().ok()?)),
        "w" => Some(Exit::WaitFailed(rest.to_owned())),
        "n" => Some(Exit::NotStarted(rest.to_owned())),
        _ => None,
    }
}

/// One line of a record file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Started {
        key: (u32, u32),
        pid: u32,
        start: u64,
    },
    Ended {
        key: (u32, u32),
        exit: Exit,
        log: Option<String>,
    },
    /// The attempt runs in the container `name` of `runtime` (`podman`,
    /// `docker`), which stopping it removes.
    Container {
        key: (u32, u32),
        runtime: String,
        name: String,
    },
    /// The attempt holds `cost` of its supervisor's cores and the GPU
    /// `devices` until it ends.
    Holds {
        key: (u32, u32),
        cost: u32,
        devices: Vec<u32>,
    },
}

impl Record {
    /// Its line, newline included (text of the end on one line).
    pub(crate) fn line(&self) -> String {
        match self {
            Self::Started { key, pid, start } => format!("S {} {} {pid} {start}\n", key.0, key.1),
            Self::Ended { key, exit, log } => {
                // The last field is the rest of the line: why the logs are
                // incomplete, or why the shell never started.
                let (exit, rest) = match exit {
                    Exit::WaitFailed(_) => ("w".to_owned(), log.as_deref()),
                    Exit::NotStarted(why) => ("n".to_owned(), Some(why.as_str())),
                    other => (exit_text(other), log.as_deref()),
                };
                let mut line = format!("E {} {} {exit}", key.0, key.1);
                if let Some(log) = rest {
                    line.push(' ');
                    line.extend(log.chars().map(|c| if c.is_control() { ' ' } else { c }));
                }
                line.push('\n');
                line
            }
            Self::Container { key, runtime, name } => {
                format!("C {} {} {runtime} {name}\n", key.0, key.1)
            }
            Self::Holds { key, cost, devices } => {
                let devices = if devices.is_empty() {
                    "-".to_owned()
                } else {
                    let ids: Vec<String> = devices.iter().map(u32::to_string).collect();
                    ids.join(",")
                };
                format!("R {} {} {cost} {devices}\n", key.0, key.1)
            }
        }
    }

    /// The records of a file's text; a malformed or unfinished line is
    /// skipped.
    pub(crate) fn parse_all(text: &str) -> Vec<Self> {
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        complete.lines().filter_map(Self::parse).collect()
    }

    fn parse(line: &str) -> Option<Self> {
        let mut f = line.splitn(5, ' ');
        let kind = f.next()?;
        let key = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        match kind {
            "S" => Some(Self::Started {
                key,
                pid: f.next()?.parse().ok()?,
                start: f.next()?.parse().ok()?,
            }),
            "E" => {
                let exit = f.next()?;
                let mut log = f.next().map(str::to_owned);
                let exit = match exit {
                    "w" => Exit::WaitFailed("its status could not be collected".to_owned()),
                    "n" => Exit::NotStarted(log.take().unwrap_or_default()),
                    other => parse_exit(other)?,
                };
                Some(Self::Ended { key, exit, log })
            }
            "C" => Some(Self::Container {
                key,
                runtime: f.next()?.to_owned(),
                name: f.next()?.to_owned(),
            }),
            "R" => Some(Self::Holds {
                key,
                cost: f.next()?.parse().ok()?,
                devices: match f.next()? {
                    "-" => Vec::new(),
                    ids => ids
                        .split(',')
                        .map(|d| d.parse().ok())
                        .collect::<Option<_>>()?,
                },
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
