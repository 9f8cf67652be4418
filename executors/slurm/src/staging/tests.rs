//! Staging back with [`twinflow_ssh::LocalHost`] as the cluster: links out
//! of the remote working directory.

use super::*;
use std::os::unix::fs::symlink;
use twinflow_core::{AttemptStatus, TaskId};

/// A task's directory "there" (`there/task`) and "here" (`here/task`),
/// with the given outputs, and a secret beside the remote directory.
struct Setup {
    _dir: tempfile::TempDir,
    there: PathBuf,
    here: PathBuf,
    secret: PathBuf,
    files: Files,
}

fn setup(outputs: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let there = base.join("there/task");
    let here = base.join("here/task");
    std::fs::create_dir_all(there.join("inputs")).unwrap();
    std::fs::create_dir_all(&here).unwrap();
    let secret = base.join("secret.txt");
    std::fs::write(&secret, "secret\n").unwrap();
    let files = Files {
        local_workdir: here.clone(),
        remote_workdir: there.clone(),
        logs: [
            (there.join("0.out"), base.join("here/0.out")),
            (there.join("0.err"), base.join("here/0.err")),
        ],
        outputs: outputs
            .iter()
            .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
            .collect(),
    };
    Setup {
        _dir: dir,
        there,
        here,
        secret,
        files,
    }
}

fn staging() -> Staging {
    Staging::new(Arc::new(twinflow_ssh::LocalHost::new()), PathBuf::from("/"))
}

#[tokio::test]
async fn an_output_linked_out_of_the_remote_directory_fails_the_task_naming_it() {
    let t = setup(&[("o", "o.txt")]);
    symlink(&t.secret, t.there.join("o.txt")).unwrap();
    let err = staging().stage_out(&t.files, true).await.unwrap_err();
    assert_eq!(
        err,
        format!(
            "output `o` (o.txt) is refused: o.txt on localhost is a symbolic link to {}, \
             outside the task directory {}",
            t.secret.display(),
            t.there.display()
        )
    );
    assert!(!t.here.join("o.txt").exists(), "the secret came back");
}

#[tokio::test]
async fn a_directory_output_with_a_link_out_or_a_dangling_one_fails_the_task() {
    let t = setup(&[("d", "./out"), ("other", "other.txt")]);
    std::fs::create_dir_all(t.there.join("out/sub")).unwrap();
    std::fs::write(t.there.join("out/a.txt"), "a").unwrap();
    symlink("../../../../secret.txt", t.there.join("out/sub/x")).unwrap();
    let err = staging().stage_out(&t.files, true).await.unwrap_err();
    assert_eq!(
        err,
        format!(
            "output `d` (./out) is refused: out/sub/x on localhost is a symbolic link to \
             ../../../../secret.txt ({}), outside the task directory {}",
            t.secret.display(),
            t.there.display()
        )
    );
    std::fs::remove_file(t.there.join("out/sub/x")).unwrap();
    symlink("gone", t.there.join("out/sub/x")).unwrap();
    let err = staging().stage_out(&t.files, true).await.unwrap_err();
    assert!(
        err.ends_with("out/sub/x on localhost is a symbolic link to gone, which does not exist"),
        "{err}"
    );
    // an entry holding an output, with a link out beside it
    let t = setup(&[("a", "res/a.txt")]);
    std::fs::create_dir_all(t.there.join("res")).unwrap();
    std::fs::write(t.there.join("res/a.txt"), "a").unwrap();
    symlink(&t.secret, t.there.join("res/b.txt")).unwrap();
    let err = staging().stage_out(&t.files, true).await.unwrap_err();
    assert!(
        err.starts_with("output `a` (res/a.txt) is refused: res/b.txt on localhost"),
        "{err}"
    );
}

#[tokio::test]
async fn links_inside_come_back_as_files_and_other_links_out_stay_there() {
    let t = setup(&[("o", "o.txt"), ("d", "out")]);
    std::fs::create_dir_all(t.there.join("data")).unwrap();
    std::fs::write(t.there.join("data/real.txt"), "real\n").unwrap();
    std::fs::write(t.there.join("inputs/in.csv"), "in\n").unwrap();
    symlink("data/real.txt", t.there.join("o.txt")).unwrap();
    std::fs::create_dir_all(t.there.join("out")).unwrap();
    symlink("../inputs/in.csv", t.there.join("out/in.csv")).unwrap();
    // not outputs: a link out and a dangling one
    symlink(&t.secret, t.there.join("cache")).unwrap();
    symlink("127.0.0.1:+4242", t.there.join("lock")).unwrap();
    staging().stage_out(&t.files, true).await.unwrap();
    assert_eq!(std::fs::read(t.here.join("o.txt")).unwrap(), b"real\n");
    let meta = std::fs::symlink_metadata(t.here.join("o.txt")).unwrap();
    assert!(meta.is_file());
    assert_eq!(std::fs::read(t.here.join("out/in.csv")).unwrap(), b"in\n");
    assert!(!t.here.join("cache").exists(), "the secret came back");
    assert!(std::fs::symlink_metadata(t.here.join("lock")).is_err());
    assert!(!t.here.join("inputs").exists());
}

/// Collects what the sink forwards.
#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Update>>);

impl UpdateSink for Collect {
    fn send(&self, update: Update) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(update);
    }
}

/// What the sink forwards for an attempt that ended with `status`.
async fn forwarded(t: &Setup, status: AttemptStatus) -> Vec<Update> {
    let key = AttemptKey {
        task: TaskId(7),
        attempt: 0,
    };
    let staging = Arc::new(staging());
    staging
        .tasks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, t.files.clone());
    let collect = Arc::new(Collect::default());
    let sink = StageOutSink {
        staging,
        inner: collect.clone(),
    };
    sink.send(Update { key, status });
    for _ in 0..500 {
        if !collect.0.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    std::mem::take(&mut *collect.0.lock().unwrap())
}

#[tokio::test]
async fn the_refusal_is_the_attempts_failure_if_it_succeeded() {
    let t = setup(&[("o", "o.txt")]);
    symlink(&t.secret, t.there.join("o.txt")).unwrap();
    match &forwarded(&t, AttemptStatus::Exited(0)).await[..] {
        [
            Update {
                status: AttemptStatus::Error(message),
                ..
            },
        ] => assert!(
            message.starts_with("output `o` (o.txt) is refused: o.txt on localhost"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    // a failed attempt keeps its own failure; the link stays there
    match &forwarded(&t, AttemptStatus::Exited(3)).await[..] {
        [
            Update {
                status: AttemptStatus::Exited(3),
                ..
            },
        ] => {}
        other => panic!("{other:?}"),
    }
    assert!(!t.here.join("o.txt").exists(), "the secret came back");
}
