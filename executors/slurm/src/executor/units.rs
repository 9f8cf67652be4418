//! Pure pieces of the Slurm executor: what one `sbatch` carries
//! ([`Unit`]), how attempts are grouped into units, and the handles and
//! file names of attempts.

use super::*;

/// What one `sbatch` carries.
#[derive(Debug)]
pub(super) enum Unit {
    Single(Box<Job>),
    Array(Vec<Job>),
    /// Run by `twinflow worker` from this binary.
    Pack(Vec<Job>, PathBuf),
    /// The members of one coupling-group instance attempt, one `srun`
    /// step each ([`crate::coupled`]).
    Group(Vec<Job>),
}

impl Unit {
    /// Slurm jobs it makes.
    pub(super) fn cost(&self) -> u32 {
        match self {
            Self::Single(_) | Self::Pack(..) | Self::Group(_) => 1,
            Self::Array(jobs) => u32::try_from(jobs.len()).unwrap_or(u32::MAX),
        }
    }

    pub(super) fn into_jobs(self) -> Vec<Job> {
        match self {
            Self::Single(job) => vec![*job],
            Self::Array(jobs) | Self::Pack(jobs, _) | Self::Group(jobs) => jobs,
        }
    }
}

/// Where an attempt is, from its handle.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed {
    /// In the executor's queue, not in Slurm's (as far as the runtime
    /// knows: it may have been submitted since, see [`crate::recover`]).
    Queued { status: PathBuf },
    /// A job or array element; `packed` when it shares a packed job.
    Job {
        job: JobRef,
        status: PathBuf,
        packed: bool,
    },
}

pub(super) fn handle_of(job: &JobRef, status: &Path, packed: bool) -> Handle {
    let kind = if packed { "slurm-pack" } else { "slurm" };
    Handle(format!("{kind}:{job}:{}", status.display()))
}

pub(super) fn parse_handle(handle: &Handle) -> Option<Parsed> {
    if let Some(status) = handle.0.strip_prefix("slurm-queued:") {
        return Some(Parsed::Queued {
            status: PathBuf::from(status),
        });
    }
    let (packed, rest) = match handle.0.strip_prefix("slurm-pack:") {
        Some(rest) => (true, rest),
        None => (false, handle.0.strip_prefix("slurm:")?),
    };
    let (job, path) = rest.split_once(':')?;
    Some(Parsed::Job {
        job: JobRef::parse(job)?,
        status: PathBuf::from(path),
        packed,
    })
}

/// The files of an attempt, beside its standard output.
pub(super) fn status_file(job: &Job) -> PathBuf {
    job.stdout.with_extension("status")
}

/// Tasks per packed job for `job` (1: no packing). A task of several
/// ranks or nodes is never packed ([`crate::ranks`]): a pack's tasks share
/// one task's allocation (in a parallel pack, one rank under `launcher:
/// srun` is one step: [`crate::pack_parallel::packable`]).
pub(super) fn pack_size(job: &Job, can_pack: bool) -> usize {
    if !can_pack
        || job.group.is_some()
        || !crate::pack_parallel::packable(&job.resources, job.launcher, job.pack)
    {
        return 1;
    }
    match (job.pack, job.resources.time_seconds) {
        (Some(p), _) => p.tasks.max(1) as usize,
        (None, Some(t)) if t < 60 => (600 / t.max(1)).clamp(2, 100) as usize,
        _ => 1,
    }
}

/// Groups `jobs` (in order of first appearance) into submissions; packs
/// run `worker` (none: no packing). The members of a coupling-group
/// instance attempt go out together, as one job ([`Unit::Group`]).
pub(super) fn units(jobs: Vec<Job>, max_array: usize, worker: Option<&Path>) -> Vec<Unit> {
    let mut coupled: Vec<Vec<Job>> = Vec::new();
    let mut groups: Vec<(usize, Vec<Job>)> = Vec::new();
    for job in jobs {
        if let Some(g) = &job.group {
            let same = |m: &Vec<Job>| m[0].group.as_ref().is_some_and(|h| h.same_instance(g));
            match coupled.iter_mut().find(|m| same(m)) {
                Some(members) => members.push(job),
                None => coupled.push(vec![job]),
            }
            continue;
        }
        let size = pack_size(&job, worker.is_some());
        match groups.iter_mut().find(|(s, g)| {
            *s == size
                && g[0].step == job.step
                && g[0].resources == job.resources
                && g[0].pack == job.pack
        }) {
            Some((_, g)) => g.push(job),
            None => groups.push((size, vec![job])),
        }
    }
    let mut units: Vec<Unit> = coupled.into_iter().map(Unit::Group).collect();
    for (size, jobs) in groups {
        let chunk = if size > 1 { size } else { max_array.max(1) };
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let mut part: Vec<Job> = jobs.by_ref().take(chunk).collect();
            units.push(match part.pop() {
                Some(job) if part.is_empty() => Unit::Single(Box::new(job)),
                Some(job) => {
                    part.push(job);
                    match worker {
                        Some(worker) if size > 1 => Unit::Pack(part, worker.to_path_buf()),
                        _ => Unit::Array(part),
                    }
                }
                None => continue,
            });
        }
    }
    units
}

pub(super) fn group_members(jobs: &[Job]) -> Vec<GroupMember<'_>> {
    jobs.iter()
        .map(|job| GroupMember {
            job,
            script: job.stdout.with_extension("sh"),
            status: status_file(job),
        })
        .collect()
}

pub(super) fn member_files(
    members: &[GroupMember<'_>],
    containers: &crate::containers::Containers,
    shared: Option<&crate::pack_container::PackContainer>,
    prologue: Option<&crate::prologue::Prologue<'_>>,
) -> Result<Vec<(PathBuf, String)>, ExecutorError> {
    members
        .iter()
        .map(|m| {
            let container = containers.of(&m.job.step);
            let how = script::Wrapping {
                container: container.as_deref(),
                shared,
                prologue,
            };
            let text = script::render_member_with(m.job, &m.status, &how)?;
            Ok((m.script.clone(), text))
        })
        .collect()
}
