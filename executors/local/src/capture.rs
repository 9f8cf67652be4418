//! Capturing a task's standard output and error.
//!
//! Each stream is a pipe whose write end becomes the task's descriptor 1 or
//! 2; this process drains the read end into the log file the runtime chose,
//! creating that file on the first byte. A silent task (most tasks of a big
//! fan-out) so leaves no log file behind: on ext4 every file creation is an
//! inode allocation, on Lustre and GPFS a metadata-server round trip, and a
//! task's two log files were two of its three creations. Readers treat a
//! missing log of a started attempt as empty.
//!
//! Both ends are created close-on-exec, so a task started concurrently
//! never inherits another task's pipe (which would hold its end of file
//! back). A log file that cannot be created or written (a full disk) does
//! not stop the draining, so the task never blocks on a full pipe; the first
//! error is reported when the task ends.

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use tokio::net::unix::pipe::Receiver;

/// How much is moved from a pipe to its file in one read (a pipe's default
/// capacity).
const CHUNK: usize = 64 * 1024;

/// A pipe for one stream: the task's end, and this process's.
#[derive(Debug)]
pub(crate) struct Pipe {
    /// Becomes the task's descriptor 1 or 2 (close-on-exec here, so only
    /// the `dup2` onto 1 or 2 survives the exec).
    pub(crate) task_end: OwnedFd,
    ours: OwnedFd,
}

impl Pipe {
    /// A close-on-exec pipe whose read end does not block (the task's end
    /// does: a task must not see EAGAIN when it writes faster than we read).
    pub(crate) fn new() -> io::Result<Self> {
        let (ours, task_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        fcntl(&task_end, FcntlArg::F_SETFL(OFlag::empty()))?;
        Ok(Self { task_end, ours })
    }

    /// Closes the task's end here (the task holds its copy) and drains the
    /// pipe into `path` on a task of its own; must be called inside a tokio
    /// runtime.
    pub(crate) fn drain_into(self, path: PathBuf) -> io::Result<Draining> {
        drop(self.task_end);
        let capture = Capture {
            pipe: Receiver::from_owned_fd_unchecked(self.ours)?,
            log: Log { path, file: None },
        };
        Ok(tokio::spawn(capture.run()))
    }
}

/// The log file of a stream, created on its first byte.
#[derive(Debug)]
struct Log {
    path: PathBuf,
    file: Option<File>,
}

impl Log {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(File::create(&self.path)?),
        };
        file.write_all(bytes)
    }

    fn error(&self, error: io::Error) -> LogError {
        LogError {
            path: self.path.clone(),
            error,
        }
    }
}

/// A stream being drained: its first log error, if any, once every writer
/// has closed the pipe.
pub(crate) type Draining = tokio::task::JoinHandle<Result<(), LogError>>;

/// The draining of one stream.
#[derive(Debug)]
struct Capture {
    pipe: Receiver,
    log: Log,
}

/// Why a stream's log is incomplete.
#[derive(Debug)]
pub(crate) struct LogError {
    path: PathBuf,
    error: io::Error,
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed to write its log {}: {}",
            self.path.display(),
            self.error
        )
    }
}

impl Capture {
    /// Drains the pipe until every writer has closed it; the first error of
    /// the log file, if any (the rest of the stream is then discarded).
    async fn run(mut self) -> Result<(), LogError> {
        let mut failed: Option<io::Error> = None;
        loop {
            if let Err(error) = self.pipe.readable().await {
                return Err(self.log.error(error));
            }
            match self.move_chunk(&mut failed) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.log.error(error)),
            }
        }
        match failed {
            Some(error) => Err(self.log.error(error)),
            None => Ok(()),
        }
    }

    /// Moves what the pipe holds (up to a chunk) to the log; bytes read
    /// (0 at the end of file). Once the log has failed, bytes are dropped.
    fn move_chunk(&mut self, failed: &mut Option<io::Error>) -> io::Result<usize> {
        let mut buf = [0u8; CHUNK];
        let n = self.pipe.try_read(&mut buf)?;
        if n > 0 && failed.is_none() {
            *failed = self.log.write(&buf[..n]).err();
        }
        Ok(n)
    }
}
