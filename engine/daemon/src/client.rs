//! [`Client`]: talks to the daemon of a state directory over its socket.

use crate::api::{ErrorBody, Ping, SubmitRequest, Submitted};
use crate::{DaemonError, DaemonPaths};
use http_body_util::{BodyExt as _, Full};
use hyper::Method;
use hyper::body::{Bytes, Incoming};
use std::path::{Path, PathBuf};

/// A client of the daemon of one state directory. Each call opens a
/// connection of its own, so a client may be shared and used from many
/// tasks at once.
///
/// ```no_run
/// # async fn demo() -> Result<(), twinflow_daemon::DaemonError> {
/// use twinflow_daemon::{Client, api::SubmitRequest};
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
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// The events of a run as they happen (`GET /v1/runs/{id}/events`).
#[derive(Debug)]
pub struct EventStream {
    body: Incoming,
    buffer: Vec<u8>,
}

impl EventStream {
    /// The next event, `None` once the run has ended.
    pub async fn next(&mut self) -> Result<Option<serde_json::Value>, DaemonError> {
        loop {
            if let Some(nl) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=nl).collect();
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(|e| DaemonError::Protocol(format!("a bad event line: {e}")));
            }
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

impl Client {
    /// A client of the daemon whose socket is `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// A client of the daemon of `state_dir`.
    pub fn for_state_dir(state_dir: &Path) -> Self {
        Self::new(DaemonPaths::new(state_dir).socket)
    }

    /// The socket it talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<Incoming>, DaemonError> {
        let not_running = |reason: String| DaemonError::NotRunning {
            socket: self.socket.display().to_string(),
            reason,
        };
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| not_running(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| not_running(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "twinflow")
            .header("content-type", "application/json")
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
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("the daemon answered {status}"));
        Err(DaemonError::Refused {
            status: status.as_u16(),
            message,
        })
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

    /// Every run of the state directory, newest first (as `twinflow runs --json`).
    pub async fn runs(&self) -> Result<serde_json::Value, DaemonError> {
        self.call(Method::GET, "/v1/runs", None).await
    }

    /// One run: `{"run", "steps", "live"}`.
    pub async fn status(&self, run: &str) -> Result<serde_json::Value, DaemonError> {
        self.call(Method::GET, &format!("/v1/runs/{}", escape(run)), None)
            .await
    }

    /// Cancels a run the daemon carries.
    pub async fn cancel(&self, run: &str) -> Result<(), DaemonError> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &format!("/v1/runs/{}/cancel", escape(run)),
                None,
            )
            .await?;
        Ok(())
    }

    /// The events of a run the daemon carries, from now on (with its
    /// `run-started` event first).
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
        })
    }

    /// Asks the daemon to stop (its runs are taken up by the next one).
    pub async fn shutdown(&self) -> Result<(), DaemonError> {
        let _: serde_json::Value = self.call(Method::POST, "/v1/shutdown", None).await?;
        Ok(())
    }
}

/// A run id as a path segment: ids are letters, digits, `-` and `_`;
/// anything else is percent-encoded.
fn escape(run: &str) -> String {
    run.bytes()
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
    fn run_ids_are_path_segments() {
        assert_eq!(
            super::escape("forest-20261125-0001"),
            "forest-20261125-0001"
        );
        assert_eq!(super::escape("a/b c"), "a%2Fb%20c");
    }
}
