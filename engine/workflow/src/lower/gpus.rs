//! GPUs: a step's `resources.gpus` (a count or `{count, type}`), a local
//! executor's `gpus: [ids]` and an executor's `gpu_vendor`, and the check
//! that the executor a step runs on can give it the GPUs it asks for.

use crate::diag::Diags;
use crate::model::{GPUS_KEYS, GpuCountDoc, GpuVendorDoc, GpusDoc, ScalarString};
use crate::span::{Span, Spanned};
use std::collections::HashSet;
use twinflow_core::{BackendConfig, ExecutorSpec, GpuVendor, Resources};

/// The longest GPU type name taken.
const MAX_TYPE_LEN: usize = 64;

/// Lowers `resources.gpus` into `r.gpus` and `r.gpu_type`, reporting a
/// count that is not a positive whole number, an unknown key, a missing
/// `count` and a type name Slurm's `--gres` cannot carry.
pub(crate) fn lower(d: &mut Diags, g: &Spanned<GpusDoc>, r: &mut Resources) {
    match &g.value {
        GpusDoc::Count(c) => {
            if let Some(n) = count(d, *c, g.span) {
                r.gpus = n;
            }
        }
        GpusDoc::Full(full) => {
            super::report_unknown_keys(d, &full.unknown, &GPUS_KEYS);
            match &full.count {
                Some(c) => {
                    if let Some(n) = count(d, c.value, c.span) {
                        r.gpus = n;
                    }
                }
                None => {
                    d.at(
                        "twinflow::missing-key",
                        g.span,
                        "`gpus` needs `count` when written as a mapping",
                        "this mapping needs `count`",
                    )
                    .set_help(Some("for example `gpus: { count: 2, type: a100 }`".into()));
                }
            }
            if let Some(t) = &full.gpu_type {
                r.gpu_type = gpu_type(d, t);
            }
        }
    }
}

/// A GPU count: a whole number of at least 1.
fn count(d: &mut Diags, c: GpuCountDoc, span: Span) -> Option<u32> {
    let (message, label, help) = match c {
        GpuCountDoc::Int(n) if n < 0 => (
            format!("`gpus` must be a positive whole number, not {n}"),
            "negative",
            "GPUs per task: 1 or more",
        ),
        GpuCountDoc::Int(0) | GpuCountDoc::UInt(0) => (
            "`gpus: 0` asks for no GPUs".to_owned(),
            "zero",
            "leave `gpus` out for tasks that need no GPU",
        ),
        GpuCountDoc::Int(n) => return u32::try_from(n).ok().or_else(|| too_many(d, span)),
        GpuCountDoc::UInt(n) => return u32::try_from(n).ok().or_else(|| too_many(d, span)),
        GpuCountDoc::Float(f) => (
            format!("`{f}` is not a whole number of GPUs"),
            "not a whole number",
            "a task gets whole devices, e.g. `gpus: 1`",
        ),
    };
    d.at("twinflow::bad-gpus", span, message, label)
        .set_help(Some(help.into()));
    None
}

fn too_many(d: &mut Diags, span: Span) -> Option<u32> {
    d.at(
        "twinflow::bad-gpus",
        span,
        "this GPU count is too large",
        "too many",
    );
    None
}

/// Whether `name` can be a GPU type: what Slurm's GRES type names use
/// (letters, digits, `_`, `-`, `.`), so that it goes into `--gres=gpu:TYPE:N`
/// unchanged and unquoted.
pub(crate) fn is_gpu_type(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TYPE_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn gpu_type(d: &mut Diags, t: &Spanned<ScalarString>) -> Option<String> {
    let name = &t.value.0;
    if is_gpu_type(name) {
        return Some(name.clone());
    }
    let message = if name.is_empty() {
        "the GPU type is empty".to_owned()
    } else {
        format!("`{}` is not a GPU type name", name.escape_default())
    };
    d.at("twinflow::bad-gpu-type", t.span, message, "invalid GPU type")
        .set_help(Some(format!(
            "a GPU type is 1 to {MAX_TYPE_LEN} letters, digits, `_`, `-` or `.`, as in Slurm's gres.conf, e.g. `a100`"
        )));
    None
}

/// A local executor's `gpus: [ids]`, each listed once.
pub(crate) fn device_ids(d: &mut Diags, executor: &str, ids: &[Spanned<u32>]) -> Vec<u32> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.value) {
            d.at(
                "twinflow::duplicate-value",
                id.span,
                format!(
                    "GPU {} appears twice in `gpus` of executor `{executor}`",
                    id.value
                ),
                "repeated",
            )
            .set_help(Some(
                "each device is handed to one task at a time: list it once".into(),
            ));
        }
    }
    ids.iter().map(|i| i.value).collect()
}

pub(crate) fn vendor(v: Option<&Spanned<GpuVendorDoc>>) -> GpuVendor {
    match v.map(|v| v.value) {
        None | Some(GpuVendorDoc::Nvidia) => GpuVendor::Nvidia,
        Some(GpuVendorDoc::Amd) => GpuVendor::Amd,
    }
}

/// Checks that `executor` can give each task of `step` the GPUs `r` asks
/// for (`span`: the step's `resources.gpus`): a local executor has at
/// least that many devices listed and takes no type (it cannot choose by
/// one); Slurm decides devices itself; a cloud executor has none. A
/// Slurm or cloud executor rebound to this machine by `--local` lists no
/// devices, so such a step is refused there rather than run without them.
pub(crate) fn check_step(
    d: &mut Diags,
    step: &str,
    span: Span,
    r: &Resources,
    executor: &ExecutorSpec,
) {
    if r.gpus == 0 {
        return;
    }
    let name = &executor.name;
    let asks = if r.gpus == 1 {
        "1 GPU".to_owned()
    } else {
        format!("{} GPUs", r.gpus)
    };
    match &executor.backend {
        // The fetch executor runs no step of the file.
        BackendConfig::Slurm(_) | BackendConfig::Fetch(_) => {}
        BackendConfig::Cloud(_) => {
            d.at(
                "twinflow::gpus-unavailable",
                span,
                format!(
                    "step `{step}` asks for {asks} per task, but the cloud executor `{name}` hands out no GPUs"
                ),
                "not on a cloud executor",
            )
            .set_help(Some(
                "run the step on a Slurm executor, or on a local executor that lists its `gpus`"
                    .into(),
            ));
        }
        BackendConfig::Local(l) => {
            let local_flag = executor.bound_by.as_deref() == Some("--local");
            if let Some(t) = &r.gpu_type {
                d.at(
                    "twinflow::gpu-type-on-local",
                    span,
                    format!(
                        "step `{step}` asks for GPUs of type `{t}`, but the local executor `{name}` cannot choose GPUs by type"
                    ),
                    "type on a local executor",
                )
                .set_help(Some(if local_flag {
                    format!("`--local` binds `{name}` to this machine; run without `--local` to use the cluster's `{t}` GPUs")
                } else {
                    format!("drop `type` and list the `{t}` devices in the executor's `gpus: [...]`")
                }));
            } else if l.gpus.is_empty() {
                let help = if local_flag {
                    format!(
                        "`--local` binds `{name}` to this machine, where it has no GPUs: run without `--local`, or use a site file that binds `{name}` to a local executor with `gpus: [0, ...]`"
                    )
                } else {
                    format!(
                        "list the devices `{name}` may hand out, e.g. `gpus: [0, 1]` under `executors.{name}`"
                    )
                };
                d.at(
                    "twinflow::gpus-unavailable",
                    span,
                    format!(
                        "step `{step}` asks for {asks} per task, but the local executor `{name}` has no GPUs"
                    ),
                    "no GPUs on its executor",
                )
                .set_help(Some(help));
            } else if l.gpus.len() < r.gpus as usize {
                d.at(
                    "twinflow::too-many-gpus",
                    span,
                    format!(
                        "step `{step}` asks for {asks} per task, but the local executor `{name}` has only {}",
                        l.gpus.len()
                    ),
                    "more than the executor has",
                )
                .set_help(Some(format!(
                    "`{name}` lists `gpus: [{}]`; a task never gets more devices than that",
                    l.gpus
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
}
