//! [`Ssh2Remote`]'s file operations over SFTP, with the link rule of
//! [`crate::Remote::download_within`] checked through `lstat`, `readlink`
//! and `realpath`.

use super::{CHUNK, Fail, is_missing};
use crate::SshError;
use crate::local::Item;
use ::ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, RenameFlags, Sftp};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Deepest directory tree `download` follows (it cannot see symlink loops).
const MAX_DEPTH: usize = 64;

pub(super) fn read_file(sftp: &Sftp, path: &str) -> Result<Option<Vec<u8>>, Fail> {
    let during = format!("read {path}");
    let mut file = match sftp.open(Path::new(path)) {
        Ok(file) => file,
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(Fail::ssh(during, e, false)),
    };
    let mut data = Vec::new();
    let mut buf = vec![0; CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(Some(data)),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => return Err(Fail::stream(during, e)),
        }
    }
}

/// `mkdir -p` over SFTP.
fn mkdir_p(sftp: &Sftp, dir: &Path, mode: i32) -> Result<(), Fail> {
    if dir.as_os_str().is_empty() || dir == Path::new("/") {
        return Ok(());
    }
    match sftp.stat(dir) {
        Ok(st) if st.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Fail::Refused {
                during: format!("mkdir {}", dir.display()),
                reason: "a file of that name exists".to_owned(),
            });
        }
        Err(e) if is_missing(&e) => {}
        Err(e) => return Err(Fail::ssh(format!("stat {}", dir.display()), e, false)),
    }
    if let Some(parent) = dir.parent() {
        mkdir_p(sftp, parent, 0o755)?;
    }
    match sftp.mkdir(dir, mode) {
        Ok(()) => Ok(()),
        // made meanwhile by someone else
        Err(_) if sftp.stat(dir).is_ok_and(|st| st.is_dir()) => Ok(()),
        Err(e) => Err(Fail::ssh(format!("mkdir {}", dir.display()), e, false)),
    }
}

/// Writes a file through a temporary name beside it, then renames it in.
pub(super) fn put(sftp: &Sftp, path: &Path, mode: u32, data: &mut dyn Read) -> Result<(), Fail> {
    let during = format!("write {}", path.display());
    if let Some(parent) = path.parent() {
        mkdir_p(sftp, parent, 0o755)?;
    }
    let tmp = PathBuf::from(crate::tmp_sibling(&path.to_string_lossy()));
    let perm = (mode & 0o7777) as i32;
    let result = (|| {
        let mut file = sftp
            .open_mode(
                &tmp,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                perm,
                OpenType::File,
            )
            .map_err(|e| Fail::ssh(&during, e, false))?;
        let mut buf = vec![0; CHUNK];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fail::Done(SshError::local("reading the data to send", &e))),
            };
            file.write_all(&buf[..n])
                .map_err(|e| Fail::stream(&during, e))?;
        }
        // the server's umask may have taken bits off
        file.setstat(FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(mode & 0o7777),
            atime: None,
            mtime: None,
        })
        .map_err(|e| Fail::ssh(&during, e, false))?;
        file.close().map_err(|e| Fail::ssh(&during, e, false))?;
        drop(file);
        let flags = Some(RenameFlags::OVERWRITE | RenameFlags::ATOMIC | RenameFlags::NATIVE);
        if sftp.rename(&tmp, path, flags).is_ok() {
            return Ok(());
        }
        // SFTP v3 (OpenSSH) renames only onto a free name: remove the old
        // file first (a reader may briefly see none, never half of one)
        match sftp.unlink(path) {
            Ok(()) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(Fail::ssh(&during, e, false)),
        }
        sftp.rename(&tmp, path, flags)
            .map_err(|e| Fail::ssh(&during, e, false))
    })();
    if result.is_err() {
        let _ = sftp.unlink(&tmp);
    }
    result
}

pub(super) fn upload(
    sftp: &Sftp,
    from: &Path,
    to: &Path,
    ancestors: &mut Vec<(u64, u64)>,
) -> Result<(), Fail> {
    let local = |what: &str, e: &io::Error| {
        Fail::Done(SshError::local(format!("{what} {}", from.display()), e))
    };
    let meta = fs::metadata(from).map_err(|e| local("reading", &e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() {
        let mut file = fs::File::open(from).map_err(|e| local("reading", &e))?;
        return put(sftp, to, mode, &mut file);
    }
    let id = (meta.dev(), meta.ino());
    if ancestors.contains(&id) {
        return Err(Fail::Done(SshError::Local {
            during: format!("uploading {}", from.display()),
            reason: "a symlink loops back to a parent directory".to_owned(),
        }));
    }
    mkdir_p(sftp, to, (mode | 0o700) as i32)?;
    let mut names: Vec<_> = fs::read_dir(from)
        .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| local("listing", &e))?;
    names.sort();
    ancestors.push(id);
    for name in names {
        upload(sftp, &from.join(&name), &to.join(&name), ancestors)?;
    }
    ancestors.pop();
    Ok(())
}

/// Downloads `from` to `to` where every link must resolve inside `root`:
/// the whole tree is walked and checked first, then copied.
pub(super) fn download(sftp: &Sftp, from: &Path, to: &Path, root: &Path) -> Result<(), Fail> {
    let mut root = Root {
        given: root,
        real: None,
    };
    let mut items = Vec::new();
    plan(sftp, from, to, &mut root, 0, &mut items)?;
    let local = |what: &str, path: &Path, e: &io::Error| {
        Fail::Done(SshError::local(format!("{what} {}", path.display()), e))
    };
    for item in &items {
        match item {
            Item::Dir { to, .. } => {
                fs::create_dir_all(to).map_err(|e| local("creating", to, &e))?;
            }
            Item::File { from, to, mode } => get(sftp, from, to, *mode)?,
        }
    }
    // after the files, deepest first: a read-only directory would refuse them
    for item in items.iter().rev() {
        if let Item::Dir { to, mode } = item {
            fs::set_permissions(to, fs::Permissions::from_mode(mode | 0o700))
                .map_err(|e| local("setting the mode of", to, &e))?;
        }
    }
    Ok(())
}

/// The remote directory links must stay in, resolved when a link needs it.
struct Root<'a> {
    given: &'a Path,
    real: Option<PathBuf>,
}

impl Root<'_> {
    /// Refuses the link `link` unless it resolves inside the root.
    fn check(&mut self, sftp: &Sftp, link: &Path) -> Result<(), Fail> {
        let during = format!("download {}", link.display());
        let to = sftp
            .readlink(link)
            .map_err(|e| Fail::ssh(&during, e, false))?;
        let refuse = |resolved: Option<&Path>| Fail::Link {
            link: link.display().to_string(),
            to: to.display().to_string(),
            resolved: resolved.map(|r| r.display().to_string()),
            root: self.given.display().to_string(),
        };
        // the server's realpath may accept a missing last component: ask
        // whether the target is there first
        match sftp.stat(link) {
            Ok(_) => {}
            // a loop reads as a plain failure (SSH_FX_FAILURE)
            Err(e) if is_missing(&e) || matches!(e.code(), ErrorCode::SFTP(4)) => {
                return Err(refuse(None));
            }
            Err(e) => return Err(Fail::ssh(&during, e, false)),
        }
        let resolved = sftp
            .realpath(link)
            .map_err(|e| Fail::ssh(&during, e, false))?;
        if self.real.is_none() {
            let real = sftp
                .realpath(self.given)
                .map_err(|e| Fail::ssh(format!("resolve {}", self.given.display()), e, false))?;
            self.real = Some(real);
        }
        match &self.real {
            Some(real) if resolved.starts_with(real) => Ok(()),
            _ => Err(refuse(Some(&resolved))),
        }
    }
}

fn plan(
    sftp: &Sftp,
    from: &Path,
    to: &Path,
    root: &mut Root<'_>,
    depth: usize,
    items: &mut Vec<Item>,
) -> Result<(), Fail> {
    let during = format!("download {}", from.display());
    let mut st = sftp.lstat(from).map_err(|e| Fail::ssh(&during, e, false))?;
    if st.file_type().is_symlink() {
        root.check(sftp, from)?;
        st = sftp.stat(from).map_err(|e| Fail::ssh(&during, e, false))?;
    }
    let mode = st.perm.unwrap_or(0o644) & 0o7777;
    if !st.is_dir() {
        items.push(Item::File {
            from: from.to_owned(),
            to: to.to_owned(),
            mode,
        });
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Err(Fail::Refused {
            during,
            reason: format!("deeper than {MAX_DEPTH} directories (a symlink loop?)"),
        });
    }
    items.push(Item::Dir {
        to: to.to_owned(),
        mode,
    });
    let mut entries = sftp
        .readdir(from)
        .map_err(|e| Fail::ssh(&during, e, false))?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, _) in entries {
        let Some(name) = path.file_name() else {
            continue;
        };
        plan(sftp, &path, &to.join(name), root, depth + 1, items)?;
    }
    Ok(())
}

/// Copies one remote file (links followed) to a local path.
fn get(sftp: &Sftp, from: &Path, to: &Path, mode: u32) -> Result<(), Fail> {
    let during = format!("download {}", from.display());
    let mut file = sftp.open(from).map_err(|e| Fail::ssh(&during, e, false))?;
    let mut reader = StreamReader {
        file: &mut file,
        failed: None,
    };
    let written = crate::local::write_file(
        to,
        &mut io::BufReader::with_capacity(CHUNK, &mut reader),
        mode,
    );
    match (reader.failed, written) {
        (Some(e), _) => Err(Fail::stream(during, e)),
        (None, Err(e)) => Err(Fail::Done(e)),
        (None, Ok(())) => Ok(()),
    }
}

/// A remote file as a reader that remembers its own failure, so a broken
/// connection is told apart from a local write error.
struct StreamReader<'a> {
    file: &'a mut ::ssh2::File,
    failed: Option<io::Error>,
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf).inspect_err(|e| {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}
