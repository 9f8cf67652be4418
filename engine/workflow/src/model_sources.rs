//! `sources:` entries and a step's `wait_for:` as written. A source is a
//! strict mapping (unknown keys get a "did you mean"); a `wait_for` entry is
//! `sources.NAME` or a mapping `{source, interval, timeout}`, read leniently
//! (unknown keys kept with their spans) so that lowering reports each
//! mistake at its place.

use super::ScalarString;
use crate::span::Spanned;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

/// What a source's content must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FormatDoc {
    /// Anything (the default, except for `gbif:`).
    Any,
    /// A Darwin Core Archive, unpacked into a directory (the default for `gbif:`).
    Dwca,
    /// Comma- or tab-separated text with a header line.
    Csv,
    /// JSON.
    Json,
    /// NetCDF.
    Netcdf,
    /// A Zarr store (a directory source only).
    Zarr,
}

/// Scheme options and the schemes that use them (`https` stands for
/// `https://` and `http://`), for the checks and the schema.
pub(crate) const OPTION_SCHEMES: [(&str, &[&str]); 7] = [
    ("endpoint", &["s3", "gbif"]),
    ("region", &["s3"]),
    ("profile", &["s3"]),
    ("max_size", &["https", "s3", "stac", "gbif"]),
    ("assets", &["stac"]),
    ("max_items", &["stac"]),
    ("prepare_timeout", &["gbif"]),
];

/// URL prefixes of each scheme, for the schema's per-scheme rules.
const SCHEME_PATTERNS: [(&str, &str); 4] = [
    ("https", "^https?://"),
    ("s3", "^s3://"),
    ("stac", "^stac\\+(https?://|file:)"),
    ("gbif", "^gbif:"),
];

/// Adds to the source schema what the compiler checks per scheme: options
/// of other schemes are refused.
fn source_scheme_rules(schema: &mut Schema) {
    let rules: Vec<serde_json::Value> = SCHEME_PATTERNS
        .iter()
        .map(|(scheme, pattern)| {
            let forbidden: serde_json::Map<String, serde_json::Value> = OPTION_SCHEMES
                .iter()
                .filter(|(_, owners)| !owners.contains(scheme))
                .map(|(key, _)| ((*key).to_owned(), serde_json::Value::Bool(false)))
                .collect();
            serde_json::json!({
                "if": { "properties": { "url": { "pattern": pattern } }, "required": ["url"] },
                "then": { "properties": forbidden }
            })
        })
        .collect();
    schema.insert("allOf".to_owned(), serde_json::Value::Array(rules));
}

/// An external input: fetched once on the submitting host, verified, cached
/// and handed to the steps that need it like a step's output.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = source_scheme_rules)]
pub(crate) struct SourceDoc {
    /// `https://…` (or `http://…`), `s3://bucket/key`, `s3://bucket/prefix/`
    /// (a directory), `stac+https://…` (a STAC search or static catalog),
    /// `stac+file:catalog.json` (a static catalog here, relative to the
    /// workflow's directory or absolute),
    /// `gbif:download/KEY`, `gbif:doi/10.15468/dl.…` or
    /// `gbif:occurrence?…`. May use `${{ params.X }}` and `${{ cycle.* }}`
    /// (one instance per cycle point); values are percent-encoded.
    #[schemars(pattern(r"^(https?://|s3://|stac\+(https?://|file:)|gbif:)"))]
    pub(crate) url: Spanned<String>,
    /// The content's SHA-256 (64 hex digits): a fetch with other content fails.
    #[serde(default)]
    #[schemars(pattern(r"^[0-9A-Fa-f]{64}$"))]
    pub(crate) sha256: Option<Spanned<String>>,
    /// `never` (the default: fetched once and reused) or a duration (`6h`,
    /// `30d`) after which the upstream is checked for a change.
    #[serde(default)]
    pub(crate) refresh: Option<Spanned<ScalarString>>,
    /// What the content must be (default `any`; `dwca` for `gbif:`).
    #[serde(default)]
    pub(crate) format: Option<Spanned<FormatDoc>>,
    /// s3: the endpoint URL (DEDL, LUMI-O, Ceph); gbif: the API base URL.
    #[serde(default)]
    pub(crate) endpoint: Option<Spanned<String>>,
    /// s3: the region (default `us-east-1`).
    #[serde(default)]
    pub(crate) region: Option<Spanned<String>>,
    /// s3: a profile of `~/.aws/credentials` (default: the environment).
    #[serde(default)]
    pub(crate) profile: Option<Spanned<String>>,
    /// https, s3, stac, gbif: refuse content larger than this (`2GiB`, `500MB`).
    #[serde(default)]
    pub(crate) max_size: Option<Spanned<ScalarString>>,
    /// stac: the asset keys fetched of each item (default: all).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub(crate) assets: Option<Spanned<Vec<Spanned<String>>>>,
    /// stac: the most items fetched (default 1,000).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub(crate) max_items: Option<Spanned<u32>>,
    /// gbif query form: how long GBIF may take to prepare the download
    /// (default `6h`).
    #[serde(default)]
    pub(crate) prepare_timeout: Option<Spanned<ScalarString>>,
}

/// A `wait_for:` entry as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WaitForDoc {
    /// `sources.NAME`.
    Source(String),
    /// `{source: sources.NAME, interval: 10m, timeout: 2d}`.
    Full(WaitForFull),
}

/// A `wait_for:` entry as a mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct WaitForFull {
    pub(crate) source: Option<Spanned<String>>,
    pub(crate) interval: Option<Spanned<ScalarString>>,
    pub(crate) timeout: Option<Spanned<ScalarString>>,
    /// Keys other than `source`, `interval` and `timeout`.
    pub(crate) unknown: Vec<Spanned<String>>,
}

/// The keys of [`WaitForFull`].
pub(crate) const WAIT_FOR_KEYS: [&str; 3] = ["source", "interval", "timeout"];

impl<'de> Deserialize<'de> for WaitForDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct WaitForVisitor;

        impl<'de> Visitor<'de> for WaitForVisitor {
            type Value = WaitForDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`sources.NAME` or a mapping `{ source, interval, timeout }`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<WaitForDoc, E> {
                Ok(WaitForDoc::Source(v.to_owned()))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<WaitForDoc, A::Error> {
                let mut full = WaitForFull::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "source" => full.source = Some(map.next_value()?),
                        "interval" => full.interval = Some(map.next_value()?),
                        "timeout" => full.timeout = Some(map.next_value()?),
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            full.unknown.push(key);
                        }
                    }
                }
                Ok(WaitForDoc::Full(full))
            }
        }

        d.deserialize_any(WaitForVisitor)
    }
}

impl JsonSchema for WaitForDoc {
    fn schema_name() -> Cow<'static, str> {
        "WaitFor".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A source whose publication the step's tasks wait for: `sources.NAME`, or `{ source, interval, timeout }` (default: check every minute, for ever).",
            "anyOf": [
                { "type": "string", "pattern": "^sources\\.[A-Za-z_][A-Za-z0-9_-]*$" },
                {
                    "type": "object",
                    "properties": {
                        "source": { "type": "string", "pattern": "^sources\\.[A-Za-z_][A-Za-z0-9_-]*$", "description": "The source, `sources.NAME`." },
                        "interval": { "type": ["string", "number"], "description": "Time between two checks (`10m`; default `1m`)." },
                        "timeout": { "type": ["string", "number"], "description": "Give up after this long (`2d`; default: never)." }
                    },
                    "required": ["source"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
