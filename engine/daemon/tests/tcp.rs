//! The optional TCP listener: off unless asked for; when on, every request
//! needs the token of `<state dir>/daemon/token` (mode 0600, refused when
//! others may read it). A real daemon booted in-process per test.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

mod common;

use common::{Daemon, engine, request, tcp_ports_listened_on, wait_for_end};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use twinflow_daemon::{Client, DaemonError, DaemonPaths, ServeOptions};

fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A daemon listening on a free loopback port, and that port's address.
async fn daemon_on_tcp() -> (Daemon, String) {
    let daemon = Daemon::start_with(ServeOptions::default().listen(loopback_any_port()));
    let ping = daemon.client().ping().await.expect("ping over the socket");
    let addr = ping.listen.expect("the daemon says where it listens");
    (daemon, addr)
}

/// One raw HTTP request over TCP; the whole answer.
async fn raw_get(addr: &str, path: &str, authorization: Option<&str>) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn the_listener_listens_where_asked_with_a_private_token_file() {
    let (daemon, addr) = daemon_on_tcp().await;
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    assert_ne!(port, 0);
    assert_eq!(tcp_ports_listened_on(), vec![port]);
    let token = DaemonPaths::new(&daemon.state()).token;
    let mode = std::fs::metadata(&token)
        .expect("the token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&token).expect("read").trim().len() >= 32);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_the_token_is_refused_401() {
    let (daemon, addr) = daemon_on_tcp().await;
    let token = twinflow_daemon::read_token_file(&DaemonPaths::new(&daemon.state()).token)
        .expect("the token");
    for auth in [
        None,
        Some("Bearer ".to_owned()),
        Some("Bearer not-the-token".to_owned()),
        Some(format!("Bearer {}x", token)),
        Some(format!("Basic {token}")),
    ] {
        let answer = raw_get(&addr, "/v1/ping", auth.as_deref()).await;
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
    let answer = raw_get(&addr, "/v1/runs", None).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // The scheme's name is case-insensitive (RFC 7235).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = raw_get(&addr, "/v1/ping", Some(&format!("{scheme} {token}"))).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{scheme}: {answer}");
    }

    let err = Client::tcp(&addr, "a-wrong-token-a-wrong-token-a-wrong")
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
async fn with_the_token_a_client_over_tcp_does_what_one_on_the_socket_does() {
    let (daemon, addr) = daemon_on_tcp().await;
    let token = twinflow_daemon::read_token_file(&DaemonPaths::new(&daemon.state()).token)
        .expect("the token");
    let remote = Client::tcp(&addr, token);
    assert_eq!(remote.endpoint(), format!("tcp://{addr}"));
    let ping = remote.ping().await.expect("ping over tcp");
    assert_eq!(ping.pid, std::process::id());
    assert_eq!(ping.listen.as_deref(), Some(addr.as_str()));
    let file = daemon.workflow(
        "hello.yaml",
        "version: 1\nname: hello\nsteps:\n  hi:\n    run: echo hi\n",
    );
    let run = remote
        .submit(&request(file))
        .await
        .expect("submit over tcp");
    assert_eq!(
        wait_for_end(&remote, &run.run_id).await["outcome"],
        "succeeded"
    );
    let status = remote.status(&run.run_id).await.expect("status over tcp");
    assert_eq!(status.run.state.as_str(), "succeeded");
    assert_eq!(remote.runs().await.expect("runs").len(), 1);
    // The socket still answers, with its uid check.
    assert_eq!(daemon.client().ping().await.expect("ping").pid, ping.pid);
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
