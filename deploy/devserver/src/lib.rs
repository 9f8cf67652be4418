//! twinflow-devserver: an HTTP server for tests, benchmarks and demos on a
//! machine without internet. It serves, under one address:
//! - `/files/...`: a fixture directory, with `ETag`, `Last-Modified`,
//!   conditional requests and `Range` ([`files`]), and injected faults;
//! - `/gbif/v1/...`: GBIF's occurrence download API ([`gbif`]);
//! - `/stac/...`: a STAC API item search over a fixture catalog ([`stac`]);
//! - `/hooks/NAME`: a webhook receiver that records POSTs ([`hooks`]).
//!
//! Tests start it in-process with [`start`]; scripts run the
//! `twinflow-devserver` binary.

pub mod files;
pub mod gbif;
pub mod hooks;
pub mod stac;

use std::net::SocketAddr;
use std::path::PathBuf;

/// What the server serves.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The directory served under `/files/` (and the STAC catalog's and
    /// GBIF archives' home, see [`gbif`] and [`stac`]).
    pub root: PathBuf,
}

/// A running server; dropping it does not stop it (it lives as long as
/// the runtime it was started on).
#[derive(Debug, Clone, Copy)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Running {
    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The whole router.
pub fn router(config: &Config) -> axum::Router {
    axum::Router::new()
        .nest("/files", files::router(config))
        .nest("/gbif/v1", gbif::router(config))
        .nest("/stac", stac::router(config))
        .nest("/hooks", hooks::router())
}

/// Starts the server on `addr` (port 0: any free port) on the current
/// tokio runtime.
pub async fn start(config: Config, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(&config);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Running { addr })
}
