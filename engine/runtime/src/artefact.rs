//! Artefacts: sealing a task's outputs (size + SHA-256), checking a sealed
//! result is still intact, staging inputs as links, and the cache key.
//! What sealing accepts (no link out of the task directory) is [`within`]'s.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use within::{Refusal, Within};

mod within;

/// A sealed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// The output's name.
    pub output: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Bytes (all files, for a directory).
    pub size: u64,
    /// SHA-256, lowercase hex. A directory's digest covers its files' relative
    /// paths and digests in sorted order.
    pub sha256: String,
    /// Modification time in nanoseconds, to re-hash only what changed.
    pub mtime_ns: i64,
}

/// Seals the outputs `(name, relative path)` of a task that exited 0 in
/// `workdir`; an output it did not write, or one that is (or contains) a
/// symbolic link out of `workdir` or a special file, is an error naming it
/// (see [`within`]).
pub(crate) fn seal(workdir: &Path, outputs: &[(String, String)]) -> Result<Vec<Sealed>, String> {
    let mut sealed = Vec::with_capacity(outputs.len());
    let mut within = Within::new(workdir);
    for (name, rel) in outputs {
        let (size, sha256, mtime_ns) = digest_in(&mut within, rel)
            .map_err(|r| format!("output `{name}` ({rel}) {}", r.reason()))?;
        sealed.push(Sealed {
            output: name.clone(),
            path: workdir.join(rel),
            size,
            sha256,
            mtime_ns,
        });
    }
    Ok(sealed)
}

/// The largest read buffer of a digest.
const DIGEST_BUF: u64 = 256 * 1024;

/// Outputs that together are at most this many bytes of plain files are
/// sealed on the dispatch loop itself (see [`small_files`]).
pub(crate) const SEAL_INLINE_BYTES: u64 = 64 * 1024;

/// Whether every output is a plain file (not a link, not a directory) and
/// all of them together hold at most `limit` bytes: sealing them costs
/// less than handing the work to another thread and back. Anything else,
/// or anything that cannot be looked at, says no (the thread then seals it,
/// and reports what is wrong).
pub(crate) fn small_files(workdir: &Path, outputs: &[(String, String)], limit: u64) -> bool {
    let mut total = 0u64;
    for (_, rel) in outputs {
        match fs::symlink_metadata(workdir.join(rel)) {
            Ok(meta) if meta.file_type().is_file() => total = total.saturating_add(meta.len()),
            _ => return false,
        }
        if total > limit {
            return false;
        }
    }
    true
}

/// Whether a sealed artefact, the output at `rel` of its task directory, is
/// still what was sealed: the same size and modification time, or else the
/// same digest (under the rules of sealing).
pub(crate) fn intact(sealed: &Sealed, rel: &str) -> bool {
    let Ok(meta) = fs::metadata(&sealed.path) else {
        return false;
    };
    if meta.is_file() && meta.len() == sealed.size && mtime_ns(&meta) == sealed.mtime_ns {
        return true;
    }
    digest(&sealed.path, rel)
        .is_ok_and(|(size, sha, _)| size == sealed.size && sha == sealed.sha256)
}

/// (size, sha256 hex, mtime ns) of the output at `path`, which is `rel` in
/// its task directory, under the rules of sealing.
pub(crate) fn digest(path: &Path, rel: &str) -> Result<(u64, String, i64), String> {
    let depth = Path::new(rel).components().count();
    let workdir = path.ancestors().nth(depth).unwrap_or(path);
    digest_in(&mut Within::new(workdir), rel).map_err(|r| r.reason())
}

fn digest_in(within: &mut Within<'_>, rel: &str) -> Result<(u64, String, i64), Refusal> {
    let (path, is_dir) = within.output(rel)?;
    let io = |error| Refusal::Io {
        entry: PathBuf::from(rel),
        error,
    };
    let meta = fs::metadata(&path).map_err(io)?;
    if is_dir {
        let mut files = within.files(&path, Path::new(rel))?;
        files.sort();
        let mut hasher = Sha256::new();
        let mut size = 0;
        for (rel, real) in &files {
            let (n, sha) = file_digest(real).map_err(io)?;
            size += n;
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(sha.as_bytes());
            hasher.update([0]);
        }
        return Ok((size, hex(&hasher.finalize()), mtime_ns(&meta)));
    }
    let (size, sha) = file_digest(&path).map_err(io)?;
    Ok((size, sha, mtime_ns(&meta)))
}

/// SHA-256 of a file's bytes, lowercase hex.
pub(crate) fn file_sha256(path: &Path) -> io::Result<String> {
    file_digest(path).map(|(_, sha)| sha)
}

fn file_digest(path: &Path) -> io::Result<(u64, String)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    // Sized to the file (a byte more, to see its end in one read), at most
    // 256 KiB: a small output costs no large zeroed allocation (which the
    // allocator maps and the kernel faults in, page by page, every time).
    let len = file.metadata().map_or(DIGEST_BUF, |m| m.len());
    let mut buf = vec![0u8; (len.saturating_add(1)).min(DIGEST_BUF) as usize];
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

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Stages an input at `workdir/rel`: a hard link to the producer's sealed
/// file where one can be made (no new inode: on ext4 a tenth of the cost of
/// a symbolic link, on Lustre no new object), else (a directory, another
/// file system, a symbolic link) a symbolic link to it. A target that no
/// longer exists is a `NotFound` error, never a dangling link.
pub(crate) fn link_input(workdir: &Path, rel: &str, target: &Path) -> io::Result<()> {
    let at = workdir.join(rel);
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent)?;
    }
    // A symbolic link is hard-linked as itself, and a relative one would
    // then point elsewhere: only regular files are hard-linked.
    let meta = fs::symlink_metadata(target)?;
    if meta.is_file() && fs::hard_link(target, &at).is_ok() {
        return Ok(());
    }
    if !meta.is_dir() {
        // What a symbolic link would lead to must be there.
        fs::metadata(target)?;
    }
    std::os::unix::fs::symlink(target, &at)
}

/// Puts a cached artefact at `to` (in a new task directory): hard links
/// where the file system allows, copies otherwise. Returns whether every
/// file is a hard link, i.e. the very bytes that were verified.
pub(crate) fn adopt(from: &Path, to: &Path) -> io::Result<bool> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    if fs::metadata(from)?.is_dir() {
        fs::create_dir_all(to)?;
        let mut linked = true;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            linked &= adopt(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(linked);
    }
    match fs::hard_link(from, to) {
        Ok(()) => Ok(true),
        Err(_) => fs::copy(from, to).map(|_| false),
    }
}

/// Modification time of a path in nanoseconds.
pub(crate) fn mtime_of(path: &Path) -> io::Result<i64> {
    fs::metadata(path).map(|m| mtime_ns(&m))
}

/// Empties (or creates) a task's working directory for a new attempt.
pub(crate) fn fresh_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)
}

/// The cache key of a task: what determines its result. The step name, the
/// script, the environment the workflow sets (not `TWINFLOW_RUN_ID`, which
/// changes every run: a script that uses the run id has it in its text), the
/// container image, the declared outputs and the digests of its inputs.
pub(crate) struct CacheKey(Sha256);

impl CacheKey {
    pub(crate) fn new(step: &str, script: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"twinflow-cache-v1\0");
        let mut key = Self(h);
        key.field(step);
        key.field(script);
        key
    }

    /// Adds one field, delimited so that fields cannot run into each other.
    pub(crate) fn field(&mut self, value: &str) {
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
    }

    pub(crate) fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "hello").unwrap();
        fs::create_dir_all(dir.path().join("d/e")).unwrap();
        fs::write(dir.path().join("d/e/x"), "1").unwrap();
        fs::write(dir.path().join("d/y"), "22").unwrap();
        let outputs = [
            ("a".to_owned(), "a.txt".to_owned()),
            ("d".to_owned(), "d".to_owned()),
        ];
        let sealed = seal(dir.path(), &outputs).unwrap();
        assert_eq!(sealed[0].size, 5);
        assert_eq!(
            sealed[0].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(sealed[1].size, 3);
        assert!(intact(&sealed[0], "a.txt") && intact(&sealed[1], "d"));
        fs::write(dir.path().join("d/y"), "33").unwrap();
        assert!(
            !intact(&sealed[1], "d"),
            "a changed file in a directory is seen"
        );
        let missing = seal(dir.path(), &[("m".to_owned(), "m.csv".to_owned())]).unwrap_err();
        assert_eq!(missing, "output `m` (m.csv) was not written");
    }

    #[test]
    fn a_rewritten_file_with_the_same_bytes_is_still_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "same").unwrap();
        let sealed = seal(dir.path(), &[("f".to_owned(), "f".to_owned())]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&path, "same").unwrap();
        assert!(intact(&sealed[0], "f"));
        fs::write(&path, "diff").unwrap();
        assert!(!intact(&sealed[0], "f"));
    }

    #[test]
    fn digests_agree_whatever_the_size_around_the_read_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let limit = DIGEST_BUF as usize;
        for len in [0, 1, limit - 1, limit, limit + 1, 3 * limit + 7] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            fs::write(&path, &bytes).unwrap();
            let (size, sha) = file_digest(&path).unwrap();
            assert_eq!(size, len as u64);
            assert_eq!(sha, hex(&Sha256::digest(&bytes)), "{len} bytes");
        }
    }

    #[test]
    fn only_small_plain_files_are_sealed_on_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("small"), "x").unwrap();
        fs::write(d.join("big"), vec![0u8; 2048]).unwrap();
        fs::create_dir(d.join("dir")).unwrap();
        std::os::unix::fs::symlink(d.join("small"), d.join("link")).unwrap();
        let out = |rels: &[&str]| -> Vec<(String, String)> {
            rels.iter()
                .map(|r| ((*r).to_owned(), (*r).to_owned()))
                .collect()
        };
        assert!(small_files(d, &out(&["small"]), 1024));
        assert!(
            !small_files(d, &out(&["small", "big"]), 1024),
            "together too big"
        );
        assert!(small_files(d, &out(&["small", "big"]), 4096));
        for other in ["dir", "link", "missing"] {
            assert!(!small_files(d, &out(&["small", other]), 4096), "{other}");
        }
    }

    #[test]
    fn cache_key_fields_do_not_run_together() {
        let key = |a: &str, b: &str| {
            let mut k = CacheKey::new("s", "run");
            k.field(a);
            k.field(b);
            k.finish()
        };
        assert_ne!(key("ab", "c"), key("a", "bc"));
        assert_eq!(key("a", "b"), key("a", "b"));
    }
}
