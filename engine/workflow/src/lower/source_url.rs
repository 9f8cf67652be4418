//! A source's URL: its scheme and shape, checked at compile time on the URL
//! with every `${{ params.X }}` substituted and `${{ cycle.* }}` taken at the
//! first cycle point (substituted values are percent-encoded: everything
//! but `A-Za-z0-9-._~`), the name consumers see it under, and the rendering
//! of an instance's URL (its task's command). Credentials never appear in a
//! URL: they come from the environment.

use twinflow_core::{CyclePoint, ParamValue, Piece, Ref, SourceScheme, Template};

/// A URL problem: the diagnostic code, the message and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

fn bad(message: impl Into<String>, help: impl Into<String>) -> UrlError {
    UrlError {
        code: "twinflow::bad-url",
        message: message.into(),
        help: Some(help.into()),
    }
}

/// The three forms of a `gbif:` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GbifForm {
    Download,
    Doi,
    Query,
}

/// What the URL says about its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlShape {
    pub(crate) scheme: SourceScheme,
    /// `s3://bucket/prefix/` (a directory of objects).
    pub(crate) s3_prefix: bool,
    pub(crate) gbif: Option<GbifForm>,
}

/// The URL prefixes twinflow fetches, for messages.
pub(crate) const SCHEMES: &str =
    "`https://`, `http://`, `s3://`, `stac+https://`, `stac+http://`, `stac+file:` and `gbif:`";

/// The prefix of a static STAC catalog on this machine's file system.
pub(crate) const STAC_FILE: &str = "stac+file:";

/// The scheme, from the URL as written (which must spell it out).
pub(crate) fn scheme_of(written: &str) -> Result<(SourceScheme, usize), UrlError> {
    for (prefix, scheme) in [
        ("https://", SourceScheme::Http),
        ("http://", SourceScheme::Http),
        ("s3://", SourceScheme::S3),
        ("stac+https://", SourceScheme::Stac),
        ("stac+http://", SourceScheme::Stac),
        (STAC_FILE, SourceScheme::Stac),
        ("gbif:", SourceScheme::Gbif),
    ] {
        if written.len() >= prefix.len()
            && written.is_char_boundary(prefix.len())
            && written[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            if !written.starts_with(prefix) {
                return Err(UrlError {
                    code: "twinflow::unknown-scheme",
                    message: format!(
                        "the URL's scheme `{}` is not written in lower case",
                        &written[..prefix.len()]
                    ),
                    help: Some(format!("write `{prefix}`")),
                });
            }
            return Ok((scheme, prefix.len()));
        }
    }
    let shown = match written.split_once(':') {
        Some((s, _)) if !s.is_empty() && !s.contains("${{") && s.len() <= 32 => {
            format!("unknown URL scheme `{s}:`")
        }
        _ if written.starts_with("${{") => {
            "the URL's scheme comes from an expression; it must be written out".to_owned()
        }
        _ => format!("`{written}` is not a URL twinflow can fetch"),
    };
    Err(UrlError {
        code: "twinflow::unknown-scheme",
        message: shown,
        help: Some(format!(
            "a source's URL starts with one of {SCHEMES}; for a file of the workflow, read it through `${{{{ workflow.dir }}}}` in `run`"
        )),
    })
}

/// Checks the URL `probe` (substituted) of a source whose scheme is
/// `scheme` (its prefix `prefix_len` bytes long).
pub(crate) fn check(
    probe: &str,
    scheme: SourceScheme,
    prefix_len: usize,
) -> Result<UrlShape, UrlError> {
    let rest = probe.get(prefix_len..).unwrap_or_default();
    let mut shape = UrlShape {
        scheme,
        s3_prefix: false,
        gbif: None,
    };
    match scheme {
        SourceScheme::Stac if probe.starts_with(STAC_FILE) => local_catalog(rest)?,
        SourceScheme::Http | SourceScheme::Stac => http(rest)?,
        SourceScheme::S3 => shape.s3_prefix = s3(rest)?,
        SourceScheme::Gbif => shape.gbif = Some(gbif(rest)?),
    }
    Ok(shape)
}

/// Characters a URL may not hold unencoded.
fn check_chars(text: &str, what: &str) -> Result<(), UrlError> {
    if let Some(c) = text.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
    }) {
        return Err(bad(
            format!(
                "the {what} holds `{}`, which a URL cannot hold",
                c.escape_default()
            ),
            "percent-encode it (a space is `%20`); values substituted from `${{ }}` are encoded for you",
        ));
    }
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(bad(
                format!("the {what} has a `%` that starts no percent-escape"),
                "write `%25` for a literal `%`",
            ));
        }
    }
    Ok(())
}

fn credentials() -> UrlError {
    UrlError {
        code: "twinflow::url-credentials",
        message: "the URL holds credentials (`user:password@`)".into(),
        help: Some(
            "credentials never go into a workflow: they come from the environment (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or `profile:` for s3, `GBIF_USER`/`GBIF_PWD` for gbif; https sources are fetched without credentials)".into(),
        ),
    }
}

/// The path of a `stac+file:` URL: a static catalog's, collection's or
/// item's JSON file, absolute (`stac+file:///data/catalog.json`) or
/// relative to the workflow's directory (`stac+file:forcing/catalog.json`).
fn local_catalog(rest: &str) -> Result<(), UrlError> {
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if rest.starts_with("//") && !path.starts_with('/') {
        return Err(bad(
            "a `stac+file:` URL names no host",
            "write `stac+file:///absolute/catalog.json` or `stac+file:relative/catalog.json`",
        ));
    }
    if path.contains(['?', '#']) || !path.ends_with(".json") {
        return Err(bad(
            "a `stac+file:` URL names the JSON file of a static catalog, collection or item",
            "write e.g. `stac+file:forcing/catalog.json`; a search needs a STAC API (`stac+https://`)",
        ));
    }
    check_chars(path, "path")
}

/// The URL's text with a relative `stac+file:` path made absolute against
/// `dir` (percent-encoded), so that a task's URL names the same file
/// wherever the run goes on.
pub(crate) fn anchored(url: &str, dir: &std::path::Path) -> Option<String> {
    let rest = url.strip_prefix(STAC_FILE)?;
    if rest.starts_with('/') {
        return None;
    }
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut out = format!("{STAC_FILE}//");
    for segment in dir
        .to_string_lossy()
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
    {
        out.push('/');
        percent_encode(segment, &mut out);
    }
    out.push('/');
    out.push_str(rest);
    Some(out)
}

/// `host[:port]/path?query#fragment` of an http(s) URL.
fn http(rest: &str) -> Result<(), UrlError> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(credentials());
    }
    host_port(authority)?;
    check_chars(tail, "URL")
}

fn host_port(authority: &str) -> Result<(), UrlError> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(bad(
                "the URL's IPv6 host has no closing `]`",
                "write an IPv6 host as `[::1]`",
            ));
        };
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(bad(
                format!("`[{addr}]` is not an IPv6 address"),
                "write an IPv6 host as `[::1]`",
            ));
        }
        (addr, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad(
            "the URL has no host",
            "write the server after the scheme, as in `https://data.example.org/file.csv`",
        ));
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(bad(
            format!("`{host}` is not a host name"),
            "a host is a name like `data.example.org` or an address like `10.0.0.1` or `[::1]`",
        ));
    }
    if let Some(p) = port
        && !(p.parse::<u16>().is_ok_and(|n| n > 0) && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad(
            format!("`{p}` is not a port"),
            "a port is a number from 1 to 65535, as in `https://localhost:8443/`",
        ));
    }
    Ok(())
}

/// `bucket/key` or `bucket/prefix/`; true for a prefix.
fn s3(rest: &str) -> Result<bool, UrlError> {
    let Some((bucket, key)) = rest.split_once('/') else {
        if rest.contains('@') {
            return Err(credentials());
        }
        return Err(bad(
            format!("`s3://{rest}` names a bucket but no object"),
            format!(
                "write `s3://{rest}/KEY` for an object, or `s3://{rest}/` for the whole bucket as a directory"
            ),
        ));
    };
    if bucket.contains('@') {
        return Err(credentials());
    }
    if bucket.is_empty() {
        return Err(bad(
            "the s3 URL has an empty bucket name",
            "write `s3://BUCKET/KEY`",
        ));
    }
    if bucket.len() > 255
        || !bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(bad(
            format!("`{bucket}` is not a bucket name"),
            "bucket names hold letters, digits, `.`, `-` and `_`; the endpoint goes into `endpoint:`, not the URL",
        ));
    }
    if key.contains(['?', '#']) {
        return Err(bad(
            "an s3 URL has no query or fragment (`?`, `#`)",
            "scheme options such as `endpoint` and `region` are keys of the source",
        ));
    }
    check_chars(key, "object key")?;
    Ok(key.is_empty() || key.ends_with('/'))
}

/// `download/KEY`, `doi/10.X/Y` or `occurrence?QUERY`.
fn gbif(rest: &str) -> Result<GbifForm, UrlError> {
    let forms = "a GBIF source is `gbif:download/KEY` (e.g. `gbif:download/0001234-210914110416597`), `gbif:doi/10.15468/dl.abcdef` or `gbif:occurrence?taxonKey=…&country=FI`";
    check_chars(rest, "URL")?;
    if let Some(key) = rest.strip_prefix("download/") {
        let valid = key.split_once('-').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
        if !valid {
            return Err(bad(
                format!("`{key}` is not a GBIF download key"),
                "a download key is two numbers joined by `-`, like `0001234-210914110416597`",
            ));
        }
        return Ok(GbifForm::Download);
    }
    if let Some(doi) = rest.strip_prefix("doi/") {
        let valid = doi.split_once('/').is_some_and(|(prefix, suffix)| {
            prefix.strip_prefix("10.").is_some_and(|r| {
                !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit() || c == b'.')
            }) && !suffix.is_empty()
        });
        if !valid {
            return Err(bad(
                format!("`{doi}` is not a DOI"),
                "a GBIF download DOI looks like `10.15468/dl.abcdef`",
            ));
        }
        return Ok(GbifForm::Doi);
    }
    if let Some(query) = rest.strip_prefix("occurrence?") {
        let pairs: Vec<&str> = query.split('&').collect();
        if let Some(p) = pairs.iter().find(|p| {
            p.split_once('=')
                .is_none_or(|(k, v)| k.is_empty() || v.is_empty())
        }) {
            return Err(bad(
                format!("`{p}` is not a `name=value` filter of a GBIF occurrence query"),
                "write filters as in GBIF's occurrence search, e.g. `gbif:occurrence?taxonKey=2481433&country=FI`",
            ));
        }
        return Ok(GbifForm::Query);
    }
    Err(bad(format!("`gbif:{rest}` is not a GBIF download"), forms))
}

/// `value` with every byte but `A-Za-z0-9-._~` percent-encoded.
pub(crate) fn percent_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// An instance's URL: `template` with its parameters and the cycle point's
/// fields percent-encoded. A parameter in a URL is a scalar (the compiler
/// refuses lists).
pub(crate) fn render(
    template: &Template,
    params: &[(String, ParamValue)],
    point: Option<&CyclePoint>,
) -> String {
    let mut out = String::new();
    for piece in &template.pieces {
        match piece {
            Piece::Lit(s) => out.push_str(s),
            Piece::Ref(r) => {
                let value = match (*r, point) {
                    (Ref::Param(i), _) => params
                        .get(i as usize)
                        .and_then(|(_, v)| v.as_slice().first().cloned())
                        .unwrap_or_default(),
                    (Ref::CyclePoint, Some(p)) => p.label.clone(),
                    (Ref::CycleYear, Some(p)) => p.year.to_string(),
                    (Ref::CycleMonth, Some(p)) => p.month.to_string(),
                    (Ref::CycleDay, Some(p)) => p.day.to_string(),
                    _ => String::new(),
                };
                percent_encode(&value, &mut out);
            }
        }
    }
    out
}

/// The name consumers see a file source under: the last path segment of
/// the URL as written when it is literal and a safe file name, else the
/// source's name with the literal extension of that segment, if any.
pub(crate) fn file_name(name: &str, written: &str, prefix_len: usize) -> String {
    let rest = written.get(prefix_len..).unwrap_or_default();
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let segment = path.rsplit('/').next().unwrap_or_default();
    if !segment.contains("${{") && is_safe_file_name(segment) {
        return segment.to_owned();
    }
    // After the last expression, the extension starts at the first dot; in
    // a literal segment, at the first dot after its first character.
    let (tail, from) = match segment.rfind("}}") {
        Some(i) => (&segment[i + 2..], 0),
        None => (segment, segment.chars().next().map_or(0, char::len_utf8)),
    };
    let ext = tail[from..].find('.').map_or("", |i| &tail[from + i..]);
    let ext_ok = ext.len() <= 32
        && ext.len() > 1
        && ext
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ext_ok {
        format!("{name}{ext}")
    } else {
        name.to_owned()
    }
}

/// A name that is the same on every file system and in every shell: 1 to
/// 255 of `A-Za-z0-9._-`, not starting with `.` or `-`.
fn is_safe_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(['.', '-'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(url: &str) -> Result<UrlShape, UrlError> {
        let (scheme, n) = scheme_of(url)?;
        check(url, scheme, n)
    }

    #[test]
    fn schemes_and_shapes() {
        assert_eq!(
            shape("https://x.org/a.csv").unwrap().scheme,
            SourceScheme::Http
        );
        assert!(shape("s3://b/prefix/").unwrap().s3_prefix);
        assert!(!shape("s3://b/key.nc").unwrap().s3_prefix);
        assert!(shape("s3://b/").unwrap().s3_prefix);
        assert_eq!(
            shape("gbif:download/0001234-210914110416597").unwrap().gbif,
            Some(GbifForm::Download)
        );
        assert_eq!(
            shape("gbif:doi/10.15468/dl.abcdef").unwrap().gbif,
            Some(GbifForm::Doi)
        );
        assert_eq!(
            shape("gbif:occurrence?taxonKey=1&country=FI").unwrap().gbif,
            Some(GbifForm::Query)
        );
        assert_eq!(
            shape("stac+https://stac.x/search?collections=a")
                .unwrap()
                .scheme,
            SourceScheme::Stac
        );
        assert_eq!(
            shape("ftp://x/y").unwrap_err().code,
            "twinflow::unknown-scheme"
        );
        assert_eq!(
            shape("https://u:p@x/y").unwrap_err().code,
            "twinflow::url-credentials"
        );
        assert_eq!(
            shape("s3://k:s@b/y").unwrap_err().code,
            "twinflow::url-credentials"
        );
        for bad in [
            "https:///x",
            "https://x:99999/y",
            "https://x/a b",
            "https://x/%zz",
            "s3:///key",
            "s3://bucket",
            "s3://b/k?x=1",
            "gbif:download/abc",
            "gbif:doi/11.1/x",
            "gbif:occurrence?country",
            "gbif:species/1",
        ] {
            assert_eq!(shape(bad).unwrap_err().code, "twinflow::bad-url", "{bad}");
        }
    }

    #[test]
    fn file_names() {
        let n = |url: &str| {
            let (_, len) = scheme_of(url).unwrap();
            file_name("src", url, len)
        };
        assert_eq!(n("https://x.org/data/occ.csv?v=2"), "occ.csv");
        assert_eq!(n("https://x.org/tas_${{ cycle.year }}.nc"), "src.nc");
        assert_eq!(n("https://x.org/my%20file.tar.gz"), "src.tar.gz");
        assert_eq!(n("https://x.org/${{ params.f }}"), "src");
        assert_eq!(n("https://x.org/"), "src");
        assert_eq!(n("s3://b/k/.hidden"), "src");
        assert_eq!(n("s3://b/k/x.${{ params.ext }}"), "src");
    }

    #[test]
    fn a_relative_local_catalog_is_anchored_at_the_workflow_dir() {
        let dir = std::path::Path::new("/srv/my flows/climate");
        assert_eq!(
            anchored("stac+file:forcing/catalog.json", dir).as_deref(),
            Some("stac+file:///srv/my%20flows/climate/forcing/catalog.json")
        );
        assert_eq!(anchored("stac+file:///data/catalog.json", dir), None);
        assert_eq!(anchored("https://x/catalog.json", dir), None);
        assert!(check("stac+file:forcing/catalog.json", SourceScheme::Stac, 10).is_ok());
        let search = check(
            "stac+file:forcing/search?collections=x",
            SourceScheme::Stac,
            10,
        );
        assert!(search.is_err(), "a local search is refused");
        assert!(check("stac+file://host/catalog.json", SourceScheme::Stac, 10).is_err());
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        let mut out = String::new();
        percent_encode("a b/c?d&e=f~g.h-i_j'é", &mut out);
        assert_eq!(out, "a%20b%2Fc%3Fd%26e%3Df~g.h-i_j%27%C3%A9");
    }
}
