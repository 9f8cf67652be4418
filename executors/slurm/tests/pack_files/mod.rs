//! What the pack worker's tests share: a pack's member scripts and
//! manifest written as the executor writes them, and a member's status.
#![expect(clippy::unwrap_used, reason = "test support")]

use std::path::{Path, PathBuf};
use twinflow_core::Job;
use twinflow_executor_slurm::group::{Member, pack_manifest};
use twinflow_executor_slurm::parse::parse_status_file;
use twinflow_executor_slurm::script::render_member;

/// Writes the members' scripts and the manifest; returns the manifest.
pub(crate) fn write_pack(dir: &Path, jobs: &[Job]) -> PathBuf {
    let members: Vec<Member<'_>> = jobs
        .iter()
        .map(|j| Member {
            job: j,
            script: j.stdout.with_extension("sh"),
            status: j.stdout.with_extension("status"),
        })
        .collect();
    for m in &members {
        std::fs::write(&m.script, render_member(m.job, &m.status).unwrap()).unwrap();
    }
    let manifest = dir.join("pack.json");
    std::fs::write(&manifest, pack_manifest(&members)).unwrap();
    manifest
}

/// The status `job`'s script wrote, if it wrote one.
pub(crate) fn status(job: &Job) -> Option<i32> {
    parse_status_file(&std::fs::read_to_string(job.stdout.with_extension("status")).ok()?)
}
