//! Uploads: a file goes up content-addressed under `blobs/sha256/<hex>`
//! ([`Store::put_file`]), skipped when a blob of that digest and size is
//! already there; a file above the multipart threshold is hashed first, then
//! sent in parts (a bounded number in flight) while being hashed again, and
//! the upload is completed only if both digests agree. An output (a file or
//! a directory tree) gets its manifest only after all of its blobs are
//! complete ([`Store::put_output`]).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;

use crate::config::{MAX_PARTS, MIN_PART};
use crate::digest::{Digest, Hasher};
use crate::error::StoreError;
use crate::location::ArtefactName;
use crate::manifest::{FileEntry, Manifest, check_path};
use crate::store::Store;

/// Read buffer of the hashing pass.
const HASH_BUF: usize = 1 << 20;

/// A blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Digest of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// The object key (`<prefix>/blobs/sha256/<hex>`).
    pub key: String,
    /// False if a blob of this digest and size was already there and nothing was sent.
    pub uploaded: bool,
    /// Parts of the multipart upload; 0 for a single PUT or no upload.
    pub parts: u64,
}

impl Store {
    /// Uploads the file at `path` as a content-addressed blob and returns it.
    /// Writes no manifest (see [`Store::put_output`]).
    pub async fn put_file(&self, path: &Path) -> Result<Blob, StoreError> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| StoreError::local("read", path, e))?;
        if !meta.is_file() {
            return Err(StoreError::Unsupported {
                path: path.to_owned(),
                reason: "not a regular file".into(),
            });
        }
        if meta.len() <= self.opts.multipart_threshold {
            let (data, digest) = read_small(path.to_owned()).await?;
            let size = data.len() as u64;
            let key = self.loc.blob_key(&digest);
            let mut blob = Blob {
                digest,
                size,
                key,
                uploaded: false,
                parts: 0,
            };
            if self.blob_present(&blob.key, size).await? {
                return Ok(blob);
            }
            let p = self.path(&blob.key)?;
            self.s3
                .put(&p, PutPayload::from(data))
                .await
                .map_err(|e| self.remote_err("upload blob", &blob.key, &e))?;
            blob.uploaded = true;
            tracing::debug!(blob = %self.loc.url_of(&blob.key), size, "blob uploaded");
            Ok(blob)
        } else {
            let (digest, size) = hash_file(path.to_owned()).await?;
            let key = self.loc.blob_key(&digest);
            if self.blob_present(&key, size).await? {
                return Ok(Blob {
                    digest,
                    size,
                    key,
                    uploaded: false,
                    parts: 0,
                });
            }
            let parts = self.put_multipart(path, &key, digest, size).await?;
            tracing::debug!(blob = %self.loc.url_of(&key), size, parts, "blob uploaded in parts");
            Ok(Blob {
                digest,
                size,
                key,
                uploaded: true,
                parts,
            })
        }
    }

    /// Uploads the output at `path` (a file, or a directory tree of regular
    /// files) and then writes its manifest; returns the manifest. A failed
    /// upload writes no manifest. Symbolic links and special files are
    /// refused; empty directories are not recorded.
    pub async fn put_output(
        &self,
        name: &ArtefactName,
        path: &Path,
    ) -> Result<Manifest, StoreError> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| StoreError::local("read", path, e))?;
        let manifest = if meta.is_file() {
            let file_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| check_path(n).is_ok())
                .ok_or_else(|| StoreError::Unsupported {
                    path: path.to_owned(),
                    reason: "the file name is not valid UTF-8 or contains `\\`".into(),
                })?
                .to_owned();
            let blob = self.put_file(path).await?;
            Manifest::file(name, entry(file_name, blob))
        } else if meta.is_dir() {
            let files = walk(path.to_owned()).await?;
            let (small, large): (Vec<_>, Vec<_>) = files
                .into_iter()
                .partition(|f| f.size <= self.opts.multipart_threshold);
            let mut entries: Vec<FileEntry> =
                stream::iter(small)
                    .map(|f| async move {
                        Ok::<_, StoreError>(entry(f.rel, self.put_file(&f.abs).await?))
                    })
                    .buffer_unordered(self.opts.files_in_flight.max(1))
                    .try_collect()
                    .await?;
            for f in large {
                let blob = self.put_file(&f.abs).await?;
                entries.push(entry(f.rel, blob));
            }
            Manifest::dir(name, entries)
        } else {
            return Err(StoreError::Unsupported {
                path: path.to_owned(),
                reason: "not a regular file or directory".into(),
            });
        };
        self.put_manifest(&manifest).await?;
        Ok(manifest)
    }

    /// True if `key` exists with `size` bytes. A blob of another size is
    /// damaged and will be overwritten.
    async fn blob_present(&self, key: &str, size: u64) -> Result<bool, StoreError> {
        let p = self.path(key)?;
        match self.s3.head(&p).await {
            Ok(m) if m.size == size => Ok(true),
            Ok(m) => {
                tracing::warn!(blob = %self.loc.url_of(key), expected = size, found = m.size,
                    "blob has the wrong size; uploading it again");
                Ok(false)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.remote_err("check blob", key, &e)),
        }
    }

    /// Sends the first `size` bytes of `path` in parts and completes the
    /// upload if they hash to `digest`; aborts it otherwise. Returns the
    /// number of parts.
    async fn put_multipart(
        &self,
        path: &Path,
        key: &str,
        digest: Digest,
        size: u64,
    ) -> Result<u64, StoreError> {
        let p = self.path(key)?;
        let mut up = self
            .s3
            .put_multipart(&p)
            .await
            .map_err(|e| self.remote_err("start multipart upload of", key, &e))?;
        let result = self.send_parts(up.as_mut(), path, key, size).await;
        let failure = match result {
            Ok((after, _)) if after != digest => StoreError::Changed {
                path: path.to_owned(),
                before: digest,
                after,
            },
            Ok((_, parts)) => {
                up.complete()
                    .await
                    .map_err(|e| self.remote_err("complete multipart upload of", key, &e))?;
                return Ok(parts);
            }
            Err(e) => e,
        };
        if let Err(e) = up.abort().await {
            tracing::warn!(blob = %self.loc.url_of(key), error = %self.remote_err("abort", key, &e),
                "could not abort the multipart upload");
        }
        Err(failure)
    }

    /// Reads, hashes and sends the parts; at most `parts_in_flight` are sent
    /// at once (plus one being read).
    async fn send_parts(
        &self,
        up: &mut dyn MultipartUpload,
        path: &Path,
        key: &str,
        size: u64,
    ) -> Result<(Digest, u64), StoreError> {
        let part = part_size(size, self.opts.part_size);
        let file = std::fs::File::open(path).map_err(|e| StoreError::local("open", path, e))?;
        let mut reader = Some((file, Hasher::new()));
        let mut tasks = JoinSet::new();
        let (mut sent, mut parts) = (0u64, 0u64);
        loop {
            while tasks.len() < self.opts.parts_in_flight.max(1) && sent < size {
                let want = part.min(size - sent);
                let (file, hasher) = reader.take().ok_or_else(|| lost(path))?;
                let (file, hasher, chunk) = read_part(path.to_owned(), file, hasher, want).await?;
                reader = Some((file, hasher));
                sent += want;
                parts += 1;
                tasks.spawn(up.put_part(PutPayload::from(chunk)));
            }
            match tasks.join_next().await {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => return Err(self.remote_err("upload a part of", key, &e)),
                Some(Err(e)) => {
                    return Err(StoreError::local(
                        "upload",
                        path,
                        io::Error::other(e.to_string()),
                    ));
                }
            }
        }
        let (_, hasher) = reader.ok_or_else(|| lost(path))?;
        Ok((hasher.finish(), parts))
    }
}

fn lost(path: &Path) -> StoreError {
    StoreError::local(
        "read",
        path,
        io::Error::other("reader lost after a failed read"),
    )
}

fn entry(path: String, blob: Blob) -> FileEntry {
    FileEntry {
        path,
        size: blob.size,
        sha256: blob.digest,
        blob: blob.key,
    }
}

/// The part size for a file of `size` bytes: at least `wanted` and 5 MiB,
/// and large enough (in whole MiB) for at most 10,000 parts.
pub(crate) fn part_size(size: u64, wanted: usize) -> u64 {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    (wanted.max(MIN_PART) as u64).max(needed)
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::local("read", path, io::Error::other(e.to_string())))?
}

/// The whole file and its digest.
async fn read_small(path: PathBuf) -> Result<(Bytes, Digest), StoreError> {
    let p = path.clone();
    blocking(&p, move || {
        let data = std::fs::read(&path).map_err(|e| StoreError::local("read", &path, e))?;
        let digest = Digest::of(&data);
        Ok((Bytes::from(data), digest))
    })
    .await
}

/// Digest and size of the whole file.
async fn hash_file(path: PathBuf) -> Result<(Digest, u64), StoreError> {
    let p = path.clone();
    blocking(&p, move || {
        let mut f = std::fs::File::open(&path).map_err(|e| StoreError::local("open", &path, e))?;
        let mut h = Hasher::new();
        let mut buf = vec![0u8; HASH_BUF];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::local("read", &path, e)),
            };
            h.update(&buf[..n]);
        }
        let len = h.len();
        Ok((h.finish(), len))
    })
    .await
}

/// Reads exactly `want` bytes of the next part and hashes them.
async fn read_part(
    path: PathBuf,
    mut file: std::fs::File,
    mut hasher: Hasher,
    want: u64,
) -> Result<(std::fs::File, Hasher, Bytes), StoreError> {
    let p = path.clone();
    blocking(&p, move || {
        let len = usize::try_from(want)
            .map_err(|e| StoreError::local("read", &path, io::Error::other(e)))?;
        let mut buf = BytesMut::zeroed(len);
        let mut at = 0;
        while at < len {
            match file.read(&mut buf[at..]) {
                Ok(0) => {
                    return Err(StoreError::local(
                        "read",
                        &path,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file became shorter while it was uploaded; the upload was aborted",
                        ),
                    ));
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StoreError::local("read", &path, e)),
            }
        }
        hasher.update(&buf);
        Ok((file, hasher, buf.freeze()))
    })
    .await
}

/// A regular file of a directory output.
struct Found {
    rel: String,
    abs: PathBuf,
    size: u64,
}

/// Every regular file under `root`, with `/`-separated relative paths.
async fn walk(root: PathBuf) -> Result<Vec<Found>, StoreError> {
    let r = root.clone();
    blocking(&r, move || {
        let mut out = Vec::new();
        let mut todo = vec![(root.clone(), String::new())];
        while let Some((dir, rel)) = todo.pop() {
            let rd = std::fs::read_dir(&dir).map_err(|e| StoreError::local("list", &dir, e))?;
            for ent in rd {
                let ent = ent.map_err(|e| StoreError::local("list", &dir, e))?;
                let abs = ent.path();
                let unsupported = |reason: &str| StoreError::Unsupported {
                    path: abs.clone(),
                    reason: reason.to_owned(),
                };
                let name = ent
                    .file_name()
                    .into_string()
                    .map_err(|_| unsupported("the name is not valid UTF-8"))?;
                if name.contains('\\') {
                    return Err(unsupported("the name contains `\\`"));
                }
                let rel = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let ty = ent
                    .file_type()
                    .map_err(|e| StoreError::local("stat", &abs, e))?;
                if ty.is_symlink() {
                    return Err(unsupported(
                        "symbolic links are not stored; put the file itself in the output",
                    ));
                } else if ty.is_dir() {
                    todo.push((abs, rel));
                } else if ty.is_file() {
                    let size = ent
                        .metadata()
                        .map_err(|e| StoreError::local("stat", &abs, e))?
                        .len();
                    out.push(Found { rel, abs, size });
                } else {
                    return Err(unsupported(
                        "not a regular file, directory or symbolic link",
                    ));
                }
            }
        }
        Ok(out)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes() {
        const MIB: u64 = 1 << 20;
        assert_eq!(part_size(200 * MIB, 16 << 20), 16 * MIB);
        assert_eq!(part_size(200 * MIB, 1 << 20), 5 * MIB);
        // 1 TiB in at most 10,000 parts: 105 MiB each
        let p = part_size(1 << 40, 16 << 20);
        assert_eq!(p, 105 * MIB);
        assert!((1u64 << 40).div_ceil(p) <= MAX_PARTS);
    }

    #[tokio::test]
    async fn walk_lists_files_and_refuses_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::create_dir_all(d.path().join("empty")).unwrap();
        std::fs::write(d.path().join("top.txt"), b"12").unwrap();
        std::fs::write(d.path().join("a/b/deep.bin"), b"12345").unwrap();
        let mut got: Vec<(String, u64)> = walk(d.path().to_owned())
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.rel, f.size))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [("a/b/deep.bin".to_owned(), 5), ("top.txt".to_owned(), 2)]
        );
        std::os::unix::fs::symlink("top.txt", d.path().join("a/link")).unwrap();
        let e = walk(d.path().to_owned()).await.err().unwrap().to_string();
        assert!(
            e.starts_with("cannot store ") && e.contains("a/link: symbolic links"),
            "{e}"
        );
    }
}
