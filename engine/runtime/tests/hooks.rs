//! Hooks through the Rust API: an engine without a webhook sender refuses a
//! plan with a webhook at submit, naming the hook, and one with a sender
//! posts it (a stand-in sender records what it was given).
#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use twinflow_core::ExecutorKind;
use twinflow_engine::{Engine, EngineError, Outcome, RunOptions, WebhookError, WebhookSender};
use twinflow_executor_local::LocalFactory;
use twinflow_workflow::CompileOptions;

const YAML: &str = "version: 1
executors: { here: { kind: local, slots: 1 } }
steps:
  a:
    run: \"true\"
    on:
      success: [{ run: \"true\" }, { webhook: \"https://chat.example.org/hooks/x?token=t\" }]
";

fn plan(run_id: &str) -> twinflow_core::Plan {
    let options = CompileOptions {
        run_id: run_id.to_owned(),
        ..CompileOptions::default()
    };
    twinflow_workflow::compile_str("hooks.yaml", YAML, &options)
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
}

#[derive(Debug, Default, Clone)]
struct Recorder(Arc<Mutex<Vec<(String, serde_json::Value)>>>);

#[async_trait::async_trait]
impl WebhookSender for Recorder {
    async fn post(
        &self,
        url: &str,
        _headers: &[(String, String)],
        body: Vec<u8>,
        _timeout: Duration,
    ) -> Result<(), WebhookError> {
        let body = serde_json::from_slice(&body).map_err(|e| WebhookError(e.to_string()))?;
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((url.to_owned(), body));
        Ok(())
    }
}

#[tokio::test]
async fn a_webhook_without_a_sender_is_refused_at_submit_naming_the_hook() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::builder()
        .state_dir(state.path())
        .executor(ExecutorKind::Local, LocalFactory::default())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = match engine
        .submit(plan("no-sender"), RunOptions::default())
        .await
    {
        Ok(_) => panic!("a plan with a webhook ran without a sender"),
        Err(e) => e,
    };
    assert!(matches!(err, EngineError::NoWebhookSender { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("step `a` on.success[1] (webhook https://chat.example.org/hooks/x)"),
        "{text}"
    );
    assert!(!text.contains("token"), "{text}");
}

#[tokio::test]
async fn a_registered_sender_posts_the_webhook() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let recorder = Recorder::default();
    let engine = Engine::builder()
        .state_dir(state.path())
        .executor(ExecutorKind::Local, LocalFactory::default())
        .webhooks(recorder.clone())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut run = engine
        .submit(plan("with-sender"), RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    while run.next_event().await.is_some() {}
    let summary = run.wait().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.outcome, Outcome::Succeeded);
    let posted = recorder
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].0, "https://chat.example.org/hooks/x?token=t");
    assert_eq!(posted[0].1["kind"], "success");
    assert_eq!(posted[0].1["task"], "a");
}
