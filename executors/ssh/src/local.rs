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
        blocking(move || copy_tree(&from, &to, None)).await
    }

    async fn download_within(
        &self,
        remote: &str,
        local: &Path,
        root: &str,
    ) -> Result<(), SshError> {
        let (from, to, root) = (PathBuf::from(remote), local.to_owned(), PathBuf::from(root));
        blocking(move || copy_tree(&from, &to, Some(&root))).await
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
/// kept, files written through a temporary name). With `within`, every
/// symbolic link met must resolve inside that directory (the rule of
/// [`Remote::download_within`]); the whole tree is walked and checked
/// before anything is copied.
pub(crate) fn copy_tree(from: &Path, to: &Path, within: Option<&Path>) -> Result<(), SshError> {
    if let (Ok(a), Some(b)) = (from.canonicalize(), resolve(to))
        && b.starts_with(&a)
    {
        return Err(SshError::Local {
            during: format!("copying {} to {}", from.display(), to.display()),
            reason: "the destination is inside the source".to_owned(),
        });
    }
    let mut root = within.map(|given| Root { given, real: None });
    let mut items = Vec::new();
    plan(from, to, root.as_mut(), &mut Vec::new(), &mut items)?;
    for item in &items {
        match item {
            Item::Dir { to, .. } => fs::create_dir_all(to)
                .map_err(|e| SshError::local(format!("creating {}", to.display()), &e))?,
            Item::File { from, to, mode } => {
                let mut file = fs::File::open(from)
                    .map_err(|e| SshError::local(format!("reading {}", from.display()), &e))?;
                write_file(to, &mut file, *mode)?;
            }
        }
    }
    // after the files, deepest first: a read-only directory would refuse them
    for item in items.iter().rev() {
        if let Item::Dir { to, mode } = item {
            fs::set_permissions(to, fs::Permissions::from_mode(*mode)).map_err(|e| {
                SshError::local(format!("setting the mode of {}", to.display()), &e)
            })?;
        }
    }
    Ok(())
}

/// The path with its longest existing ancestor resolved (symlinks, `..`).
fn resolve(path: &Path) -> Option<PathBuf> {
    let path = std::path::absolute(path).ok()?;
    path.ancestors().find_map(|a| {
        let real = a.canonicalize().ok()?;
        Some(real.join(path.strip_prefix(a).ok()?))
    })
}

/// One step of a copy or a download (here and over SFTP): a directory to
/// create (and give its mode once filled) or a file to copy.
pub(crate) enum Item {
    Dir {
        to: PathBuf,
        mode: u32,
    },
    File {
        from: PathBuf,
        to: PathBuf,
        mode: u32,
    },
}

/// The directory links must stay in, resolved when the first link needs it.
struct Root<'a> {
    given: &'a Path,
    real: Option<PathBuf>,
}

impl Root<'_> {
    fn real(&mut self) -> Result<&Path, SshError> {
        if self.real.is_none() {
            let real = self
                .given
                .canonicalize()
                .map_err(|e| SshError::local(format!("resolving {}", self.given.display()), &e))?;
            self.real = Some(real);
        }
        Ok(self.real.as_deref().unwrap_or(self.given))
    }

    /// Refuses the link `link` unless it resolves inside the root.
    fn check(&mut self, link: &Path) -> Result<(), SshError> {
        let to = fs::read_link(link)
            .map_err(|e| SshError::local(format!("reading the link {}", link.display()), &e))?;
        let refuse = |resolved: Option<&Path>| SshError::LinkOutside {
            target: "localhost".to_owned(),
            link: link.display().to_string(),
            to: to.display().to_string(),
            resolved: resolved.map(|r| r.display().to_string()),
            root: self.given.display().to_string(),
        };
        let resolved = match link.canonicalize() {
            Ok(resolved) => resolved,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) =>
            {
                return Err(refuse(None));
            }
            Err(e) => {
                return Err(SshError::local(
                    format!("resolving the link {}", link.display()),
                    &e,
                ));
            }
        };
        if resolved.starts_with(self.real()?) {
            Ok(())
        } else {
            Err(refuse(Some(&resolved)))
        }
    }
}

fn plan(
    from: &Path,
    to: &Path,
    mut root: Option<&mut Root<'_>>,
    ancestors: &mut Vec<(u64, u64)>,
    items: &mut Vec<Item>,
) -> Result<(), SshError> {
    let reading = |e: &io::Error| SshError::local(format!("reading {}", from.display()), e);
    if let Some(root) = root.as_deref_mut()
        && fs::symlink_metadata(from)
            .map_err(|e| reading(&e))?
            .is_symlink()
    {
        root.check(from)?;
    }
    let meta = fs::metadata(from).map_err(|e| reading(&e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() {
        items.push(Item::File {
            from: from.to_owned(),
            to: to.to_owned(),
            mode,
        });
        return Ok(());
    }
    let id = (meta.dev(), meta.ino());
    if ancestors.contains(&id) {
        return Err(SshError::Local {
            during: format!("copying {}", from.display()),
            reason: "a symlink loops back to a parent directory".to_owned(),
        });
    }
    items.push(Item::Dir {
        to: to.to_owned(),
        mode,
    });
    let mut names: Vec<_> = fs::read_dir(from)
        .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| SshError::local(format!("listing {}", from.display()), &e))?;
    names.sort();
    ancestors.push(id);
    for name in names {
        plan(
            &from.join(&name),
            &to.join(&name),
            root.as_deref_mut(),
            ancestors,
            items,
        )?;
    }
    ancestors.pop();
    Ok(())
}

#[cfg(test)]
mod tests;
