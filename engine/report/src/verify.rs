//! Whether an artefact is still what its run sealed: the crate copies a
//! file only when its bytes have the sealed size and SHA-256, and checks the
//! bytes it copies once more as they are written (a file changed between
//! the check and the copy fails the export).

use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::path::Path;

/// (size, SHA-256 lowercase hex) of the regular file at `path`; a symbolic
/// link is followed (sealing allowed only links inside the task directory,
/// and the digest says whether the bytes are the sealed ones).
pub(crate) fn file_digest(path: &Path) -> io::Result<(u64, String)> {
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut reader = Hashing::new(file);
    io::copy(&mut reader, &mut io::sink())?;
    Ok(reader.finish())
}

/// A reader that hashes what is read through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R> std::fmt::Debug for Hashing<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hashing({} bytes)", self.size)
    }
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// (bytes read, their SHA-256 as lowercase hex).
    pub(crate) fn finish(self) -> (u64, String) {
        (self.size, format!("{:x}", self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
