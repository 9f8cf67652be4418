//! The manifest of a stored output: a JSON object written after its data,
//! listing every file with its size, sha256 and blob key, and its checks
//! (read from the store, a manifest is untrusted input: relative paths only,
//! no `..`, sizes and digests consistent).
//!
//! ```json
//! {"format":"twinflow-manifest/1","run":"r1","task":"forest.0","output":"cover",
//!  "kind":"dir","size":12,"sha256":"<tree digest>",
//!  "files":[{"path":"a/b.txt","size":12,"sha256":"<hex>","blob":"prefix/blobs/sha256/<hex>"}]}
//! ```
//!
//! For `kind: file`, `files` has one entry whose `path` is the file's name and
//! `sha256` is its content's digest. For `kind: dir`, `files` is sorted by
//! path and `sha256` is the tree digest: the sha256 of `path\0size\0hex\n`
//! for each file in that order.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher};
use crate::location::{ArtefactName, Location};

/// The `format` of manifests this crate writes and reads.
pub const MANIFEST_FORMAT: &str = "twinflow-manifest/1";

/// A file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One file.
    File,
    /// A directory tree of files.
    Dir,
}

/// One file of an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// `/`-separated path relative to the output (for a file output: its name).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Digest of the content.
    pub sha256: Digest,
    /// Key of the blob holding the content.
    pub blob: String,
}

/// What was stored for one output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// The run.
    pub run: String,
    /// The task.
    pub task: String,
    /// The output.
    pub output: String,
    /// File or directory.
    pub kind: Kind,
    /// Total size of the files.
    pub size: u64,
    /// File: the content's digest; directory: the tree digest.
    pub sha256: Digest,
    /// The files.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// The manifest of a file output.
    pub(crate) fn file(name: &ArtefactName, entry: FileEntry) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            run: name.run().to_owned(),
            task: name.task().to_owned(),
            output: name.output().to_owned(),
            kind: Kind::File,
            size: entry.size,
            sha256: entry.sha256,
            files: vec![entry],
        }
    }

    /// The manifest of a directory output (`files` in any order).
    pub(crate) fn dir(name: &ArtefactName, mut files: Vec<FileEntry>) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            run: name.run().to_owned(),
            task: name.task().to_owned(),
            output: name.output().to_owned(),
            kind: Kind::Dir,
            size: files.iter().map(|f| f.size).sum(),
            sha256: tree_digest(&files),
            files,
        }
    }

    /// Which output this is.
    pub fn name(&self) -> Result<ArtefactName, crate::StoreError> {
        ArtefactName::new(&self.run, &self.task, &self.output)
    }

    /// Checks a manifest read from `loc`: format, names, paths, sizes,
    /// digests and that every blob key is the one for its digest.
    pub(crate) fn check(&self, loc: &Location) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!(
                "format is `{}`, expected `{MANIFEST_FORMAT}`",
                self.format
            ));
        }
        self.name().map_err(|e| e.to_string())?;
        let mut seen = HashSet::new();
        for f in &self.files {
            check_path(&f.path)?;
            if !seen.insert(f.path.as_str()) {
                return Err(format!("`{}` is listed twice", f.path));
            }
            if f.blob != loc.blob_key(&f.sha256) {
                return Err(format!(
                    "blob of `{}` is `{}`, expected `{}`",
                    f.path,
                    f.blob,
                    loc.blob_key(&f.sha256)
                ));
            }
        }
        let total: u64 = self.files.iter().map(|f| f.size).sum();
        if total != self.size {
            return Err(format!(
                "size is {} but the files add up to {total}",
                self.size
            ));
        }
        match self.kind {
            Kind::File => {
                let [f] = self.files.as_slice() else {
                    return Err(format!(
                        "a file output lists {} files, expected 1",
                        self.files.len()
                    ));
                };
                if f.path.contains('/') {
                    return Err(format!("file name `{}` contains `/`", f.path));
                }
                if f.sha256 != self.sha256 {
                    return Err("sha256 differs from the file's".into());
                }
            }
            Kind::Dir => {
                if self.files.windows(2).any(|w| w[0].path >= w[1].path) {
                    return Err("files are not sorted by path".into());
                }
                if tree_digest(&self.files) != self.sha256 {
                    return Err("sha256 is not the tree digest of the files".into());
                }
                // a file may not also be a directory: `a` and `a/b`
                for f in &self.files {
                    let mut p = f.path.as_str();
                    while let Some((parent, _)) = p.rsplit_once('/') {
                        if seen.contains(parent) {
                            return Err(format!("`{parent}` is both a file and a directory"));
                        }
                        p = parent;
                    }
                }
            }
        }
        Ok(())
    }
}

/// sha256 of `path\0size\0hex\n` for each file, in the given order.
pub(crate) fn tree_digest(files: &[FileEntry]) -> Digest {
    let mut h = Hasher::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update(b"\0");
        h.update(f.size.to_string().as_bytes());
        h.update(b"\0");
        h.update(f.sha256.hex().as_bytes());
        h.update(b"\n");
    }
    h.finish()
}

/// A relative `/`-separated path with no empty, `.` or `..` segment and no
/// NUL or backslash.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a file has an empty path".into());
    }
    if path.contains(['\0', '\\']) {
        return Err(format!("path {path:?} contains NUL or `\\`"));
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "path `{path}` is not relative and plain (empty, `.` or `..` segment, or a leading `/`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(loc: &Location, path: &str, data: &[u8]) -> FileEntry {
        let d = Digest::of(data);
        FileEntry {
            path: path.into(),
            size: data.len() as u64,
            sha256: d,
            blob: loc.blob_key(&d),
        }
    }

    #[test]
    fn dir_manifest_is_sorted_and_checked() {
        let loc = Location::parse("s3://bkt/p").unwrap();
        let name = ArtefactName::new("r", "t", "o").unwrap();
        let m = Manifest::dir(
            &name,
            vec![entry(&loc, "z.txt", b"zz"), entry(&loc, "a/b.txt", b"b")],
        );
        assert_eq!(m.files[0].path, "a/b.txt");
        assert_eq!(m.size, 3);
        m.check(&loc).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.starts_with(r#"{"format":"twinflow-manifest/1","run":"r","task":"t","output":"o","kind":"dir","size":3,"sha256":""#), "{json}");
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);

        let mut bad = m.clone();
        bad.files[1].size += 1;
        bad.size += 1;
        assert_eq!(
            bad.check(&loc).unwrap_err(),
            "sha256 is not the tree digest of the files"
        );
        let mut bad = m.clone();
        bad.size = 99;
        assert!(bad.check(&loc).unwrap_err().contains("add up to 3"));
        let mut bad = m.clone();
        bad.files[0].blob = "p/blobs/sha256/elsewhere".into();
        assert!(
            bad.check(&loc)
                .unwrap_err()
                .starts_with("blob of `a/b.txt` is")
        );
        let mut bad = m.clone();
        bad.format = "twinflow-manifest/0".into();
        assert!(bad.check(&loc).unwrap_err().contains("format"));
        // the same manifest is not valid under another prefix
        assert!(m.check(&Location::parse("s3://bkt/q").unwrap()).is_err());
    }

    #[test]
    fn hostile_paths_are_rejected() {
        let loc = Location::parse("s3://bkt").unwrap();
        let name = ArtefactName::new("r", "t", "o").unwrap();
        for p in [
            "../x",
            "/etc/passwd",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "",
        ] {
            let m = Manifest::dir(&name, vec![entry(&loc, p, b"x")]);
            assert!(m.check(&loc).is_err(), "{p:?} accepted");
        }
        let m = Manifest::dir(
            &name,
            vec![entry(&loc, "a", b"x"), entry(&loc, "a/b", b"y")],
        );
        assert_eq!(
            m.check(&loc).unwrap_err(),
            "`a` is both a file and a directory"
        );
        let m = Manifest::file(&name, entry(&loc, "sub/f", b"x"));
        assert!(m.check(&loc).unwrap_err().contains("contains `/`"));
        let mut m = Manifest::file(&name, entry(&loc, "f", b"x"));
        m.check(&loc).unwrap();
        m.files.push(entry(&loc, "g", b"y"));
        m.size += 1;
        assert!(m.check(&loc).unwrap_err().contains("lists 2 files"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let loc = Location::parse("s3://bkt").unwrap();
        let name = ArtefactName::new("r", "t", "o").unwrap();
        let m = Manifest::file(&name, entry(&loc, "f", b"x"));
        let mut v = serde_json::to_value(&m).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Manifest>(v).is_err());
    }
}
