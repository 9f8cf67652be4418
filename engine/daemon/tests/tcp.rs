//! The optional TCP listener: off unless asked for; when on, HTTPS with a
//! certificate the daemon makes and keeps, whose fingerprint a client pins
//! from the access file `<state dir>/daemon/token` (mode 0600, refused when
//! others may read it), with the token every request needs; plain HTTP only
//! when asked for by name; the token rotated without a restart. A real
//! daemon booted in-process per test.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

mod common;

use common::{Daemon, engine, request, tcp_ports_listened_on, wait_for_end};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use twinflow_daemon::{AccessFile, Client, DaemonError, DaemonPaths, Fingerprint, ServeOptions};

fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A daemon listening on a free loopback port (HTTPS), and that port's address.
async fn daemon_on_tcp() -> (Daemon, String) {
    daemon_with(ServeOptions::default().listen(loopback_any_port())).await
}

async fn daemon_with(options: ServeOptions) -> (Daemon, String) {
    let daemon = Daemon::start_with(options);
    let ping = daemon.client().ping().await.expect("ping over the socket");
    let addr = ping.listen.expect("the daemon says where it listens");
    (daemon, addr)
}

/// The access file of `state`, copied (mode 0600) into `to`, where a client
/// on another login node would have it.
fn copied_access_file(state: &Path, to: &Path) -> PathBuf {
    let copy = to.join("access");
    std::fs::copy(DaemonPaths::new(state).token, &copy).expect("copy the access file");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    copy
}

/// One raw HTTP request over TCP, without TLS; the whole answer.
async fn raw_get(addr: &str, path: &str, authorization: Option<&str>) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    // A TLS listener may reset the connection: what came until then.
    let _ = stream.read_to_end(&mut answer).await;
    answer
}

async fn raw_get_text(addr: &str, path: &str, authorization: Option<&str>) -> String {
    String::from_utf8_lossy(&raw_get(addr, path, authorization).await).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_listener_listens_where_asked_with_a_private_access_file() {
    let (daemon, addr) = daemon_on_tcp().await;
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    assert_ne!(port, 0);
    assert_eq!(tcp_ports_listened_on(), vec![port]);
    let paths = DaemonPaths::new(&daemon.state());
    let mode = std::fs::metadata(&paths.token)
        .expect("the access file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The token on the first line, then where it listens and the pin.
    let text = std::fs::read_to_string(&paths.token).expect("read");
    assert!(
        text.lines().next().expect("a token line").len() >= 32,
        "{text}"
    );
    let access = AccessFile::read(&paths.token).expect("the access file");
    assert_eq!(access.address.as_deref(), Some(addr.as_str()));
    assert!(access.tls_sha256.is_some() && !access.plain_http, "{text}");
    // The certificate's key is the daemon's alone.
    let mode = std::fs::metadata(&paths.tls_key)
        .expect("the key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_a_client_with_the_access_file_alone_does_what_one_on_the_socket_does() {
    let (daemon, addr) = daemon_on_tcp().await;
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let remote = Client::from_access_file(&copied_access_file(&daemon.state(), elsewhere.path()))
        .expect("a client from the access file");
    assert_eq!(remote.endpoint(), format!("tcp://{addr}"));
    let ping = remote.ping().await.expect("ping over https");
    assert_eq!(ping.pid, std::process::id());
    assert_eq!(ping.listen.as_deref(), Some(addr.as_str()));
    let file = daemon.workflow(
        "hello.yaml",
        "version: 1\nname: hello\nsteps:\n  hi:\n    run: echo hi\n",
    );
    let run = remote
        .submit(&request(file))
        .await
        .expect("submit over https");
    assert_eq!(
        wait_for_end(&remote, &run.run_id).await["outcome"],
        "succeeded"
    );
    let status = remote.status(&run.run_id).await.expect("status over https");
    assert_eq!(status.run.state.as_str(), "succeeded");
    assert_eq!(remote.runs().await.expect("runs").len(), 1);
    // The socket still answers, with its uid check.
    assert_eq!(daemon.client().ping().await.expect("ping").pid, ping.pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_the_https_listener_gets_no_answer() {
    let (daemon, addr) = daemon_on_tcp().await;
    let path = DaemonPaths::new(&daemon.state()).token;
    let token = twinflow_daemon::read_token_file(&path).expect("the token");
    for auth in [None, Some(format!("Bearer {token}"))] {
        let answer = raw_get(&addr, "/v1/ping", auth.as_deref()).await;
        assert!(
            !answer.starts_with(b"HTTP/"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    let err = Client::tcp_plain(&addr, token).ping().await.unwrap_err();
    assert!(!matches!(err, DaemonError::Refused { .. }), "{err}");
    // The listener goes on serving https.
    let remote = Client::from_access_file(&path).expect("a client");
    remote.ping().await.expect("ping over https");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_pinning_another_certificate_is_refused_naming_both_fingerprints() {
    let (daemon, addr) = daemon_on_tcp().await;
    let access = AccessFile::read(&DaemonPaths::new(&daemon.state()).token).expect("access");
    let real = access.tls_sha256.expect("a pin");
    let wrong = Fingerprint::of(b"another certificate");
    let err = Client::tcp_pinned(&addr, access.token.clone(), wrong)
        .ping()
        .await
        .unwrap_err();
    let DaemonError::Tls(message) = &err else {
        panic!("{err}");
    };
    assert!(
        message.contains(&real.to_string()) && message.contains(&wrong.to_string()),
        "{message}"
    );
    assert!(message.contains("pins"), "{message}");
    // Through an access file with a wrong pin: the same, no plain http.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let copy = copied_access_file(&daemon.state(), elsewhere.path());
    let text = std::fs::read_to_string(&copy).expect("read");
    std::fs::write(&copy, text.replace(&real.to_string(), &wrong.to_string())).expect("write");
    let err = Client::from_access_file(&copy)
        .expect("a client")
        .runs()
        .await
        .unwrap_err();
    assert!(matches!(err, DaemonError::Tls(_)), "{err}");
    assert!(err.to_string().contains(&wrong.to_string()), "{err}");
    // An access file written before tls (the token alone): refused, not plain.
    std::fs::write(&copy, format!("{}\n", access.token)).expect("write");
    let err = Client::tcp_with_access_file(&addr, &copy).unwrap_err();
    assert!(err.to_string().contains("pins no certificate"), "{err}");
}

/// A daemon of `state` on its own thread, until [`Served::stop`].
struct Served {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), DaemonError>>,
}

impl Served {
    fn start(state: &Path, options: ServeOptions) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let dir = state.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(twinflow_daemon::serve_with(engine(&dir), options, async {
                let _ = stopped.await;
            }))
        });
        let socket = DaemonPaths::new(state).socket;
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                return Self { stop, thread };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the daemon never made {}", socket.display());
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread
            .join()
            .expect("join")
            .expect("the daemon stopped cleanly");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_and_token_are_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let paths = DaemonPaths::new(&state);
    let first = Served::start(&state, ServeOptions::default().listen(loopback_any_port()));
    let before = AccessFile::read(&paths.token).expect("access");
    let copy = copied_access_file(&state, dir.path());
    Client::from_access_file(&copy)
        .expect("client")
        .ping()
        .await
        .expect("ping");
    first.stop();
    let second = Served::start(&state, ServeOptions::default().listen(loopback_any_port()));
    let after = AccessFile::read(&paths.token).expect("access");
    assert_eq!(after.tls_sha256, before.tls_sha256, "the same certificate");
    assert_eq!(after.token, before.token, "the same token");
    // The old copy still pins the certificate (at the new port).
    let addr = after.address.expect("an address");
    Client::tcp_with_access_file(addr, &copy)
        .expect("client")
        .ping()
        .await
        .expect("ping after the restart");
    second.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_only_when_asked_and_the_access_file_says_so() {
    assert!(twinflow_daemon::listen_warning(loopback_any_port(), false).is_none());
    let warning = twinflow_daemon::listen_warning(loopback_any_port(), true).expect("a warning");
    assert!(warning.contains("plain http"), "{warning}");
    let (daemon, addr) = daemon_with(
        ServeOptions::default()
            .listen(loopback_any_port())
            .plain_http(),
    )
    .await;
    let paths = DaemonPaths::new(&daemon.state());
    let access = AccessFile::read(&paths.token).expect("access");
    assert!(
        access.plain_http && access.tls_sha256.is_none(),
        "{access:?}"
    );
    assert!(!paths.tls_key.exists());
    let remote = Client::from_access_file(&paths.token).expect("a client");
    assert_eq!(
        remote.ping().await.expect("ping over http").pid,
        std::process::id()
    );
    // Every request needs the token there too.
    let token = access.token;
    for auth in [
        None,
        Some("Bearer ".to_owned()),
        Some("Bearer not-the-token".to_owned()),
        Some(format!("Bearer {token}x")),
        Some(format!("Basic {token}")),
    ] {
        let answer = raw_get_text(&addr, "/v1/ping", auth.as_deref()).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{auth:?}: {answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{answer}"
        );
        assert!(!answer.contains("\"pid\""), "{answer}");
    }
    // Every route is behind the token, not only ping.
    let answer = raw_get_text(&addr, "/v1/runs", None).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // The scheme's name is case-insensitive (RFC 7235).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = raw_get_text(&addr, "/v1/ping", Some(&format!("{scheme} {token}"))).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{scheme}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_refused_401_over_https() {
    let (daemon, addr) = daemon_on_tcp().await;
    let access = AccessFile::read(&DaemonPaths::new(&daemon.state()).token).expect("access");
    let pin = access.tls_sha256.expect("a pin");
    let err = Client::tcp_pinned(&addr, "a-wrong-token-a-wrong-token-a-wrong", pin)
        .ping()
        .await
        .unwrap_err();
    let DaemonError::Refused { status, message } = err else {
        panic!("{err}");
    };
    assert_eq!(status, 401);
    assert!(message.contains("wrong token"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_token_replaces_the_old_one_and_runs_go_on() {
    let (daemon, _) = daemon_on_tcp().await;
    let path = DaemonPaths::new(&daemon.state()).token;
    let before = AccessFile::read(&path).expect("access");
    let old = Client::from_access_file(&path).expect("a client");
    let file = daemon.workflow(
        "slow.yaml",
        "version: 1\nname: slow\nsteps:\n  nap:\n    run: sleep 2; echo rested\n",
    );
    let run = old.submit(&request(file)).await.expect("submit");
    // A stream opened with the old token goes on after the rotation.
    let mut events = old.events(&run.run_id).await.expect("events");

    let rotated = daemon.client().rotate_token().await.expect("rotate");
    assert_eq!(rotated.access_file, path.display().to_string());
    let after = AccessFile::read(&path).expect("access");
    assert_ne!(after.token, before.token);
    assert_eq!(after.tls_sha256, before.tls_sha256, "the same certificate");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let err = old.ping().await.unwrap_err();
    assert!(
        matches!(err, DaemonError::Refused { status: 401, .. }),
        "{err}"
    );
    let new = Client::from_access_file(&path).expect("a client");
    new.ping().await.expect("the new token works");
    // Rotating over tcp is refused: the socket's peer check guards it.
    let err = new.rotate_token().await.unwrap_err();
    assert!(
        matches!(err, DaemonError::Refused { status: 403, .. }),
        "{err}"
    );
    assert_eq!(AccessFile::read(&path).expect("access").token, after.token);
    let mut last = serde_json::Value::Null;
    while let Some(event) = events.next().await.expect("an event") {
        last = event;
    }
    assert_eq!(last["outcome"], "succeeded", "{last}");
    let status = new.status(&run.run_id).await.expect("status");
    assert_eq!(status.run.state.as_str(), "succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_without_a_listener_has_no_token_to_rotate() {
    let daemon = Daemon::start_with(ServeOptions::default());
    let err = daemon.client().rotate_token().await.unwrap_err();
    assert!(
        matches!(&err, DaemonError::Refused { status: 409, message } if message.contains("no tcp listener")),
        "{err}"
    );
    assert!(!DaemonPaths::new(&daemon.state()).token.exists());
}

#[test]
fn a_token_file_others_may_read_is_refused_and_nothing_listens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let paths = DaemonPaths::new(&state);
    std::fs::create_dir_all(&paths.dir).expect("daemon dir");
    std::fs::write(&paths.token, "0123456789abcdef0123456789abcdef\n").expect("token");
    std::fs::set_permissions(&paths.token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let err = rt
        .block_on(twinflow_daemon::serve_with(
            engine(&state),
            ServeOptions::default().listen(loopback_any_port()),
            async {},
        ))
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DaemonError::Token(_)), "{message}");
    assert!(
        message.contains(&paths.token.display().to_string()),
        "{message}"
    );
    assert!(message.contains("mode 0644"), "{message}");
    assert!(tcp_ports_listened_on().is_empty());
    assert!(!paths.socket.exists(), "the daemon did not start");
    // The client refuses it as well.
    let err = twinflow_daemon::read_token_file(&paths.token).unwrap_err();
    assert!(err.to_string().contains("others may read it"), "{err}");
}
