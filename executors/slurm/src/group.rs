//! Scripts of submissions that carry several tasks of one step: a job array
//! (one element per task) and a packed job (several tasks inside one
//! allocation, run by `twinflow worker`, see [`crate::worker`]).
//!
//! Either way every task gets a script of its own
//! ([`crate::script::render_member`]) that writes its logs and its status
//! file exactly as a job of its own would, so the executor follows each
//! task the same way whatever carried it. The submission's own output (what
//! Slurm or the worker has to say) goes to a log next to the tasks' logs.

use crate::prologue::Prologue;
use crate::script::{Header, ScriptError, Wrapping, comment, header, path_text};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use twinflow_core::{Job, SlurmConfig, shell_quote};

/// One task of a multi-task submission, with the files it owns.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// The task's attempt.
    pub job: &'a Job,
    /// Its script ([`crate::script::render_member`]).
    pub script: PathBuf,
    /// Its status file.
    pub status: PathBuf,
}

/// The name of a multi-task job: `tf-<step>`; steps are identifiers, and a
/// name sbatch cannot take is refused by the header like any other value.
fn job_name(members: &[Member<'_>]) -> String {
    members
        .first()
        .map_or_else(|| "tf".to_owned(), |m| format!("tf-{}", m.job.step))
}

fn first<'m, 'a>(members: &'m [Member<'a>]) -> Result<&'m Member<'a>, ScriptError> {
    members
        .first()
        .ok_or_else(|| ScriptError::new("a submission without tasks".to_owned()))
}

/// `#!/bin/sh` and the `#SBATCH` header of a submission carrying
/// `members`, with its own output going to `log`; its resources are those
/// of `model` (else of the first member).
fn start_script(
    kind: &str,
    members: &[Member<'_>],
    config: &SlurmConfig,
    log: &Path,
    (array, time_seconds): (Option<String>, Option<u64>),
    model: Option<&Job>,
) -> Result<String, ScriptError> {
    let first = first(members)?;
    let mut out = String::from("#!/bin/sh\n");
    header(
        &mut out,
        &Header {
            job_name: job_name(members),
            comment: comment(kind, &first.status)?,
            chdir: path_text(log.parent().unwrap_or(Path::new("/")), "log directory")?,
            output: path_text(log, "submission log")?,
            error: None,
            array,
            time_seconds,
        },
        model.unwrap_or(first.job),
        config,
    )?;
    Ok(out)
}

/// The batch script of a job array with one element per member, element
/// `i` running member `i`; `log` takes the elements' own output (its `%A`
/// and `%a` are Slurm's array job id and index). `throttle` (the
/// executor's `array_throttle`) adds `%N`: at most N elements run at once;
/// it is left out when the array has no more than N elements, where it
/// changes nothing. A throttle of 0 is refused.
pub fn render_array(
    members: &[Member<'_>],
    config: &SlurmConfig,
    log: &Path,
    throttle: Option<u32>,
) -> Result<String, ScriptError> {
    render_array_with(members, config, log, throttle, None)
}

/// [`render_array`], each element running `prologue` first
/// ([`crate::prologue`]).
pub fn render_array_with(
    members: &[Member<'_>],
    config: &SlurmConfig,
    log: &Path,
    throttle: Option<u32>,
    prologue: Option<&Prologue<'_>>,
) -> Result<String, ScriptError> {
    let time = first(members)?.job.resources.time_seconds;
    let mut array = format!("0-{}", members.len() - 1);
    match throttle {
        Some(0) => {
            return Err(ScriptError::new(
                "an array throttle of 0 lets no element run; it must be at least 1".to_owned(),
            ));
        }
        Some(n) if (n as usize) < members.len() => {
            let _ = write!(array, "%{n}");
        }
        _ => {}
    }
    let mut out = start_script("array", members, config, log, (Some(array), time), None)?;
    if prologue.is_some() {
        crate::prologue::open(&mut out);
    }
    out.push_str("case \"$SLURM_ARRAY_TASK_ID\" in\n");
    for (i, m) in members.iter().enumerate() {
        let script = path_text(&m.script, "task script")?;
        let _ = writeln!(out, "{i}) exec /bin/sh {} ;;", shell_quote(script));
    }
    out.push_str("esac\n");
    out.push_str("echo \"twinflow: no task for array index $SLURM_ARRAY_TASK_ID\" >&2\nexit 1\n");
    if let Some(p) = prologue {
        crate::prologue::close(&mut out, p)?;
    }
    Ok(out)
}

/// The batch script of a packed job: `worker` (the `twinflow` binary) runs
/// the members listed in `manifest`; the allocation is one task's
/// resources, for the sum of their time limits, or, for a parallel pack
/// (`pack: {tasks, parallel}`), K tasks' resources for ceil(N/K) task
/// times ([`crate::pack_parallel`]).
pub fn render_pack(
    members: &[Member<'_>],
    config: &SlurmConfig,
    worker: &Path,
    manifest: &Path,
    log: &Path,
) -> Result<String, ScriptError> {
    render_pack_with(members, config, worker, manifest, log, &Wrapping::default())
}

/// [`render_pack`], running `how.prologue` first and the members in
/// `how.shared` ([`crate::pack_container`]); `how.container` is the
/// members' own business (their scripts).
pub fn render_pack_with(
    members: &[Member<'_>],
    config: &SlurmConfig,
    worker: &Path,
    manifest: &Path,
    log: &Path,
    how: &Wrapping<'_>,
) -> Result<String, ScriptError> {
    let first = first(members)?.job;
    let width = crate::pack_parallel::width(first, members.len());
    let time = crate::pack_parallel::time_limit(first, members.len(), width);
    let model = match crate::pack_parallel::is_parallel(members) {
        true => Some(crate::pack_parallel::allocation(members)?),
        false => None,
    };
    let mut out = start_script("pack", members, config, log, (None, time), model.as_ref())?;
    if how.prologue.is_some() {
        crate::prologue::open(&mut out);
    }
    let run = format!(
        "{} worker {}",
        shell_quote(path_text(worker, "worker binary")?),
        shell_quote(path_text(manifest, "pack manifest")?)
    );
    match how.shared {
        Some(shared) => {
            crate::prologue::push_lines(&mut out, &shared.pack_lines(members, &run)?);
        }
        None => {
            let _ = writeln!(out, "exec {run}");
        }
    }
    if let Some(p) = how.prologue {
        crate::prologue::close(&mut out, p)?;
    }
    Ok(out)
}

/// The manifest `twinflow worker` reads (see [`crate::worker::Manifest`]).
pub fn pack_manifest(members: &[Member<'_>]) -> String {
    let parallel = crate::pack_parallel::is_parallel(members);
    let first = members.first().map(|m| m.job);
    let manifest = crate::worker::Manifest {
        format: crate::worker::MANIFEST_FORMAT.to_owned(),
        cpus_per_task: first.map_or(1, |j| j.resources.cpus.max(1)),
        gpus_per_task: first.map_or(0, |j| j.resources.gpus),
        parallel: match (parallel, first) {
            (true, Some(j)) => crate::pack_parallel::width(j, members.len()),
            _ => 0,
        },
        launch: match (parallel, first) {
            (true, Some(j)) => crate::pack_parallel::step_launch(j),
            _ => Vec::new(),
        },
        task_seconds: first
            .filter(|_| parallel)
            .and_then(|j| j.resources.time_seconds),
        time_seconds: first.filter(|_| parallel).and_then(|j| {
            crate::pack_parallel::time_limit(
                j,
                members.len(),
                crate::pack_parallel::width(j, members.len()),
            )
        }),
        tasks: members
            .iter()
            .map(|m| crate::worker::PackTask {
                script: m.script.clone(),
                status: m.status.clone(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&manifest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::render_member;
    use twinflow_core::{AttemptKey, Resources, TaskId};

    const RUN: &str = "/scratch/tf/runs/r-20261125-0001";

    fn job(task: u32, i: u32) -> Job {
        let logs = Path::new(RUN).join("logs/bird");
        Job {
            key: AttemptKey {
                task: TaskId(task),
                attempt: 0,
            },
            name: format!("bird[species={i}]"),
            script: "predict --species \"$SPECIES\" > out.csv".to_owned(),
            env: vec![("SPECIES".to_owned(), format!("it's {i}"))],
            workdir: Path::new(RUN).join(format!("work/bird/{i}")),
            stdout: logs.join(format!("{i}.0.out")),
            stderr: logs.join(format!("{i}.0.err")),
            resources: Resources {
                cpus: 2,
                memory_bytes: Some(512 << 20),
                time_seconds: Some(40),
                gpus: 0,
                gpu_type: None,
                ..Resources::default()
            },
            step: "bird".to_owned(),
            pack: None,
            launcher: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            group: None,
        }
    }

    fn members(jobs: &[Job]) -> Vec<Member<'_>> {
        jobs.iter()
            .map(|job| Member {
                job,
                script: job.stdout.with_extension("sh"),
                status: job.stdout.with_extension("status"),
            })
            .collect()
    }

    fn config() -> SlurmConfig {
        SlurmConfig {
            partition: Some("small".to_owned()),
            account: Some("project_465000001".to_owned()),
            ..SlurmConfig::default()
        }
    }

    #[test]
    fn array_of_three_tasks() {
        let jobs: Vec<Job> = (0..3).map(|i| job(10 + i, i)).collect();
        let log = Path::new(RUN).join("logs/bird/bird.array-%A_%a.log");
        insta::assert_snapshot!(render_array(&members(&jobs), &config(), &log, Some(2)).unwrap());
    }

    #[test]
    fn pack_of_three_tasks() {
        let jobs: Vec<Job> = (0..3).map(|i| job(10 + i, i)).collect();
        let first = &jobs[0].stdout;
        let script = render_pack(
            &members(&jobs),
            &config(),
            Path::new("/appl/twinflow/bin/twinflow"),
            &first.with_extension("pack.json"),
            &first.with_extension("pack.log"),
        )
        .unwrap();
        insta::assert_snapshot!(script);
        insta::assert_snapshot!("pack_manifest", pack_manifest(&members(&jobs)));
    }

    #[test]
    fn arrays_and_packs_of_gpu_tasks() {
        let jobs: Vec<Job> = (0..3)
            .map(|i| {
                let mut j = job(10 + i, i);
                j.resources.gpus = 2;
                j.resources.gpu_type = Some("a100".to_owned());
                j
            })
            .collect();
        let log = Path::new(RUN).join("logs/bird/bird.array-%A_%a.log");
        // Each element of an array is a job of its own: the header's GPUs
        // are per element.
        let array = render_array(&members(&jobs), &config(), &log, None).unwrap();
        let gres: Vec<&str> = array.lines().filter(|l| l.contains("gpu")).collect();
        assert_eq!(gres, ["#SBATCH --gres=gpu:a100:2"]);
        // A pack's allocation is one task's GPUs; the worker shares them out.
        let first = &jobs[0].stdout;
        let pack = render_pack(
            &members(&jobs),
            &config(),
            Path::new("/appl/twinflow/bin/twinflow"),
            &first.with_extension("pack.json"),
            &first.with_extension("pack.log"),
        )
        .unwrap();
        let gres: Vec<&str> = pack.lines().filter(|l| l.contains("gpu")).collect();
        assert_eq!(gres, ["#SBATCH --gres=gpu:a100:2"]);
        let manifest: serde_json::Value =
            serde_json::from_str(&pack_manifest(&members(&jobs))).unwrap();
        assert_eq!(manifest["gpus_per_task"], 2);
        let plain: serde_json::Value =
            serde_json::from_str(&pack_manifest(&members(&[job(1, 1)]))).unwrap();
        assert!(plain.get("gpus_per_task").is_none(), "{plain}");
    }

    #[test]
    fn member_script() {
        let job = job(10, 0);
        insta::assert_snapshot!(render_member(&job, &job.stdout.with_extension("status")).unwrap());
    }

    #[test]
    fn the_throttle_is_rendered_only_where_it_limits_something() {
        let jobs: Vec<Job> = (0..5).map(|i| job(10 + i, i)).collect();
        let log = Path::new(RUN).join("logs/bird/bird.array-%A_%a.log");
        let array_line = |throttle: Option<u32>| {
            let script = render_array(&members(&jobs), &config(), &log, throttle).unwrap();
            script
                .lines()
                .find(|l| l.starts_with("#SBATCH --array="))
                .unwrap()
                .to_owned()
        };
        assert_eq!(array_line(Some(2)), "#SBATCH --array=0-4%2");
        assert_eq!(array_line(Some(4)), "#SBATCH --array=0-4%4");
        // No more elements than the throttle: `%N` would change nothing.
        assert_eq!(array_line(Some(5)), "#SBATCH --array=0-4");
        assert_eq!(array_line(Some(500)), "#SBATCH --array=0-4");
        assert_eq!(array_line(None), "#SBATCH --array=0-4");
        let zero = render_array(&members(&jobs), &config(), &log, Some(0)).unwrap_err();
        assert!(zero.to_string().contains("throttle of 0"), "{zero}");
    }

    #[test]
    fn a_submission_without_tasks_is_refused() {
        let log = Path::new(RUN).join("x.log");
        assert!(render_array(&[], &config(), &log, None).is_err());
    }
}
