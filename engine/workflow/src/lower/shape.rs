//! The parallel shape of a step's tasks: `resources.tasks`, `nodes`,
//! `tasks_per_node` and `exclusive` (ranks and their layout), `launcher:`
//! and `pack:` (a count, or `{tasks, parallel}`), each checked with its span.

use crate::diag::Diags;
use crate::model::{LauncherDoc, PACK_KEYS, PackDoc, ResourcesDoc};
use crate::span::Spanned;
use twinflow_core::{Launcher, PackSpec, Resources};

/// The most tasks `pack:` may put into one allocation.
pub(crate) const MAX_PACK: u32 = 10_000;

/// Lowers `tasks`, `nodes`, `tasks_per_node` and `exclusive` into `r`,
/// reporting a zero count and a layout whose numbers disagree: a
/// `tasks_per_node` that does not divide `tasks`, more `nodes` than
/// `tasks`, `nodes x tasks_per_node` other than `tasks`. Without `tasks`,
/// `nodes x tasks_per_node` (or `tasks_per_node` on one node) gives it.
pub(crate) fn ranks(d: &mut Diags, doc: &ResourcesDoc, r: &mut Resources) {
    let mut bad = false;
    for (field, value) in [
        ("tasks", &doc.tasks),
        ("nodes", &doc.nodes),
        ("tasks_per_node", &doc.tasks_per_node),
    ] {
        if let Some(v) = value
            && v.value == 0
        {
            d.at(
                "twinflow::zero",
                v.span,
                format!("`{field}` must be at least 1"),
                "zero",
            )
            .set_help(Some(format!("leave `{field}` out for the default")));
            bad = true;
        }
    }
    r.exclusive = doc.exclusive.as_ref().is_some_and(|e| e.value);
    if bad {
        return;
    }
    let (tasks, nodes, per_node) = (&doc.tasks, &doc.nodes, &doc.tasks_per_node);
    r.nodes = nodes.as_ref().map(|n| n.value);
    r.tasks_per_node = per_node.as_ref().map(|p| p.value);
    r.tasks = match (tasks, per_node) {
        (Some(t), _) => t.value,
        (None, Some(p)) => {
            let n = nodes.as_ref().map_or(1, |n| n.value);
            match n.checked_mul(p.value) {
                Some(t) => t,
                None => {
                    d.at(
                        "twinflow::bad-layout",
                        p.span,
                        "`nodes x tasks_per_node` is too many ranks",
                        "too many",
                    );
                    return;
                }
            }
        }
        (None, None) => 1,
    };
    let tasks_text = match tasks {
        Some(_) => format!("`tasks: {}`", r.tasks),
        None => format!("{} rank(s) (`tasks` not given)", r.tasks),
    };
    if let (Some(t), Some(p)) = (tasks, per_node)
        && t.value % p.value != 0
    {
        let divisors: Vec<String> = (1..=t.value.min(64))
            .filter(|k| t.value % k == 0)
            .map(|k| k.to_string())
            .collect();
        d.at(
            "twinflow::bad-layout",
            p.span,
            format!(
                "`tasks_per_node: {}` does not divide `tasks: {}`",
                p.value, t.value
            ),
            "does not divide the ranks",
        )
        .add_label(t.span, "ranks")
        .set_help(Some(format!(
            "every node runs the same number of ranks: use a divisor of {} ({}), or change `tasks`",
            t.value,
            divisors.join(", ")
        )));
        return;
    }
    if let Some(n) = nodes
        && n.value > r.tasks
    {
        let diag = d.at(
            "twinflow::bad-layout",
            n.span,
            format!(
                "`nodes: {}` is more than {tasks_text}: a node would run no rank",
                n.value
            ),
            "more nodes than ranks",
        );
        if let Some(t) = tasks {
            diag.add_label(t.span, "ranks");
        }
        diag.set_help(Some(format!(
            "ask for at most {} node(s), or for at least {} `tasks`",
            r.tasks, n.value
        )));
        return;
    }
    if let (Some(t), Some(n), Some(p)) = (tasks, nodes, per_node)
        && u64::from(n.value) * u64::from(p.value) != u64::from(t.value)
    {
        d.at(
            "twinflow::bad-layout",
            p.span,
            format!(
                "`nodes: {}` x `tasks_per_node: {}` is {} ranks, but `tasks` is {}",
                n.value,
                p.value,
                u64::from(n.value) * u64::from(p.value),
                t.value
            ),
            "layout disagrees with `tasks`",
        )
        .add_label(n.span, "nodes")
        .add_label(t.span, "ranks")
        .set_help(Some(format!(
            "with {} ranks on {} node(s), write `tasks_per_node: {}`, or leave one of the three out",
            t.value,
            n.value,
            t.value / n.value
        )));
    }
}

/// `launcher:` as the plan's [`Launcher`].
pub(crate) fn launcher(l: &Spanned<LauncherDoc>) -> Launcher {
    match l.value {
        LauncherDoc::Srun => Launcher::Srun,
        LauncherDoc::Mpirun => Launcher::Mpirun,
        LauncherDoc::None => Launcher::None,
    }
}

/// Lowers `pack:`: a count `N` (one task after another) or
/// `{tasks: N, parallel: K}`, reporting a count outside `1..=MAX_PACK`,
/// a `parallel` of 0 or above `tasks`, a missing `tasks` and unknown keys.
pub(crate) fn pack(d: &mut Diags, p: &Spanned<PackDoc>) -> Option<PackSpec> {
    match &p.value {
        PackDoc::Count(n) => {
            pack_count(d, *n, p.span, "pack")?;
            Some(PackSpec {
                tasks: *n,
                parallel: 1,
            })
        }
        PackDoc::Full(full) => {
            let mut ok = super::report_unknown_keys(d, &full.unknown, &PACK_KEYS);
            let Some(tasks) = &full.tasks else {
                d.at(
                    "twinflow::missing-key",
                    p.span,
                    "`pack` needs `tasks` when written as a mapping",
                    "this mapping needs `tasks`",
                )
                .set_help(Some(
                    "for example `pack: { tasks: 21, parallel: 7 }`".into(),
                ));
                return None;
            };
            ok &= pack_count(d, tasks.value, tasks.span, "tasks").is_some();
            let parallel = full.parallel.as_ref().map_or(1, |k| k.value);
            if let Some(k) = &full.parallel {
                if k.value == 0 {
                    d.at(
                        "twinflow::bad-pack",
                        k.span,
                        "`parallel` must be at least 1",
                        "zero would never run",
                    )
                    .set_help(Some(
                        "`parallel: 1` runs the tasks one after another".into(),
                    ));
                    ok = false;
                } else if k.value > tasks.value {
                    d.at(
                        "twinflow::bad-pack",
                        k.span,
                        format!(
                            "`parallel: {}` is more than `tasks: {}`",
                            k.value, tasks.value
                        ),
                        "more than the tasks of a pack",
                    )
                    .add_label(tasks.span, "tasks per allocation")
                    .set_help(Some(format!(
                        "an allocation sized for {} tasks would hold only {}: use `parallel: {}` at most",
                        k.value, tasks.value, tasks.value
                    )));
                    ok = false;
                }
            }
            ok.then_some(PackSpec {
                tasks: tasks.value,
                parallel,
            })
        }
    }
}

fn pack_count(d: &mut Diags, n: u32, span: crate::span::Span, what: &str) -> Option<()> {
    if (1..=MAX_PACK).contains(&n) {
        return Some(());
    }
    d.at(
        "twinflow::bad-pack",
        span,
        format!("`{what}: {n}` is outside 1..={MAX_PACK}"),
        "tasks per allocation",
    );
    None
}
