//! The cluster over SSH: Slurm's commands run through a
//! [`twinflow_ssh::Remote`] (one reused connection), small files are written
//! and read in one round trip each, whatever their number.

use crate::cluster::{Cluster, failed};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use twinflow_core::{ExecutorError, shell_quote};
use twinflow_ssh::{Remote, SshError};

/// A cluster reached through `remote`.
#[derive(Debug)]
pub(crate) struct RemoteCluster {
    remote: Arc<dyn Remote>,
}

impl RemoteCluster {
    pub(crate) fn new(remote: Arc<dyn Remote>) -> Self {
        Self { remote }
    }
}

pub(crate) fn ssh_error(e: &SshError) -> ExecutorError {
    ExecutorError {
        message: e.to_string(),
        transient: e.is_transient(),
    }
}

/// Reads each path named on standard input (one a line) and prints `-` for
/// a missing one, or `+<bytes>` and its content.
const READ_FILES: &str = "while IFS= read -r f; do if [ -f \"$f\" ]; then \
     printf '+%s\\n' \"$(wc -c < \"$f\")\"; cat -- \"$f\"; else echo -; fi; done";

#[async_trait::async_trait]
impl Cluster for RemoteCluster {
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError> {
        let mut line = shell_quote(program);
        for a in args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        let out = self
            .remote
            .exec(&line, None)
            .await
            .map_err(|e| ssh_error(&e))?;
        if !out.success() {
            let status = format!("exit status {} on {}", out.status, self.remote.describe());
            return Err(failed(program, &status, &out.stderr));
        }
        Ok(out.stdout_lossy())
    }

    async fn output(&self, argv: Vec<String>) -> std::io::Result<twinflow_launch::CommandOutput> {
        let line = argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let out = self
            .remote
            .exec(&line, None)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let stderr = out.stderr_lossy();
        // The remote shell says 127 for a program it cannot find.
        if out.status == 127 && stderr.contains("not found") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} on {}", stderr.trim(), self.remote.describe()),
            ));
        }
        Ok(twinflow_launch::CommandOutput {
            status: Some(out.status),
            stdout: out.stdout_lossy(),
            stderr,
        })
    }

    async fn write_files(&self, files: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        let mut script = String::from("set -e\n");
        for (path, text) in &files {
            let path = path.display().to_string();
            let tmp = format!("{path}.tmp");
            if let Some(dir) = path
                .rsplit_once('/')
                .map(|(d, _)| d)
                .filter(|d| !d.is_empty())
            {
                let _ = writeln!(script, "mkdir -p -- {}", shell_quote(dir));
            }
            let _ = writeln!(
                script,
                "printf '%s' {} > {t}\nmv -f -- {t} {}",
                shell_quote(text),
                shell_quote(&path),
                t = shell_quote(&tmp),
            );
        }
        let out = self
            .remote
            .exec("/bin/sh -s", Some(script.into_bytes()))
            .await
            .map_err(|e| ssh_error(&e))?;
        if !out.success() {
            return Err(ExecutorError::new(format!(
                "failed to write {} job files on {}: {}",
                files.len(),
                self.remote.describe(),
                out.stderr_lossy().lines().last().unwrap_or("").trim()
            )));
        }
        Ok(())
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        if paths.is_empty() {
            return Vec::new();
        }
        let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
        match self.remote.exec(READ_FILES, Some(list.into_bytes())).await {
            Ok(out) if out.success() => parse_read_files(&out.stdout, paths.len()),
            Ok(out) => {
                tracing::warn!(
                    "reading status files on {} failed: {}",
                    self.remote.describe(),
                    out.stderr_lossy().trim()
                );
                vec![None; paths.len()]
            }
            Err(e) => {
                tracing::warn!("{e}");
                vec![None; paths.len()]
            }
        }
    }
}

/// What [`READ_FILES`] printed, a text per path (`None` when missing); short
/// or garbled output leaves the rest `None`.
fn parse_read_files(mut out: &[u8], n: usize) -> Vec<Option<String>> {
    let mut texts = Vec::with_capacity(n);
    while texts.len() < n {
        let Some(nl) = out.iter().position(|&b| b == b'\n') else {
            break;
        };
        let head = String::from_utf8_lossy(&out[..nl]).trim().to_owned();
        out = &out[nl + 1..];
        if head == "-" {
            texts.push(None);
            continue;
        }
        let Some(len) = head
            .strip_prefix('+')
            .and_then(|l| l.trim().parse::<usize>().ok())
        else {
            break;
        };
        let Some(body) = out.get(..len) else {
            break;
        };
        texts.push(Some(String::from_utf8_lossy(body).into_owned()));
        out = &out[len..];
    }
    texts.resize(n, None);
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_files_output_is_split_by_lengths() {
        let out = b"+2\n0\n-\n+0\n+5\na\nb\nc";
        assert_eq!(
            parse_read_files(out, 4),
            [
                Some("0\n".to_owned()),
                None,
                Some(String::new()),
                Some("a\nb\nc".to_owned())
            ]
        );
        assert_eq!(parse_read_files(b"+9\nshort", 2), [None, None]);
    }

    #[test]
    fn read_files_runs_under_sh() {
        let dir = std::env::temp_dir().join(format!("tf-read-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let a = dir.join("a");
        std::fs::write(&a, "7\n").ok();
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", READ_FILES])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                let mut stdin = c.stdin.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
                writeln!(stdin, "{}\n{}/missing", a.display(), dir.display())?;
                drop(stdin);
                c.wait_with_output()
            });
        let _ = std::fs::remove_dir_all(&dir);
        let out = out.map(|o| o.stdout).unwrap_or_default();
        assert_eq!(parse_read_files(&out, 2), [Some("7\n".to_owned()), None]);
    }
}
