//! Reading the files a compile is given (the workflow file, a site file, a
//! model crate's metadata): only regular files, and never more than a limit.
//! A size reported by the file system is not trusted (`/dev/zero` reports
//! 0 bytes, a FIFO never ends): at most `limit + 1` bytes are read, so a file
//! over the limit is refused after reading one byte more than the limit.

use std::fs::{File, FileType, Metadata};
use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It could not be opened or read.
    Io(std::io::Error),
    /// It is not a regular file; what it is, e.g. "a FIFO (named pipe)".
    NotRegular(&'static str),
    /// It is longer than `limit`; `size` when the file system said so.
    TooLarge { size: Option<u64>, limit: u64 },
}

impl ReadError {
    /// The problem as a sentence about `subject` (e.g. "site file `s.yaml`").
    pub(crate) fn describe(&self, subject: &str) -> String {
        match self {
            Self::Io(e) => format!("{subject} cannot be read: {e}"),
            Self::NotRegular(kind) => format!("{subject} is {kind}, not a regular file"),
            Self::TooLarge {
                size: Some(size),
                limit,
            } => format!("{subject} is {size} bytes, more than the limit of {limit}"),
            Self::TooLarge { size: None, limit } => {
                format!("{subject} is more than the limit of {limit} bytes")
            }
        }
    }
}

/// Reads the regular file at `path` (symlinks followed), at most `limit` bytes.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // Looked at before opening: opening a FIFO for reading blocks until a
    // writer comes, and opening a device may do something.
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    check_kind(&meta)?;
    let file = File::open(path).map_err(ReadError::Io)?;
    // The file opened may not be the one looked at (replaced in between).
    let meta = file.metadata().map_err(ReadError::Io)?;
    check_kind(&meta)?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: Some(meta.len()),
            limit,
        });
    }
    // The reported size may be wrong (0 for files under /proc) or grow.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: None, limit });
    }
    Ok(bytes)
}

/// Refuses anything but a regular file, naming what it is.
fn check_kind(meta: &Metadata) -> Result<(), ReadError> {
    let kind = meta.file_type();
    if kind.is_file() {
        Ok(())
    } else {
        Err(ReadError::NotRegular(describe(kind)))
    }
}

fn describe(kind: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_files_and_refuses_large_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.yaml");
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(read_bounded(&file, 10).unwrap(), b"0123456789");
        let err = read_bounded(&file, 9).unwrap_err();
        assert_eq!(err.describe("f"), "f is 10 bytes, more than the limit of 9");
    }

    #[test]
    fn a_file_longer_than_its_reported_size_is_read_only_to_the_limit() {
        // Files under /proc report a size of 0.
        let maps = Path::new("/proc/self/maps");
        assert_eq!(std::fs::metadata(maps).unwrap().len(), 0);
        let err = read_bounded(maps, 100).unwrap_err();
        assert_eq!(err.describe("f"), "f is more than the limit of 100 bytes");
    }

    #[test]
    fn an_endless_device_is_refused_without_reading_it() {
        let err = read_bounded(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(
            err.describe("f"),
            "f is a character device, not a regular file"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Without a writer, opening the FIFO would block forever.
        let err = read_bounded(&fifo, 1 << 20).unwrap_err();
        assert_eq!(
            err.describe("f"),
            "f is a FIFO (named pipe), not a regular file"
        );
        let err = read_bounded(dir.path(), 1 << 20).unwrap_err();
        assert_eq!(err.describe("f"), "f is a directory, not a regular file");
    }
}
