//! The executor's end of its supervisor: starting it (a process of its own
//! from a [`SupervisorBinary`], or the same loop inside this process),
//! sending it requests and handing its replies on.

use crate::supervisor;
use crate::wire::{Reply, Request};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// The program that runs a local executor's supervisor: `path args... [DIR]`
/// (the `twinflow` binary with `local-supervisor`, or the crate's
/// `twinflow-local-supervisor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorBinary {
    /// The executable.
    pub path: PathBuf,
    /// Arguments before the record directory (`["local-supervisor"]` for
    /// `twinflow`).
    pub args: Vec<String>,
}

#[derive(Debug)]
enum Requests {
    /// The supervisor process's standard input (blocking: it reads at once,
    /// and never waits for us to read its replies before it reads on).
    Pipe(Mutex<std::fs::File>),
    Channel(mpsc::UnboundedSender<Request>),
}

/// A running supervisor.
#[derive(Debug)]
pub(crate) struct Link {
    requests: Requests,
    /// Its pid (this process's own when it runs inside it), for messages.
    pub(crate) pid: u32,
}

impl Link {
    /// Starts a supervisor recording into a new file of `records` (none if
    /// `None`); `on_reply` gets each of its replies, `on_gone` is called
    /// once when it has ended. Must be called inside a tokio runtime.
    pub(crate) fn start(
        binary: Option<&SupervisorBinary>,
        records: Option<PathBuf>,
        on_reply: impl Fn(Reply) + Send + 'static,
        on_gone: impl FnOnce() + Send + 'static,
    ) -> io::Result<Self> {
        match binary {
            Some(binary) => Self::start_process(binary, records, on_reply, on_gone),
            None => Self::start_inside(records, on_reply, on_gone),
        }
    }

    fn start_process(
        binary: &SupervisorBinary,
        records: Option<PathBuf>,
        on_reply: impl Fn(Reply) + Send + 'static,
        on_gone: impl FnOnce() + Send + 'static,
    ) -> io::Result<Self> {
        let mut command = Command::new(&binary.path);
        command.args(&binary.args);
        if let Some(dir) = &records {
            command.arg(dir);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.path.display())))?;
        let pid = child.id();
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("the supervisor's pipes are missing"));
        };
        let output = tokio::net::unix::pipe::Receiver::from_owned_fd(output.into())?;
        tokio::spawn(async move {
            let mut output = tokio::io::BufReader::with_capacity(64 * 1024, output);
            let mut body = Vec::new();
            while let Ok(len) = output.read_u32_le().await {
                body.resize(len as usize, 0);
                if output.read_exact(&mut body).await.is_err() {
                    break;
                }
                match Reply::decode(&body) {
                    Ok(reply) => on_reply(reply),
                    Err(_) => break,
                }
            }
            on_gone();
            // It closes its output as it exits: reap it.
            let _ = crate::spawn::wait(pid).await;
            drop(child);
        });
        Ok(Self {
            requests: Requests::Pipe(Mutex::new(std::fs::File::from(std::os::fd::OwnedFd::from(
                input,
            )))),
            pid,
        })
    }

    fn start_inside(
        records: Option<PathBuf>,
        on_reply: impl Fn(Reply) + Send + 'static,
        on_gone: impl FnOnce() + Send + 'static,
    ) -> io::Result<Self> {
        let records = match records {
            Some(dir) => Some(
                supervisor::create_records(&dir)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
                    .1,
            ),
            None => None,
        };
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (reply_tx, mut reply_rx) = mpsc::unbounded_channel();
        let config = supervisor::Config {
            subreaper: false,
            records,
        };
        tokio::spawn(supervisor::serve(config, req_rx, reply_tx));
        tokio::spawn(async move {
            while let Some(reply) = reply_rx.recv().await {
                on_reply(reply);
            }
            on_gone();
        });
        Ok(Self {
            requests: Requests::Channel(req_tx),
            pid: std::process::id(),
        })
    }

    /// Sends requests (a batch in one write).
    pub(crate) fn send(&self, requests: &[Request]) -> io::Result<()> {
        match &self.requests {
            Requests::Pipe(file) => {
                let mut buf = Vec::new();
                for r in requests {
                    r.encode(&mut buf);
                }
                let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                file.write_all(&buf)
            }
            Requests::Channel(tx) => {
                for r in requests {
                    tx.send(r.clone())
                        .map_err(|_| io::Error::other("the supervisor has ended"))?;
                }
                Ok(())
            }
        }
    }
}
