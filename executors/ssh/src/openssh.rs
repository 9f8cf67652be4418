//! [`SystemSsh`]: the OpenSSH client, one multiplexed master connection.

use crate::error::lowercase_first;
use crate::local::run_child;
use crate::options::{current_user, files_label, tilde};
use crate::{
    Output, Remote, SshError, SshOptions, SshTarget, exec_label, parent_dir, target_label,
    tmp_sibling,
};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use twinflow_core::shell_quote;

mod probe;
use probe::{download_probe, parse_probe};

/// Exit status of the `read` probe for a missing file.
const MISSING: i32 = 44;
const MISSING_NOTE: &str = "twinflow-ssh: no such file";

/// SSH through the OpenSSH client: `ssh` per call, all calls multiplexed
/// over one master connection (`ControlMaster=auto`, `ControlPersist=60`,
/// control sockets under `$TMPDIR/twinflow-ssh-<uid>/`), `BatchMode=yes`
/// (never a prompt), `StrictHostKeyChecking=yes` against exactly the
/// options' known_hosts files. `~/.ssh/config` applies (`ProxyJump`,
/// `CertificateFile`, ...) except where these options say otherwise.
/// Trees move as `tar` streams; `tar` and `sh` must be on the remote side,
/// and for downloads `find -L` and `readlink -f`, which check the links of
/// what is downloaded first (one command).
/// ssh reports a command killed by a signal as exit status 255 (not -1),
/// and an exit status of 255 whose stderr reads like ssh's own failure is
/// taken for one.
#[derive(Debug, Clone)]
pub struct SystemSsh {
    host: String,
    port: Option<u16>,
    user: String,
    label: String,
    options: SshOptions,
    /// Control sockets of this configuration (a hash of the options: a
    /// master opened with other keys or known_hosts is not shared).
    control_dir: PathBuf,
}

impl SystemSsh {
    /// A remote for the target; nothing runs until the first call.
    pub fn new(target: &SshTarget, options: SshOptions) -> Self {
        let user = target.user.clone().unwrap_or_else(current_user);
        let mut hash = Sha256::new();
        for p in options.identities.iter().chain([PathBuf::new()].iter()) {
            hash.update(p.as_os_str().as_encoded_bytes());
            hash.update([0]);
        }
        for p in &options.known_hosts {
            hash.update(p.as_os_str().as_encoded_bytes());
            hash.update([0]);
        }
        hash.update([u8::from(options.use_agent)]);
        let digest = hash.finalize();
        let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let uid = nix::unistd::getuid();
        Self {
            label: target_label(&user, &target.host, target.port.unwrap_or(22)),
            host: target.host.clone(),
            port: target.port,
            user,
            options,
            control_dir: std::env::temp_dir()
                .join(format!("twinflow-ssh-{uid}"))
                .join(short),
        }
    }

    /// The `ssh` arguments up to and including the destination and `--`.
    fn ssh_args(&self) -> Result<Vec<OsString>, SshError> {
        if self.host.starts_with('-') || self.user.starts_with('-') {
            return Err(SshError::Resolve {
                target: self.label.clone(),
                reason: "a host or user name must not start with `-`".to_owned(),
            });
        }
        self.make_control_dir()?;
        let o = &self.options;
        let mut args: Vec<OsString> = Vec::new();
        let mut opt = |s: String| {
            args.push("-o".into());
            args.push(s.into());
        };
        opt("BatchMode=yes".into());
        opt("ControlMaster=auto".into());
        opt(format!("ControlPath={}/%C", self.control_dir.display()));
        opt("ControlPersist=60".into());
        opt(format!(
            "ConnectTimeout={}",
            o.connect_timeout.as_secs().max(1)
        ));
        opt("StrictHostKeyChecking=yes".into());
        let files: Vec<String> = o
            .known_hosts
            .iter()
            .map(|f| format!("\"{}\"", f.display()))
            .collect();
        opt(format!(
            "UserKnownHostsFile={}",
            if files.is_empty() {
                "/dev/null".to_owned()
            } else {
                files.join(" ")
            }
        ));
        opt("GlobalKnownHostsFile=/dev/null".into());
        if !o.timeout.is_zero() {
            // a dead connection is noticed after about `timeout`
            let interval = (o.timeout.as_secs() / 4).max(1);
            opt(format!("ServerAliveInterval={interval}"));
            opt("ServerAliveCountMax=4".into());
        }
        if !o.use_agent {
            opt("IdentityAgent=none".into());
            opt("IdentitiesOnly=yes".into());
        }
        for id in &o.identities {
            args.push("-i".into());
            args.push(id.into());
        }
        if let Some(port) = self.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        args.push("-l".into());
        args.push(self.user.clone().into());
        args.push(self.host.clone().into());
        args.push("--".into());
        Ok(args)
    }

    fn make_control_dir(&self) -> Result<(), SshError> {
        let fail = |e: &std::io::Error| {
            SshError::local(format!("creating {}", self.control_dir.display()), e)
        };
        let Some(base) = self.control_dir.parent() else {
            return Ok(());
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.control_dir)
            .map_err(|e| fail(&e))?;
        // a directory in /tmp made by someone else could hijack the sockets
        let meta = fs::metadata(base).map_err(|e| fail(&e))?;
        if meta.uid() != nix::unistd::getuid().as_raw() || meta.permissions().mode() & 0o077 != 0 {
            return Err(SshError::Local {
                during: format!("using {}", base.display()),
                reason: "it is not a private directory of this user".to_owned(),
            });
        }
        Ok(())
    }

    fn command(&self, remote: &str) -> Result<tokio::process::Command, SshError> {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.ssh_args()?).arg(remote);
        Ok(cmd)
    }

    fn std_command(&self, remote: &str) -> Result<Command, SshError> {
        let mut cmd = Command::new("ssh");
        cmd.args(self.ssh_args()?).arg(remote);
        Ok(cmd)
    }

    /// Runs `remote`; ssh's own failures (exit 255 with its message) become
    /// errors, the command's exit status is left to the caller.
    async fn run(
        &self,
        remote: &str,
        stdin: Option<Vec<u8>>,
        during: &str,
    ) -> Result<Output, SshError> {
        let out = run_child(self.command(remote)?, stdin, &format!("ssh for {during}")).await?;
        match self.ssh_failure(out.status, &out.stderr, during) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The error ssh itself reported, if it did (exit status 255).
    fn ssh_failure(&self, status: i32, stderr: &[u8], during: &str) -> Option<SshError> {
        if status != 255 {
            return None;
        }
        let text = String::from_utf8_lossy(stderr);
        let line = |needle: &str| text.lines().find(|l| l.contains(needle)).map(str::trim);
        let tail = |l: &str| lowercase_first(l.rsplit(": ").next().unwrap_or(l));
        let target = self.label.clone();
        let host = match self.port {
            None | Some(22) => self.host.clone(),
            Some(p) => format!("{}:{p}", self.host),
        };
        let files = files_label(&self.options.known_hosts);
        if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            let pattern = match self.port {
                None | Some(22) => self.host.clone(),
                Some(p) => format!("[{}]:{p}", self.host),
            };
            return Some(SshError::HostKeyMismatch {
                host,
                files,
                pattern,
            });
        }
        if text.contains("Host key verification failed") {
            let into = self
                .options
                .known_hosts
                .first()
                .map_or_else(|| "~/.ssh/known_hosts".to_owned(), |f| tilde(f));
            let port = self.port.map(|p| format!("-p {p} ")).unwrap_or_default();
            return Some(SshError::HostKeyUnknown {
                host,
                files,
                hint: format!("ssh-keyscan {port}{} >> {into}", self.host),
            });
        }
        // ssh's own wording: "Permission denied (publickey,password)."
        let auth_refused = text.lines().map(str::trim).find(|l| {
            l.split_once("Permission denied (")
                .and_then(|(_, rest)| rest.strip_suffix(")."))
                .is_some_and(|methods| {
                    !methods.is_empty()
                        && methods
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || ",-@.".contains(c))
                })
        });
        if let Some(l) = auth_refused {
            let mut tried: Vec<String> = Vec::new();
            if self.options.use_agent && std::env::var_os("SSH_AUTH_SOCK").is_some() {
                tried.push("ssh-agent".to_owned());
            }
            tried.extend(self.options.identities.iter().map(|p| tilde(p)));
            if tried.is_empty() {
                tried.push("the keys of ~/.ssh/config".to_owned());
            }
            return Some(SshError::Auth {
                target,
                tried: format!("{} (ssh: {})", tried.join(", "), l.trim_end_matches('.')),
            });
        }
        if let Some(l) = line("Could not resolve hostname") {
            return Some(SshError::Resolve {
                target,
                reason: tail(l),
            });
        }
        if let Some(l) = line("ssh: connect to host")
            .or_else(|| line("kex_exchange_identification"))
            .or_else(|| line("Connection closed by"))
            .or_else(|| line("Connection reset by"))
        {
            return Some(SshError::Connect {
                target,
                reason: tail(l),
            });
        }
        if let Some(l) = line("Timeout, server").or_else(|| line("Broken pipe")) {
            return Some(SshError::Disconnected {
                target,
                during: during.to_owned(),
                reason: lowercase_first(l),
            });
        }
        None
    }

    /// Runs `local | ssh remote` or `ssh remote | local` (a tar stream) and
    /// checks both ends.
    async fn pipe(
        &self,
        mut local: Command,
        remote: &str,
        upload: bool,
        during: String,
    ) -> Result<(), SshError> {
        let mut ssh = self.std_command(remote)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.pipe_blocking(&mut local, &mut ssh, upload, &during)
        })
        .await
        .map_err(|e| SshError::Local {
            during: "a transfer".to_owned(),
            reason: format!("worker task failed: {e}"),
        })?
    }

    fn pipe_blocking(
        &self,
        local: &mut Command,
        ssh: &mut Command,
        upload: bool,
        during: &str,
    ) -> Result<(), SshError> {
        let start = |c: &mut Command, what: &str| {
            c.spawn()
                .map_err(|e| SshError::local(format!("starting {what} for {during}"), &e))
        };
        let (first, second) = if upload { (local, ssh) } else { (ssh, local) };
        let mut a = start(
            first
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            "the sender",
        )?;
        let Some(out) = a.stdout.take() else {
            return Err(SshError::Local {
                during: during.to_owned(),
                reason: "no pipe to the sender".to_owned(),
            });
        };
        // the sender's stderr drains on its own thread: a full pipe must
        // not stall the sender while the receiver waits for its data
        let a_err = a.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = err.read_to_end(&mut buf);
                buf
            })
        });
        let b = start(
            second
                .stdin(Stdio::from(out))
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            "the receiver",
        );
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                let _ = a.kill();
                let _ = a.wait();
                return Err(e);
            }
        };
        let b_out = b.wait_with_output();
        let a_status = a.wait();
        let a_stderr = a_err.and_then(|t| t.join().ok()).unwrap_or_default();
        let (a_out, b_out) = match (a_status, b_out) {
            (Ok(status), Ok(b)) => (
                std::process::Output {
                    status,
                    stdout: Vec::new(),
                    stderr: a_stderr,
                },
                b,
            ),
            (Err(e), _) | (_, Err(e)) => return Err(SshError::local(during, &e)),
        };
        let (ssh_out, local_out) = if upload {
            (&b_out, &a_out)
        } else {
            (&a_out, &b_out)
        };
        let code = |o: &std::process::Output| o.status.code().unwrap_or(-1);
        if let Some(e) = self.ssh_failure(code(ssh_out), &ssh_out.stderr, during) {
            return Err(e);
        }
        let first_line = |o: &std::process::Output| {
            let text = String::from_utf8_lossy(&o.stderr);
            text.lines().find(|l| !l.trim().is_empty()).map_or_else(
                || format!("exit status {}", code(o)),
                |l| l.trim().to_owned(),
            )
        };
        if !ssh_out.status.success() {
            return Err(SshError::Remote {
                target: self.label.clone(),
                during: during.to_owned(),
                reason: first_line(ssh_out),
            });
        }
        if !local_out.status.success() {
            return Err(SshError::Local {
                during: during.to_owned(),
                reason: first_line(local_out),
            });
        }
        Ok(())
    }

    fn remote_failed(&self, during: &str, out: &Output) -> SshError {
        let text = out.stderr_lossy();
        SshError::Remote {
            target: self.label.clone(),
            during: during.to_owned(),
            reason: text.lines().find(|l| !l.trim().is_empty()).map_or_else(
                || format!("exit status {}", out.status),
                |l| l.trim().to_owned(),
            ),
        }
    }

    /// `cat > tmp && mv tmp path` with the data on stdin, as a command line.
    fn write_command(path: &str, mode: u32) -> String {
        let q = shell_quote(path);
        let tmp = shell_quote(&tmp_sibling(path));
        let mkdir = parent_dir(path)
            .map(|d| format!("mkdir -p -- {} && ", shell_quote(d)))
            .unwrap_or_default();
        format!(
            "{mkdir}cat > {tmp} && chmod {:o} {tmp} && mv -f -- {tmp} {q} || {{ rm -f -- {tmp}; exit 1; }}",
            mode & 0o7777
        )
    }
}

#[async_trait::async_trait]
impl Remote for SystemSsh {
    async fn exec(&self, command: &str, stdin: Option<Vec<u8>>) -> Result<Output, SshError> {
        self.run(command, stdin, &exec_label(command)).await
    }

    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        let q = shell_quote(path);
        let cmd = format!(
            "test -e {q} || {{ echo '{MISSING_NOTE}' >&2; exit {MISSING}; }}; exec cat -- {q}"
        );
        let during = format!("read {path}");
        let out = self.run(&cmd, None, &during).await?;
        if out.success() {
            Ok(Some(out.stdout))
        } else if out.status == MISSING && out.stderr_lossy().contains(MISSING_NOTE) {
            Ok(None)
        } else {
            Err(self.remote_failed(&during, &out))
        }
    }

    async fn write(&self, path: &str, data: &[u8], mode: u32) -> Result<(), SshError> {
        let during = format!("write {path}");
        let out = self
            .run(
                &Self::write_command(path, mode),
                Some(data.to_vec()),
                &during,
            )
            .await?;
        if out.success() {
            Ok(())
        } else {
            Err(self.remote_failed(&during, &out))
        }
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), SshError> {
        let during = format!("upload {} to {remote}", local.display());
        let meta = tokio::fs::metadata(local)
            .await
            .map_err(|e| SshError::local(format!("reading {}", local.display()), &e))?;
        if meta.is_dir() {
            let mut tar = Command::new("tar");
            tar.arg("-C").arg(local).args(["-chf", "-", "."]);
            let q = shell_quote(remote);
            let cmd = format!("mkdir -p -- {q} && tar -C {q} -xof -");
            return self.pipe(tar, &cmd, true, during).await;
        }
        let mode = meta.permissions().mode();
        let mut cat = Command::new("cat");
        cat.arg("--").arg(local);
        self.pipe(cat, &Self::write_command(remote, mode), true, during)
            .await
    }

    async fn download_within(
        &self,
        remote: &str,
        local: &Path,
        root: &str,
    ) -> Result<(), SshError> {
        let during = format!("download {remote} to {}", local.display());
        let q = shell_quote(remote);
        let out = self
            .run(&download_probe(remote, root), None, &during)
            .await?;
        let Some(probe) = parse_probe(&out.stdout) else {
            return Err(self.remote_failed(&during, &out));
        };
        if let Some((link, to, resolved)) = probe.link {
            return Err(SshError::LinkOutside {
                target: self.label.clone(),
                link,
                to,
                resolved,
                root: root.to_owned(),
            });
        }
        let kind = probe.kind.as_str();
        let local_err = |what: &str, p: &Path, e: &std::io::Error| {
            SshError::local(format!("{what} {}", p.display()), e)
        };
        match kind {
            "dir" => {
                fs::create_dir_all(local).map_err(|e| local_err("creating", local, &e))?;
                let mut tar = Command::new("tar");
                tar.arg("-C").arg(local).args(["-xof", "-"]);
                self.pipe(tar, &format!("tar -C {q} -chf - ."), false, during)
                    .await
            }
            "file" => {
                let mode = probe
                    .mode
                    .and_then(|m| u32::from_str_radix(&m, 8).ok())
                    .unwrap_or(0o644);
                if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(|e| local_err("creating", parent, &e))?;
                }
                let tmp = PathBuf::from(tmp_sibling(&local.to_string_lossy()));
                let mut sh = Command::new("/bin/sh");
                sh.arg("-c").arg("cat > \"$1\"").arg("sh").arg(&tmp);
                let result = self
                    .pipe(sh, &format!("exec cat -- {q}"), false, during)
                    .await;
                let finish = result.and_then(|()| {
                    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode & 0o7777))
                        .and_then(|()| fs::rename(&tmp, local))
                        .map_err(|e| local_err("writing", local, &e))
                });
                if finish.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                finish
            }
            "missing" => Err(SshError::Remote {
                target: self.label.clone(),
                during,
                reason: "no such file or directory".to_owned(),
            }),
            _ => Err(self.remote_failed(&during, &out)),
        }
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn remote() -> SystemSsh {
        SystemSsh::new(
            &SshTarget {
                user: Some("u".into()),
                host: "login.hpc".into(),
                port: Some(2322),
            },
            SshOptions {
                identities: vec!["/k/id".into()],
                known_hosts: vec!["/kh/a b".into()],
                connect_timeout: Duration::from_secs(5),
                use_agent: false,
                timeout: Duration::from_secs(60),
            },
        )
    }

    #[test]
    fn arguments() {
        let r = remote();
        let args: Vec<String> = r
            .ssh_args()
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        for want in [
            "-o BatchMode=yes",
            "-o StrictHostKeyChecking=yes",
            "-o UserKnownHostsFile=\"/kh/a b\"",
            "-o ConnectTimeout=5",
            "-o IdentityAgent=none",
            "-i /k/id",
            "-p 2322 -l u login.hpc --",
        ] {
            assert!(joined.contains(want), "{want} not in {joined}");
        }
        assert!(joined.ends_with("login.hpc --"), "{joined}");
    }

    #[test]
    fn ssh_failures_are_recognised() {
        let r = remote();
        let e = r
            .ssh_failure(
                255,
                b"ssh: connect to host login.hpc port 2322: Connection refused\r\n",
                "x",
            )
            .unwrap();
        assert_eq!(
            e.to_string(),
            "failed to connect to u@login.hpc:2322: connection refused"
        );
        assert!(e.is_transient());
        let e = r
            .ssh_failure(255, b"u@login.hpc: Permission denied (publickey).\r\n", "x")
            .unwrap();
        assert!(matches!(e, SshError::Auth { .. }), "{e}");
        assert!(e.to_string().contains("/k/id"), "{e}");
        assert!(
            r.ssh_failure(255, b"the command's own failure\n", "x")
                .is_none()
        );
        assert!(
            r.ssh_failure(255, b"cp: x: Permission denied (os error 13).\n", "x")
                .is_none()
        );
        assert!(r.ssh_failure(1, b"Permission denied (x)\n", "x").is_none());
    }

    #[test]
    fn write_command_quotes() {
        let c = SystemSsh::write_command("/a b/c's", 0o640);
        assert!(
            c.starts_with("mkdir -p -- '/a b' && cat > '/a b/.c'\\''s.twinflow-"),
            "{c}"
        );
        assert!(c.contains("chmod 640 "), "{c}");
        assert!(c.contains(" '/a b/c'\\''s' || { rm -f -- "), "{c}");
    }
}
