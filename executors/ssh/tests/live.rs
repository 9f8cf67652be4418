//! The remotes against a real sshd on this machine (the one
//! `deploy/dev/sshd-up` starts; `scripts/test` starts it, sources its env
//! file and sets `TWINFLOW_TEST_SSH=1`). The "remote" host is this machine,
//! so what a remote wrote is checked through the local file system.
//! Without `TWINFLOW_TEST_SSH=1` these tests say so and return.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinflow_core::shell_quote;
use twinflow_ssh::{LocalHost, Remote, Ssh2Remote, SshError, SshOptions, SshTarget, SystemSsh};

struct Server {
    host: String,
    port: u16,
    /// Where sshd drops a connection idle for a few seconds.
    idle_port: u16,
    user: String,
    key: PathBuf,
    known_hosts: PathBuf,
}

fn server() -> Option<Server> {
    if std::env::var("TWINFLOW_TEST_SSH").as_deref() != Ok("1") {
        eprintln!(
            "skipped: TWINFLOW_TEST_SSH is not 1 (scripts/test starts deploy/dev/sshd-up and sets it)"
        );
        return None;
    }
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: source $TWINFLOW_SSHD_DIR/env (deploy/dev/sshd-up writes it)"
            )
        })
    };
    Some(Server {
        host: var("TWINFLOW_SSHD_HOST"),
        port: var("TWINFLOW_SSHD_PORT")
            .parse()
            .expect("TWINFLOW_SSHD_PORT"),
        idle_port: var("TWINFLOW_SSHD_IDLE_PORT")
            .parse()
            .expect("TWINFLOW_SSHD_IDLE_PORT"),
        user: var("TWINFLOW_SSHD_USER"),
        key: var("TWINFLOW_SSHD_KEY").into(),
        known_hosts: var("TWINFLOW_SSHD_KNOWN_HOSTS").into(),
    })
}

impl Server {
    fn target(&self) -> SshTarget {
        SshTarget {
            user: Some(self.user.clone()),
            host: self.host.clone(),
            port: Some(self.port),
        }
    }

    /// The test key and known_hosts only (no agent, no ~/.ssh).
    fn options(&self) -> SshOptions {
        SshOptions {
            identities: vec![self.key.clone()],
            known_hosts: vec![self.known_hosts.clone()],
            use_agent: false,
            ..SshOptions::default()
        }
    }

    /// Both SSH clients with the given options.
    fn clients(&self, options: &SshOptions) -> Vec<Arc<dyn Remote>> {
        vec![
            Arc::new(Ssh2Remote::new(&self.target(), options.clone())),
            Arc::new(SystemSsh::new(&self.target(), options.clone())),
        ]
    }

    /// Both SSH clients and this machine.
    fn all(&self) -> Vec<Arc<dyn Remote>> {
        let mut all = self.clients(&self.options());
        all.push(Arc::new(LocalHost::new()));
        all
    }
}

fn name(r: &dyn Remote) -> String {
    let debug = format!("{r:?}");
    let kind = debug.split([' ', '{', '(']).next().unwrap_or("").to_owned();
    format!("{kind} {}", r.describe())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file's bytes, comparable without printing a MiB on failure.
fn digest(path: &Path) -> (usize, u64) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &data {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    (data.len(), h)
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "twinflow-test-other",
            "-f",
        ])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", text(&out.stderr));
    key
}

#[tokio::test]
async fn exec_returns_status_stdout_stderr_and_takes_stdin() {
    let Some(s) = server() else { return };
    for r in s.all() {
        let who = name(r.as_ref());
        let out = r
            .exec("printf out; printf err >&2; exit 7", None)
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(
            (out.status, text(&out.stdout), text(&out.stderr)),
            (7, "out".to_owned(), "err".to_owned()),
            "{who}"
        );
        let out = r
            .exec("tr a-z A-Z", Some(b"hello\n".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            (out.status, text(&out.stdout)),
            (0, "HELLO\n".into()),
            "{who}"
        );
        // a large stdin, echoed back and counted
        let big: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        let out = r.exec("cat", Some(big.clone())).await.unwrap();
        assert!(
            out.stdout == big,
            "{who}: 1 MiB through cat came back different"
        );
        let out = r.exec("wc -c", Some(big)).await.unwrap();
        assert_eq!(text(&out.stdout).trim(), "1048576", "{who}");
        // without stdin a command reads end-of-file at once
        let out = r.exec("cat; echo done", None).await.unwrap();
        assert_eq!(text(&out.stdout), "done\n", "{who}");
        // a command killed by a signal
        let out = r.exec("kill -9 $$", None).await.unwrap();
        assert_ne!(out.status, 0, "{who}");
    }
}

#[tokio::test]
async fn quoted_words_survive_the_remote_shell() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let word = format!(
        "it's a \"test\" $(touch {}) `touch {}` $HOME ; & | * \\ \n end",
        marker.display(),
        marker.display()
    );
    for r in s.all() {
        let who = name(r.as_ref());
        let out = r
            .exec(&format!("printf '%s' {}", shell_quote(&word)), None)
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(text(&out.stdout), word, "{who}");
        assert!(!marker.exists(), "{who}: the word ran a command");
    }
}

#[tokio::test]
async fn read_write_files() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (i, r) in s.all().into_iter().enumerate() {
        let who = name(r.as_ref());
        let base = dir.path().join(format!("r{i}"));
        let missing = base.join("nope.txt");
        assert_eq!(
            r.read(missing.to_str().unwrap()).await.unwrap(),
            None,
            "{who}: a missing file"
        );
        let path = base.join("a b/c's/f.txt");
        let p = path.to_str().unwrap();
        r.write(p, b"first", 0o600)
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(
            r.read(p).await.unwrap().as_deref(),
            Some(&b"first"[..]),
            "{who}"
        );
        // over an existing file, with another mode
        r.write(p, b"second\n", 0o750).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second\n", "{who}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o750, "{who}");
        // no temporary file left behind
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.txt")], "{who}");
        // empty file
        r.write(p, b"", 0o644).await.unwrap();
        assert_eq!(r.read(p).await.unwrap(), Some(Vec::new()), "{who}");
        // an error names the path
        let err = r.write("/proc/nope/x", b"x", 0o644).await.unwrap_err();
        assert!(err.to_string().contains("/proc/nope"), "{who}: {err}");
        assert!(!err.is_transient(), "{who}: {err}");
    }
}

#[tokio::test]
async fn upload_and_download_a_tree() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("nested/deeper")).unwrap();
    std::fs::write(src.join("nested/deeper/small.txt"), "small\n").unwrap();
    let big: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    let files = ["nested/deeper/small.txt", "big.bin"];
    for (i, r) in s.all().into_iter().enumerate() {
        let who = name(r.as_ref());
        let up = dir.path().join(format!("up{i}/a/tree"));
        let start = Instant::now();
        r.upload(&src, up.to_str().unwrap())
            .await
            .unwrap_or_else(|e| panic!("{who}: upload: {e}"));
        let t_up = start.elapsed();
        let back = dir.path().join(format!("back{i}/tree"));
        let start = Instant::now();
        r.download(up.to_str().unwrap(), &back)
            .await
            .unwrap_or_else(|e| panic!("{who}: download: {e}"));
        let t_down = start.elapsed();
        eprintln!("{who}: 1 MiB tree up {t_up:?}, down {t_down:?}");
        for f in files {
            assert_eq!(
                digest(&up.join(f)),
                digest(&src.join(f)),
                "{who}: uploaded {f}"
            );
            assert_eq!(
                digest(&back.join(f)),
                digest(&src.join(f)),
                "{who}: downloaded {f}"
            );
        }
        // single files too, to new names
        let one = dir.path().join(format!("one{i}/x/small.copy"));
        r.upload(&src.join("nested/deeper/small.txt"), one.to_str().unwrap())
            .await
            .unwrap();
        let again = dir.path().join(format!("again{i}/small.again"));
        r.download(one.to_str().unwrap(), &again).await.unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), b"small\n", "{who}");
        let err = r
            .download(dir.path().join("nope").to_str().unwrap(), &again)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{who}: {err}");
    }
}

#[tokio::test]
async fn download_follows_links_only_inside_the_root() {
    let Some(s) = server() else { return };
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    std::fs::write(dir.join("secret"), "secret\n").unwrap();
    // the task's directory there: a directory output with links inside it
    let root = dir.join("work dir");
    std::fs::create_dir_all(root.join("out/sub")).unwrap();
    std::fs::write(root.join("out/a.txt"), "a\n").unwrap();
    symlink("../a.txt", root.join("out/sub/in.txt")).unwrap();
    symlink("sub", root.join("out/linked")).unwrap();
    symlink("out/a.txt", root.join("top.txt")).unwrap();
    let sh = |r: &Path| r.to_str().unwrap().to_owned();
    for (i, r) in s.all().into_iter().enumerate() {
        let who = name(r.as_ref());
        let back = dir.join(format!("back{i}"));
        // links that stay inside: copied as their targets
        r.download_within(&sh(&root.join("out")), &back.join("out"), &sh(&root))
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(
            std::fs::read(back.join("out/sub/in.txt")).unwrap(),
            b"a\n",
            "{who}"
        );
        assert_eq!(
            std::fs::read(back.join("out/linked/in.txt")).unwrap(),
            b"a\n",
            "{who}"
        );
        r.download_within(
            &sh(&root.join("top.txt")),
            &back.join("top.txt"),
            &sh(&root),
        )
        .await
        .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(
            std::fs::read(back.join("top.txt")).unwrap(),
            b"a\n",
            "{who}"
        );
    }
    // a link out, behind a linked directory
    symlink("../../../secret", root.join("out/sub/x")).unwrap();
    // the downloaded path itself a link out, and a dangling one
    symlink(dir.join("secret"), root.join("o.txt")).unwrap();
    symlink("gone", root.join("d.txt")).unwrap();
    for (i, r) in s.all().into_iter().enumerate() {
        let who = name(r.as_ref());
        let back = dir.join(format!("refused{i}"));
        let err = r
            .download_within(&sh(&root.join("out")), &back.join("out"), &sh(&root))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SshError::LinkOutside { .. }),
            "{who}: {err:?}"
        );
        assert!(!err.is_transient(), "{who}");
        let msg = err.to_string();
        // through out/linked or out/sub: both name the same link out
        assert!(
            msg.starts_with(&format!("download from {} refused: link ", r.describe())),
            "{who}: {msg}"
        );
        assert!(
            msg.ends_with(&format!(
                "/x leads to ../../../secret ({}/secret), outside {}",
                dir.display(),
                root.display()
            )),
            "{who}: {msg}"
        );
        let err = r
            .download_within(&sh(&root.join("o.txt")), &back.join("o.txt"), &sh(&root))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "download from {} refused: link {}/o.txt leads to {}/secret, outside {}",
                r.describe(),
                root.display(),
                dir.display(),
                root.display()
            ),
            "{who}"
        );
        let err = r
            .download_within(&sh(&root.join("d.txt")), &back.join("d.txt"), &sh(&root))
            .await
            .unwrap_err();
        assert!(
            err.to_string().ends_with(&format!(
                "link {}/d.txt leads to gone, which does not exist",
                root.display()
            )),
            "{who}: {err}"
        );
        // nothing of it arrived
        assert!(!back.exists(), "{who}: something was copied");
        // plain download: links confined to the downloaded tree
        let err = r
            .download(&sh(&root.join("out/sub")), &back.join("sub"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("outside"), "{who}: {err}");
    }
}

#[tokio::test]
async fn fifty_execs_share_one_connection() {
    let Some(s) = server() else { return };
    let r = Ssh2Remote::new(&s.target(), s.options());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        // the server's view: client address and port of the TCP connection
        let out = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
        seen.insert(text(&out.stdout));
    }
    assert_eq!(
        seen.len(),
        1,
        "execs came over several connections: {seen:?}"
    );
    assert_eq!(r.connections(), 1);
    // file operations use the same connection
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    r.write(p.to_str().unwrap(), b"x", 0o644).await.unwrap();
    r.read(p.to_str().unwrap()).await.unwrap();
    let out = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
    assert!(seen.contains(&text(&out.stdout)));
    assert_eq!(r.connections(), 1);
}

#[tokio::test]
async fn openssh_calls_share_one_master_connection() {
    let Some(s) = server() else { return };
    let r = SystemSsh::new(&s.target(), s.options());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let out = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
        seen.insert(text(&out.stdout));
    }
    assert_eq!(
        seen.len(),
        1,
        "calls came over several connections: {seen:?}"
    );
}

#[tokio::test]
async fn connects_again_after_the_connection_dropped() {
    let Some(s) = server() else { return };
    let r = Ssh2Remote::new(&s.target(), s.options());
    let first = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
    // the server side of this connection dies while the command runs: the
    // command may have run, so it is not repeated
    let err = r.exec("kill -9 $PPID; sleep 5", None).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(matches!(err, SshError::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("kill -9"), "{err}");
    let second = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
    assert_ne!(first.stdout, second.stdout);
    assert_eq!(r.connections(), 2);
    eprintln!("after a drop: {err}");
    // dropped between calls: the next call finds the connection dead before
    // its command starts, connects again and runs it there
    drop_soon(&r).await;
    let third = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
    assert_ne!(third.stdout, second.stdout);
    assert_eq!(r.connections(), 3);
    // a file operation is repeated on a new connection as well
    drop_soon(&r).await;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    r.write(p.to_str().unwrap(), b"x", 0o644).await.unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"x");
    assert_eq!(r.connections(), 4);
}

/// Kills the server side of the remote's connection just after this call.
async fn drop_soon(r: &Ssh2Remote) {
    let t = Instant::now();
    let out = r
        .exec(
            "sh -c 'sleep 0.3; kill -KILL \"$0\"' $PPID </dev/null >/dev/null 2>&1 &",
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("after {:?}: {e}", t.elapsed()));
    assert!(out.success(), "{}", text(&out.stderr));
    tokio::time::sleep(Duration::from_millis(800)).await;
}

#[tokio::test]
async fn an_idle_connection_the_server_dropped_is_opened_again() {
    let Some(s) = server() else { return };
    // on this port sshd sends keepalive requests after 1 s idle and hangs up
    // when they go unanswered: the requests wait unread in the socket, so
    // the connection looks open until a call fails on it
    let target = SshTarget {
        port: Some(s.idle_port),
        ..s.target()
    };
    let r = Ssh2Remote::new(&target, s.options());
    let first = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
    wait_dropped(s.idle_port).await;
    let second = r.exec("echo $SSH_CONNECTION", None).await.unwrap();
    assert_ne!(
        first.stdout, second.stdout,
        "not dropped: the test proves nothing"
    );
    assert_eq!(r.connections(), 2);
    // the same for SFTP, whose start-up hides why it failed
    wait_dropped(s.idle_port).await;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    r.write(p.to_str().unwrap(), b"x", 0o644).await.unwrap();
    assert_eq!(r.connections(), 3);
    wait_dropped(s.idle_port).await;
    assert_eq!(
        r.read(p.to_str().unwrap()).await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(r.connections(), 4);
}

/// Waits until sshd has no established connection on the port (only the
/// test above uses it).
async fn wait_dropped(port: u16) {
    let start = Instant::now();
    loop {
        let out = Command::new("ss")
            .args(["-Htn", "state", "established"])
            .arg(format!("( sport = :{port} )"))
            .output()
            .expect("run ss");
        if out.status.success() && out.stdout.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sshd did not drop the idle connection on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_silent_command_longer_than_the_timeout_fails_as_transient() {
    let Some(s) = server() else { return };
    let options = SshOptions {
        timeout: Duration::from_secs(1),
        ..s.options()
    };
    let r = Ssh2Remote::new(&s.target(), options);
    r.check().await.unwrap();
    let start = Instant::now();
    let err = r.exec("sleep 8", None).await.unwrap_err();
    // libssh2 counts its timeout in whole seconds
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    eprintln!("timed out after {waited:?}: {err}");
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "{}@{}:{} did not answer within 1 s during exec `sleep 8`",
            s.user, s.host, s.port
        )
    );
    // the connection in an unknown state is not used again
    let out = r.exec("echo ok", None).await.unwrap();
    assert_eq!(text(&out.stdout), "ok\n");
    assert_eq!(r.connections(), 2);
}

#[tokio::test]
async fn an_unknown_host_key_is_refused() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let options = SshOptions {
        known_hosts: vec![empty.clone()],
        ..s.options()
    };
    for r in s.clients(&options) {
        let who = name(r.as_ref());
        let err = r.exec("true", None).await.unwrap_err();
        assert!(
            matches!(err, SshError::HostKeyUnknown { .. }),
            "{who}: {err:?}"
        );
        assert!(!err.is_transient(), "{who}");
        let msg = err.to_string();
        let want = format!(
            "host key of {}:{} is not in {}",
            s.host,
            s.port,
            empty.display()
        );
        assert!(msg.starts_with(&want), "{who}: {msg}");
        assert!(msg.contains("ssh-keyscan -p"), "{who}: {msg}");
    }
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let other = keygen(dir.path(), "other");
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut fields = public.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, format!("[{}]:{} {kind} {key}\n", s.host, s.port)).unwrap();
    let options = SshOptions {
        known_hosts: vec![known],
        ..s.options()
    };
    for r in s.clients(&options) {
        let who = name(r.as_ref());
        let err = r.exec("true", None).await.unwrap_err();
        assert!(
            matches!(err, SshError::HostKeyMismatch { .. }),
            "{who}: {err:?}"
        );
        assert!(!err.is_transient(), "{who}");
        assert!(
            err.to_string().contains("possible man-in-the-middle"),
            "{who}: {err}"
        );
    }
}

#[tokio::test]
async fn a_closed_port_is_a_transient_connection_error() {
    let Some(s) = server() else { return };
    let target = SshTarget {
        user: Some(s.user.clone()),
        host: "127.0.0.1".into(),
        port: Some(1),
    };
    let clients: Vec<Arc<dyn Remote>> = vec![
        Arc::new(Ssh2Remote::new(&target, s.options())),
        Arc::new(SystemSsh::new(&target, s.options())),
    ];
    for r in clients {
        let who = name(r.as_ref());
        let err = r.exec("true", None).await.unwrap_err();
        assert!(matches!(err, SshError::Connect { .. }), "{who}: {err:?}");
        assert!(err.is_transient(), "{who}");
        assert_eq!(
            err.to_string(),
            format!(
                "failed to connect to {}@127.0.0.1:1: connection refused",
                s.user
            ),
            "{who}"
        );
    }
}

#[tokio::test]
async fn a_key_the_server_does_not_know_fails_authentication() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let stranger = keygen(dir.path(), "id_stranger");
    let missing = dir.path().join("id_missing");
    let options = SshOptions {
        identities: vec![missing.clone(), stranger.clone()],
        ..s.options()
    };
    for r in s.clients(&options) {
        let who = name(r.as_ref());
        let err = r.exec("true", None).await.unwrap_err();
        assert!(matches!(err, SshError::Auth { .. }), "{who}: {err:?}");
        assert!(!err.is_transient(), "{who}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "authentication as {}@{}:{} failed: tried ",
                s.user, s.host, s.port
            )),
            "{who}: {msg}"
        );
        assert!(msg.contains(stranger.to_str().unwrap()), "{who}: {msg}");
    }
    let r = Ssh2Remote::new(&s.target(), options);
    let msg = r.check().await.unwrap_err().to_string();
    assert!(
        msg.ends_with(&format!(
            "tried {} (missing), {} (rejected)",
            missing.display(),
            stranger.display()
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn options_from_the_environment_reach_the_server() {
    let Some(s) = server() else { return };
    // sshd-up's env file sets TWINFLOW_SSH_IDENTITY and TWINFLOW_SSH_KNOWN_HOSTS
    let options = SshOptions::from_env();
    assert_eq!(options.identities, vec![s.key.clone()]);
    assert_eq!(options.known_hosts, vec![s.known_hosts.clone()]);
    let r = twinflow_ssh::connect(&s.target(), options);
    let out = r.exec("id -un", None).await.unwrap();
    assert_eq!(text(&out.stdout).trim(), s.user);
}

#[tokio::test]
async fn sessions_reach_the_local_slurm() {
    let Some(s) = server() else { return };
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1");
        return;
    }
    let r = Ssh2Remote::new(&s.target(), s.options());
    let out = r.exec("sinfo -h -o %P", None).await.unwrap();
    assert!(out.success(), "sinfo over ssh: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("debug"), "{}", text(&out.stdout));
}

#[tokio::test]
async fn timings() {
    let Some(s) = server() else { return };
    let n = 20;
    let r = Ssh2Remote::new(&s.target(), s.options());
    let start = Instant::now();
    r.check().await.unwrap();
    let connect = start.elapsed();
    let start = Instant::now();
    for _ in 0..n {
        r.exec("true", None).await.unwrap();
    }
    let each = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        r.read("/etc/hostname").await.unwrap();
    }
    let read = start.elapsed() / n;
    eprintln!(
        "Ssh2Remote: connect + login {connect:?}; then per exec {each:?} (the login shell included), per read {read:?}"
    );
    assert!(each < Duration::from_secs(2), "{each:?} per exec");
    // a fresh master connection (its control socket is keyed by the options)
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::copy(&s.known_hosts, &known).unwrap();
    let r = SystemSsh::new(
        &s.target(),
        SshOptions {
            known_hosts: vec![known],
            ..s.options()
        },
    );
    let start = Instant::now();
    r.exec("true", None).await.unwrap();
    let first = start.elapsed();
    let start = Instant::now();
    for _ in 0..n {
        r.exec("true", None).await.unwrap();
    }
    let each = start.elapsed() / n;
    eprintln!("SystemSsh: first call (connect + exec) {first:?}; then per exec {each:?}");
    let l = LocalHost::new();
    let start = Instant::now();
    for _ in 0..n {
        l.exec("true", None).await.unwrap();
    }
    eprintln!("LocalHost: per exec {:?}", start.elapsed() / n);
}
