//! GBIF's occurrence download API as documented
//! (<https://techdocs.gbif.org/en/data-use/api-downloads>): the three URL
//! forms of a `gbif:` source, a download's status document, the request
//! body (a predicate built from query parameters) and the citation.

use serde::Deserialize;
use serde_json::{Value, json};

/// GBIF's API when `endpoint` is not set.
pub(crate) const DEFAULT_ENDPOINT: &str = "https://api.gbif.org/v1";

/// What a `gbif:` URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// `gbif:download/KEY`.
    Download(String),
    /// `gbif:doi/10.15468/dl.xxxx`.
    Doi(String),
    /// `gbif:occurrence?k=v&…`: the query's parameters, decoded.
    Query(Vec<(String, String)>),
}

/// Parses a `gbif:` URL.
pub(crate) fn parse(url: &str) -> Result<Form, String> {
    let Some(rest) = url.strip_prefix("gbif:") else {
        return Err("not a gbif URL".into());
    };
    if let Some(key) = rest.strip_prefix("download/") {
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        return if ok {
            Ok(Form::Download(key.to_owned()))
        } else {
            Err(format!("bad GBIF download key `{key}`"))
        };
    }
    if let Some(doi) = rest.strip_prefix("doi/") {
        let doi = doi
            .trim_start_matches("https://doi.org/")
            .trim_start_matches("doi:");
        let ok = doi.starts_with("10.")
            && doi.contains('/')
            && !doi.contains(['?', '#', ' '])
            && !doi.split('/').any(|s| s.is_empty() || s == "..");
        return if ok {
            Ok(Form::Doi(doi.to_owned()))
        } else {
            Err(format!(
                "bad DOI `{doi}` (write gbif:doi/10.15468/dl.xxxxxx)"
            ))
        };
    }
    if let Some(query) = rest.strip_prefix("occurrence") {
        let query = query.strip_prefix('?').unwrap_or(query);
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if params.is_empty() {
            return Err(
                "a gbif:occurrence query needs at least one filter (e.g. ?taxonKey=…&country=FI)"
                    .into(),
            );
        }
        if let Some((k, _)) = params.iter().find(|(k, v)| k.is_empty() || v.is_empty()) {
            return Err(format!("gbif:occurrence query: empty parameter `{k}`"));
        }
        return Ok(Form::Query(params));
    }
    Err(
        "unknown gbif URL form: write gbif:download/KEY, gbif:doi/10.15468/dl.… \
         or gbif:occurrence?taxonKey=…"
            .into(),
    )
}

/// `taxonKey` -> `TAXON_KEY`: a search parameter's name as a download
/// predicate key.
pub(crate) fn predicate_key(param: &str) -> String {
    let mut out = String::new();
    for (i, c) in param.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The request body: `and` of one `equals` per parameter (`in` when a
/// parameter repeats), in DWCA format.
pub(crate) fn request_body(
    params: &[(String, String)],
    creator: &str,
    email: Option<&str>,
) -> Value {
    let mut keys: Vec<&str> = Vec::new();
    for (k, _) in params {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    let predicates: Vec<Value> = keys
        .iter()
        .map(|k| {
            let values: Vec<&str> = params
                .iter()
                .filter(|(p, _)| p == k)
                .map(|(_, v)| v.as_str())
                .collect();
            match values.as_slice() {
                [one] => json!({"type": "equals", "key": predicate_key(k), "value": one}),
                many => json!({"type": "in", "key": predicate_key(k), "values": many}),
            }
        })
        .collect();
    json!({
        "creator": creator,
        "notificationAddresses": email.map(|e| vec![e]).unwrap_or_default(),
        "sendNotification": email.is_some(),
        "format": "DWCA",
        "predicate": {"type": "and", "predicates": predicates},
    })
}

/// A download's status document (`GET /occurrence/download/KEY`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    pub(crate) key: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) download_link: Option<String>,
    #[serde(default)]
    pub(crate) doi: Option<String>,
    #[serde(default)]
    pub(crate) total_records: Option<u64>,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) created: Option<String>,
}

/// Where a status stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Ready,
    Pending,
    Dead,
}

impl Status {
    pub(crate) fn stage(&self) -> Stage {
        match self.status.as_str() {
            "SUCCEEDED" => Stage::Ready,
            "FAILED" | "KILLED" | "CANCELLED" | "FILE_ERASED" => Stage::Dead,
            _ => Stage::Pending,
        }
    }

    /// `GBIF.org (16 January 2025) GBIF Occurrence Download
    /// https://doi.org/10.15468/dl.xxxx`, GBIF's recommended citation.
    pub(crate) fn citation(&self) -> Option<String> {
        let doi = self.doi.as_deref()?.trim_start_matches("doi:");
        let date = self.created.as_deref().and_then(long_date);
        Some(match date {
            Some(d) => format!("GBIF.org ({d}) GBIF Occurrence Download https://doi.org/{doi}"),
            None => format!("GBIF.org GBIF Occurrence Download https://doi.org/{doi}"),
        })
    }
}

/// `2025-01-16T…` -> `16 January 2025`.
fn long_date(ts: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (y, rest) = ts.get(..10)?.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    let m: usize = m.parse().ok()?;
    let d: u32 = d.parse().ok()?;
    let month = MONTHS.get(m.checked_sub(1)?)?;
    y.parse::<u32>().ok()?;
    Some(format!("{d} {month} {y}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        assert_eq!(
            parse("gbif:download/0001234-250101000000001"),
            Ok(Form::Download("0001234-250101000000001".into()))
        );
        assert_eq!(
            parse("gbif:doi/10.15468/dl.abc123"),
            Ok(Form::Doi("10.15468/dl.abc123".into()))
        );
        assert_eq!(
            parse("gbif:occurrence?taxonKey=5&country=FI&country=SE"),
            Ok(Form::Query(vec![
                ("taxonKey".into(), "5".into()),
                ("country".into(), "FI".into()),
                ("country".into(), "SE".into()),
            ]))
        );
        for bad in [
            "gbif:download/../x",
            "gbif:doi/x",
            "gbif:occurrence",
            "gbif:foo",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_body_as_documented() {
        let params = [
            ("taxonKey".to_owned(), "5".to_owned()),
            ("country".to_owned(), "FI".to_owned()),
            ("country".to_owned(), "SE".to_owned()),
        ];
        let b = request_body(&params, "me", Some("me@example.org"));
        assert_eq!(b["format"], "DWCA");
        assert_eq!(b["sendNotification"], true);
        assert_eq!(b["predicate"]["type"], "and");
        assert_eq!(b["predicate"]["predicates"][0]["key"], "TAXON_KEY");
        assert_eq!(b["predicate"]["predicates"][0]["type"], "equals");
        assert_eq!(b["predicate"]["predicates"][1]["type"], "in");
        assert_eq!(b["predicate"]["predicates"][1]["values"][1], "SE");
        assert_eq!(predicate_key("basisOfRecord"), "BASIS_OF_RECORD");
    }

    #[test]
    fn citation() {
        let s = Status {
            key: "k".into(),
            status: "SUCCEEDED".into(),
            download_link: None,
            doi: Some("10.15468/dl.abc123".into()),
            total_records: None,
            size: None,
            created: Some("2025-01-16T10:00:00.000+0000".into()),
        };
        assert_eq!(
            s.citation().as_deref(),
            Some(
                "GBIF.org (16 January 2025) GBIF Occurrence Download https://doi.org/10.15468/dl.abc123"
            )
        );
    }
}
