//! Coupling groups (`group:`) on Slurm: the members of one instance attempt
//! (consecutive in a launch batch, the same [`twinflow_core::JobGroup`])
//! go out as ONE batch job whose allocation holds every member, and whose
//! script starts one concurrent `srun --exact` step per member, sized to
//! that member. Heterogeneous jobs (`#SBATCH hetjob`) are not used: their
//! components are not co-allocated on one node where we tested.
//!
//! The allocation is `--ntasks=M` (M members) of `--cpus-per-task=` the
//! largest member's cpus, so every member's step fits whatever node its
//! task lands on (a member of fewer cpus leaves the rest of its task's
//! cpus idle); `--mem=` the members' sum when every member gives
//! `memory` (each step then asks for its own `--mem`: without it a step
//! takes all of the job's memory and the others wait), none when no member
//! does (the site's default per cpu applies to job and steps alike); a
//! group where some members give `memory` and others do not is refused.
//! The time limit is the largest member's (they run at once; the runtime
//! enforces each member's own `time` as for any task), none if a member
//! has none.
//!
//! Every member has its own task script, logs, `.started` marker and
//! status file, exactly as a pack member ([`crate::script::render_member`]),
//! and the members share the job's handle (`slurm-pack:<job>:<status>`), so
//! polling, re-attach after a restart (the `group` comment and manifest,
//! see [`crate::recover`]) and cancel (a `.cancel` marker, `scancel` once
//! every member is cancelled) work as for packs. The script creates
//! `TWINFLOW_GROUP_DIR` (the runtime did on its side; a staged run's is
//! on the cluster), starts the steps, then once a second: a member whose
//! step ended without writing its status (srun could not start it, or it
//! was killed) gets srun's status (1 if that was 0); when a member did not
//! succeed, or has a `.cancel` marker, the other steps (or that one) are
//! sent SIGTERM, on which srun ends its step. The job exits 1 when a member
//! did not succeed.
//!
//! Refused at submit ([`shape_refusal`]): members of several ranks, nodes,
//! whole nodes or with a `launcher:`, members with gpus, and `pack:` in a
//! group (each is one task, one step).

use crate::group::Member;
use crate::prologue::Prologue;
use crate::script::{Header, ScriptError, comment, header, path_text};
use crate::worker::marker;
use std::fmt::Write as _;
use std::path::Path;
use twinflow_core::{Job, Resources, SlurmConfig, StepSpec, shell_quote};

/// What the Slurm executor refuses of a step in a coupling group, then the
/// shapes [`crate::ranks::shape_refusal`] decides for any step.
pub fn shape_refusal(step: &StepSpec) -> Option<String> {
    if let Some(why) = twinflow_core::group_container_refusal(step) {
        return Some(why);
    }
    if let Some(group) = step.group.as_deref() {
        let r = &step.resources;
        if crate::ranks::is_parallel(r, step.launcher) {
            return Some(format!(
                "runs each member of a coupling group (`group: {group}`) as one `srun` step of \
                 one process; a member of several ranks, nodes, whole nodes or with a \
                 `launcher:` is not run yet: drop those, or the step from the group"
            ));
        }
        if r.gpus > 0 {
            return Some(format!(
                "does not give gpus to a coupling group's members yet (`group: {group}`, \
                 `gpus: {}`)",
                r.gpus
            ));
        }
        if let Some(n) = step.pack.map(|p| p.tasks).filter(|n| *n > 1) {
            return Some(format!(
                "does not pack the members of a coupling group (`group: {group}`, `pack: {n}`): \
                 each runs as a step of the group's job; drop `pack:`"
            ));
        }
    }
    let mut rest = step.clone();
    // Groups run here (this module); the rest is decided as for any step.
    rest.group = None;
    crate::ranks::shape_refusal(&rest)
}

/// The resources of the group's allocation (see the module documentation),
/// as a model job for the `#SBATCH` header.
fn allocation(members: &[Member<'_>], first: &Job) -> Result<Job, ScriptError> {
    let name = first
        .group
        .as_ref()
        .map_or_else(|| first.step.clone(), |g| g.name.clone());
    let mems: Vec<Option<u64>> = members
        .iter()
        .map(|m| m.job.resources.memory_bytes)
        .collect();
    let memory_bytes = if mems.iter().all(Option::is_some) {
        Some(mems.iter().flatten().sum())
    } else if mems.iter().all(Option::is_none) {
        None
    } else {
        return Err(ScriptError::new(format!(
            "the members of coupling group `{name}` give `resources.memory` for some and not \
             for others; on slurm give it for all of them or for none"
        )));
    };
    for m in members {
        let r = &m.job.resources;
        if crate::ranks::is_parallel(r, m.job.launcher) || r.gpus > 0 {
            return Err(ScriptError::new(format!(
                "`{}` is a member of coupling group `{name}` with ranks, nodes, a launcher or \
                 gpus, which a group's job does not run yet",
                m.job.name
            )));
        }
    }
    let mut model = first.clone();
    model.name = format!("group `{name}`");
    model.launcher = None;
    model.resources = Resources {
        tasks: u32::try_from(members.len()).unwrap_or(u32::MAX),
        cpus: members
            .iter()
            .map(|m| m.job.resources.cpus)
            .max()
            .unwrap_or(1),
        memory_bytes,
        gpus: 0,
        gpu_type: None,
        nodes: None,
        tasks_per_node: None,
        exclusive: false,
        ..first.resources.clone()
    };
    Ok(model)
}

/// The largest member's time limit, `None` if a member has none.
fn time_seconds(members: &[Member<'_>]) -> Option<u64> {
    members
        .iter()
        .map(|m| m.job.resources.time_seconds)
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .max()
}

/// The batch script of one coupling-group instance attempt: the members'
/// steps started at once and watched (see the module documentation); its
/// own output goes to `log`, and `prologue` runs first.
pub fn render_group(
    members: &[Member<'_>],
    config: &SlurmConfig,
    log: &Path,
    prologue: Option<&Prologue<'_>>,
) -> Result<String, ScriptError> {
    let first = members
        .first()
        .ok_or_else(|| ScriptError::new("a coupling group without members".to_owned()))?;
    let model = allocation(members, first.job)?;
    let name = first
        .job
        .group
        .as_ref()
        .map_or_else(|| first.job.step.clone(), |g| g.name.clone());
    let mut out = String::from("#!/bin/sh\n");
    header(
        &mut out,
        &Header {
            job_name: format!("tf-{name}"),
            comment: comment("group", &first.status)?,
            chdir: path_text(log.parent().unwrap_or(Path::new("/")), "log directory")?,
            output: path_text(log, "submission log")?,
            error: None,
            array: None,
            time_seconds: time_seconds(members),
        },
        &model,
        config,
    )?;
    if prologue.is_some() {
        crate::prologue::open(&mut out);
    }
    if let Some(g) = &first.job.group {
        let dir = path_text(&g.dir, "group directory")?;
        let _ = writeln!(out, "mkdir -p -- {}", shell_quote(dir));
    }
    out.push_str(
        "tf_failed=\n\
         tf_end() {\n\
         if [ ! -s \"$2\" ]; then\n\
         if [ \"$1\" = 0 ]; then tf_rc=1; else tf_rc=$1; fi\n\
         printf '%s\\n' \"$tf_rc\" >\"$2.tmp\" && mv -f -- \"$2.tmp\" \"$2\"\n\
         fi\n\
         [ \"$(cat -- \"$2\")\" = 0 ] || tf_failed=1\n\
         }\n",
    );
    for (i, m) in members.iter().enumerate() {
        let r = &m.job.resources;
        let mut argv = vec![
            "srun".to_owned(),
            "--exact".to_owned(),
            "--ntasks=1".to_owned(),
            format!("--cpus-per-task={}", r.cpus.max(1)),
        ];
        if let Some(bytes) = r.memory_bytes {
            argv.push(format!("--mem={}M", bytes.div_ceil(1024 * 1024).max(1)));
        }
        argv.push("--export=ALL".to_owned());
        argv.push("/bin/sh".to_owned());
        argv.push(path_text(&m.script, "task script")?.to_owned());
        let line: Vec<String> = argv.iter().map(|w| shell_quote(w)).collect();
        let _ = writeln!(out, "{} &\ntf_pid_{i}=$!", line.join(" "));
    }
    let _ = writeln!(out, "tf_left={}\nwhile :; do", members.len());
    for (i, m) in members.iter().enumerate() {
        let status = shell_quote(path_text(&m.status, "status file")?);
        let cancel = marker(&m.status, ".cancel");
        let cancel = shell_quote(path_text(&cancel, "cancel marker")?);
        let _ = write!(
            out,
            "if [ -n \"$tf_pid_{i}\" ]; then\n\
             if kill -0 \"$tf_pid_{i}\" 2>/dev/null; then\n\
             if [ -n \"$tf_failed\" ] || [ -e {cancel} ]; then kill -TERM \"$tf_pid_{i}\" 2>/dev/null; fi\n\
             else\n\
             wait \"$tf_pid_{i}\"; tf_end \"$?\" {status}; tf_pid_{i}=; tf_left=$((tf_left - 1))\n\
             fi\n\
             fi\n"
        );
    }
    out.push_str(
        "[ \"$tf_left\" -gt 0 ] || break\n\
         sleep 1\n\
         done\n\
         if [ -n \"$tf_failed\" ]; then exit 1; fi\n\
         exit 0\n",
    );
    if let Some(p) = prologue {
        crate::prologue::close(&mut out, p)?;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "coupled_tests.rs"]
mod tests;
