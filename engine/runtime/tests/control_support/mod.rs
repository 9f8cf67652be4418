//! What the operator-action tests share: a plan compiled with a given run
//! id, and an action by the current user.

use twinflow_engine::{ActionKind, Actor, OperatorAction};
use twinflow_workflow::CompileOptions;

/// `yaml` compiled as run `run_id`.
#[expect(clippy::panic, reason = "test helpers fail the test with a message")]
pub(crate) fn plan(yaml: &str, run_id: &str) -> twinflow_core::Plan {
    let options = CompileOptions {
        run_id: run_id.to_owned(),
        ..CompileOptions::default()
    };
    twinflow_workflow::compile_str("control.yaml", yaml, &options)
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
}

/// An action of `kind` on `selectors`, by the current user.
pub(crate) fn action(kind: ActionKind, selectors: &[&str]) -> OperatorAction {
    OperatorAction {
        kind,
        selectors: selectors.iter().map(|s| (*s).to_owned()).collect(),
        by: Actor::current(),
    }
}
