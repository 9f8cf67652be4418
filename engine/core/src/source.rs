//! External data sources as a plan carries them: a workflow's `sources:`
//! entries, compiled. Each source becomes a step of the plan (named
//! [`SourceSpec::step_name`]) with one task per instance (one, or one per
//! cycle point when its URL names the cycle), run by the plan's fetch
//! executor ([`BackendConfig::Fetch`](crate::BackendConfig::Fetch)) on the
//! submitting host. The task's command is its URL with every `${{ }}`
//! substituted (values percent-encoded); the task has one output, the
//! fetched file or directory, which consumers receive like any sealed
//! artefact. Data only: the sources crate fetches.

use serde::Serialize;
use std::fmt;

/// How a source's URL is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceScheme {
    /// `https://…` (or `http://…`, with a warning): one file.
    Http,
    /// `s3://bucket/key` (a file) or `s3://bucket/prefix/` (a directory).
    S3,
    /// `stac+https://…`: a STAC API search or a static catalog; the
    /// matching items' assets, in a directory.
    Stac,
    /// `gbif:download/KEY`, `gbif:doi/…` or `gbif:occurrence?…`: a GBIF
    /// occurrence download (a Darwin Core Archive).
    Gbif,
}

impl SourceScheme {
    /// The spelling in messages (`https`, `s3`, `stac`, `gbif`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "https",
            Self::S3 => "s3",
            Self::Stac => "stac",
            Self::Gbif => "gbif",
        }
    }
}

impl fmt::Display for SourceScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a source's content must be (`format:`). The fetch checks it and
/// refuses content that is not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Anything (the default).
    #[default]
    Any,
    /// A Darwin Core Archive (zip with `meta.xml` and its core file),
    /// unpacked into a directory.
    Dwca,
    /// Comma- or tab-separated text with a header line.
    Csv,
    /// JSON.
    Json,
    /// NetCDF (classic or HDF5-based).
    Netcdf,
    /// A Zarr store (a directory).
    Zarr,
}

impl SourceFormat {
    /// The spelling used in workflow files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Dwca => "dwca",
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Netcdf => "netcdf",
            Self::Zarr => "zarr",
        }
    }

    /// Every format, for messages and the schema.
    pub const ALL: [Self; 6] = [
        Self::Any,
        Self::Dwca,
        Self::Csv,
        Self::Json,
        Self::Netcdf,
        Self::Zarr,
    ];
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data trigger: the source's tasks wait for it to be published (and,
/// with `refresh`, to change) instead of failing when it is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WaitSpec {
    /// Seconds between two checks.
    pub interval_seconds: u64,
    /// Give up after this many seconds (`None`: wait for ever).
    pub timeout_seconds: Option<u64>,
}

/// Scheme options of a source; the compiler refuses an option its scheme
/// does not use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceOptions {
    /// S3: the endpoint (DEDL, LUMI-O, Ceph); GBIF: the API base URL
    /// (default `https://api.gbif.org/v1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3: the region (default `us-east-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// S3: a profile of `~/.aws/credentials` (default: the environment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// HTTP, S3, STAC, GBIF: refuse content larger than this many bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// STAC: the asset keys fetched of each item (empty: all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<String>,
    /// STAC: the most items fetched (default 1,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u32>,
    /// GBIF query form: how long to wait for GBIF to prepare the download
    /// (default 6 hours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepare_timeout_seconds: Option<u64>,
}

/// A `sources:` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSpec {
    /// Its name (`sources.<name>`).
    pub name: String,
    /// The URL as written (its instances' URLs are their tasks' commands).
    pub url: String,
    /// How it is fetched.
    pub scheme: SourceScheme,
    /// Pinned content: SHA-256, lowercase hex, of the file (for a
    /// directory, of its tree as the sources crate digests it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Re-check the upstream after this many seconds (`None`: `never`,
    /// fetched once and reused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_seconds: Option<u64>,
    /// What the content must be.
    pub format: SourceFormat,
    /// Whether consumers receive a directory (an S3 prefix, a STAC
    /// search, a Darwin Core Archive, a Zarr store) rather than a file.
    pub directory: bool,
    /// The path of the source step's one output, whose extension a
    /// consumer's input keeps (`inputs/<input><ext>`, see
    /// [`crate::input_paths`]): for a file, the URL's last path segment when
    /// it is literal and a plain file name, else the source's name with
    /// that segment's literal extension; for a directory, the source's name.
    pub file_name: String,
    /// Scheme options.
    pub options: SourceOptions,
    /// Set when a step `wait_for`s it (see [`WaitSpec`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSpec>,
}

impl SourceSpec {
    /// A source of `scheme` at `url` named `name`, with nothing pinned,
    /// `refresh: never`, any format, no options and no wait; consumers see
    /// it under its name. For programs and tests that build plans without
    /// the compiler.
    pub fn new(name: &str, url: &str, scheme: SourceScheme, directory: bool) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            scheme,
            sha256: None,
            refresh_seconds: None,
            format: SourceFormat::Any,
            directory,
            file_name: name.to_owned(),
            options: SourceOptions::default(),
            wait: None,
        }
    }

    /// The plan step of a source named `name`: `sources.<name>`, which no
    /// workflow step can be called (a step name has no `.`).
    pub fn step_name_of(name: &str) -> String {
        format!("sources.{name}")
    }

    /// This source's plan step name (see [`SourceSpec::step_name_of`]).
    pub fn step_name(&self) -> String {
        Self::step_name_of(&self.name)
    }

    /// The name of the source step's one output: the source's own name.
    pub fn output_name(&self) -> &str {
        &self.name
    }
}

/// Settings of the fetch executor: the sources it fetches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FetchConfig {
    /// Every source of the workflow, in declaration order.
    pub sources: Vec<SourceSpec>,
}

impl FetchConfig {
    /// The source a job of step `step` fetches.
    pub fn source_of_step(&self, step: &str) -> Option<&SourceSpec> {
        let name = step.strip_prefix("sources.")?;
        self.sources.iter().find(|s| s.name == name)
    }
}

/// The file, beside a source task's output in its working directory, in
/// which the fetch executor records where the content came from
/// ([`SourceRecord`]); the provenance crate reads it.
pub const SOURCE_RECORD_FILE: &str = "source.json";

/// Where a source instance's content came from: written by the fetch
/// executor as [`SOURCE_RECORD_FILE`], read into the provenance crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceRecord {
    /// Version of this record's format ([`SourceRecord::FORMAT`]).
    pub format: u32,
    /// The instance's URL (the task's command), credentials scrubbed.
    pub url: String,
    /// Where the bytes came from in the end (after redirects, a GBIF
    /// download's archive link), credentials scrubbed.
    pub content_url: String,
    /// SHA-256 of the content (a directory: its tree digest).
    pub sha256: String,
    /// Bytes (all files, for a directory).
    pub size: u64,
    /// When the content was retrieved from the upstream, RFC 3339.
    pub retrieved_at: String,
    /// Whether it is a directory.
    pub directory: bool,
    /// How to cite it (a GBIF download's DOI), if the upstream says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation: Option<String>,
}

impl SourceRecord {
    /// The current record format.
    pub const FORMAT: u32 = 1;
}
