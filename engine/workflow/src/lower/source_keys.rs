//! The keys of a `sources:` entry besides its URL: the scheme options
//! (refused on a scheme that does not use them), `sha256` and `format`
//! (checked against the URL's shape), and the durations of `refresh`,
//! `prepare_timeout` and `wait_for`.

use super::source_url::{self, GbifForm, UrlShape};
use crate::diag::Diags;
use crate::expr::{RawPiece, split};
use crate::model::{FormatDoc, OPTION_SCHEMES, SourceDoc};
use crate::span::{Span, Spanned};
use crate::units::{parse_duration, parse_size};
use twinflow_core::{ParamValue, SourceFormat, SourceOptions, SourceScheme};

/// The scheme (as options name it) of a URL shape.
fn scheme_key(shape: &UrlShape) -> &'static str {
    match shape.scheme {
        SourceScheme::Http => "https",
        other => other.as_str(),
    }
}

/// Refuses an option of another scheme and the one whose value is wrong.
pub(super) fn options(
    d: &mut Diags,
    s: &SourceDoc,
    shape: &UrlShape,
    params: &[(String, ParamValue)],
) -> SourceOptions {
    let scheme = scheme_key(shape);
    let present: [(&str, Option<Span>); 7] = [
        ("endpoint", s.endpoint.as_ref().map(|x| x.span)),
        ("region", s.region.as_ref().map(|x| x.span)),
        ("profile", s.profile.as_ref().map(|x| x.span)),
        ("max_size", s.max_size.as_ref().map(|x| x.span)),
        ("assets", s.assets.as_ref().map(|x| x.span)),
        ("max_items", s.max_items.as_ref().map(|x| x.span)),
        (
            "prepare_timeout",
            s.prepare_timeout.as_ref().map(|x| x.span),
        ),
    ];
    let mut ok = true;
    for (key, span) in present {
        let Some(span) = span else { continue };
        let owners = OPTION_SCHEMES
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[][..], |(_, o)| *o);
        let own: Vec<&str> = OPTION_SCHEMES
            .iter()
            .filter(|(_, o)| o.contains(&scheme))
            .map(|(k, _)| *k)
            .collect();
        let wrong_gbif_form = key == "prepare_timeout" && shape.gbif != Some(GbifForm::Query);
        if owners.contains(&scheme) && !wrong_gbif_form {
            continue;
        }
        ok = false;
        let (message, help) = if wrong_gbif_form && owners.contains(&scheme) {
            (
                "`prepare_timeout` is an option of the GBIF query form only".to_owned(),
                "a `gbif:download/…` or `gbif:doi/…` source is ready already; only `gbif:occurrence?…` asks GBIF to prepare a download".to_owned(),
            )
        } else {
            (
                format!("`{key}` is not an option of {scheme} sources"),
                format!(
                    "`{key}` is an option of {} sources; {scheme} sources take {}",
                    owners.join(", "),
                    if own.is_empty() {
                        "no options".to_owned()
                    } else {
                        own.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            )
        };
        d.at(
            "twinflow::source-option",
            span,
            message,
            "not used by this source",
        )
        .set_help(Some(help));
    }
    if !ok {
        return SourceOptions::default();
    }
    let endpoint = s.endpoint.as_ref().and_then(|e| endpoint(d, e, params));
    let plain = |d: &mut Diags, v: &Option<Spanned<String>>, what: &str| {
        let v = v.as_ref()?;
        if v.value.trim().is_empty()
            || v.value.contains(char::is_whitespace)
            || v.value.contains("${{")
        {
            d.at(
                "twinflow::invalid-value",
                v.span,
                format!("`{}` is not a valid {what}", v.value),
                format!("invalid {what}"),
            )
            .set_help(Some(format!(
                "a {what} is one word, without spaces or expressions"
            )));
            return None;
        }
        Some(v.value.clone())
    };
    let region = plain(d, &s.region, "region");
    let profile = plain(d, &s.profile, "profile");
    let max_size = s
        .max_size
        .as_ref()
        .and_then(|m| match parse_size(&m.value.0, "size") {
            Ok(n) => Some(n),
            Err(message) => {
                d.at("twinflow::bad-size", m.span, message, "invalid size")
                    .set_help(Some("sizes: `500MB`, `2GiB`, `1TiB`".into()));
                None
            }
        });
    let assets = s.assets.as_ref().map(|a| assets(d, a)).unwrap_or_default();
    let max_items = s.max_items.as_ref().and_then(|m| {
        if m.value == 0 {
            d.at(
                "twinflow::zero",
                m.span,
                "`max_items` must be at least 1",
                "zero",
            )
            .set_help(Some("leave `max_items` out for up to 1,000 items".into()));
            return None;
        }
        Some(m.value)
    });
    let prepare_timeout_seconds = s
        .prepare_timeout
        .as_ref()
        .and_then(|t| duration(d, &t.value.0, t.span, "prepare_timeout", "a duration"));
    SourceOptions {
        endpoint,
        region,
        profile,
        max_size,
        assets,
        max_items,
        prepare_timeout_seconds,
    }
}

/// `endpoint`: an http(s) URL, which may take `${{ params.X }}` (a scalar,
/// substituted as written: a parameter may hold the whole URL, so that a
/// test or a site points a source at another server with `--param`).
fn endpoint(d: &mut Diags, e: &Spanned<String>, params: &[(String, ParamValue)]) -> Option<String> {
    let value = with_params(d, e, params)?;
    let not_http = || source_url::UrlError {
        code: "twinflow::bad-url",
        message: format!("the endpoint `{value}` is not an http(s) URL"),
        help: Some(
            "write the server's URL, e.g. `https://s3.example.org` or `http://127.0.0.1:7480`"
                .into(),
        ),
    };
    let checked = match source_url::scheme_of(&value) {
        Ok((SourceScheme::Http, n)) => source_url::check(&value, SourceScheme::Http, n),
        _ => Err(not_http()),
    };
    match checked {
        Ok(_) => Some(value.trim_end_matches('/').to_owned()),
        Err(err) => {
            d.at(err.code, e.span, err.message, "in this endpoint")
                .set_help(err.help);
            None
        }
    }
}

/// `e`'s text with each `${{ params.X }}` (a scalar) substituted; any
/// other expression is reported.
fn with_params(
    d: &mut Diags,
    e: &Spanned<String>,
    params: &[(String, ParamValue)],
) -> Option<String> {
    let text = d.source.clone();
    let (pieces, errors) = split(&e.value, e.span, text.text());
    let mut ok = errors.is_empty();
    for err in errors {
        d.at("twinflow::bad-expression", err.span, err.message, "here")
            .set_help(err.help);
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            RawPiece::Lit(s) => out.push_str(&s),
            RawPiece::Expr { name, span } => {
                let value = name
                    .strip_prefix("params.")
                    .and_then(|p| params.iter().find(|(n, _)| n == p))
                    .and_then(|(_, v)| match v {
                        ParamValue::One(v) => Some(v.as_str()),
                        ParamValue::Many(_) => None,
                    });
                match value {
                    Some(v) => out.push_str(v),
                    None => {
                        d.at(
                            "twinflow::source-expression",
                            span,
                            format!("`{name}` cannot be used in an endpoint"),
                            "not a scalar parameter",
                        )
                        .set_help(Some(
                            "an endpoint may use `${{ params.X }}` of a scalar parameter".into(),
                        ));
                        ok = false;
                    }
                }
            }
        }
    }
    ok.then_some(out)
}

fn assets(d: &mut Diags, a: &Spanned<Vec<Spanned<String>>>) -> Vec<String> {
    if a.value.is_empty() {
        d.at(
            "twinflow::empty-list",
            a.span,
            "`assets` is an empty list",
            "no assets",
        )
        .set_help(Some(
            "leave `assets` out to fetch every asset of each item".into(),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(a.value.len());
    for asset in &a.value {
        if asset.value.trim().is_empty() {
            d.at(
                "twinflow::invalid-value",
                asset.span,
                "an asset key is empty",
                "empty",
            );
        } else if out.contains(&asset.value) {
            d.at(
                "twinflow::duplicate-value",
                asset.span,
                format!("asset `{}` is listed twice", asset.value),
                "repeated",
            );
        } else {
            out.push(asset.value.clone());
        }
    }
    out
}

pub(super) fn sha256(d: &mut Diags, h: &Spanned<String>, cycling: bool) -> Option<String> {
    let hex = h.value.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        d.at(
            "twinflow::bad-sha256",
            h.span,
            format!(
                "`{}` is not a SHA-256 digest ({} characters)",
                h.value,
                h.value.chars().count()
            ),
            "expected 64 hex digits",
        )
        .set_help(Some(
            "write the digest as `sha256sum` prints it: 64 hex digits".into(),
        ));
        return None;
    }
    if cycling {
        d.at(
            "twinflow::pinned-cycling-source",
            h.span,
            "a source whose URL names the cycle cannot pin one `sha256`",
            "one digest for every cycle point",
        )
        .set_help(Some(
            "each cycle point fetches a different file; drop `sha256`, or pin a source without `cycle.*`".into(),
        ));
        return None;
    }
    Some(hex.to_ascii_lowercase())
}

pub(super) fn format(d: &mut Diags, s: &SourceDoc, shape: &UrlShape) -> SourceFormat {
    let written = s.format.as_ref().map(|f| {
        let format = match f.value {
            FormatDoc::Any => SourceFormat::Any,
            FormatDoc::Dwca => SourceFormat::Dwca,
            FormatDoc::Csv => SourceFormat::Csv,
            FormatDoc::Json => SourceFormat::Json,
            FormatDoc::Netcdf => SourceFormat::Netcdf,
            FormatDoc::Zarr => SourceFormat::Zarr,
        };
        (format, f.span)
    });
    let gbif = shape.scheme == SourceScheme::Gbif;
    let Some((format, span)) = written else {
        return if gbif {
            SourceFormat::Dwca
        } else {
            SourceFormat::Any
        };
    };
    if gbif && !matches!(format, SourceFormat::Dwca | SourceFormat::Any) {
        d.at(
            "twinflow::source-format",
            span,
            format!("a GBIF download is a Darwin Core Archive, not `{format}`"),
            "not a GBIF format",
        )
        .set_help(Some("leave `format` out (or write `dwca`)".into()));
    }
    let directory = shape.s3_prefix || shape.scheme == SourceScheme::Stac;
    if format == SourceFormat::Zarr && !directory {
        d.at(
            "twinflow::source-format",
            span,
            "a Zarr store is a directory, and this source is one file",
            "needs a directory source",
        )
        .set_help(Some(
            "point the URL at the store's prefix, ending in `/` (`s3://bucket/store.zarr/`)".into(),
        ));
    }
    format
}

pub(super) fn duration(
    d: &mut Diags,
    text: &str,
    span: Span,
    what: &str,
    forms: &str,
) -> Option<u64> {
    match parse_duration(text) {
        Ok(s) => Some(s),
        Err(message) => {
            d.at(
                "twinflow::bad-duration",
                span,
                message,
                format!("invalid {what}"),
            )
            .set_help(Some(format!(
                "`{what}` is {forms}: `90s`, `30m`, `6h`, `30d`, `1h30m`"
            )));
            None
        }
    }
}
