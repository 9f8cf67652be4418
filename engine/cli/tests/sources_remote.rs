//! Sources reach tasks on every executor as sealed artefacts do: staged
//! locally, on the cluster's file system for Slurm (over SFTP when the
//! executor stages to a `workdir:` over SSH), through the S3 store for
//! cloud. Each test serves fresh content (an HTTP file from the devserver
//! started in-process, or objects put in the Ceph RGW under a fresh
//! prefix), runs a workflow whose step reads it through the `twinflow`
//! binary, and checks the step's outputs hold that content and that the
//! step read it where it ran. Gated as the other live tests:
//! `TWINFLOW_TEST_SLURM`, `TWINFLOW_TEST_SSH`, `TWINFLOW_TEST_S3`, which
//! `scripts/test` sets after starting the services.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "these tests need no daemon")]
mod common;

use common::{tasks, twinflow};
use object_store::ObjectStoreExt as _;
use std::path::{Path, PathBuf};

/// Whether every gate in `vars` is `1`; says which is not, if one is not.
fn gated(vars: &[&str]) -> bool {
    for var in vars {
        if std::env::var(var).as_deref() != Ok("1") {
            eprintln!("skipped: {var} is not 1 (scripts/test starts the services and sets it)");
            return false;
        }
    }
    true
}

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} (source the services' env files)"))
}

/// A fresh suffix: no cache, store or bucket content of an earlier run can
/// stand in for this one's.
fn fresh(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// `user@host:port` of the test sshd.
fn ssh_target() -> String {
    format!(
        "{}@{}:{}",
        env("TWINFLOW_SSHD_USER"),
        env("TWINFLOW_SSHD_HOST"),
        env("TWINFLOW_SSHD_PORT")
    )
}

/// The devserver, on a runtime that lives as long as this value, serving a
/// temporary directory under `/files/`.
struct Server {
    _rt: tokio::runtime::Runtime,
    root: tempfile::TempDir,
    base: String,
}

impl Server {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let root = tempfile::tempdir().expect("fixture dir");
        let config = twinflow_devserver::Config {
            root: root.path().to_path_buf(),
        };
        let running = rt
            .block_on(twinflow_devserver::start(
                config,
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .expect("start the devserver");
        Self {
            _rt: rt,
            root,
            base: running.base_url(),
        }
    }

    /// Writes `data` as `name` and gives its URL.
    fn serve(&self, name: &str, data: &str) -> String {
        std::fs::write(self.root.path().join(name), data).expect("write the fixture");
        format!("{}/files/{name}", self.base)
    }
}

/// Content no other run has: a small CSV naming `test` and the time.
fn fixture(test: &str) -> String {
    format!(
        "site,count,run\nnuuksio,17,{}\nhyytiala,4,{test}\n",
        fresh(test)
    )
}

/// Runs `yaml` (written into `dir`) with its state in `dir/state`; fails
/// the test unless it succeeds. The run's directory.
fn run(dir: &Path, yaml: &str) -> PathBuf {
    let file = dir.join("workflow.yaml");
    std::fs::write(&file, yaml).expect("write workflow");
    let state = dir.join("state");
    let o = twinflow(&state, &["run", file.to_str().expect("utf-8")]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "twinflow run:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let status = twinflow(&state, &["status", "latest", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    PathBuf::from(v["run"]["run_dir"].as_str().expect("run_dir"))
}

/// The handle of the task of `step` in the newest run of `state`.
fn handle(state: &Path, step: &str) -> String {
    let all = tasks(state, "latest");
    all.iter()
        .find(|(n, ..)| n == step || n.starts_with(&format!("{step}[")))
        .map(|(_, s, h)| {
            assert_eq!(s, "succeeded", "{step}: {all:?}");
            h.clone()
        })
        .unwrap_or_else(|| panic!("no task of {step}: {all:?}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A step `use` on `executor` that copies the file input `d` to `copy.txt`
/// and writes where the input really is (links followed) to `where.txt`.
const FILE_STEP: &str = r#"
  use:
    executor: EXEC
    needs: { d: sources.data }
    resources: { time: 2m }
    run: |
      cat ${{ inputs.d }} > ${{ outputs.copy }}
      readlink -f ${{ inputs.d }} > ${{ outputs.where }}
    outputs: { copy: copy.txt, where: where.txt }
"#;

/// A workflow of one source `data` at `url` and [`FILE_STEP`] on
/// `executor`, defined by `executors` (a YAML flow mapping).
fn file_workflow(name: &str, url: &str, executors: &str, executor: &str) -> String {
    format!(
        "version: 1\nname: {name}\nsources:\n  data: {{ url: \"{url}\" }}\n\
         executors: {executors}\nsteps:{}",
        FILE_STEP.replace("EXEC", executor)
    )
}

/// `path` with its links resolved, as a string.
fn real(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .display()
        .to_string()
}

/// A devserver serving a fresh [`fixture`] for `test` as `data.csv`: the
/// server (keep it alive), the content and its URL.
fn served_fixture(test: &str) -> (Server, String, String) {
    let server = Server::start();
    let data = fixture(test);
    let url = server.serve("data.csv", &data);
    (server, data, url)
}

/// Runs `yaml` in `tmp` and checks its step `use` succeeded with a handle
/// starting `handle_prefix` (`slurm:`, `cloud:`, `pid:`: where it ran);
/// the step's working directory in the run (`work/use/0`).
fn run_use(tmp: &Path, yaml: &str, handle_prefix: &str) -> PathBuf {
    let run_dir = run(tmp, yaml);
    let h = handle(&tmp.join("state"), "use");
    assert!(
        h.starts_with(handle_prefix),
        "`use` ran as {h}, not on {handle_prefix}"
    );
    run_dir.join("work/use/0")
}

/// The path the step's `where.txt` (in `out`) names, which must be under
/// `root` (links resolved), `what` the step was to read from.
fn read_under(out: &Path, root: &Path, what: &str) -> PathBuf {
    let root = real(root);
    let there = read(&out.join("where.txt"));
    assert!(
        there.trim().starts_with(&root),
        "the input was read from {there}, not {what} {root}"
    );
    PathBuf::from(there.trim())
}

/// A Slurm executor `hpc` reached over SSH on the test sshd, staging to
/// `scratch`, as a YAML flow mapping.
fn slurm_ssh_executor(scratch: &Path) -> String {
    format!(
        "{{ hpc: {{ kind: slurm, partition: debug, ssh: \"{}\", workdir: \"{}\" }} }}",
        ssh_target(),
        scratch.display()
    )
}

#[test]
fn an_http_source_reaches_a_step_on_the_local_slurm() {
    if !gated(&["TWINFLOW_TEST_SLURM"]) {
        return;
    }
    let (_server, data, url) = served_fixture("slurm");
    let tmp = tempfile::tempdir().expect("tmp");
    let yaml = file_workflow(
        "source-slurm",
        &url,
        "{ hpc: { kind: slurm, partition: debug } }",
        "hpc",
    );
    let out = run_use(tmp.path(), &yaml, "slurm:");
    assert_eq!(read(&out.join("copy.txt")), data);
}

#[test]
fn an_http_source_is_staged_over_sftp_to_a_slurm_workdir() {
    if !gated(&["TWINFLOW_TEST_SLURM", "TWINFLOW_TEST_SSH"]) {
        return;
    }
    let (_server, data, url) = served_fixture("slurm-ssh");
    let tmp = tempfile::tempdir().expect("tmp");
    let scratch = tmp.path().join("cluster-scratch");
    let yaml = file_workflow(
        "source-slurm-ssh",
        &url,
        &slurm_ssh_executor(&scratch),
        "hpc",
    );
    let out = run_use(tmp.path(), &yaml, "slurm:");
    assert_eq!(read(&out.join("copy.txt")), data);
    // The task read a copy on the cluster's file system, not the file
    // here through a link that happens to resolve on this machine.
    let there = read_under(&out, &scratch, "under the cluster's");
    assert_eq!(read(&there), data);
}

/// A cloud executor `cloud` on the test sshd (the VM, working in `vm`)
/// with a fresh store prefix for `test`, as a YAML flow mapping.
fn cloud_executor(test: &str, vm: &Path) -> String {
    format!(
        "{{ cloud: {{ kind: cloud, ssh: \"{}\", store: \"{}/cli-tests/{}\", workdir: \"{}\" }} }}",
        ssh_target(),
        env("TWINFLOW_S3_URL"),
        fresh(test),
        vm.display()
    )
}

#[test]
fn an_http_source_reaches_a_step_on_the_cloud_through_the_store() {
    if !gated(&["TWINFLOW_TEST_SSH", "TWINFLOW_TEST_S3"]) {
        return;
    }
    let (_server, data, url) = served_fixture("cloud");
    let tmp = tempfile::tempdir().expect("tmp");
    let vm = tmp.path().join("vm");
    let yaml = file_workflow(
        "source-cloud",
        &url,
        &cloud_executor("source-cloud", &vm),
        "cloud",
    );
    let out = run_use(tmp.path(), &yaml, "cloud:");
    assert_eq!(read(&out.join("copy.txt")), data);
    let there = read_under(&out, &vm, "fetched to the VM's");
    assert_eq!(read(&there), data);
}

/// Objects under a fresh prefix of the test bucket: `(s3 url of the
/// prefix, the files put as (relative path, content))`.
fn put_prefix(test: &str) -> (String, Vec<(String, String)>) {
    let bucket = env("TWINFLOW_S3_BUCKET");
    let prefix = format!("sources-remote/{}", fresh(test));
    let files = vec![
        ("a.csv".to_owned(), format!("a,1\n{prefix}\n")),
        ("sub/b.txt".to_owned(), format!("b from {test}\n")),
    ];
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()
        .expect("an S3 client from the AWS_* env");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (rel, data) in &files {
        rt.block_on(store.put(
            &object_store::path::Path::from(format!("{prefix}/{rel}")),
            object_store::PutPayload::from(data.as_bytes().to_vec()),
        ))
        .expect("put the object");
    }
    (format!("s3://{bucket}/{prefix}/"), files)
}

/// A step `use` on `executor` that lists the directory input `d` (its
/// files, sorted) with their content into `listing.txt`, and writes where
/// `d` really is to `where.txt`.
fn dir_workflow(name: &str, url: &str, executors: &str, executor: &str) -> String {
    format!(
        r#"version: 1
name: {name}
sources:
  tree: {{ url: "{url}" }}
executors: {executors}
steps:
  use:
    executor: {executor}
    needs: {{ d: sources.tree }}
    run: |
      d=${{{{ inputs.d }}}}
      find -L "$d" -type f | sort | while read -r f; do echo "== ${{f#"$d"/}}"; cat "$f"; done > ${{{{ outputs.listing }}}}
      readlink -f ${{{{ inputs.d }}}}/sub/b.txt > ${{{{ outputs.where }}}}
    outputs: {{ listing: listing.txt, where: where.txt }}
"#
    )
}

/// What [`dir_workflow`]'s step writes for `files`.
fn listing(files: &[(String, String)]) -> String {
    files
        .iter()
        .map(|(rel, data)| format!("== {rel}\n{data}"))
        .collect()
}

#[test]
fn an_s3_prefix_source_reaches_a_local_step_as_a_directory() {
    if !gated(&["TWINFLOW_TEST_S3"]) {
        return;
    }
    let (url, files) = put_prefix("local");
    let tmp = tempfile::tempdir().expect("tmp");
    let yaml = dir_workflow(
        "source-prefix-local",
        &url,
        "{ here: { kind: local } }",
        "here",
    );
    let out = run_use(tmp.path(), &yaml, "pid:");
    assert_eq!(read(&out.join("listing.txt")), listing(&files));
}

#[test]
fn an_s3_prefix_source_reaches_a_step_on_the_cloud_as_a_directory() {
    if !gated(&["TWINFLOW_TEST_SSH", "TWINFLOW_TEST_S3"]) {
        return;
    }
    let (url, files) = put_prefix("cloud");
    let tmp = tempfile::tempdir().expect("tmp");
    let vm = tmp.path().join("vm");
    let yaml = dir_workflow(
        "source-prefix-cloud",
        &url,
        &cloud_executor("source-prefix-cloud", &vm),
        "cloud",
    );
    let out = run_use(tmp.path(), &yaml, "cloud:");
    assert_eq!(read(&out.join("listing.txt")), listing(&files));
    read_under(&out, &vm, "fetched to the VM's");
}

#[test]
fn an_s3_prefix_source_is_staged_over_sftp_to_a_slurm_workdir_as_a_directory() {
    if !gated(&[
        "TWINFLOW_TEST_SLURM",
        "TWINFLOW_TEST_SSH",
        "TWINFLOW_TEST_S3",
    ]) {
        return;
    }
    let (url, files) = put_prefix("slurm-ssh");
    let tmp = tempfile::tempdir().expect("tmp");
    let scratch = tmp.path().join("cluster-scratch");
    let yaml = dir_workflow(
        "source-prefix-slurm-ssh",
        &url,
        &slurm_ssh_executor(&scratch),
        "hpc",
    );
    let out = run_use(tmp.path(), &yaml, "slurm:");
    assert_eq!(read(&out.join("listing.txt")), listing(&files));
    read_under(&out, &scratch, "under the cluster's");
}
