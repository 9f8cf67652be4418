//! The content-addressed cache of fetched sources, shared by every run of
//! a state directory (the runtime passes `<state_dir>/sources`):
//!
//! ```text
//! blobs/<aa>/<sha256>          a file source's content
//! trees/<aa>/<digest>/         a directory source's content
//! trees/<aa>/<digest>.json     its manifest (files, sizes, digests, mtimes)
//! index/<key>.json             one entry per source instance (Entry)
//! locks/<key>.lock             flock'd while the instance is fetched
//! staging/<key>/content        a download in progress (and its side files)
//! ```
//!
//! The key is the SHA-256 of the scheme, the instance's URL and the
//! options that change content. [`Cache::resolve`] decides from the entry
//! (see [`Policy`]): a pinned `sha256` that the entry holds, or `refresh:
//! never`, is a hit without network; an entry older than `refresh` is
//! revalidated. What a fetcher brings is verified (digest, pinned
//! `sha256`, `max_size`, [`check_format`]) in staging, renamed into place
//! and only then indexed (atomic writes): a partial or refused download is
//! never published. An entry whose content changed (size or mtime) is
//! fetched again. One flock per key makes concurrent fetches of one
//! instance (tasks or processes) fetch once.

use crate::formats::check_format;
use crate::lock::lock;
use crate::scrub::scrub_url;
use crate::tree::{self, TreeFile};
use crate::{Fetched, Fetcher, Request, SourceError, Validators};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// What the cache knows of one source instance (`index/<key>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The instance's URL, credentials scrubbed.
    pub url: String,
    /// SHA-256 of the file, or the tree digest of the directory.
    pub sha256: String,
    /// Bytes (all files, for a directory).
    pub size: u64,
    /// Whether it is a directory.
    pub directory: bool,
    /// For revalidation.
    pub validators: Validators,
    /// When the content was fetched (RFC 3339).
    pub retrieved_at: String,
    /// When the upstream was last asked about it (RFC 3339).
    pub checked_at: String,
    /// Where the content came from in the end.
    pub content_url: String,
    /// How to cite it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation: Option<String>,
    /// The file's modification time (ns) when published (a file only).
    #[serde(default)]
    pub mtime_ns: i64,
}

/// What [`Cache::resolve`] is after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// The content, from the cache when its rules allow.
    Current,
    /// Only content other than `since` (a digest) counts: the upstream is
    /// asked (revalidated), and unchanged content is [`Resolution::NotYet`].
    WaitForChange {
        /// The digest the cache held when the wait began.
        since: String,
    },
}

/// What [`Cache::resolve`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The content is in the cache.
    Ready {
        /// Its entry.
        entry: Entry,
        /// Whether content was downloaded now (false: a hit or a `304`).
        fetched: bool,
    },
    /// ([`Policy::WaitForChange`]) the upstream has not changed.
    NotYet(String),
}

/// The cache under one root directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at `root` (created as needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Its root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The index key of `request`'s instance: SHA-256 of the scheme, the
    /// URL and the options that change content (`format`, whether a
    /// directory, `endpoint`, `region`, `assets`, `max_items`).
    pub fn key(request: &Request<'_>) -> String {
        let s = request.spec;
        let o = &s.options;
        let parts = serde_json::json!([
            s.scheme.as_str(),
            request.url,
            s.format.as_str(),
            s.directory,
            o.endpoint,
            o.region,
            o.assets,
            o.max_items,
        ]);
        crate::http::hex(&Sha256::digest(parts.to_string().as_bytes()))
    }

    /// The entry of `request`'s instance, if the cache holds it intact.
    pub fn peek(&self, request: &Request<'_>) -> Option<Entry> {
        let entry = self.read_entry(&Self::key(request))?;
        self.intact(&entry).then_some(entry)
    }

    /// Where an entry's content is.
    pub fn content_path(&self, entry: &Entry) -> PathBuf {
        let kind = if entry.directory { "trees" } else { "blobs" };
        let shard = entry.sha256.get(..2).unwrap_or("xx");
        self.root.join(kind).join(shard).join(&entry.sha256)
    }

    /// Gets `request`'s content into the cache (see the module docs).
    pub async fn resolve(
        &self,
        request: Request<'_>,
        fetcher: &dyn Fetcher,
        policy: &Policy,
    ) -> Result<Resolution, SourceError> {
        let key = Self::key(&request);
        let fail = |reason: String| SourceError::Failed {
            source_name: request.spec.name.clone(),
            url: scrub_url(request.url),
            reason,
        };
        // Without the lock first: a hit needs none.
        if let Some(hit) = self.hit(&key, &request, policy) {
            return Ok(hit);
        }
        let lock_path = self.root.join("locks").join(format!("{key}.lock"));
        let _guard = lock(&lock_path).await.map_err(fail)?;
        // Another task or process may have fetched it meanwhile.
        if let Some(hit) = self.hit(&key, &request, policy) {
            return Ok(hit);
        }
        let entry = self.read_entry(&key).filter(|e| self.intact(e));
        let staging_dir = self.root.join("staging").join(&key);
        let staging = staging_dir.join("content");
        if staging.is_dir() {
            fs::remove_dir_all(&staging).map_err(|e| fail(io_msg(&staging, &e)))?;
        }
        fs::create_dir_all(&staging_dir).map_err(|e| fail(io_msg(&staging_dir, &e)))?;
        let known = entry.as_ref().map(|e| &e.validators);
        let fetched = match fetcher.fetch(request, &staging, known).await {
            Ok(f) => f,
            Err(e) => {
                // A transient fault leaves the partial download to resume.
                if !matches!(e, SourceError::Transient { .. }) {
                    let _ = fs::remove_dir_all(&staging_dir);
                }
                return Err(e);
            }
        };
        let now = now();
        let (content_url, validators, citation, directory) = match (fetched, entry) {
            (Fetched::NotModified, Some(mut entry)) => {
                let _ = fs::remove_dir_all(&staging_dir);
                entry.checked_at = now;
                self.write_entry(&key, &entry).map_err(fail)?;
                return Ok(match policy {
                    Policy::WaitForChange { since } if *since == entry.sha256 => {
                        Resolution::NotYet(format!("unchanged since {}", entry.retrieved_at))
                    }
                    _ => Resolution::Ready {
                        entry,
                        fetched: false,
                    },
                });
            }
            (Fetched::NotModified, None) => {
                let _ = fs::remove_dir_all(&staging_dir);
                return Err(fail(
                    "the fetcher answered \"not modified\" for content the cache does not hold"
                        .into(),
                ));
            }
            (
                Fetched::Content {
                    directory,
                    validators,
                    content_url,
                    citation,
                },
                _,
            ) => (content_url, validators, citation, directory),
        };
        let published = self.publish(&request, &staging, directory);
        let _ = fs::remove_dir_all(&staging_dir);
        let (sha256, size, mtime_ns) = published.map_err(fail)?;
        let entry = Entry {
            url: scrub_url(request.url),
            sha256,
            size,
            directory,
            validators,
            retrieved_at: now.clone(),
            checked_at: now,
            content_url,
            citation,
            mtime_ns,
        };
        self.write_entry(&key, &entry).map_err(fail)?;
        Ok(match policy {
            Policy::WaitForChange { since } if *since == entry.sha256 => {
                Resolution::NotYet("the content is the same".into())
            }
            _ => Resolution::Ready {
                entry,
                fetched: true,
            },
        })
    }

    /// A hit, if the entry's rules allow one without asking the upstream.
    fn hit(&self, key: &str, request: &Request<'_>, policy: &Policy) -> Option<Resolution> {
        let entry = self.read_entry(key)?;
        let spec = request.spec;
        let fresh = match policy {
            Policy::WaitForChange { since } => *since != entry.sha256,
            Policy::Current => match (&spec.sha256, spec.refresh_seconds) {
                (Some(pin), _) => *pin == entry.sha256,
                (None, None) => true,
                (None, Some(every)) => age_seconds(&entry.checked_at).is_some_and(|a| a < every),
            },
        };
        (fresh && self.intact(&entry)).then_some(Resolution::Ready {
            entry,
            fetched: false,
        })
    }

    /// Verifies the staged content and moves it into place: its digest,
    /// size and (a file) mtime.
    fn publish(
        &self,
        request: &Request<'_>,
        staging: &Path,
        directory: bool,
    ) -> Result<(String, u64, i64), String> {
        let spec = request.spec;
        let meta = fs::metadata(staging).map_err(|e| io_msg(staging, &e))?;
        if meta.is_dir() != directory {
            return Err(format!(
                "the fetcher left a {} where a {} was expected",
                kind(meta.is_dir()),
                kind(directory)
            ));
        }
        if spec.directory != directory {
            return Err(format!(
                "the upstream holds a {} but the source is a {}",
                kind(directory),
                kind(spec.directory)
            ));
        }
        let (sha256, size, manifest) = if directory {
            let (d, s, m) = tree::digest_tree(staging)?;
            (d, s, Some(m))
        } else {
            let size = meta.len();
            match crate::fetcher::digest_left(staging, size) {
                Some(sha) => (sha, size, None),
                None => {
                    let (s, d) = tree::file_sha256(staging).map_err(|e| io_msg(staging, &e))?;
                    (d, s, None)
                }
            }
        };
        if let Some(pin) = &spec.sha256
            && *pin != sha256
        {
            return Err(format!(
                "sha256 mismatch: expected {pin}, got {sha256}; the download was not kept"
            ));
        }
        if let Some(max) = spec.options.max_size
            && size > max
        {
            return Err(format!("is {size} bytes, over `max_size` {max}"));
        }
        check_format(spec, staging)
            .map_err(|e| format!("is not `{}`: {e}", spec.format.as_str()))?;
        let probe = Entry {
            url: String::new(),
            sha256: sha256.clone(),
            size,
            directory,
            validators: Validators::default(),
            retrieved_at: String::new(),
            checked_at: String::new(),
            content_url: String::new(),
            citation: None,
            mtime_ns: 0,
        };
        let dest = self.content_path(&probe);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io_msg(parent, &e))?;
        }
        if let Some(manifest) = manifest {
            let manifest_path = dest.with_extension("json");
            let present =
                read_manifest(&manifest_path).is_some_and(|m| tree::tree_intact(&dest, &m));
            if !present {
                if dest.exists() {
                    fs::remove_dir_all(&dest).map_err(|e| io_msg(&dest, &e))?;
                }
                fs::rename(staging, &dest).map_err(|e| io_msg(&dest, &e))?;
                let text = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
                write_atomic(&manifest_path, &text)?;
            }
            return Ok((sha256, size, 0));
        }
        // Replaces a blob of the same digest that was changed in place
        // (the links made of the old one keep their content).
        fs::rename(staging, &dest).map_err(|e| io_msg(&dest, &e))?;
        let meta = fs::metadata(&dest).map_err(|e| io_msg(&dest, &e))?;
        Ok((sha256, size, tree::mtime_ns(&meta)))
    }

    /// Whether an entry's content is still what was published.
    fn intact(&self, entry: &Entry) -> bool {
        let path = self.content_path(entry);
        if entry.directory {
            return read_manifest(&path.with_extension("json"))
                .is_some_and(|m| tree::tree_intact(&path, &m));
        }
        fs::metadata(&path).is_ok_and(|m| {
            m.is_file() && m.len() == entry.size && tree::mtime_ns(&m) == entry.mtime_ns
        })
    }

    /// Puts a copy of `entry`'s content at `target` (hard links; copies
    /// across file systems), replacing what is there.
    pub fn materialise(&self, entry: &Entry, target: &Path) -> Result<(), String> {
        let path = self.content_path(entry);
        let done = if entry.directory {
            let manifest = read_manifest(&path.with_extension("json"))
                .ok_or_else(|| format!("the manifest of {} is missing", path.display()))?;
            tree::link_tree(&path, &manifest, target)
        } else {
            tree::link_file(&path, target)
        };
        done.map_err(|e| {
            format!(
                "failed to put {} at {}: {e}",
                path.display(),
                target.display()
            )
        })
    }

    fn read_entry(&self, key: &str) -> Option<Entry> {
        let bytes = fs::read(self.root.join("index").join(format!("{key}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_entry(&self, key: &str, entry: &Entry) -> Result<(), String> {
        let path = self.root.join("index").join(format!("{key}.json"));
        let text = serde_json::to_vec_pretty(entry).map_err(|e| e.to_string())?;
        write_atomic(&path, &text)
    }
}

fn read_manifest(path: &Path) -> Option<Vec<TreeFile>> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Writes `path` through a temporary file renamed into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_msg(parent, &e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).map_err(|e| io_msg(&tmp, &e))?;
    fs::rename(&tmp, path).map_err(|e| io_msg(path, &e))
}

fn io_msg(path: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn kind(directory: bool) -> &'static str {
    if directory { "directory" } else { "file" }
}

/// Now, RFC 3339.
pub(crate) fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn age_seconds(at: &str) -> Option<u64> {
    let at: jiff::Timestamp = at.parse().ok()?;
    let secs = jiff::Timestamp::now().as_second() - at.as_second();
    u64::try_from(secs).ok()
}
