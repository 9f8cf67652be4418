//! Running one hook: `/bin/sh -c COMMAND` in the run directory in a process
//! group of its own (killed whole at the timeout), or a webhook POST through
//! the engine's [`WebhookSender`] with the headers of its file, read now
//! and never put in a message.

use super::payload::variables;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twinflow_core::{Hook, HookAction, WebhookSender};

/// The most of a failing hook's standard error quoted in its failure.
const STDERR_TAIL: usize = 512;

/// Runs `hook` with `body`; why it failed.
pub(super) async fn run(
    run_dir: &Path,
    webhooks: Option<&dyn WebhookSender>,
    hook: &Hook,
    body: &Value,
) -> Result<(), String> {
    let timeout = Duration::from_secs(hook.timeout_seconds);
    match &hook.action {
        HookAction::Run { command } => shell(run_dir, command, body, timeout).await,
        HookAction::Webhook { url, headers_file } => {
            let Some(sender) = webhooks else {
                return Err("this twinflow has no webhook sender".to_owned());
            };
            let headers = match headers_file {
                Some(path) => read_headers(path)?,
                None => Vec::new(),
            };
            let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
            match tokio::time::timeout(timeout, sender.post(url, &headers, bytes, timeout)).await {
                Ok(result) => result.map_err(|e| e.0),
                Err(_) => Err(format!("timed out after {}s", hook.timeout_seconds)),
            }
        }
    }
}

async fn shell(
    run_dir: &Path,
    command: &str,
    body: &Value,
    timeout: Duration,
) -> Result<(), String> {
    let Value::Object(fields) = body else {
        return Err("the event is not a JSON object".to_owned());
    };
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(run_dir)
        .envs(variables(fields))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("failed to start /bin/sh: {e}"))?;
    let pgid = child.id();
    let input = serde_json::to_vec(body).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let work = async {
        if let Some(mut pipe) = stdin.take() {
            // A hook that does not read its input is fine.
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        }
        let mut tail = Vec::new();
        if let Some(pipe) = stderr.as_mut() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 4 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
        (child.wait().await, tail)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((Ok(status), tail)) if status.success() => {
            let _ = tail;
            Ok(())
        }
        Ok((Ok(status), tail)) => {
            let what = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_owned(),
            };
            let start = tail.len().saturating_sub(STDERR_TAIL);
            let text = String::from_utf8_lossy(&tail[start..]);
            let text = text.trim();
            Err(if text.is_empty() {
                what
            } else {
                format!("{what}: {}", text.replace('\n', " | "))
            })
        }
        Ok((Err(e), _)) => Err(format!("failed to wait for /bin/sh: {e}")),
        Err(_) => {
            if let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(format!(
                "timed out after {}s and was killed",
                timeout.as_secs()
            ))
        }
    }
}

/// `Name: value` lines (blank lines and `#` comments skipped). Errors name
/// the file and line, never a value.
fn read_headers(path: &Path) -> Result<Vec<(String, String)>, String> {
    let home;
    let path = match path.strip_prefix("~") {
        Ok(rest) => {
            let Some(dir) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
                return Err(format!("headers file {}: HOME is not set", path.display()));
            };
            home = Path::new(&dir).join(rest);
            home.as_path()
        }
        Err(_) => path,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("failed to read headers file {}: {e}", path.display()))?;
    let mut headers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "headers file {} line {}: expected `Name: value`",
                path.display(),
                n + 1
            ));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(format!(
                "headers file {} line {}: not a header name",
                path.display(),
                n + 1
            ));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_and_errors_never_quote_values() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("h");
        std::fs::write(
            &file,
            "# chat\nAuthorization: Bearer s3cret\n\nX-Room:ops\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_headers(&file),
            Ok(vec![
                ("Authorization".into(), "Bearer s3cret".into()),
                ("X-Room".into(), "ops".into())
            ])
        );
        std::fs::write(&file, "Authorization Bearer s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        let err = read_headers(&file).err().unwrap_or_default();
        assert!(err.contains("line 1") && !err.contains("s3cret"), "{err}");
    }
}
