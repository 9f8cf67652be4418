//! Where artefacts live: the store address `s3://bucket/prefix` ([`Location`]),
//! the names of an output ([`ArtefactName`]) and the key layout under the
//! prefix (`blobs/sha256/<hex>`, `manifests/<run>/<task>/<output>.json`).
//! Pure: parsing and key building, no I/O.

use std::fmt;

use crate::digest::Digest;
use crate::error::StoreError;

/// The longest prefix accepted, in bytes (S3 keys may be 1024 bytes long; the
/// layout adds at most about 460 to it).
const MAX_PREFIX: usize = 512;
/// The longest run, task or output name accepted.
const MAX_NAME: usize = 128;

/// A bucket and a key prefix: `s3://bucket` or `s3://bucket/some/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    bucket: String,
    /// Without leading or trailing `/`; may be empty.
    prefix: String,
}

impl Location {
    /// Parses `s3://bucket[/prefix][/]`.
    ///
    /// The bucket follows S3's rules (3-63 lowercase letters, digits, `-` and
    /// `.`, starting and ending with a letter or digit, no `..`). The prefix is
    /// `/`-separated segments of ASCII letters, digits and `-_.+=@,`, none
    /// empty, `.` or `..`; a trailing `/` is dropped.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let bad = |reason: String| StoreError::Address {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("expected s3://bucket[/prefix]".into()))?;
        if rest.contains(['?', '#']) {
            return Err(bad("a query or fragment is not allowed".into()));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(bad)?;
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        check_prefix(prefix).map_err(bad)?;
        Ok(Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The location of a workflow's `store:` setting, checked by the same rules.
    pub fn from_core(loc: &twinflow_core::S3Location) -> Result<Location, StoreError> {
        let url = if loc.prefix.is_empty() {
            format!("s3://{}", loc.bucket)
        } else {
            format!("s3://{}/{}", loc.bucket, loc.prefix)
        };
        Location::parse(&url)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing `/` (empty for the bucket's root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/<rest>`, or `rest` for an empty prefix.
    fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_owned()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }

    /// The key of the blob with this content: `<prefix>/blobs/sha256/<hex>`.
    pub fn blob_key(&self, digest: &Digest) -> String {
        self.key(&format!("blobs/sha256/{}", digest.hex()))
    }

    /// The key under which every blob lives: `<prefix>/blobs/sha256/`.
    pub fn blobs_dir(&self) -> String {
        self.key("blobs/sha256/")
    }

    /// The key of an output's manifest: `<prefix>/manifests/<run>/<task>/<output>.json`.
    pub fn manifest_key(&self, name: &ArtefactName) -> String {
        self.key(&format!(
            "manifests/{}/{}/{}.json",
            name.run, name.task, name.output
        ))
    }

    /// `s3://bucket/key`, for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

fn check_bucket(bucket: &str) -> Result<(), String> {
    let chars_ok = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if bucket.is_empty() {
        Err("the bucket name is empty".into())
    } else if !(3..=63).contains(&bucket.len())
        || !chars_ok
        || !ends_ok(bucket.chars().next())
        || !ends_ok(bucket.chars().last())
        || bucket.contains("..")
    {
        Err(format!(
            "`{bucket}` is not a valid bucket name (3-63 lowercase letters, digits, `-` and `.`, \
             starting and ending with a letter or digit)"
        ))
    } else {
        Ok(())
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.len() > MAX_PREFIX {
        return Err(format!("the prefix is longer than {MAX_PREFIX} bytes"));
    }
    for seg in prefix.split('/') {
        if seg.is_empty() {
            return Err("the prefix has an empty segment (`//` or a leading `/`)".into());
        }
        if seg == "." || seg == ".." {
            return Err(format!("the prefix may not contain a `{seg}` segment"));
        }
        if let Some(c) = seg.chars().find(|c| !prefix_char(*c)) {
            return Err(format!(
                "the prefix may not contain {c:?} (allowed: ASCII letters, digits and `-_.+=@,`)"
            ));
        }
    }
    Ok(())
}

fn prefix_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.+=@,".contains(c)
}

/// Which output an artefact is: the run, the task and the output's name. Each
/// part is 1-128 ASCII letters, digits, `-`, `_` and `.`, not starting with `.`,
/// so that it is one key segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtefactName {
    run: String,
    task: String,
    output: String,
}

impl ArtefactName {
    /// Checks the three parts.
    pub fn new(run: &str, task: &str, output: &str) -> Result<ArtefactName, StoreError> {
        check_name("run", run)?;
        check_name("task", task)?;
        check_name("output", output)?;
        Ok(ArtefactName {
            run: run.to_owned(),
            task: task.to_owned(),
            output: output.to_owned(),
        })
    }

    /// The run.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The task.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The output.
    pub fn output(&self) -> &str {
        &self.output
    }
}

impl fmt::Display for ArtefactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.run, self.task, self.output)
    }
}

pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::Name {
        what,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if value.len() > MAX_NAME {
        return Err(bad("it is longer than 128 bytes"));
    }
    if value.starts_with('.') {
        return Err(bad("it may not start with `.`"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(bad("allowed are ASCII letters, digits, `-`, `_` and `.`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        Location::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn parses_bucket_and_prefix() {
        let l = Location::parse("s3://twinflow-test/runs/site-a").unwrap();
        assert_eq!((l.bucket(), l.prefix()), ("twinflow-test", "runs/site-a"));
        assert_eq!(l.to_string(), "s3://twinflow-test/runs/site-a");
        let l = Location::parse("s3://my.bucket-1/p/").unwrap();
        assert_eq!((l.bucket(), l.prefix()), ("my.bucket-1", "p"));
        let l = Location::parse("s3://abc").unwrap();
        assert_eq!((l.bucket(), l.prefix()), ("abc", ""));
        assert_eq!(l.to_string(), "s3://abc");
        let l = Location::parse("s3://abc/").unwrap();
        assert_eq!(l.prefix(), "");
    }

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!(
            err("http://bucket/x"),
            "invalid store address `http://bucket/x`: expected s3://bucket[/prefix]"
        );
        assert!(
            err("s3://").contains("the bucket name is empty"),
            "{}",
            err("s3://")
        );
        assert!(err("s3:///prefix").contains("the bucket name is empty"));
        for b in [
            "ab",
            "Upper",
            "under_score",
            "-dash",
            "dot.",
            "a..b",
            &"x".repeat(64),
        ] {
            assert!(
                err(&format!("s3://{b}/p")).contains("is not a valid bucket name"),
                "{b}: {}",
                err(&format!("s3://{b}/p"))
            );
        }
        assert!(err("s3://bucket/a//b").contains("empty segment"));
        assert!(err("s3://bucket//a").contains("empty segment"));
        assert!(err("s3://bucket/a/../b").contains("`..` segment"));
        assert!(err("s3://bucket/./b").contains("`.` segment"));
        assert!(err("s3://bucket/a b").contains("may not contain ' '"));
        assert!(err("s3://bucket/a\\b").contains("may not contain '\\\\'"));
        assert!(err("s3://bucket/p?x=1").contains("query or fragment"));
        assert!(err(&format!("s3://bucket/{}", "a".repeat(600))).contains("longer than 512"));
    }

    #[test]
    fn from_core_location() {
        let core = twinflow_core::S3Location {
            bucket: "data".into(),
            prefix: "forest/bird".into(),
        };
        let l = Location::from_core(&core).unwrap();
        assert_eq!(l.to_string(), "s3://data/forest/bird");
        let core = twinflow_core::S3Location {
            bucket: "data".into(),
            prefix: "x y".into(),
        };
        assert!(Location::from_core(&core).is_err());
    }

    #[test]
    fn key_layout() {
        let d = Digest::of(b"hello\n");
        let hex = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert_eq!(d.hex(), hex);
        let l = Location::parse("s3://b-1/runs/x").unwrap();
        assert_eq!(l.blob_key(&d), format!("runs/x/blobs/sha256/{hex}"));
        assert_eq!(l.blobs_dir(), "runs/x/blobs/sha256/");
        let n = ArtefactName::new("run-7", "forest.3", "cover_map").unwrap();
        assert_eq!(
            l.manifest_key(&n),
            "runs/x/manifests/run-7/forest.3/cover_map.json"
        );
        assert_eq!(l.url_of("k/e/y"), "s3://b-1/k/e/y");
        let root = Location::parse("s3://b-1").unwrap();
        assert_eq!(root.blob_key(&d), format!("blobs/sha256/{hex}"));
        assert_eq!(
            root.manifest_key(&n),
            "manifests/run-7/forest.3/cover_map.json"
        );
    }

    #[test]
    fn artefact_names() {
        assert_eq!(
            ArtefactName::new("r", "t", "o").unwrap().to_string(),
            "r/t/o"
        );
        let e = ArtefactName::new("r", "a/b", "o").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid artefact task `a/b`: allowed are ASCII letters, digits, `-`, `_` and `.`"
        );
        assert_eq!(
            ArtefactName::new("", "t", "o").unwrap_err().to_string(),
            "invalid artefact run ``: it is empty"
        );
        assert!(
            ArtefactName::new("r", "..", "o")
                .unwrap_err()
                .to_string()
                .contains("may not start with `.`")
        );
        assert!(
            ArtefactName::new("r", "t", &"o".repeat(129))
                .unwrap_err()
                .to_string()
                .contains("longer than 128")
        );
    }
}
