//! `sources:`: each entry checked (its URL here, the other keys in
//! `source_keys`: options of its scheme, `sha256`,
//! `refresh`, `format`) and made into a plan step `sources.NAME` on the
//! fetch executor, which the compiler appends as the plan's last executor
//! when the workflow has sources. A step's `wait_for:` entries are read
//! here too; their intervals and timeouts become the source's `wait`.

use super::source_keys::{duration, format, options, sha256};
use super::source_url;
use super::{StepIr, check_name};
use crate::de::Lenient;
use crate::diag::Diags;
use crate::expr::{RawPiece, split};
use crate::model::{SourceDoc, WAIT_FOR_KEYS, WaitForDoc, WorkflowDoc};
use crate::span::{Span, Spanned};
use crate::suggest::did_you_mean;
use twinflow_core::{
    BackendConfig, CyclePoint, CycleSpec, ExecutorId, ExecutorSpec, FETCH_EXECUTOR, FetchConfig,
    OutputSpec, ParamValue, Piece, Ref, Resources, SourceFormat, SourceScheme, SourceSpec, StepId,
    StepSpec, Template, WaitSpec,
};

/// The name references to sources start with (`sources.NAME`), which is
/// also the fetch executor's: reserved for neither a step nor an executor.
pub(crate) const SOURCES: &str = "sources";

/// Seconds between two checks of a `wait_for` without `interval`.
pub(crate) const DEFAULT_WAIT_INTERVAL: u64 = 60;

/// A source ready to become a step.
#[derive(Debug)]
pub(crate) struct SourceIr {
    pub(crate) spec: SourceSpec,
    pub(crate) url: Template,
    pub(crate) cycling: bool,
    pub(crate) name_span: Span,
}

/// Lowers every `sources:` entry, in order; `None` where an entry was wrong
/// (reported in `d`).
pub(crate) fn lower_all(
    doc: &WorkflowDoc,
    d: &mut Diags,
    params: &[(String, ParamValue)],
    cycle: Option<&CycleSpec>,
    workflow_dir: &std::path::Path,
) -> Vec<Option<SourceIr>> {
    reserved_names(doc, d);
    doc.sources
        .iter()
        .map(|(name, spanned)| {
            let named = check_name(d, name.span, "source", &name.value);
            let Lenient(Some(s)) = &spanned.value else {
                return None;
            };
            let ir = lower_one(d, name, s, params, doc.cycle.is_some(), cycle);
            let ir = ir.map(|mut ir| {
                // A static catalog named relative to the workflow: its
                // tasks' URLs name the absolute file.
                if let Some(Piece::Lit(first)) = ir.url.pieces.first_mut()
                    && let Some(absolute) = source_url::anchored(first, workflow_dir)
                {
                    *first = absolute;
                }
                ir
            });
            ir.filter(|_| named)
        })
        .collect()
}

/// `sources` names the fetch executor and the `sources.NAME` references:
/// no executor or step of a workflow with sources may take it.
fn reserved_names(doc: &WorkflowDoc, d: &mut Diags) {
    if doc.sources.none_written() {
        return;
    }
    let executors = doc.executors.iter().map(|(n, _)| (n, "an", "executor"));
    let steps = doc.steps.value.iter().map(|(n, _)| (n, "a", "step"));
    for (name, article, what) in executors.chain(steps) {
        if name.value == SOURCES {
            d.at(
                "twinflow::reserved-name",
                name.span,
                format!("`{SOURCES}` cannot name {article} {what} in a workflow with `sources:`"),
                "reserved",
            )
            .set_help(Some(format!(
                "`{SOURCES}` names the executor that fetches the sources and the references `sources.NAME`; rename this {what}"
            )));
        }
    }
}

fn lower_one(
    d: &mut Diags,
    name: &Spanned<String>,
    s: &SourceDoc,
    params: &[(String, ParamValue)],
    has_cycle: bool,
    cycle: Option<&CycleSpec>,
) -> Option<SourceIr> {
    let before = d.list.len();
    let (url, cycling) = url_template(d, &s.url, params, &name.value)?;
    if cycling && !has_cycle {
        d.at(
            "twinflow::no-cycle",
            s.url.span,
            format!(
                "source `{}` names the cycle, but the workflow has no `cycle`",
                name.value
            ),
            "needs a top-level `cycle`",
        )
        .set_help(Some(
            "add `cycle: { start: 2020-01-01, stop: 2030-01-01, step: P1Y }`, or take `cycle.*` out of the URL".into(),
        ));
    }
    let (scheme, prefix_len) = match source_url::scheme_of(&s.url.value) {
        Ok(x) => x,
        Err(e) => {
            url_error(d, s.url.span, e);
            return None;
        }
    };
    let sample = CyclePoint {
        label: "2000-01-01".into(),
        year: 2000,
        month: 1,
        day: 1,
    };
    let point = cycle.and_then(|c| c.points.first()).unwrap_or(&sample);
    let probe = source_url::render(&url, params, Some(point));
    let shape = match source_url::check(&probe, scheme, prefix_len) {
        Ok(shape) => shape,
        Err(e) => {
            url_error(d, s.url.span, e);
            return None;
        }
    };
    let options = options(d, s, &shape, params);
    let sha256 = s.sha256.as_ref().and_then(|h| sha256(d, h, cycling));
    let refresh_seconds = s.refresh.as_ref().and_then(|r| {
        let text = r.value.0.trim();
        if text == "never" {
            return None;
        }
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphabetic()) {
            d.at(
                "twinflow::bad-duration",
                r.span,
                format!("`{text}` is neither `never` nor a duration"),
                "invalid refresh",
            )
            .set_help(Some(
                "`refresh` is `never` (the default) or a duration: `6h`, `1d`, `30d`".into(),
            ));
            return None;
        }
        duration(
            d,
            &r.value.0,
            r.span,
            "refresh",
            "`never` (the default) or a duration",
        )
    });
    let format = format(d, s, &shape);
    if d.list.len() > before {
        return None;
    }
    let directory = shape.s3_prefix
        || matches!(scheme, SourceScheme::Stac | SourceScheme::Gbif)
        || matches!(format, SourceFormat::Dwca | SourceFormat::Zarr);
    let file_name = if directory {
        name.value.clone()
    } else {
        source_url::file_name(&name.value, &s.url.value, prefix_len)
    };
    Some(SourceIr {
        spec: SourceSpec {
            name: name.value.clone(),
            url: s.url.value.clone(),
            scheme,
            sha256,
            refresh_seconds,
            format,
            directory,
            file_name,
            options,
            wait: None,
        },
        url,
        cycling,
        name_span: name.span,
    })
}

fn url_error(d: &mut Diags, span: Span, e: source_url::UrlError) {
    d.at(e.code, span, e.message, "in this URL")
        .set_help(e.help);
}

/// The URL's expressions resolved (only `params.X` and `cycle.*`), and
/// whether it names the cycle.
fn url_template(
    d: &mut Diags,
    url: &Spanned<String>,
    params: &[(String, ParamValue)],
    source: &str,
) -> Option<(Template, bool)> {
    let text = d.source.clone();
    let (pieces, errors) = split(&url.value, url.span, text.text());
    let mut ok = errors.is_empty();
    for e in errors {
        d.at("twinflow::bad-expression", e.span, e.message, "here")
            .set_help(e.help);
    }
    let allowed = "a source's URL may use `${{ params.X }}` (a scalar) and `${{ cycle.point }}`, `cycle.year`, `cycle.month`, `cycle.day`";
    let mut out = Vec::with_capacity(pieces.len());
    let mut cycling = false;
    for piece in pieces {
        let (name, span) = match piece {
            RawPiece::Lit(s) => {
                out.push(Piece::Lit(s));
                continue;
            }
            RawPiece::Expr { name, span } => (name, span),
        };
        let found = match name.split_once('.') {
            Some(("params", p)) => match params.iter().position(|(n, _)| n == p) {
                Some(i) if matches!(params[i].1, ParamValue::Many(_)) => {
                    d.at(
                        "twinflow::source-expression",
                        span,
                        format!("parameter `{p}` is a list, and a URL takes one value"),
                        "a list",
                    )
                    .set_help(Some(
                        "use a scalar parameter, or one source per value".into(),
                    ));
                    ok = false;
                    continue;
                }
                Some(i) => Some(Ref::Param(i as u32)),
                None => {
                    let help = did_you_mean(p, params.iter().map(|(n, _)| n.as_str()));
                    d.at(
                        "twinflow::unknown-expression",
                        span,
                        format!("unknown parameter `{p}` in the URL of source `{source}`"),
                        "not a parameter",
                    )
                    .set_help(help);
                    ok = false;
                    continue;
                }
            },
            Some(("cycle", "point")) => Some(Ref::CyclePoint),
            Some(("cycle", "year")) => Some(Ref::CycleYear),
            Some(("cycle", "month")) => Some(Ref::CycleMonth),
            Some(("cycle", "day")) => Some(Ref::CycleDay),
            _ => None,
        };
        let Some(r) = found else {
            d.at(
                "twinflow::source-expression",
                span,
                format!("`{name}` cannot be used in the URL of source `{source}`"),
                "not allowed in a source",
            )
            .set_help(Some(allowed.into()));
            ok = false;
            continue;
        };
        cycling |= matches!(
            r,
            Ref::CyclePoint | Ref::CycleYear | Ref::CycleMonth | Ref::CycleDay
        );
        out.push(Piece::Ref(r));
    }
    ok.then_some((Template { pieces: out }, cycling))
}

/// A `wait_for:` entry: the reference it makes and its wait, or `None`
/// (reported) when it is written wrong.
pub(crate) fn wait_entry(
    d: &mut Diags,
    entry: &Spanned<WaitForDoc>,
) -> Option<(Spanned<String>, WaitSpec)> {
    let full = match &entry.value {
        WaitForDoc::Source(text) => {
            return Some((
                Spanned::new(text.clone(), entry.span),
                WaitSpec {
                    interval_seconds: DEFAULT_WAIT_INTERVAL,
                    timeout_seconds: None,
                },
            ));
        }
        WaitForDoc::Full(full) => full,
    };
    let ok = super::report_unknown_keys(d, &full.unknown, &WAIT_FOR_KEYS);
    let interval = full
        .interval
        .as_ref()
        .map(|i| duration(d, &i.value.0, i.span, "interval", "a duration"));
    let timeout = full
        .timeout
        .as_ref()
        .map(|t| duration(d, &t.value.0, t.span, "timeout", "a duration"));
    let Some(source) = &full.source else {
        d.at(
            "twinflow::missing-key",
            entry.span,
            "a `wait_for` mapping needs `source`",
            "this mapping needs `source`",
        )
        .set_help(Some(
            "for example `{ source: sources.era5, interval: 10m, timeout: 2d }`".into(),
        ));
        return None;
    };
    let interval_seconds = match interval {
        None => DEFAULT_WAIT_INTERVAL,
        Some(Some(s)) => s,
        Some(None) => return None,
    };
    let timeout_seconds = match timeout {
        None => None,
        Some(Some(s)) => Some(s),
        Some(None) => return None,
    };
    ok.then(|| {
        (
            source.clone(),
            WaitSpec {
                interval_seconds,
                timeout_seconds,
            },
        )
    })
}

/// Several steps waiting for one source: the shortest interval and the
/// longest timeout (none when any waits for ever).
fn merge(a: WaitSpec, b: WaitSpec) -> WaitSpec {
    WaitSpec {
        interval_seconds: a.interval_seconds.min(b.interval_seconds),
        timeout_seconds: a
            .timeout_seconds
            .zip(b.timeout_seconds)
            .map(|(x, y)| x.max(y)),
    }
}

/// Appends the sources' steps (after the workflow's, so the steps' ids stay
/// as written) and, when there are sources, the fetch executor (last).
pub(crate) fn append(
    steps: &mut Vec<StepIr>,
    executors: &mut Vec<ExecutorSpec>,
    sources: Vec<SourceIr>,
) {
    if sources.is_empty() {
        return;
    }
    let first = steps.len() as u32;
    let executor = ExecutorId(executors.len() as u32);
    let mut waits: Vec<Option<WaitSpec>> = vec![None; sources.len()];
    for step in steps.iter() {
        for (source, wait) in &step.waits {
            if let Some(slot) = source
                .0
                .checked_sub(first)
                .and_then(|i| waits.get_mut(i as usize))
            {
                *slot = Some(slot.map_or(*wait, |w| merge(w, *wait)));
            }
        }
    }
    let mut specs = Vec::with_capacity(sources.len());
    for (source, wait) in sources.into_iter().zip(waits) {
        let mut spec = source.spec;
        spec.wait = wait;
        steps.push(StepIr {
            spec: StepSpec {
                name: spec.step_name(),
                description: None,
                executor,
                for_each: Vec::new(),
                cycling: source.cycling,
                inputs: Vec::new(),
                after: Vec::new(),
                outputs: vec![OutputSpec {
                    name: spec.output_name().to_owned(),
                    path: spec.file_name.clone(),
                }],
                resources: Resources::default(),
                retries: 0,
                timeout_seconds: None,
                pack: None,
                group: None,
                launcher: None,
                env: Vec::new(),
                container: None,
                model: None,
                code: Vec::new(),
                hooks: Vec::new(),
                tasks: 0..0,
            },
            run: source.url,
            name_span: source.name_span,
            url: true,
            waits: Vec::new(),
        });
        specs.push(spec);
    }
    executors.push(ExecutorSpec {
        name: FETCH_EXECUTOR.to_owned(),
        backend: BackendConfig::Fetch(FetchConfig { sources: specs }),
        prologue: None,
        env: Vec::new(),
        container_runtime: None,
        bound_by: None,
    });
}

/// The id a source at position `i` of `sources:` gets: after every step.
pub(crate) fn step_id(steps: usize, i: usize) -> StepId {
    StepId((steps + i) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_merge_to_the_shortest_interval_and_longest_timeout() {
        let w = |i, t| WaitSpec {
            interval_seconds: i,
            timeout_seconds: t,
        };
        assert_eq!(merge(w(600, Some(10)), w(60, Some(20))), w(60, Some(20)));
        assert_eq!(merge(w(60, Some(10)), w(600, None)), w(60, None));
    }
}
