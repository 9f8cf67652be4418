//! Compiles a two-step workflow and runs it with the local executor in a
//! temporary state directory, printing its events as they come, all through
//! the one `twinflow` dependency (feature `local`):
//!
//! ```text
//! cargo run -p twinflow --example run_workflow
//! ```
//!
//! `tests/example.rs` runs it too.

use twinflow::{
    CompileOptions, Engine, ExecutorKind, LocalFactory, Outcome, RunEvent, RunOptions, RunSummary,
    compile_str, new_run_id,
};

const WORKFLOW: &str = "
version: 1
name: hello
executors: { here: { kind: local } }
steps:
  greet:
    executor: here
    for_each: { who: [world, twins] }
    run: echo hello ${{ who }} > ${{ outputs.text }}
    outputs: { text: hello.txt }
  join:
    executor: here
    needs: { texts: greet.text }
    run: cat ${{ inputs.texts }} > ${{ outputs.all }}
    outputs: { all: all.txt }
";

/// Runs the workflow with its state in `state_dir`; returns the summary and
/// the joined output.
pub(crate) async fn run_in(
    state_dir: &std::path::Path,
) -> Result<(RunSummary, String), Box<dyn std::error::Error>> {
    let engine = Engine::builder()
        .state_dir(state_dir)
        .executor(ExecutorKind::Local, LocalFactory::default())
        .build()?;
    let options = CompileOptions {
        run_id: new_run_id("hello"),
        ..CompileOptions::default()
    };
    let plan = compile_str("hello.yaml", WORKFLOW, &options)?;
    let mut run = engine.submit(plan, RunOptions::default()).await?;
    while let Some(event) = run.next_event().await {
        match event {
            RunEvent::RunStarted { run_id, .. } => println!("run {run_id} started"),
            RunEvent::TaskSubmitted { name, .. } => println!("  {name}: submitted"),
            RunEvent::TaskSucceeded { name, seconds, .. } => {
                println!("  {name}: succeeded in {seconds:.2} s");
            }
            RunEvent::TaskFailed { name, reason, .. } => println!("  {name}: failed: {reason}"),
            RunEvent::RunFinished(summary) => println!("run finished: {:?}", summary.outcome),
            _ => {}
        }
    }
    let summary = run.wait().await?;
    let all = std::fs::read_to_string(summary.run_dir.join("work/join/0/all.txt"))?;
    Ok((summary, all))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let state = tempfile::tempdir()?;
    let (summary, all) = run_in(state.path()).await?;
    print!("{all}");
    if summary.outcome != Outcome::Succeeded {
        return Err(format!("the run ended {:?}", summary.outcome).into());
    }
    Ok(())
}
