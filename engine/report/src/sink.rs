//! Where a crate's files go: a directory, or a zip archive (deflated, the
//! metadata file first).

use crate::ReportError;
use crate::verify::Hashing;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A crate being written.
pub(crate) enum Sink {
    /// Files under this directory.
    Dir(PathBuf),
    /// Entries of this archive.
    Zip {
        path: PathBuf,
        writer: Box<zip::ZipWriter<std::fs::File>>,
    },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "Sink::Dir({})", d.display()),
            Self::Zip { path, .. } => write!(f, "Sink::Zip({})", path.display()),
        }
    }
}

impl Sink {
    /// A zip archive when `out` ends in `.zip`, else a directory (created).
    pub(crate) fn create(out: &Path) -> Result<Self, ReportError> {
        if out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(ReportError::io(parent))?;
            }
            let file = std::fs::File::create(out).map_err(ReportError::io(out))?;
            Ok(Self::Zip {
                path: out.to_owned(),
                writer: Box::new(zip::ZipWriter::new(file)),
            })
        } else {
            std::fs::create_dir_all(out).map_err(ReportError::io(out))?;
            Ok(Self::Dir(out.to_owned()))
        }
    }

    fn zip_err(path: &Path) -> impl FnOnce(zip::result::ZipError) -> ReportError {
        let path = path.to_owned();
        move |source| ReportError::Zip { path, source }
    }

    fn options() -> zip::write::SimpleFileOptions {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true)
    }

    /// Writes `bytes` at `rel` (a relative, `/`-separated path).
    pub(crate) fn bytes(&mut self, rel: &str, bytes: &[u8]) -> Result<(), ReportError> {
        match self {
            Self::Dir(dir) => {
                let target = dir.join(rel);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(ReportError::io(parent))?;
                }
                std::fs::write(&target, bytes).map_err(ReportError::io(&target))
            }
            Self::Zip { path, writer } => {
                writer
                    .start_file(rel, Self::options())
                    .map_err(Self::zip_err(path))?;
                writer
                    .write_all(bytes)
                    .map_err(ReportError::io(path.clone()))
            }
        }
    }

    /// Copies the file `source` to `rel`; returns the size and SHA-256 of
    /// the bytes copied.
    pub(crate) fn copy(&mut self, rel: &str, source: &Path) -> Result<(u64, String), ReportError> {
        let file = std::fs::File::open(source).map_err(ReportError::io(source))?;
        let mut reader = Hashing::new(file);
        match self {
            Self::Dir(dir) => {
                let target = dir.join(rel);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(ReportError::io(parent))?;
                }
                let mut out = std::fs::File::create(&target).map_err(ReportError::io(&target))?;
                std::io::copy(&mut reader, &mut out).map_err(ReportError::io(source))?;
            }
            Self::Zip { path, writer } => {
                writer
                    .start_file(rel, Self::options())
                    .map_err(Self::zip_err(path))?;
                std::io::copy(&mut reader, writer.as_mut()).map_err(ReportError::io(source))?;
            }
        }
        Ok(reader.finish())
    }

    /// Closes the archive.
    pub(crate) fn finish(self) -> Result<(), ReportError> {
        match self {
            Self::Dir(_) => Ok(()),
            Self::Zip { path, writer } => writer.finish().map(|_| ()).map_err(Self::zip_err(&path)),
        }
    }
}
