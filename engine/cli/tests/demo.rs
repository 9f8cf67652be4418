//! The forest-bird demo, run as the README's main command runs it: every
//! task of the three twins and the summary succeeds, the table and the chart
//! are sealed results, and running it again reuses every task.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn twinflow(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(args)
        .env("TWINFLOW_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twinflow")
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/forest-bird/forest-bird.yaml")
}

#[test]
fn the_forest_bird_demo_runs_locally_and_reruns_from_the_cache() {
    let state = tempfile::tempdir().expect("temp dir");
    let demo = demo();
    let demo = demo.to_str().expect("utf-8 path");
    let o = twinflow(state.path(), &["run", demo, "--local"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("166 tasks, 166 ran, 0 cached"), "{err}");

    let status = twinflow(state.path(), &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let run_dir = PathBuf::from(status["run"]["run_dir"].as_str().expect("run dir"));
    let summary = run_dir.join("work/summary/0");
    let table = std::fs::read_to_string(summary.join("summary.csv")).expect("table");
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("scenario,management,year,expected_richness"),
        "{header}"
    );
    assert_eq!(
        lines.count(),
        81,
        "one row per scenario, management and decade"
    );
    let chart = std::fs::read_to_string(summary.join("summary.svg")).expect("chart");
    assert!(chart.contains("<svg") && chart.trim_end().ends_with("</svg>"));
    for scenario in ["ssp126", "ssp245", "ssp585"] {
        assert!(
            table.contains(&format!("{scenario},set-aside,2100,")),
            "{scenario} missing"
        );
    }

    // The decade chain carried state: every forest task after 2020 read its predecessor.
    let stands = run_dir.join("work/forest-structure/1/inputs/previous.csv");
    assert!(
        stands.exists(),
        "the 2030 forest task had no previous state"
    );

    let again = twinflow(state.path(), &["run", demo, "--local"]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(err.contains("166 tasks, 0 ran, 166 cached"), "{err}");
    let logs = twinflow(
        state.path(),
        &["logs", "latest", "summary", "--stream", "stdout"],
    );
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("expected richness in 2100"), "{text}");
}

/// The crop wild relatives study takes its occurrences from a GBIF
/// download (a `gbif:` source); GBIF is out of reach here, so its API is
/// twinflow-devserver's, which answers as GBIF documents and serves the
/// fixture archive (`deploy/devserver/fixtures/gbif`).
#[test]
fn the_other_examples_run_locally_too() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let gbif = rt
        .block_on(twinflow_devserver::start(
            twinflow_devserver::Config {
                root: root.join("deploy/devserver/fixtures"),
            },
            "127.0.0.1:0".parse().expect("address"),
        ))
        .expect("devserver starts");
    let state = tempfile::tempdir().expect("temp dir");
    let file = root.join("workflows/crop-wild-relatives/crop-wild-relatives.yaml");
    let api = format!("gbif-api={}/gbif/v1", gbif.base_url());
    let o = twinflow(
        state.path(),
        &["run", file.to_str().expect("utf-8"), "--local", "-p", &api],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "crop-wild-relatives: {err}");
    assert!(err.contains("succeeded"), "crop-wild-relatives: {err}");
    // Each species' records came out of the archive, cleaned.
    let logs = twinflow(
        state.path(),
        &[
            "logs",
            "latest",
            "occurrences[species=oryza-rufipogon]",
            "--stream",
            "stdout",
        ],
    );
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains("Oryza rufipogon:") && text.contains("records"),
        "{text}"
    );
}

/// The climate ensemble post-processes in a container image under
/// Apptainer, which this machine lacks: with `--local` the run is refused
/// naming the image, the runtime and the host, never run on the host, and
/// nothing of it is recorded.
#[test]
fn the_climate_ensemble_is_refused_where_its_container_runtime_is_missing() {
    if std::process::Command::new("apptainer")
        .arg("--version")
        .output()
        .is_ok()
    {
        eprintln!("skipped: apptainer is installed here");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let state = tempfile::tempdir().expect("temp dir");
    let file = root.join("climate-ensemble/climate-ensemble.yaml");
    let o = twinflow(
        state.path(),
        &["run", file.to_str().expect("utf-8"), "--local"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "step `postprocess` runs in container `docker://ghcr.io/destine/postproc:1.4`, \
             which is refused rather than run on the host: executor `hpc` (kind local) \
             cannot run it: failed to resolve image `docker://ghcr.io/destine/postproc:1.4` \
             with apptainer on host"
        ) && err.contains("apptainer is not installed (not on PATH)"),
        "{err}"
    );
    let runs = twinflow(state.path(), &["runs"]);
    assert!(
        !String::from_utf8_lossy(&runs.stdout).contains("climate-ensemble"),
        "a refused run was recorded"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The climate ensemble's source part for real: its `forcing` source (a
/// static STAC catalog of local files, `stac+file:forcing/catalog.json`)
/// is fetched by the engine and every simulation chunk reads its month's
/// forcing file from it. Run on a copy without the `container:` line (this
/// machine has no Apptainer), everything else as shipped.
#[test]
fn the_climate_ensemble_simulation_reads_its_months_forcing_from_the_stac_source() {
    let copy = tempfile::tempdir().expect("temp dir");
    let example = copy.path().join("climate-ensemble");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/climate-ensemble"),
        &example,
    );
    let file = example.join("climate-ensemble.yaml");
    let yaml = std::fs::read_to_string(&file).expect("workflow");
    let without: String = yaml
        .lines()
        .filter(|l| !l.trim_start().starts_with("container:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        yaml.len(),
        without.len(),
        "the example has a container line"
    );
    std::fs::write(&file, without).expect("write");

    let state = tempfile::tempdir().expect("temp dir");
    let o = twinflow(
        state.path(),
        &["run", file.to_str().expect("utf-8"), "--local"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("152 tasks, 152 ran, 0 cached"), "{err}");

    let status = twinflow(state.path(), &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let run_dir = PathBuf::from(status["run"]["run_dir"].as_str().expect("run dir"));
    // The source: one directory per STAC item, its asset beside item.json.
    let fetched = run_dir.join("work/sources.forcing/0/forcing");
    for month in 1..=12 {
        let item = fetched.join(format!("2030-{month:02}"));
        assert!(item.join("forcing.csv").is_file(), "{}", item.display());
        assert!(item.join("item.json").is_file(), "{}", item.display());
    }
    let record = std::fs::read_to_string(run_dir.join("work/sources.forcing/0/source.json"))
        .expect("source record");
    assert!(record.contains("forcing/catalog.json"), "{record}");

    // Every chunk of every member was forced by its own month.
    let mut chunks = 0;
    for entry in std::fs::read_dir(run_dir.join("work/simulation")).expect("simulation") {
        let dir = entry.expect("entry").path();
        let restart: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("restart.json")).expect("restart"),
        )
        .expect("restart JSON");
        let month = restart["month"].as_u64().expect("month");
        assert_eq!(
            restart["forcing"],
            format!("2030-{month:02}"),
            "{}",
            dir.display()
        );
        chunks += 1;
    }
    assert_eq!(chunks, 60);
    let logs = twinflow(
        state.path(),
        &[
            "logs",
            "latest",
            "simulation[member=fc2]@2030-07-01",
            "--stream",
            "stdout",
        ],
    );
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains("member fc2: forcing 2030-07 from inputs/forcing/2030-07/forcing.csv"),
        "{text}"
    );
}

/// The demo with its HPC role on the real local Slurm (issue 6): run by
/// `scripts/test`, which starts `deploy/dev/slurm-up` with 16 CPUs.
#[test]
fn the_forest_bird_demo_runs_with_its_hpc_role_on_slurm() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let demo = demo();
    let site = demo.with_file_name("../sites/local-slurm.yaml");
    let o = twinflow(
        state.path(),
        &[
            "run",
            demo.to_str().expect("utf-8"),
            "--site",
            site.to_str().expect("utf-8"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("166 tasks, 166 ran"), "{err}");
    let status = twinflow(state.path(), &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let forest = status["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["name"] == "forest-structure[climate=ssp126,management=set-aside]@2100-01-01")
        .expect("the last forest task");
    let handle = forest["handle"].as_str().unwrap_or_default();
    assert!(handle.starts_with("slurm:"), "ran as a Slurm job: {handle}");
}

/// `scripts/demo-containers` in small: the image built from
/// `workflows/forest-bird/Containerfile`, one scenario and one management
/// regime of `forest-bird-containers.yaml` (20 tasks) inside it, the
/// table written, and the provenance crate naming the image's digest as
/// podman reports it.
#[test]
fn the_forest_bird_demo_runs_inside_its_image() {
    if std::env::var("TWINFLOW_TEST_PODMAN").as_deref() != Ok("1") {
        eprintln!(
            "skipped: TWINFLOW_TEST_PODMAN is not 1 (scripts/test runs deploy/dev/podman-up and sets it)"
        );
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/forest-bird");
    let image = "localhost/twinflow-forest-bird:demo";
    let built = Command::new("podman")
        .args(["build", "--quiet", "--tag", image, "--file"])
        .arg(dir.join("Containerfile"))
        .arg(&dir)
        .output()
        .expect("run podman build");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let inspect = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Digest}}", image])
        .output()
        .expect("run podman image inspect");
    let digest = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");

    let state = tempfile::tempdir().expect("temp dir");
    let crate_dir = state.path().join("crate");
    let workflow = dir.join("forest-bird-containers.yaml");
    let o = twinflow(
        state.path(),
        &[
            "run",
            workflow.to_str().expect("utf-8 path"),
            "--param",
            "climate=ssp126",
            "--param",
            "management=set-aside",
            "--provenance",
            crate_dir.to_str().expect("utf-8 path"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("20 tasks, 20 ran, 0 cached"), "{err}");

    let status = twinflow(state.path(), &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let run_dir = PathBuf::from(status["run"]["run_dir"].as_str().expect("run dir"));
    let table = std::fs::read_to_string(run_dir.join("work/summary/0/summary.csv")).expect("table");
    assert!(table.contains("ssp126,set-aside,2100,"), "{table}");

    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(crate_dir.join("ro-crate-metadata.json")).expect("crate metadata"),
    )
    .expect("crate JSON");
    let images: Vec<&serde_json::Value> = meta["@graph"]
        .as_array()
        .expect("graph")
        .iter()
        .filter(|e| e["@type"] == "ContainerImage")
        .collect();
    assert_eq!(images.len(), 4, "one ContainerImage per step");
    assert!(
        images
            .iter()
            .all(|e| e["sha256"] == hex && e["registry"] == "localhost"),
        "{images:?}"
    );
}

/// The forest-beetle demo (issue 19): each scenario's forest and beetle
/// twins form one coupling group instance and trade state every simulated
/// year through the group directory, which deadlocks (and times out)
/// unless they run at the same time; the provenance crate's action times
/// show every pair overlapping.
#[test]
fn the_forest_beetle_demo_runs_its_coupled_twins_together() {
    let state = tempfile::tempdir().expect("temp dir");
    let crate_dir = state.path().join("crate");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../workflows/forest-beetle/forest-beetle.yaml");
    let o = twinflow(
        state.path(),
        &[
            "run",
            demo.to_str().expect("utf-8 path"),
            "--local",
            "--provenance",
            crate_dir.to_str().expect("utf-8 path"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("16 tasks, 16 ran, 0 cached"), "{err}");

    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(crate_dir.join("ro-crate-metadata.json")).expect("crate metadata"),
    )
    .expect("crate JSON");
    let times = |name: &str| -> (String, String) {
        let action = meta["@graph"]
            .as_array()
            .expect("graph")
            .iter()
            .find(|e| e["@type"] == "CreateAction" && e["name"] == name)
            .unwrap_or_else(|| panic!("no action {name}"));
        let t = |k: &str| action[k].as_str().expect("a time").to_owned();
        (t("startTime"), t("endTime"))
    };
    for climate in ["ssp126", "ssp245", "ssp585"] {
        for management in ["business-as-usual", "set-aside"] {
            let key = format!("[climate={climate},management={management}]");
            let (forest, beetle) = (
                times(&format!("forest{key}")),
                times(&format!("beetle{key}")),
            );
            // RFC 3339 times in UTC compare as strings.
            assert!(
                forest.0 < beetle.1 && beetle.0 < forest.1,
                "{key}: forest {forest:?} and beetle {beetle:?} did not overlap"
            );
        }
    }
}
