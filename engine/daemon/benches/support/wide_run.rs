//! What the benchmarks over a daemon with a large run share (the `status`
//! and `actions` benchmarks here and the TUI's `frame`, each including this
//! file by `#[path]`): a daemon in this process, serving its Unix socket
//! ([`serve`]), and ([`record`]) one
//! run of `groups` x 100 local tasks recorded the way a user's is (the
//! daemon runs it; its tasks are real processes), 1 % of them failed (every
//! task of group 7 of each hundred groups).

use std::path::Path;
use std::time::{Duration, Instant};
use twinflow_daemon::Client;
use twinflow_daemon::api::SubmitRequest;

/// A daemon serving a recorded run, until [`WideRun::stop`].
pub(crate) struct WideRun {
    /// A client of the daemon (its Unix socket).
    pub(crate) client: Client,
    /// The run's id.
    pub(crate) run_id: String,
    /// How many tasks it has.
    pub(crate) tasks: usize,
    served: Served,
}

/// Starts a daemon on state directory `dir/state` and records a run of
/// `groups` x 100 tasks through it (its workflow file: `dir/wide.yaml`).
pub(crate) async fn record(dir: &Path, groups: usize) -> WideRun {
    let tasks = groups * 100;
    let state = dir.join("state");
    let file = dir.join("wide.yaml");
    let list: Vec<String> = (0..groups).map(|i| i.to_string()).collect();
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: wide\nsteps:\n  sim:\n    for_each: {{ g: [{}], m: [{}] }}\n    run: test $(( ${{{{ g }}}} % 100 )) -ne 7\n",
            list.join(", "),
            (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        ),
    )
    .expect("write the workflow");
    let served = serve(&state).await;
    let run_id = served.submit(&file).await;
    let start = Instant::now();
    let client = served.client.clone();
    let mut events = client.events(&run_id).await.expect("events");
    while events.next().await.expect("an event").is_some() {}
    println!(
        "recorded: {tasks} tasks in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    let summary = client.summary("latest").await.expect("summary");
    assert_eq!(summary.run.task_count, tasks as u64);
    assert_eq!(summary.failed, tasks as u64 / 100);
    WideRun {
        client,
        run_id,
        tasks,
        served,
    }
}

/// A daemon in this process serving its Unix socket, until [`Served::stop`].
pub(crate) struct Served {
    /// A client of the daemon.
    pub(crate) client: Client,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), twinflow_daemon::DaemonError>>,
}

/// Starts a daemon (the local executor, the machine's cores) on state
/// directory `state`, once it answers.
pub(crate) async fn serve(state: &Path) -> Served {
    let engine = twinflow_engine::Engine::builder()
        .state_dir(state)
        .executor(
            twinflow_core::ExecutorKind::Local,
            twinflow_executor_local::LocalFactory::default()
                .with_pool(twinflow_executor_local::SlotPool::of_this_machine()),
        )
        .build()
        .expect("engine");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(twinflow_daemon::serve(engine, async {
        let _ = stop_rx.await;
    }));
    let client = Client::for_state_dir(state);
    let start = Instant::now();
    while client.ping().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "no daemon");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Served {
        client,
        stop,
        server,
    }
}

impl Served {
    /// Submits workflow `file` (no cache); its run's id.
    pub(crate) async fn submit(&self, file: &Path) -> String {
        self.client
            .submit(&SubmitRequest {
                file: file.display().to_string(),
                params: Vec::new(),
                site: None,
                local: false,
                no_cache: true,
                fail_fast: false,
            })
            .await
            .expect("submit")
            .run_id
    }

    /// Stops the daemon.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

impl WideRun {
    /// Stops the daemon.
    pub(crate) async fn stop(self) {
        self.served.stop().await;
    }
}
