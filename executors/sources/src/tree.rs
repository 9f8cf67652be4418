//! Content digests and copies: a file's SHA-256, a directory's tree digest
//! and manifest, whether a stored copy is still intact, and materialising
//! a stored copy into a task directory by hard links.
//!
//! **Tree digest** (a directory source's `sha256`): the SHA-256 of, for
//! each regular file under the directory, sorted by relative path
//! (component by component, as Rust's `Path` orders), the file's
//! `/`-separated relative path, a NUL byte, its SHA-256 in lowercase hex
//! and a NUL byte. Empty directories do not count; a symbolic link or a
//! special file is refused. It is the digest the runtime gives a sealed
//! directory output, so a source's `sha256` and its sealed artefact agree.

use crate::http::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One file of a stored tree, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TreeFile {
    /// `/`-separated, relative to the tree.
    pub rel: String,
    pub size: u64,
    pub sha256: String,
    pub mtime_ns: i64,
}

/// A file's size and SHA-256.
pub(crate) fn file_sha256(path: &Path) -> io::Result<(u64, String)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex(&hasher.finalize())))
}

/// A file's modification time in nanoseconds.
pub(crate) fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// The tree digest of `dir` (see the module docs), its total size and
/// its manifest.
pub(crate) fn digest_tree(dir: &Path) -> Result<(String, u64, Vec<TreeFile>), String> {
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    let mut total = 0;
    let mut manifest = Vec::with_capacity(files.len());
    for rel in files {
        let path = dir.join(&rel);
        let (size, sha) =
            file_sha256(&path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        let meta =
            fs::metadata(&path).map_err(|e| format!("failed to stat {}: {e}", path.display()))?;
        let rel = rel
            .to_str()
            .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))?
            .to_owned();
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        hasher.update(sha.as_bytes());
        hasher.update([0]);
        total += size;
        manifest.push(TreeFile {
            rel,
            size,
            sha256: sha,
            mtime_ns: mtime_ns(&meta),
        });
    }
    Ok((hex(&hasher.finalize()), total, manifest))
}

fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let err = |e: io::Error| format!("failed to read {}: {e}", dir.display());
    for entry in fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let ty = entry.file_type().map_err(err)?;
        let rel = rel.join(entry.file_name());
        if ty.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if ty.is_file() {
            out.push(rel);
        } else {
            return Err(format!(
                "{} is a symbolic link or a special file, which a directory source may not hold",
                rel.display()
            ));
        }
    }
    Ok(())
}

/// Whether the tree at `dir` still holds `manifest`'s files with their
/// sizes and modification times.
pub(crate) fn tree_intact(dir: &Path, manifest: &[TreeFile]) -> bool {
    manifest.iter().all(|f| {
        fs::metadata(dir.join(&f.rel))
            .is_ok_and(|m| m.is_file() && m.len() == f.size && mtime_ns(&m) == f.mtime_ns)
    })
}

/// Puts a copy of the file `src` at `dst` (replacing what is there): a
/// hard link, or a copy when `src` is on another file system.
pub(crate) fn link_file(src: &Path, dst: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dst) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(dst)?,
        Ok(_) => fs::remove_file(dst)?,
        Err(_) => {}
    }
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => fs::copy(src, dst).map(|_| ()),
        Err(e) => Err(e),
    }
}

/// Puts a copy of the tree `src` (listed by `manifest`) at `dst`,
/// replacing what is there, file by file with [`link_file`].
pub(crate) fn link_tree(src: &Path, manifest: &[TreeFile], dst: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dst) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(dst)?,
        Ok(_) => fs::remove_file(dst)?,
        Err(_) => {}
    }
    fs::create_dir_all(dst)?;
    let mut made = std::collections::HashSet::new();
    for f in manifest {
        let target = dst.join(&f.rel);
        if let Some(parent) = target.parent()
            && parent != dst
            && made.insert(parent.to_path_buf())
        {
            fs::create_dir_all(parent)?;
        }
        match fs::hard_link(src.join(&f.rel), &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                fs::copy(src.join(&f.rel), &target)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
