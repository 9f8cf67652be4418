//! What may be sealed: the files of an output, found without leaving the
//! task directory. An output, and every entry of a directory output, is a
//! regular file, a directory, or a symbolic link whose target (resolved) is
//! inside the task directory, which is then sealed as that target. A link
//! that leaves the task directory (to `/etc`, to a producer's output through
//! a staged input, or dangling) and special files (FIFOs, sockets, devices)
//! are refused before a byte is hashed.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why an output cannot be sealed.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Nothing at the output's path.
    Missing,
    /// `entry` (relative to the task directory) is a symbolic link to
    /// `target` (as written), which resolves outside the task directory.
    Escapes { entry: PathBuf, target: PathBuf },
    /// `entry` is a symbolic link to `target`, which does not exist.
    Dangling { entry: PathBuf, target: PathBuf },
    /// `entry` is a symbolic link to a directory that contains it.
    Loop { entry: PathBuf, target: PathBuf },
    /// `entry` is neither a regular file nor a directory.
    Special { entry: PathBuf },
    /// Reading `entry` failed.
    Io { entry: PathBuf, error: io::Error },
}

impl Refusal {
    /// The reason, for the message `output `NAME` (PATH) ...`.
    pub(crate) fn reason(&self) -> String {
        let staged = |entry: &Path, target: &Path| {
            let via_input = entry.starts_with("inputs")
                || entry
                    .parent()
                    .map(|p| p.join(target))
                    .is_some_and(|t| t.starts_with("inputs"));
            if via_input {
                " (a staged input links to its producer's output: copy it, e.g. `cp -L`, to pass it on)"
            } else {
                ""
            }
        };
        match self {
            Self::Missing => "was not written".to_owned(),
            Self::Escapes { entry, target } => format!(
                "is refused: {} is a symbolic link to {}, outside the task directory{}",
                entry.display(),
                target.display(),
                staged(entry, target)
            ),
            Self::Dangling { entry, target } => format!(
                "is refused: {} is a symbolic link to {}, which does not exist",
                entry.display(),
                target.display()
            ),
            Self::Loop { entry, target } => format!(
                "is refused: {} is a symbolic link to {}, a directory that contains it",
                entry.display(),
                target.display()
            ),
            Self::Special { entry } => format!(
                "is refused: {} is not a regular file or directory",
                entry.display()
            ),
            Self::Io { entry, error } => {
                format!("could not be read: {}: {error}", entry.display())
            }
        }
    }
}

/// The task directory, resolved only when a link needs it (most outputs
/// have none, and resolving costs a metadata lookup per path component).
#[derive(Debug)]
pub(crate) struct Within<'a> {
    workdir: &'a Path,
    real: Option<PathBuf>,
}

impl<'a> Within<'a> {
    pub(crate) fn new(workdir: &'a Path) -> Self {
        Self {
            workdir,
            real: None,
        }
    }

    fn real_root(&mut self) -> Result<&Path, Refusal> {
        if self.real.is_none() {
            let real = self.workdir.canonicalize().map_err(|error| Refusal::Io {
                entry: PathBuf::from("."),
                error,
            })?;
            self.real = Some(real);
        }
        Ok(self.real.as_deref().unwrap_or(self.workdir))
    }

    fn rel_of<'p>(&self, path: &'p Path) -> &'p Path {
        path.strip_prefix(self.workdir).unwrap_or(path)
    }

    /// Where the link `at` leads, if that is inside the task directory.
    fn follow(&mut self, at: &Path) -> Result<PathBuf, Refusal> {
        let entry = self.rel_of(at).to_path_buf();
        let target = fs::read_link(at).map_err(|error| Refusal::Io {
            entry: entry.clone(),
            error,
        })?;
        let real = match at.canonicalize() {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Refusal::Dangling { entry, target });
            }
            Err(error) => return Err(Refusal::Io { entry, error }),
        };
        if real.starts_with(self.real_root()?) {
            Ok(real)
        } else {
            Err(Refusal::Escapes { entry, target })
        }
    }

    /// The path whose bytes the output `rel` stands for, and whether it is
    /// a directory; every component of `rel` is checked, so a linked parent
    /// directory cannot lead out either.
    pub(crate) fn output(&mut self, rel: &str) -> Result<(PathBuf, bool), Refusal> {
        let mut at = self.workdir.to_path_buf();
        let mut shown = PathBuf::new();
        for part in Path::new(rel).components() {
            let Component::Normal(part) = part else {
                continue;
            };
            at.push(part);
            shown.push(part);
            let meta = match fs::symlink_metadata(&at) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Refusal::Missing),
                Err(error) => {
                    return Err(Refusal::Io {
                        entry: shown,
                        error,
                    });
                }
            };
            if meta.file_type().is_symlink() {
                at = self.follow(&at).map_err(|r| with_entry(r, &shown))?;
            }
        }
        let meta = fs::metadata(&at).map_err(|error| Refusal::Io {
            entry: shown.clone(),
            error,
        })?;
        if meta.is_dir() {
            Ok((at, true))
        } else if meta.is_file() {
            Ok((at, false))
        } else {
            Err(Refusal::Special { entry: shown })
        }
    }

    /// Every file under the directory `dir` (a real path) as (path relative
    /// to `dir` as it appears, path of its bytes); links are checked, and
    /// nothing is read, before the first byte is hashed.
    pub(crate) fn files(
        &mut self,
        dir: &Path,
        shown: &Path,
    ) -> Result<Vec<(PathBuf, PathBuf)>, Refusal> {
        let mut out = Vec::new();
        self.walk(dir, shown, Path::new(""), &mut out)?;
        Ok(out)
    }

    fn walk(
        &mut self,
        dir: &Path,
        shown: &Path,
        rel: &Path,
        out: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(), Refusal> {
        let io = |entry: PathBuf| move |error| Refusal::Io { entry, error };
        for entry in fs::read_dir(dir).map_err(io(shown.join(rel)))? {
            let entry = entry.map_err(io(shown.join(rel)))?;
            let rel = rel.join(entry.file_name());
            let mut path = entry.path();
            let mut ty = entry.file_type().map_err(io(shown.join(&rel)))?;
            if ty.is_symlink() {
                let target = fs::read_link(&path).unwrap_or_default();
                path = self
                    .follow(&path)
                    .map_err(|r| with_entry(r, &shown.join(&rel)))?;
                ty = fs::metadata(&path)
                    .map_err(io(shown.join(&rel)))?
                    .file_type();
                if ty.is_dir() && dir.starts_with(&path) {
                    return Err(Refusal::Loop {
                        entry: shown.join(&rel),
                        target,
                    });
                }
            }
            if ty.is_dir() {
                self.walk(&path, shown, &rel, out)?;
            } else if ty.is_file() {
                out.push((rel, path));
            } else {
                return Err(Refusal::Special {
                    entry: shown.join(&rel),
                });
            }
        }
        Ok(())
    }
}

/// A refusal of a link, named by its path as the task wrote it.
fn with_entry(r: Refusal, shown: &Path) -> Refusal {
    let entry = shown.to_path_buf();
    match r {
        Refusal::Escapes { target, .. } => Refusal::Escapes { entry, target },
        Refusal::Dangling { target, .. } => Refusal::Dangling { entry, target },
        Refusal::Loop { target, .. } => Refusal::Loop { entry, target },
        Refusal::Special { .. } => Refusal::Special { entry },
        Refusal::Io { error, .. } => Refusal::Io { entry, error },
        Refusal::Missing => Refusal::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{digest, seal};
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    fn one(dir: &std::path::Path, rel: &str) -> Result<String, String> {
        seal(dir, &[("o".to_owned(), rel.to_owned())]).map(|s| s[0].sha256.clone())
    }

    #[test]
    fn a_link_out_of_the_task_directory_is_refused_naming_the_target() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/etc/hostname", dir.path().join("o.txt")).unwrap();
        assert_eq!(
            one(dir.path(), "o.txt").unwrap_err(),
            "output `o` (o.txt) is refused: o.txt is a symbolic link to /etc/hostname, \
             outside the task directory"
        );
        // A linked parent directory leads out just as well.
        symlink("/etc", dir.path().join("sub")).unwrap();
        let err = one(dir.path(), "sub/hostname").unwrap_err();
        assert!(
            err.contains("sub is a symbolic link to /etc, outside"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_output_linking_out_fails_before_hashing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        fs::create_dir_all(d.join("deep")).unwrap();
        fs::write(d.join("a.txt"), "a").unwrap();
        symlink("/usr/share", d.join("deep/share")).unwrap();
        let started = Instant::now();
        let err = one(dir.path(), "d").unwrap_err();
        assert_eq!(
            err,
            "output `o` (d) is refused: d/deep/share is a symbolic link to /usr/share, \
             outside the task directory"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "nothing hashed");
    }

    #[test]
    fn links_inside_the_task_directory_are_sealed_as_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::write(p.join("real.txt"), "hello").unwrap();
        symlink("real.txt", p.join("o.txt")).unwrap();
        fs::create_dir_all(p.join("d/e")).unwrap();
        fs::write(p.join("d/e/x"), "1").unwrap();
        symlink("../real.txt", p.join("d/y")).unwrap();
        symlink("e", p.join("d/f")).unwrap();
        assert_eq!(one(p, "o.txt").unwrap(), one(p, "real.txt").unwrap());
        let linked = one(p, "d").unwrap();
        // The same tree with the links' targets in their place.
        let copy = tempfile::tempdir().unwrap();
        let c = copy.path();
        fs::create_dir_all(c.join("d/e")).unwrap();
        fs::create_dir_all(c.join("d/f")).unwrap();
        fs::write(c.join("d/e/x"), "1").unwrap();
        fs::write(c.join("d/f/x"), "1").unwrap();
        fs::write(c.join("d/y"), "hello").unwrap();
        assert_eq!(linked, one(c, "d").unwrap());
        // Checking it again later follows the same rules.
        assert_eq!(digest(&p.join("d"), "d").unwrap().1, linked);
    }

    #[test]
    fn a_staged_input_link_is_refused_with_a_hint_to_copy_it() {
        let producer = tempfile::tempdir().unwrap();
        fs::create_dir_all(producer.path().join("out")).unwrap();
        fs::write(producer.path().join("out/a"), "a").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("inputs")).unwrap();
        symlink(producer.path().join("out"), p.join("inputs/x")).unwrap();
        symlink("inputs/x", p.join("passed")).unwrap();
        let err = one(p, "passed").unwrap_err();
        assert!(
            err.contains("passed is a symbolic link to inputs/x, outside"),
            "{err}"
        );
        assert!(err.contains("a staged input"), "{err}");
        let err = one(p, "inputs/x").unwrap_err();
        assert!(err.contains("a staged input"), "{err}");
    }

    #[test]
    fn dangling_links_loops_and_special_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        symlink("nowhere", p.join("o")).unwrap();
        assert_eq!(
            one(p, "o").unwrap_err(),
            "output `o` (o) is refused: o is a symbolic link to nowhere, which does not exist"
        );
        fs::create_dir_all(p.join("d")).unwrap();
        symlink("..", p.join("d/up")).unwrap();
        assert_eq!(
            one(p, "d").unwrap_err(),
            "output `o` (d) is refused: d/up is a symbolic link to .., a directory that contains it"
        );
        nix::unistd::mkfifo(&p.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            one(p, "fifo").unwrap_err(),
            "output `o` (fifo) is refused: fifo is not a regular file or directory"
        );
    }
}
