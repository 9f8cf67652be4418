//! Finding the jobs of attempts whose job id was never stored: the process
//! died between `sbatch` and journalling the id (the runtime only has the
//! `slurm-queued:` handle). Every submission carries
//! `--comment=twinflow:<kind>:<status file of its first task>`
//! ([`crate::script::comment`]), so one `squeue --me -o '%i|%k'` finds it,
//! and its manifest (arrays and packs, beside the first task's logs) says
//! which task each element or member is. An attempt whose job Slurm has
//! already forgotten but whose status file is there has ended; the rest
//! never reached Slurm, or died without a trace, and run again.

use crate::cluster::Cluster;
use crate::parse::JobRef;
use crate::worker::Manifest;
use std::collections::HashMap;
use std::path::PathBuf;
use twinflow_core::{AttemptKey, ExecutorError};

/// A job found for attempts that were waiting for their id.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) job: JobRef,
    pub(crate) packed: bool,
    /// The attempts it carries, with their status files.
    pub(crate) members: Vec<(AttemptKey, PathBuf)>,
}

/// `(job, kind, first status file)` of each job of this user that twinflow
/// submitted, from `squeue --me -h -r -t all -o '%i|%k'`.
pub(crate) fn parse_comments(text: &str) -> Vec<(JobRef, String, PathBuf)> {
    text.lines()
        .filter_map(|line| {
            let (id, comment) = line.split_once('|')?;
            let (kind, status) = comment.trim().strip_prefix("twinflow:")?.split_once(':')?;
            Some((
                JobRef::parse(id.trim())?,
                kind.to_owned(),
                PathBuf::from(status),
            ))
        })
        .collect()
}

/// The manifest of a multi-task submission whose first task writes `first`.
pub(crate) fn manifest_path(kind: &str, first: &std::path::Path) -> PathBuf {
    first.with_extension(format!("{kind}.json"))
}

/// Finds the jobs of `queued` (status file on the cluster -> attempt) in
/// Slurm, removing the attempts it finds from `queued`.
pub(crate) async fn find_jobs(
    cluster: &dyn Cluster,
    queued: &mut HashMap<PathBuf, AttemptKey>,
) -> Result<Vec<Found>, ExecutorError> {
    let args = ["--me", "-h", "-r", "-t", "all", "-o", "%i|%k"].map(str::to_owned);
    let rows = parse_comments(&cluster.command("squeue", &args).await?);
    let mut wanted: Vec<PathBuf> = rows
        .iter()
        .filter(|(_, kind, _)| kind != "single")
        .map(|(_, kind, first)| manifest_path(kind, first))
        .collect();
    wanted.sort();
    wanted.dedup();
    let texts = cluster.read_files(wanted.clone()).await;
    let manifests: HashMap<PathBuf, Vec<PathBuf>> = wanted
        .into_iter()
        .zip(texts)
        .filter_map(|(path, text)| {
            let m: Manifest = serde_json::from_str(&text?).ok()?;
            Some((path, m.tasks.into_iter().map(|t| t.status).collect()))
        })
        .collect();
    let mut found = Vec::new();
    for (job, kind, first) in rows {
        let statuses: Vec<PathBuf> = match (kind.as_str(), &job) {
            ("single", JobRef::Job(_)) => vec![first],
            ("array", JobRef::ArrayTask { task, .. }) => manifests
                .get(&manifest_path(&kind, &first))
                .and_then(|s| s.get(*task as usize).cloned())
                .into_iter()
                .collect(),
            ("pack" | "group", JobRef::Job(_)) => manifests
                .get(&manifest_path(&kind, &first))
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let members: Vec<(AttemptKey, PathBuf)> = statuses
            .into_iter()
            .filter_map(|s| Some((queued.remove(&s)?, s)))
            .collect();
        if !members.is_empty() {
            found.push(Found {
                job,
                // A group's members share their job as a pack's do.
                packed: kind == "pack" || kind == "group",
                members,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::JobId;

    #[test]
    fn comments_name_the_kind_and_the_first_status_file() {
        let text = "41|twinflow:single:/r/logs/a/0.0.status\n\
                    42_3|twinflow:array:/r/logs/b/0.0.status\n\
                    43|(null)\n\
                    44|someone else's comment\n\
                    45|twinflow:pack:/r/logs/c/7.1.status\n";
        assert_eq!(
            parse_comments(text),
            [
                (
                    JobRef::Job(JobId(41)),
                    "single".to_owned(),
                    PathBuf::from("/r/logs/a/0.0.status")
                ),
                (
                    JobRef::ArrayTask {
                        array: JobId(42),
                        task: 3
                    },
                    "array".to_owned(),
                    PathBuf::from("/r/logs/b/0.0.status")
                ),
                (
                    JobRef::Job(JobId(45)),
                    "pack".to_owned(),
                    PathBuf::from("/r/logs/c/7.1.status")
                ),
            ]
        );
        assert_eq!(
            manifest_path("array", std::path::Path::new("/r/logs/b/0.0.status")),
            PathBuf::from("/r/logs/b/0.0.array.json")
        );
    }
}
