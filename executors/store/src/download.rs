//! Downloads, verified: bytes are streamed into a temporary file next to the
//! destination while a blocking writer hashes and counts them; only if size
//! and sha256 match is the file (optionally fsynced and) renamed into place.
//! A directory output is assembled in a temporary directory and renamed as a
//! whole. On any failure the temporary file or directory is removed, so a bad
//! or partial download is never found at the destination.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::ObjectStoreExt;
use tokio::sync::mpsc;

use crate::digest::{Digest, Hasher};
use crate::error::StoreError;
use crate::manifest::{Kind, Manifest};
use crate::store::Store;

/// Buffer of the file writer.
const WRITE_BUF: usize = 1 << 20;
/// Chunks queued between the network and the writer.
const QUEUE: usize = 64;

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Downloads the blob with `digest` to `dest` (replacing a file there) and
    /// verifies it; `size`, if given, is checked too. Returns the size.
    pub async fn get_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        dest: &Path,
    ) -> Result<u64, StoreError> {
        let key = self.loc.blob_key(digest);
        let (tmp, guard) = temp_beside(dest, false)?;
        let n = self.download(&key, digest, size, &tmp).await?;
        rename(&tmp, dest)?;
        guard.keep();
        Ok(n)
    }

    /// Downloads the output of `manifest` to `dest` and verifies every file.
    /// A file output replaces a file at `dest`; for a directory output `dest`
    /// must not exist yet.
    pub async fn get_output(&self, manifest: &Manifest, dest: &Path) -> Result<(), StoreError> {
        let url = self.loc.url_of(&self.loc.manifest_key(&manifest.name()?));
        manifest
            .check(&self.loc)
            .map_err(|reason| StoreError::Manifest { url, reason })?;
        match manifest.kind {
            Kind::File => {
                let f = &manifest.files[0];
                self.get_blob(&f.sha256, Some(f.size), dest).await?;
            }
            Kind::Dir => {
                if std::fs::symlink_metadata(dest).is_ok() {
                    return Err(StoreError::local(
                        "download to",
                        dest,
                        io::Error::new(io::ErrorKind::AlreadyExists, "the destination exists"),
                    ));
                }
                let (tmp, guard) = temp_beside(dest, true)?;
                std::fs::create_dir(&tmp).map_err(|e| StoreError::local("create", &tmp, e))?;
                // Owned entries: a stream over borrowed ones makes the future
                // not provably `Send` to a caller that spawns it.
                stream::iter(manifest.files.iter().cloned())
                    .map(|f| {
                        let target = tmp.join(&f.path);
                        async move {
                            if let Some(parent) = target.parent() {
                                tokio::fs::create_dir_all(parent)
                                    .await
                                    .map_err(|e| StoreError::local("create", parent, e))?;
                            }
                            self.download(&f.blob, &f.sha256, Some(f.size), &target)
                                .await
                        }
                    })
                    .buffer_unordered(self.opts.files_in_flight.max(1))
                    .try_collect::<Vec<u64>>()
                    .await?;
                rename(&tmp, dest)?;
                guard.keep();
            }
        }
        Ok(())
    }

    /// Streams `key` into `target` (created), verifying size and digest.
    async fn download(
        &self,
        key: &str,
        digest: &Digest,
        size: Option<u64>,
        target: &Path,
    ) -> Result<u64, StoreError> {
        let url = self.loc.url_of(key);
        let p = self.path(key)?;
        let got = self
            .s3
            .get(&p)
            .await
            .map_err(|e| self.remote_err("download", key, &e))?;
        if let Some(expected) = size.filter(|s| *s != got.meta.size) {
            return Err(StoreError::SizeMismatch {
                url,
                expected,
                actual: got.meta.size,
            });
        }
        let limit = size.unwrap_or(got.meta.size);
        let file =
            std::fs::File::create(target).map_err(|e| StoreError::local("create", target, e))?;
        let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
        let sync = self.opts.sync_downloads;
        let path = target.to_owned();
        let writer = tokio::task::spawn_blocking(move || write_all(file, rx, sync, &path));
        let mut body = got.into_stream();
        let mut received = 0u64;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => {
                    received += c.len() as u64;
                    if received > limit {
                        failure = Some(StoreError::SizeMismatch {
                            url: url.clone(),
                            expected: limit,
                            actual: received,
                        });
                        break;
                    }
                    if tx.send(c).await.is_err() {
                        break; // the writer failed; its error follows
                    }
                }
                Err(e) => {
                    failure = Some(self.remote_err("download", key, &e));
                    break;
                }
            }
        }
        drop(tx);
        let written = writer
            .await
            .map_err(|e| StoreError::local("write", target, io::Error::other(e.to_string())))?;
        if let Some(f) = failure {
            return Err(f);
        }
        let hasher = written?;
        if hasher.len() != limit {
            return Err(StoreError::SizeMismatch {
                url,
                expected: limit,
                actual: hasher.len(),
            });
        }
        let actual = hasher.finish();
        if actual != *digest {
            tracing::warn!(object = %url, expected = %digest, actual = %actual, "digest mismatch");
            return Err(StoreError::DigestMismatch {
                url,
                expected: *digest,
                actual,
            });
        }
        Ok(limit)
    }
}

/// The blocking writer: hashes and writes every chunk, then flushes and
/// (if `sync`) fsyncs.
fn write_all(
    file: std::fs::File,
    mut rx: mpsc::Receiver<Bytes>,
    sync: bool,
    path: &Path,
) -> Result<Hasher, StoreError> {
    let mut h = Hasher::new();
    let mut w = io::BufWriter::with_capacity(WRITE_BUF, file);
    while let Some(c) = rx.blocking_recv() {
        h.update(&c);
        w.write_all(&c)
            .map_err(|e| StoreError::local("write", path, e))?;
    }
    let file = w
        .into_inner()
        .map_err(|e| StoreError::local("write", path, e.into_error()))?;
    if sync {
        file.sync_all()
            .map_err(|e| StoreError::local("sync", path, e))?;
    }
    Ok(h)
}

fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::rename(from, to).map_err(|e| StoreError::local("rename into place", to, e))
}

/// Removes a temporary file or directory when dropped, unless kept.
struct TempGuard {
    path: Option<PathBuf>,
    dir: bool,
}

impl TempGuard {
    fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let r = if self.dir {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if let Err(e) = r
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %p.display(), error = %e, "could not remove a partial download");
            }
        }
    }
}

/// `<dir of dest>/.<name of dest>.twinflow-partial-<pid>-<n>` (the directory
/// is created if missing), and its guard.
fn temp_beside(dest: &Path, dir: bool) -> Result<(PathBuf, TempGuard), StoreError> {
    let name = dest.file_name().ok_or_else(|| {
        StoreError::local(
            "download to",
            dest,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the destination has no file name",
            ),
        )
    })?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| StoreError::local("create", &parent, e))?;
    let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".twinflow-partial-{}-{n}", std::process::id()));
    let tmp = parent.join(tmp_name);
    let guard = TempGuard {
        path: Some(tmp.clone()),
        dir,
    };
    Ok((tmp, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_sit_beside_the_destination() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("sub/out.nc");
        let (tmp, guard) = temp_beside(&dest, false).unwrap();
        assert_eq!(tmp.parent(), dest.parent());
        let name = tmp.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with(".out.nc.twinflow-partial-"), "{name}");
        std::fs::write(&tmp, b"partial").unwrap();
        drop(guard);
        assert!(!tmp.exists(), "the guard removes the partial file");
        let (tmp2, guard) = temp_beside(&dest, false).unwrap();
        assert_ne!(tmp, tmp2);
        std::fs::write(&tmp2, b"done").unwrap();
        guard.keep();
        assert!(tmp2.exists());
        assert!(temp_beside(Path::new("/"), false).is_err());
    }
}
