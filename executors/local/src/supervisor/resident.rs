//! The supervisor as a process of its own: its setup (session, subreaper,
//! signals), and the frames of its pipes turned into [`super::serve`]'s
//! channels. Standard input carries requests, standard output replies.

use super::{Config, serve};
use crate::wire::{Reply, Request};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

/// Runs the supervisor of one executor (its requests on standard input,
/// its replies on standard output) until its work is done; records go to
/// a new file in `records` if given. Called by `twinflow local-supervisor
/// [DIR]` and by the `twinflow-local-supervisor` binary.
pub fn supervise(records: Option<&Path>) -> io::Result<()> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // The terminal's Ctrl-C and hang-up are the executor's business: it
    // tells this process what to kill. Tasks get default dispositions back.
    for sig in [
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_IGN installs no handler code.
        #[expect(unsafe_code, reason = "ignoring a signal has no safe wrapper in nix")]
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    // Out of the executor's session and process group: its group's signals
    // and its terminal's end do not reach the tasks through us.
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| io::Error::other(format!("failed to become a child subreaper: {e}")))?;
    let records = match records {
        Some(dir) => Some(
            super::create_records(dir)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
                .1,
        ),
        None => None,
    };
    let _ = std::env::set_current_dir("/");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // SAFETY: descriptors 0 and 1 are this process's pipes from the
        // executor, owned by nothing else in it.
        #[expect(unsafe_code, reason = "taking ownership of the standard descriptors")]
        let (input, output) = unsafe { (OwnedFd::from_raw_fd(0), OwnedFd::from_raw_fd(1)) };
        let input = pipe::Receiver::from_owned_fd(input)?;
        let output = pipe::Sender::from_owned_fd(output)?;
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = mpsc::unbounded_channel();
        tokio::spawn(read_requests(input, req_tx));
        let writer = tokio::spawn(write_replies(output, reply_rx));
        serve(
            Config {
                subreaper: true,
                records,
            },
            req_rx,
            reply_tx,
        )
        .await;
        // Every reply is sent before the process ends.
        let _ = writer.await;
        Ok(())
    })
}

/// Frames from the executor until its end of file (or a broken frame).
async fn read_requests(input: pipe::Receiver, tx: mpsc::UnboundedSender<Request>) {
    let mut input = tokio::io::BufReader::with_capacity(64 * 1024, input);
    let mut body = Vec::new();
    loop {
        let Ok(len) = input.read_u32_le().await else {
            return;
        };
        body.resize(len as usize, 0);
        if input.read_exact(&mut body).await.is_err() {
            return;
        }
        match Request::decode(&body) {
            Ok(request) => {
                if tx.send(request).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Replies, as many as are waiting in one write; ends when every sender
/// has gone. A vanished executor is not an error: the records remain.
async fn write_replies(mut output: pipe::Sender, mut rx: mpsc::UnboundedReceiver<Reply>) {
    let mut buf = Vec::new();
    let mut broken = false;
    while let Some(reply) = rx.recv().await {
        buf.clear();
        reply.encode(&mut buf);
        while let Ok(more) = rx.try_recv() {
            more.encode(&mut buf);
        }
        if !broken && output.write_all(&buf).await.is_err() {
            broken = true;
        }
    }
}
