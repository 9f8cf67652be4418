//! Daemon benchmark (issue 7): 50 concurrent runs totalling 20,000 local
//! tasks, handed to one daemon by 100 concurrent clients: 50 submit a run
//! each and follow its events to the end, 50 list the runs again and again
//! meanwhile (what `twinflow runs` and scripts polling it do).
//!
//! Prints the submit latency percentiles, the list latency percentiles, the
//! daemon's peak resident memory (`VmHWM` of its process), its own CPU
//! time (without its tasks') and its dispatch
//! time against the shell floor: the same 20,000 processes launched by
//! `xargs -P <cores>` in dependency order (every run's setup, then all the
//! middle tasks, then every gather), measured in the same go.
//!
//! The daemon runs in a child process (this binary with `--daemon DIR`), so
//! its memory is its own; its local tasks share one pool of the machine's
//! cores and are started by a supervisor process per run (this binary with
//! `local-supervisor`), as under `twinflow daemon run`.
//!
//! Run: `cargo bench -p twinflow-daemon --bench daemon` (`-- --quick`: 10
//! runs of 200 tasks, 20 clients).

#![expect(
    clippy::expect_used,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twinflow_daemon::Client;
use twinflow_daemon::api::SubmitRequest;

#[path = "../../runtime/benches/support/common.rs"]
mod common;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // This binary is also the local executors' supervisor, as `twinflow`
    // is under `twinflow daemon run`.
    if args.get(1).map(String::as_str) == Some("local-supervisor") {
        twinflow_executor_local::supervise(args.get(2).map(Path::new)).expect("supervise");
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--daemon") {
        daemon(Path::new(&args[i + 1]));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (runs, per_run) = if quick { (10, 200) } else { (50, 400) };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = common::bench_dir();
    println!(
        "daemon benchmark: {runs} runs x {per_run} tasks = {} local tasks, {} clients, {cores} cores, files under {}",
        runs * per_run,
        runs * 2,
        dir.path().display()
    );
    let before = common::children_cpu_seconds();
    let floor_secs = floor_run(runs, per_run, cores);
    let between = common::children_cpu_seconds();
    let files = workflows(dir.path(), runs, per_run);
    let state = dir.path().join("state");
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg("--daemon")
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = Client::for_state_dir(&state);
    rt.block_on(wait_for(&client));
    let clients_before = common::own_cpu_seconds("self");
    let figures = rt.block_on(clients(&state, files));
    let clients_cpu = common::own_cpu_seconds("self") - clients_before;
    let rss_kb = common::peak_rss_kb(&child.id().to_string());
    let cpu = common::own_cpu_seconds(&child.id().to_string());
    let _ = rt.block_on(client.shutdown());
    let _ = child.wait();
    // Everything each side ran: the floor's `xargs` and tasks; the daemon,
    // its supervisors and their tasks.
    let (floor_cpu, our_cpu) = (between - before, common::children_cpu_seconds() - between);

    let tasks = runs * per_run;
    let submit_p50 = common::median(&mut figures.submits.clone());
    println!(
        "submit latency (ms, {} submissions):  {}   target p50 < 50 ms: {}",
        figures.submits.len(),
        percentiles(figures.submits),
        verdict(submit_p50 < 50.0)
    );
    println!(
        "list latency (ms, {} requests):      {}",
        figures.lists.len(),
        percentiles(figures.lists)
    );
    println!(
        "daemon peak resident memory:           {:.1} MB",
        rss_kb as f64 / 1024.0
    );
    println!(
        "daemon's own CPU time:                 {:.2} s ({:.0} us a task; its supervisors are processes of their own)",
        cpu,
        cpu * 1e6 / tasks as f64
    );
    println!(
        "all CPU: floor {floor_cpu:.2} s, twinflow {our_cpu:.2} s ({:.2}x, {:+.0} us a task)",
        our_cpu / floor_cpu,
        (our_cpu - floor_cpu) * 1e6 / tasks as f64
    );
    println!(
        "the clients' CPU (this process):       {clients_cpu:.2} s (on the same cores, not in the figures above)"
    );
    let ratio = figures.wall / floor_secs;
    println!(
        "dispatch: floor (xargs -P {cores}) {floor_secs:.2} s, twinflow daemon {:.2} s ({:.0} tasks/s), ratio {ratio:.2}x   target <= 1.3x: {}",
        figures.wall,
        tasks as f64 / figures.wall,
        verdict(ratio <= 1.3)
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// In the child: the daemon of `state`, until a client stops it.
fn daemon(state: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let engine = twinflow_engine::Engine::builder()
            .state_dir(state)
            .executor(
                twinflow_core::ExecutorKind::Local,
                twinflow_executor_local::LocalFactory::default()
                    .with_pool(twinflow_executor_local::SlotPool::of_this_machine())
                    .with_supervisor(twinflow_executor_local::SupervisorBinary {
                        path: std::env::current_exe().expect("this binary"),
                        args: vec!["local-supervisor".to_owned()],
                    }),
            )
            .build()
            .expect("engine");
        twinflow_daemon::serve(engine, std::future::pending())
            .await
            .expect("serve");
    });
}

async fn wait_for(client: &Client) {
    let start = Instant::now();
    while client.ping().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One workflow file a run: a setup task, `per_run - 2` no-op tasks after
/// it, a gather task after them.
fn workflows(dir: &Path, runs: usize, per_run: usize) -> Vec<PathBuf> {
    (0..runs)
        .map(|r| {
            let path = dir.join(format!("run{r}.yaml"));
            std::fs::write(&path, common::fan_out_yaml(&format!("run{r}"), per_run - 2))
                .expect("write a workflow");
            path
        })
        .collect()
}

struct Figures {
    submits: Vec<f64>,
    lists: Vec<f64>,
    wall: f64,
}

/// The 2 x runs clients at once; returns when every run has ended.
async fn clients(state: &Path, files: Vec<PathBuf>) -> Figures {
    let start = Instant::now();
    // A watch, not a Notify: a lister in the middle of a request when the
    // submitters are done still sees it (`notify_waiters` wakes only those
    // waiting at that moment, and a lister that missed it listed for ever).
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let mut submitters = Vec::new();
    for file in files {
        let client = Client::for_state_dir(state);
        submitters.push(tokio::spawn(async move {
            let request = SubmitRequest {
                file: file.display().to_string(),
                params: Vec::new(),
                site: None,
                local: false,
                no_cache: true,
                fail_fast: false,
            };
            let t = Instant::now();
            let run = client.submit(&request).await.expect("submit");
            let latency = t.elapsed().as_secs_f64() * 1e3;
            let mut events = client.events(&run.run_id).await.expect("events");
            let mut outcome = None;
            while let Some(event) = events.next().await.expect("an event") {
                if event["event"] == "run-finished" {
                    outcome = Some(event["outcome"].as_str().unwrap_or("").to_owned());
                }
            }
            assert_eq!(outcome.as_deref(), Some("succeeded"), "run {}", run.run_id);
            latency
        }));
    }
    let mut listers = Vec::new();
    for _ in 0..submitters.len() {
        let client = Client::for_state_dir(state);
        let mut done = done.clone();
        listers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let t = Instant::now();
                client.runs().await.expect("list the runs");
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                tokio::select! {
                    _ = done.wait_for(|d| *d) => return latencies,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }));
    }
    let mut submits = Vec::new();
    for s in submitters {
        submits.push(s.await.expect("a submitter"));
    }
    let wall = start.elapsed().as_secs_f64();
    let _ = done_tx.send(true);
    let mut lists = Vec::new();
    for l in listers {
        lists.extend(l.await.expect("a lister"));
    }
    Figures {
        submits,
        lists,
        wall,
    }
}

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "none".to_owned();
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    )
}

/// The floor: every run's commands through `xargs -P cores`, wave by wave.
fn floor_run(runs: usize, per_run: usize, cores: usize) -> f64 {
    let start = Instant::now();
    common::xargs(&vec!["true".to_owned(); runs], cores);
    common::xargs(&vec!["true".to_owned(); runs * (per_run - 2)], cores);
    common::xargs(&vec!["true".to_owned(); runs], cores);
    start.elapsed().as_secs_f64()
}
