//! Pack container benchmark (issue 18): what a container costs the tasks
//! of packed Slurm jobs, with one container per member and with one
//! container per pack, against the real local Slurm (`deploy/dev/slurm-up`)
//! and podman (`deploy/dev/podman-up`, `localhost/twinflow-busybox:1`).
//!
//! N tiny tasks (`echo i > out.txt`; default 200) go out as packed jobs of
//! P tasks each (default 25: 8 packs of one CPU, half of the 16 CPUs
//! `scripts/test` gives the test cluster; `--pack 200` for a single pack).
//! A pack's worker runs its members one after another, so one repetition
//! of a single pack of 200 takes over five minutes here. Three ways:
//!
//! - `twinflow bare`: no container;
//! - `twinflow per member`: each member its own `podman run` (what every
//!   pack did before packs shared a container, and what Apptainer packs
//!   still do: `script::Wrapping { container, shared: None }`);
//! - `twinflow shared`: one container per pack, each member a `podman
//!   exec` in it ([`twinflow_executor_slurm::pack_container`]).
//!
//! Each is rendered with the executor's own functions (member scripts,
//! manifest, pack script), written and `sbatch`ed as the executor does, and
//! run by `<this binary> worker MANIFEST`, which calls the same
//! `worker::run_pack` as `twinflow worker`. Beside them, the floors,
//! measured in the same run: the same tasks as hand-written sbatch jobs
//! (one per pack) running them in a shell loop, bare, with one `podman run`
//! each, and with one `podman exec` each in a container the job starts.
//! Every figure is wall time from the first file written (before `sbatch`)
//! to the last task's status file, seen by polling the files every 50 ms
//! (no Slurm queries), so it holds Slurm's scheduling of the jobs but not
//! the engine's polling (see the `rpc` benchmark for that).
//!
//! It prints each wall time, the cost per task (wall time over tasks per
//! pack: the packs run side by side, their members one by one), the
//! container starts podman recorded, and the ratios; it asserts no times.
//!
//! Run: `deploy/dev/slurm-up && deploy/dev/podman-up && source
//! /tmp/twinflow-slurm/env && cargo bench -p twinflow-executor-slurm
//! --bench pack_containers` (`-- --tasks N`, `-- --pack P`, `-- --reps R`).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinflow_core::{
    AttemptKey, ContainerRuntime, ContainerSpec, ImageRef, Job, Resources, SlurmConfig, TaskId,
};
use twinflow_executor_slurm::containers::StepContainer;
use twinflow_executor_slurm::group::{Member, pack_manifest, render_pack_with};
use twinflow_executor_slurm::pack_container::PackContainer;
use twinflow_executor_slurm::script::{Wrapping, render_member_with};
use twinflow_launch::{HostUser, ImageResolver, LocalRunner, PodmanResolver};

#[path = "support/sbatch_bench.rs"]
mod sbatch_bench;
use sbatch_bench::{sbatch, serve_as_worker, succeeds, wait_for};

const IMAGE: &str = "localhost/twinflow-busybox:1";
/// Each task's time limit: a pack asks for the sum (200 tasks: 50 min,
/// within the debug partition's hour).
const TASK_SECONDS: u64 = 15;
/// How long one way may take before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(900);

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Bare,
    PerMember,
    Shared,
}

#[derive(Clone, Copy)]
enum Floor {
    Bare,
    Run,
    Exec,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // This binary is also the packs' worker, as `twinflow worker` is.
    if serve_as_worker(&args) {
        return;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let n = value("--tasks").unwrap_or(200).max(1);
    let pack = value("--pack").unwrap_or(25).clamp(2, n.max(2));
    let reps = value("--reps").unwrap_or(1).max(1);
    if !succeeds("scontrol", &["show", "config"]) {
        println!("skipped: no Slurm here (deploy/dev/slurm-up; source /tmp/twinflow-slurm/env)");
        return;
    }
    if !succeeds("podman", &["image", "exists", IMAGE]) {
        println!("skipped: podman or {IMAGE} is missing (deploy/dev/podman-up)");
        return;
    }
    let container = Arc::new(busybox());
    let packs = n.div_ceil(pack);
    println!(
        "pack container benchmark: {n} tasks in {packs} packs of up to {pack} \
         (one CPU each), median of {reps} (times in seconds)"
    );
    let root = tempfile::tempdir().expect("temp dir");
    let mut figures: Vec<(&str, Vec<f64>, usize)> = [
        "floor bare (sh loop)",
        "twinflow bare",
        "floor podman run",
        "twinflow per member",
        "floor podman exec",
        "twinflow shared",
    ]
    .into_iter()
    .map(|name| (name, Vec::new(), 0))
    .collect();
    for rep in 0..reps {
        let tag = format!("pb{}r{rep}", std::process::id());
        let measures = [
            floor(root.path(), &format!("{tag}-fb"), Floor::Bare, n, pack),
            twinflow(
                root.path(),
                &format!("{tag}-b"),
                Way::Bare,
                n,
                pack,
                &container,
            ),
            floor(root.path(), &format!("{tag}-fr"), Floor::Run, n, pack),
            twinflow(
                root.path(),
                &format!("{tag}-m"),
                Way::PerMember,
                n,
                pack,
                &container,
            ),
            floor(root.path(), &format!("{tag}-fe"), Floor::Exec, n, pack),
            twinflow(
                root.path(),
                &format!("{tag}-s"),
                Way::Shared,
                n,
                pack,
                &container,
            ),
        ];
        let line: Vec<String> = figures
            .iter_mut()
            .zip(measures)
            .map(|((name, secs, starts), (wall, started))| {
                secs.push(wall);
                *starts = started;
                format!("{name} {wall:.1}")
            })
            .collect();
        eprintln!("  rep {rep}: {}", line.join(", "));
    }
    let wall: Vec<f64> = figures.iter_mut().map(|(_, s, _)| median(s)).collect();
    let per_task = |secs: f64| secs / pack.min(n) as f64 * 1e3;
    println!(
        "{:<22} {:>8} {:>14} {:>18}",
        "", "wall", "per task", "containers started"
    );
    for ((name, _, starts), secs) in figures.iter().zip(&wall) {
        println!(
            "{name:<22} {secs:>8.1} {:>11.0} ms {starts:>18}",
            per_task(*secs)
        );
    }
    let [floor_bare, bare, floor_run, member, floor_exec, shared] = wall[..] else {
        unreachable!("six figures")
    };
    println!(
        "container cost per task: per member {:.0} ms, shared {:.0} ms (each minus twinflow bare)",
        per_task(member - bare),
        per_task(shared - bare)
    );
    println!(
        "shared / per member: {:.2}x; against their floors: bare {:.2}x (sh loop), \
         per member {:.2}x (podman run), shared {:.2}x (podman exec)",
        shared / member,
        bare / floor_bare,
        member / floor_run,
        shared / floor_exec
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The image under podman, resolved as the executor resolves it
/// (`PodmanResolver` on this machine), run as this user.
fn busybox() -> StepContainer {
    let spec = ContainerSpec {
        image: IMAGE.to_owned(),
        runtime: Some(ContainerRuntime::Podman),
        options: Vec::new(),
    };
    let image = ImageRef::parse(IMAGE).expect("image reference");
    let resolved = PodmanResolver::new(ContainerRuntime::Podman, LocalRunner::new())
        .resolve(&image)
        .expect("resolve the image");
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).output().expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    StepContainer {
        spec,
        resolved,
        user: HostUser {
            uid: id("-u"),
            gid: id("-g"),
        },
        gpu_vendor: twinflow_core::GpuVendor::default(),
    }
}

/// Task `i` of a run in `run`, as the engine hands it to the executor.
fn job(run_id: &str, run: &Path, i: usize, pack: usize) -> Job {
    let logs = run.join("logs/task");
    let workdir = run.join(format!("work/task/{i}"));
    std::fs::create_dir_all(&workdir).expect("task directory");
    std::fs::create_dir_all(&logs).expect("log directory");
    Job {
        key: AttemptKey {
            task: TaskId(u32::try_from(i).expect("task id")),
            attempt: 0,
        },
        name: format!("task[i={i}]"),
        script: format!("echo {i} > out.txt"),
        env: vec![
            ("TWINFLOW_RUN_ID".to_owned(), run_id.to_owned()),
            ("TWINFLOW_RUN_DIR".to_owned(), run.display().to_string()),
        ],
        workdir,
        stdout: logs.join(format!("{i}.0.out")),
        stderr: logs.join(format!("{i}.0.err")),
        resources: Resources {
            cpus: 1,
            time_seconds: Some(TASK_SECONDS),
            ..Resources::default()
        },
        step: "task".to_owned(),
        pack: Some(twinflow_core::PackSpec::sequential(
            u32::try_from(pack).expect("pack size"),
        )),
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// Runs the tasks as packed jobs `way`; wall seconds and the containers
/// podman started for them.
fn twinflow(
    root: &Path,
    run_id: &str,
    way: Way,
    n: usize,
    pack: usize,
    container: &Arc<StepContainer>,
) -> (f64, usize) {
    let run = root.join(run_id);
    let jobs: Vec<Job> = (0..n).map(|i| job(run_id, &run, i, pack)).collect();
    let worker = std::env::current_exe().expect("this binary");
    let config = SlurmConfig::default();
    let since = podman_now();
    let start = Instant::now();
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    for chunk in jobs.chunks(pack) {
        let members: Vec<Member<'_>> = chunk
            .iter()
            .map(|job| Member {
                job,
                script: job.stdout.with_extension("sh"),
                status: job.stdout.with_extension("status"),
            })
            .collect();
        let shared =
            (way == Way::Shared).then(|| PackContainer::new(&chunk[0], Arc::clone(container)));
        let own = (way == Way::PerMember).then_some(container.as_ref());
        let how = Wrapping {
            container: own,
            shared: shared.as_ref(),
            prologue: None,
        };
        for m in &members {
            let text = render_member_with(m.job, &m.status, &how).expect("member script");
            std::fs::write(&m.script, text).expect("write member script");
            statuses.push((m.status.clone(), m.job.workdir.join("out.txt")));
        }
        let first = &chunk[0].stdout;
        let manifest = first.with_extension("pack.json");
        std::fs::write(&manifest, pack_manifest(&members)).expect("write manifest");
        let how = Wrapping {
            container: None,
            ..how
        };
        let log = first.with_extension("pack.log");
        let script = render_pack_with(&members, &config, &worker, &manifest, &log, &how)
            .expect("pack script");
        let path = first.with_extension("pack.sbatch");
        std::fs::write(&path, script).expect("write pack script");
        ids.push(sbatch(&path));
    }
    let files: Vec<&PathBuf> = statuses.iter().map(|(s, _)| s).collect();
    wait_for(&files, &ids, start, LIMIT);
    let secs = start.elapsed().as_secs_f64();
    check(&statuses, run_id);
    let prefix = format!("tf-{run_id}-");
    (secs, started(&since, &prefix))
}

/// The floor: one hand-written sbatch job per pack running its tasks in a
/// shell loop; wall seconds and the containers podman started for them.
fn floor(root: &Path, run_id: &str, how: Floor, n: usize, pack: usize) -> (f64, usize) {
    let run = root.join(run_id);
    let mut scripts = Vec::new();
    let mut statuses = Vec::new();
    for (k, base) in (0..n).step_by(pack).enumerate() {
        let last = (base + pack).min(n) - 1;
        for i in base..=last {
            let d = run.join(i.to_string());
            std::fs::create_dir_all(&d).expect("floor task directory");
            statuses.push((run.join(format!("{i}.status")), d.join("out.txt")));
        }
        let r = run.display();
        let name = format!("{run_id}-{k}");
        let (before, task, after) = match how {
            Floor::Bare => (
                String::new(),
                "(cd \"$d\" && echo $i > out.txt)".to_owned(),
                "",
            ),
            Floor::Run => (
                String::new(),
                format!(
                    "podman run --rm --init --network=host --volume \"$d:$d\" --workdir \"$d\" \
                     --name {run_id}-$i {IMAGE} /bin/sh -e -c \"echo $i > out.txt\""
                ),
                "",
            ),
            Floor::Exec => (
                format!(
                    "podman run --detach --rm --init --network=host --volume {r}:{r} \
                     --name {name} {IMAGE} /bin/sh -c 'sleep 3600' >/dev/null\n"
                ),
                format!("podman exec --workdir \"$d\" {name} /bin/sh -e -c \"echo $i > out.txt\""),
                "podman rm -f --time=0 \"$NAME\" >/dev/null\n",
            ),
        };
        let text = format!(
            "#!/bin/sh\n#SBATCH --job-name=floor\n#SBATCH --output={r}/floor-{k}.log\n\
             #SBATCH --cpus-per-task=1\n#SBATCH --time={}\nNAME={name}\n{before}\
             for i in $(seq {base} {last}); do\n  d={r}/$i\n  {task}\n  echo $? > {r}/$i.status\ndone\n{after}",
            (TASK_SECONDS * pack as u64).div_ceil(60)
        );
        scripts.push((run.join(format!("floor-{k}.sbatch")), text));
    }
    let since = podman_now();
    let start = Instant::now();
    let ids: Vec<String> = scripts
        .iter()
        .map(|(path, text)| {
            std::fs::write(path, text).expect("write floor script");
            sbatch(path)
        })
        .collect();
    let files: Vec<&PathBuf> = statuses.iter().map(|(s, _)| s).collect();
    wait_for(&files, &ids, start, LIMIT);
    let secs = start.elapsed().as_secs_f64();
    check(&statuses, run_id);
    (secs, started(&since, &format!("{run_id}-")))
}

/// Every task exited 0 and wrote its number.
fn check(statuses: &[(PathBuf, PathBuf)], run_id: &str) {
    for (i, (status, out)) in statuses.iter().enumerate() {
        let code = std::fs::read_to_string(status).unwrap_or_default();
        let text = std::fs::read_to_string(out).unwrap_or_default();
        assert!(
            code.trim() == "0" && text.trim() == i.to_string(),
            "{run_id}: task {i} ended with status {code:?} and wrote {text:?} ({})",
            status.display()
        );
    }
}

/// podman's clock, for `podman events --since`.
fn podman_now() -> String {
    let out = Command::new("date")
        .arg("+%Y-%m-%dT%H:%M:%S%:z")
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// How many containers whose name starts with `prefix` podman started
/// since `since`.
fn started(since: &str, prefix: &str) -> usize {
    let out = Command::new("podman")
        .args(["events", "--stream=false", "--since", since])
        .args(["--filter", "event=start", "--format", "{{.Name}}"])
        .output()
        .expect("podman events");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix))
        .count()
}
