//! [`LocalHost`]: this machine, for an executor running on the login node.

use crate::{Output, Remote, SshError, exec_label, tmp_sibling};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// This machine: commands through `/bin/sh -c`, files through the file
/// system. Relative paths are relative to the current directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalHost;

impl LocalHost {
    /// This machine.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait::async_trait]
impl Remote for LocalHost {
    async fn exec(&self, command: &str, stdin: Option<Vec<u8>>) -> Result<Output, SshError> {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(command);
        run_child(cmd, stdin, &exec_label(command)).await
    }

    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        match tokio::fs::read(path).await {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SshError::local(format!("reading {path}"), &e)),
        }
    }

    async fn write(&self, path: &str, data: &[u8], mode: u32) -> Result<(), SshError> {
        let (path, data) = (path.to_owned(), data.to_vec());
        blocking(move || write_file(Path::new(&path), &mut data.as_slice(), mode)).await
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), SshError> {
        let (from, to) = (local.to_owned(), PathBuf::from(remote));
        blocking(move || copy_tree(&from, &to)).await
    }

    async fn download(&self, remote: &str, local: &Path) -> Result<(), SshError> {
        let (from, to) = (PathBuf::from(remote), local.to_owned());
        blocking(move || copy_tree(&from, &to)).await
    }

    fn describe(&self) -> String {
        "localhost".to_owned()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SshError> + Send + 'static,
) -> Result<T, SshError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SshError::Local {
            during: "a file operation".to_owned(),
            reason: format!("worker task failed: {e}"),
        })?
}

/// Runs a prepared command (stdout and stderr captured, stdin fed from
/// `stdin` or empty), killed if the future is dropped.
pub(crate) async fn run_child(
    mut cmd: tokio::process::Command,
    stdin: Option<Vec<u8>>,
    during: &str,
) -> Result<Output, SshError> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| SshError::local(format!("starting {during}"), &e))?;
    let writer = child.stdin.take();
    let feed = async move {
        if let (Some(mut w), Some(data)) = (writer, stdin) {
            match w.write_all(&data).await {
                // the command exited without reading all of it: its business
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        Ok(())
    };
    let (fed, out) = tokio::join!(feed, child.wait_with_output());
    let out = out.map_err(|e| SshError::local(during, &e))?;
    fed.map_err(|e| SshError::local(format!("{during} (writing its stdin)"), &e))?;
    Ok(Output {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Writes `data` to a temporary file beside `path` and renames it over
/// `path` (parents created).
pub(crate) fn write_file(path: &Path, data: &mut dyn io::Read, mode: u32) -> Result<(), SshError> {
    let shown = path.display();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| SshError::local(format!("creating {}", parent.display()), &e))?;
    }
    let tmp = PathBuf::from(tmp_sibling(&path.to_string_lossy()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        io::copy(data, &mut file)?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        SshError::local(format!("writing {shown}"), &e)
    })
}

/// Copies a file or a directory tree (symlinks followed, permission bits
/// kept, files written through a temporary name).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), SshError> {
    if let (Ok(a), Some(b)) = (from.canonicalize(), resolve(to))
        && b.starts_with(&a)
    {
        return Err(SshError::Local {
            during: format!("copying {} to {}", from.display(), to.display()),
            reason: "the destination is inside the source".to_owned(),
        });
    }
    copy_rec(from, to, &mut Vec::new())
}

/// The path with its longest existing ancestor resolved (symlinks, `..`).
fn resolve(path: &Path) -> Option<PathBuf> {
    let path = std::path::absolute(path).ok()?;
    path.ancestors().find_map(|a| {
        let real = a.canonicalize().ok()?;
        Some(real.join(path.strip_prefix(a).ok()?))
    })
}

fn copy_rec(from: &Path, to: &Path, ancestors: &mut Vec<(u64, u64)>) -> Result<(), SshError> {
    let meta = fs::metadata(from)
        .map_err(|e| SshError::local(format!("reading {}", from.display()), &e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if meta.is_dir() {
        let id = (meta.dev(), meta.ino());
        if ancestors.contains(&id) {
            return Err(SshError::Local {
                during: format!("copying {}", from.display()),
                reason: "a symlink loops back to a parent directory".to_owned(),
            });
        }
        fs::create_dir_all(to)
            .map_err(|e| SshError::local(format!("creating {}", to.display()), &e))?;
        let mut names: Vec<_> = fs::read_dir(from)
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(|e| SshError::local(format!("listing {}", from.display()), &e))?;
        names.sort();
        ancestors.push(id);
        for name in names {
            copy_rec(&from.join(&name), &to.join(&name), ancestors)?;
        }
        ancestors.pop();
        // after the files: a read-only directory would refuse them
        fs::set_permissions(to, fs::Permissions::from_mode(mode))
            .map_err(|e| SshError::local(format!("setting the mode of {}", to.display()), &e))
    } else {
        let mut file = fs::File::open(from)
            .map_err(|e| SshError::local(format!("reading {}", from.display()), &e))?;
        write_file(to, &mut file, mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exec_read_write_copy() {
        let l = LocalHost::new();
        let out = l
            .exec("cat; echo err >&2; exit 3", Some(b"in".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
            (3, &b"in"[..], &b"err\n"[..])
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/f");
        let p = p.to_str().unwrap();
        assert_eq!(l.read(p).await.unwrap(), None);
        l.write(p, b"x", 0o640).await.unwrap();
        assert_eq!(l.read(p).await.unwrap().as_deref(), Some(&b"x"[..]));
        let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        l.upload(
            &dir.path().join("a"),
            dir.path().join("c").to_str().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(fs::read(dir.path().join("c/b/f")).unwrap(), b"x");
        let err = l
            .upload(
                &dir.path().join("a"),
                dir.path().join("a/b/in").to_str().unwrap(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("inside the source"), "{err}");
    }
}
