//! [`Client`]: talks to a daemon over its Unix socket, or over its TCP
//! listener with the token: HTTPS pinned to the certificate fingerprint of
//! the access file, or plain HTTP only when asked for by name.

use crate::api::{
    ErrorBody, LogStream, Ping, RunStatus, StatusSummary, SubmitRequest, Submitted, TaskLogs,
    TaskPage, TaskQuery,
};
use crate::pin::{self, Fingerprint};
use crate::{DaemonError, DaemonPaths};
use http_body_util::{BodyExt as _, Full};
use hyper::Method;
use hyper::body::{Bytes, Incoming};
use std::path::{Path, PathBuf};
use twinflow_engine::RunInfo;

/// A client of one daemon. Each call opens a connection of its own, so a
/// client may be shared and used from many tasks at once.
///
/// ```no_run
/// # async fn demo() -> Result<(), twinflow_daemon::DaemonError> {
/// use twinflow_daemon::{Client, api::{LogStream, SubmitRequest}};
/// let client = Client::for_state_dir(&twinflow_engine::default_state_dir());
/// let run = client
///     .submit(&SubmitRequest {
///         file: "/home/me/forest-bird.yaml".to_owned(),
///         params: vec!["years=10".to_owned()],
///         site: None,
///         local: true,
///         no_cache: false,
///         fail_fast: false,
///     })
///     .await?;
/// let mut events = client.events(&run.run_id).await?;
/// while let Some(event) = events.next().await? {
///     println!("{}", event["event"]);
/// }
/// // What `twinflow status` and `twinflow logs` show.
/// let status = client.status(&run.run_id).await?;
/// for step in &status.steps {
///     println!("{}: {} of {} done", step.step, step.succeeded, step.total);
/// }
/// let mut log = client.log(&run.run_id, "summary", LogStream::Stdout, None).await?;
/// while let Some(chunk) = log.next().await? {
///     print!("{}", String::from_utf8_lossy(&chunk));
/// }
/// // The same daemon over TCP (HTTPS), if it was started with `--listen`,
/// // from another login node: its access file holds the address, the token
/// // and the certificate's fingerprint.
/// let remote = Client::from_access_file("/home/me/.local/state/twinflow/daemon/token".as_ref())?;
/// println!("{} runs", remote.runs().await?.len());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Unix(PathBuf),
    Tcp {
        addr: String,
        token: String,
        /// The pinned certificate; `None`: plain HTTP.
        tls: Option<Fingerprint>,
    },
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint())
            .finish()
    }
}

/// The events of a run as they happen (`GET /v1/runs/{id}/events`).
#[derive(Debug)]
pub struct EventStream {
    body: Incoming,
    buffer: Vec<u8>,
    /// Where the next line starts in `buffer` (a chunk holds many).
    start: usize,
}

impl EventStream {
    /// The next event, `None` once the run has ended.
    pub async fn next(&mut self) -> Result<Option<serde_json::Value>, DaemonError> {
        loop {
            let rest = &self.buffer[self.start..];
            if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                let parsed = serde_json::from_slice(&rest[..=nl]);
                self.start += nl + 1;
                return parsed
                    .map(Some)
                    .map_err(|e| DaemonError::Protocol(format!("a bad event line: {e}")));
            }
            // Only an unfinished line is left: it moves to the front.
            self.buffer.drain(..self.start);
            self.start = 0;
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(DaemonError::Protocol(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// A log file's bytes as the daemon sends them
/// (`GET /v1/runs/{id}/logs/{task}?stream=...`).
#[derive(Debug)]
pub struct LogReader {
    body: Incoming,
}

impl LogReader {
    /// The next piece of the file, `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, DaemonError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(DaemonError::Protocol(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn handshake<S>(stream: S) -> Result<Sender, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

impl Client {
    /// A client of the daemon whose Unix socket is `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            transport: Transport::Unix(socket.into()),
        }
    }

    /// A client of the daemon of `state_dir`, over its Unix socket.
    pub fn for_state_dir(state_dir: &Path) -> Self {
        Self::new(DaemonPaths::new(state_dir).socket)
    }

    /// A client of a daemon's HTTPS listener at `addr` (`host:port`),
    /// sending `token` with every request and accepting only the
    /// certificate whose SHA-256 fingerprint is `pin`: another one is
    /// refused ([`DaemonError::Tls`], naming both fingerprints).
    pub fn tcp_pinned(addr: impl Into<String>, token: impl Into<String>, pin: Fingerprint) -> Self {
        Self {
            transport: Transport::Tcp {
                addr: addr.into(),
                token: token.into(),
                tls: Some(pin),
            },
        }
    }

    /// A client of a daemon's plain-HTTP listener (`twinflow daemon start
    /// --listen ADDR --listen-plain-http`) at `addr`, sending `token` with
    /// every request in clear.
    pub fn tcp_plain(addr: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            transport: Transport::Tcp {
                addr: addr.into(),
                token: token.into(),
                tls: None,
            },
        }
    }

    /// The Unix socket it talks to (`None` over TCP).
    pub fn socket(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Unix(path) => Some(path),
            Transport::Tcp { .. } => None,
        }
    }

    /// Where it talks to, for messages: the socket's path, or `tcp://host:port`.
    pub fn endpoint(&self) -> String {
        match &self.transport {
            Transport::Unix(path) => path.display().to_string(),
            Transport::Tcp { addr, .. } => format!("tcp://{addr}"),
        }
    }

    async fn connect(&self) -> Result<Sender, DaemonError> {
        let not_running = |reason: String| DaemonError::NotRunning {
            socket: self.endpoint(),
            reason,
        };
        match &self.transport {
            Transport::Unix(path) => {
                let stream =
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| match e.kind() {
                            // Another user's daemon: its directory (0700) or
                            // socket (0600) keeps us out; starting one would not help.
                            std::io::ErrorKind::PermissionDenied => DaemonError::PermissionDenied {
                                socket: self.endpoint(),
                                reason: e.to_string(),
                            },
                            _ => not_running(e.to_string()),
                        })?;
                handshake(stream).await
            }
            Transport::Tcp { addr, tls, .. } => {
                let stream = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| not_running(e.to_string()))?;
                match tls {
                    Some(pin) => handshake(pin::connect(stream, addr, *pin).await?).await,
                    None => handshake(stream).await,
                }
            }
        }
        .map_err(|e| not_running(e.to_string()))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<Incoming>, DaemonError> {
        let mut sender = self.connect().await?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "twinflow")
            .header("content-type", "application/json");
        if let Transport::Tcp { token, .. } = &self.transport {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| DaemonError::Protocol(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| DaemonError::Protocol(e.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(ErrorBody {
                not_found: Some(nf),
                ..
            }) if status == hyper::StatusCode::NOT_FOUND => Err(DaemonError::NotFound(nf)),
            Ok(body) => Err(DaemonError::Refused {
                status: status.as_u16(),
                message: body.error,
            }),
            Err(_) => Err(DaemonError::Refused {
                status: status.as_u16(),
                message: format!("the daemon answered {status}"),
            }),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, DaemonError> {
        let response = self.send(method, path, body).await?;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| DaemonError::Protocol(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| DaemonError::Protocol(e.to_string()))
    }

    /// Whether a daemon answers, and who it is.
    pub async fn ping(&self) -> Result<Ping, DaemonError> {
        self.call(Method::GET, "/v1/ping", None).await
    }

    /// Starts a run; returns at once with its id.
    pub async fn submit(&self, request: &SubmitRequest) -> Result<Submitted, DaemonError> {
        let body = serde_json::to_vec(request).map_err(|e| DaemonError::Protocol(e.to_string()))?;
        self.call(Method::POST, "/v1/runs", Some(body)).await
    }

    /// Every run of the daemon's state directory, newest first, as
    /// `twinflow runs` lists them (`GET /v1/runs`).
    pub async fn runs(&self) -> Result<Vec<RunInfo>, DaemonError> {
        self.call(Method::GET, "/v1/runs", None).await
    }

    /// One run, by id, unique id prefix, or `latest` (the newest): its
    /// state, per-step counts and tasks, as `twinflow status` shows them
    /// (`GET /v1/runs/{id}`). An unknown run is [`DaemonError::NotFound`].
    pub async fn status(&self, run: &str) -> Result<RunStatus, DaemonError> {
        self.call(Method::GET, &format!("/v1/runs/{}", escape(run)), None)
            .await
    }

    /// A run's summary (by id, unique id prefix, or `latest`): its state,
    /// per-step counts and first failed and awaiting tasks, the same size
    /// whatever the run's size (`GET /v1/runs/{id}/summary`), as `twinflow
    /// status` shows it.
    pub async fn summary(&self, run: &str) -> Result<StatusSummary, DaemonError> {
        self.call(
            Method::GET,
            &format!("/v1/runs/{}/summary", escape(run)),
            None,
        )
        .await
    }

    /// One page of a run's tasks, filtered by step, state and name glob
    /// (`GET /v1/runs/{id}/tasks?...`); ask for the next page with `after`
    /// set to the answer's [`TaskPage::next_after`]. An unknown step is
    /// [`DaemonError::NotFound`] with [`crate::api::NotFound::StepName`].
    pub async fn tasks(&self, run: &str, query: &TaskQuery) -> Result<TaskPage, DaemonError> {
        let query = query.to_query();
        let query = if query.is_empty() {
            query
        } else {
            format!("?{query}")
        };
        self.call(
            Method::GET,
            &format!("/v1/runs/{}/tasks{query}", escape(run)),
            None,
        )
        .await
    }

    /// Where the logs of task `task` (its name, as `status` lists it) of
    /// `run` are, for `attempt` (default: the latest), following a reused
    /// result to the run that produced it
    /// (`GET /v1/runs/{id}/logs/{task}`). An unknown run or task is
    /// [`DaemonError::NotFound`].
    pub async fn task_logs(
        &self,
        run: &str,
        task: &str,
        attempt: Option<u32>,
    ) -> Result<TaskLogs, DaemonError> {
        let query = attempt.map(|a| format!("?attempt={a}")).unwrap_or_default();
        let path = format!("/v1/runs/{}/logs/{}{query}", escape(run), escape(task));
        self.call(Method::GET, &path, None).await
    }

    /// One of a task's log files, streamed as it is now
    /// (`GET /v1/runs/{id}/logs/{task}?stream=...&attempt=...`); the file
    /// is found as [`Client::task_logs`] finds it. A missing file is
    /// [`DaemonError::NotFound`] with [`crate::api::NotFound::Log`].
    pub async fn log(
        &self,
        run: &str,
        task: &str,
        stream: LogStream,
        attempt: Option<u32>,
    ) -> Result<LogReader, DaemonError> {
        self.log_body(run, task, stream, attempt, false).await
    }

    /// One of a task's log files as it is written, until the attempt ends
    /// (`GET /v1/runs/{id}/logs/{task}?stream=...&attempt=...&follow=1`).
    pub async fn follow_log(
        &self,
        run: &str,
        task: &str,
        stream: LogStream,
        attempt: Option<u32>,
    ) -> Result<LogReader, DaemonError> {
        self.log_body(run, task, stream, attempt, true).await
    }

    async fn log_body(
        &self,
        run: &str,
        task: &str,
        stream: LogStream,
        attempt: Option<u32>,
        follow: bool,
    ) -> Result<LogReader, DaemonError> {
        let attempt = attempt.map(|a| format!("&attempt={a}")).unwrap_or_default();
        let follow = if follow { "&follow=1" } else { "" };
        let path = format!(
            "/v1/runs/{}/logs/{}?stream={}{attempt}{follow}",
            escape(run),
            escape(task),
            stream.as_str()
        );
        let response = self.send(Method::GET, &path, None).await?;
        Ok(LogReader {
            body: response.into_body(),
        })
    }

    /// Cancels a run the daemon carries (by id, unique id prefix, or
    /// `latest`); returns its id. An unknown or ambiguous name is
    /// [`DaemonError::NotFound`]; a run the daemon does not carry is
    /// refused (409).
    pub async fn cancel(&self, run: &str) -> Result<String, DaemonError> {
        let answer: serde_json::Value = self
            .call(
                Method::POST,
                &format!("/v1/runs/{}/cancel", escape(run)),
                None,
            )
            .await?;
        Ok(answer["cancelled"].as_str().unwrap_or(run).to_owned())
    }

    /// An operator action (any [`twinflow_engine::ActionKind`]) on tasks of a run the
    /// daemon carries (`POST /v1/runs/{id}/actions`): journalled, then
    /// applied. A selector that matches nothing, or an action that applies
    /// to none of the selected tasks, is refused with status 400.
    pub async fn act(
        &self,
        run: &str,
        kind: twinflow_engine::ActionKind,
        selectors: &[String],
    ) -> Result<twinflow_engine::ActionReport, DaemonError> {
        let body = serde_json::to_vec(&crate::api::ActionRequest {
            kind,
            selectors: selectors.to_vec(),
        })
        .map_err(|e| DaemonError::Protocol(e.to_string()))?;
        self.call(
            Method::POST,
            &format!("/v1/runs/{}/actions", escape(run)),
            Some(body),
        )
        .await
    }

    /// The tasks `selectors` name (task names, step names, globs over task
    /// names, as [`Client::act`] resolves them) and where each one is now
    /// (`POST /v1/runs/{id}/select`): a live run's scheduler answers, with
    /// waiting and held tasks; a run that is not live answers from the
    /// state store ([`twinflow_engine::Selection::live`] is false). A
    /// selector that matches nothing is refused with status 400.
    pub async fn select(
        &self,
        run: &str,
        selectors: &[String],
    ) -> Result<twinflow_engine::Selection, DaemonError> {
        let body = serde_json::to_vec(&crate::api::SelectRequest {
            selectors: selectors.to_vec(),
        })
        .map_err(|e| DaemonError::Protocol(e.to_string()))?;
        self.call(
            Method::POST,
            &format!("/v1/runs/{}/select", escape(run)),
            Some(body),
        )
        .await
    }

    /// The events of a run the daemon carries (by id, unique id prefix, or
    /// `latest`), from now on (with its `run-started` event first); of a
    /// run that ended, its `run-finished` event alone.
    pub async fn events(&self, run: &str) -> Result<EventStream, DaemonError> {
        let response = self
            .send(
                Method::GET,
                &format!("/v1/runs/{}/events", escape(run)),
                None,
            )
            .await?;
        Ok(EventStream {
            body: response.into_body(),
            buffer: Vec::new(),
            start: 0,
        })
    }

    /// Replaces the token of the daemon's TCP listener without a restart
    /// (`POST /v1/token/rotate`; over the Unix socket only, refused over
    /// TCP): the new one is written to the access file, whose path this
    /// answers, and from then on only it is accepted. Runs and streams in
    /// progress go on.
    pub async fn rotate_token(&self) -> Result<crate::api::TokenRotated, DaemonError> {
        self.call(Method::POST, "/v1/token/rotate", None).await
    }

    /// Asks the daemon to stop (its runs are taken up by the next one).
    pub async fn shutdown(&self) -> Result<(), DaemonError> {
        let _: serde_json::Value = self.call(Method::POST, "/v1/shutdown", None).await?;
        Ok(())
    }
}

/// A run id or task name as a path segment: letters, digits, `-`, `_` and
/// `.` as they are, anything else percent-encoded.
pub(crate) fn escape(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_and_task_names_are_path_segments() {
        assert_eq!(
            super::escape("forest-20261125-0001"),
            "forest-20261125-0001"
        );
        assert_eq!(super::escape("a/b c"), "a%2Fb%20c");
        assert_eq!(
            super::escape("grow[climate=ssp1]@2030"),
            "grow%5Bclimate%3Dssp1%5D%402030"
        );
    }

    #[test]
    fn a_client_never_shows_its_token() {
        let client = super::Client::tcp_plain("127.0.0.1:1", "secret-token-secret-token-secret");
        let shown = format!("{client:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("tcp://127.0.0.1:1"), "{shown}");
    }
}
