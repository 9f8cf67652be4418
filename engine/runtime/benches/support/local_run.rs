//! How the engine's benchmarks run a plan in their child processes: the
//! engine with the local executor, whose supervisor is the benchmark binary
//! itself (`BIN local-supervisor`, as `twinflow local-supervisor` under the
//! CLI), on a current-thread runtime. Included by path by the benchmarks of
//! this crate.

use std::path::Path;
use std::time::Instant;

/// Serves as the local executor's supervisor when this process was started
/// as one (`BIN local-supervisor [RECORDS]`); false otherwise.
pub(crate) fn serve_as_supervisor(args: &[String]) -> bool {
    if args.get(1).map(String::as_str) != Some("local-supervisor") {
        return false;
    }
    twinflow_executor_local::supervise(args.get(2).map(Path::new)).expect("supervise");
    true
}

/// Runs `plan` to its end with state under `state_dir` and checks that it
/// succeeded: the wall seconds from submit to the end.
pub(crate) fn run(plan: twinflow_core::Plan, state_dir: &Path) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let summary = runtime.block_on(async {
        let engine = twinflow_engine::Engine::builder()
            .state_dir(state_dir)
            .executor(
                twinflow_core::ExecutorKind::Local,
                twinflow_executor_local::LocalFactory::default().with_supervisor(
                    twinflow_executor_local::SupervisorBinary {
                        path: std::env::current_exe().expect("this binary"),
                        args: vec!["local-supervisor".to_owned()],
                    },
                ),
            )
            .build()
            .expect("engine");
        let handle = engine
            .submit(plan, twinflow_engine::RunOptions::default())
            .await
            .expect("submit");
        handle.wait().await.expect("run")
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        summary.outcome,
        twinflow_engine::Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    secs
}

/// Waits for the supervisor, which exits once its tasks have: its CPU time,
/// and its tasks', then count among this process's children's.
pub(crate) fn reap_children() {
    while nix::sys::wait::wait().is_ok() {}
}
