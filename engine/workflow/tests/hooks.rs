//! `on:` hooks in the language: lowered into the plan (workflow and step
//! level, one hook or a list, defaults), shown by `plan --json`, and the
//! mistakes the compiler refuses that the bad-file corpus does not cover.
#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use std::path::PathBuf;
use twinflow_core::{Hook, HookAction, HookEvent, Plan, PlanJson};
use twinflow_workflow::{CompileOptions, compile_str};

fn options() -> CompileOptions {
    CompileOptions {
        workflow_dir: PathBuf::from("/flows"),
        ..Default::default()
    }
}

fn compile(yaml: &str) -> Plan {
    match compile_str("hooks.yaml", yaml, &options()) {
        Ok(plan) => plan,
        Err(e) => panic!("did not compile:\n{}", e.render(false)),
    }
}

/// The codes of all diagnostics, and the rendered text.
fn refused(yaml: &str) -> (Vec<String>, String) {
    match compile_str("hooks.yaml", yaml, &options()) {
        Ok(_) => panic!("compiled:\n{yaml}"),
        Err(e) => (
            e.diagnostics.iter().map(|d| d.code().to_owned()).collect(),
            e.render(false),
        ),
    }
}

fn workflow(on: &str, step_on: &str) -> String {
    format!(
        "version: 1\nexecutors: {{ here: {{ kind: local }} }}\n{on}steps:\n  a:\n    run: \"true\"\n{step_on}"
    )
}

#[test]
fn workflow_and_step_hooks_are_compiled_in_order_with_defaults() {
    let plan = compile(&workflow(
        "on:\n  failure: { run: ./notify.sh failed }\n  finished:\n    - { run: echo done, timeout: 5m }\n    - { webhook: \"https://chat.example.org/hooks/abc?x=1\", headers_file: secrets/chat }\n    - { webhook: \"https://h.example/y\", headers_file: ~/.config/chat }\n  stalled: { run: echo stuck }\n",
        "    on:\n      success: [{ run: echo ok }]\n      retry: { webhook: http://127.0.0.1:9/r, timeout: 2s }\n",
    ));
    assert_eq!(
        plan.hooks,
        vec![
            Hook {
                event: HookEvent::Failure,
                action: HookAction::Run {
                    command: "./notify.sh failed".into()
                },
                timeout_seconds: 30,
            },
            Hook {
                event: HookEvent::Stalled,
                action: HookAction::Run {
                    command: "echo stuck".into()
                },
                timeout_seconds: 30,
            },
            Hook {
                event: HookEvent::Finished,
                action: HookAction::Run {
                    command: "echo done".into()
                },
                timeout_seconds: 300,
            },
            Hook {
                event: HookEvent::Finished,
                action: HookAction::Webhook {
                    url: "https://chat.example.org/hooks/abc?x=1".into(),
                    headers_file: Some(PathBuf::from("/flows/secrets/chat")),
                },
                timeout_seconds: 30,
            },
            Hook {
                event: HookEvent::Finished,
                action: HookAction::Webhook {
                    url: "https://h.example/y".into(),
                    headers_file: Some(PathBuf::from("~/.config/chat")),
                },
                timeout_seconds: 30,
            },
        ]
    );
    let step = &plan.steps[0];
    assert_eq!(step.hooks.len(), 2);
    assert_eq!(step.hooks[0].event, HookEvent::Retry);
    assert_eq!(step.hooks[0].timeout_seconds, 2);
    assert_eq!(step.hooks[1].event, HookEvent::Success);
}

#[test]
fn plan_json_shows_hooks_at_both_levels() {
    let plan = compile(&workflow(
        "on: { finished: { webhook: \"https://h.example/x\" } }\n",
        "    on: { failure: { run: ./alert } }\n",
    ));
    let json = serde_json::to_value(PlanJson(&plan)).unwrap_or_default();
    assert_eq!(
        json["hooks"],
        serde_json::json!([{ "event": "finished", "kind": "webhook", "url": "https://h.example/x",
                             "headers_file": null, "timeout_seconds": 30 }])
    );
    assert_eq!(
        json["steps"][0]["hooks"],
        serde_json::json!([{ "event": "failure", "kind": "run", "command": "./alert", "timeout_seconds": 30 }])
    );
    let none = compile(&workflow("", ""));
    let json = serde_json::to_value(PlanJson(&none)).unwrap_or_default();
    assert_eq!(json["hooks"], serde_json::json!([]));
    assert_eq!(json["steps"][0]["hooks"], serde_json::json!([]));
}

#[test]
fn each_mistake_of_a_hook_is_reported_at_its_place() {
    let (codes, text) = refused(&workflow(
        "on:\n  failure:\n    - { run: a, webhook: \"https://x.example\" }\n    - { timeout: 5s }\n    - { run: b, headers_file: h }\n    - { webhook: ftp://x.example/a }\n    - { webhook: \"https://user:pw@x.example/a\" }\n    - { run: \"echo ${{ run.id }}\" }\n    - { run: c, timeout: 0s }\n    - { run: d, timout: 5s }\n  success: []\n",
        "",
    ));
    assert_eq!(
        codes,
        [
            "twinflow::hook-action",
            "twinflow::hook-action",
            "twinflow::hook-action",
            "twinflow::bad-url",
            "twinflow::bad-url",
            "twinflow::hook-template",
            "twinflow::bad-duration",
            "twinflow::unknown-key",
            "twinflow::empty-list",
        ],
        "{text}"
    );
    assert!(text.contains("did you mean `timeout`?"), "{text}");
    assert!(text.contains("holds credentials"), "{text}");
}

#[test]
fn run_events_on_a_step_and_unknown_events_are_refused() {
    let (codes, text) = refused(&workflow(
        "on: { failur: { run: x } }\n",
        "    on: { stalled: { run: x }, finished: { run: y } }\n",
    ));
    assert_eq!(
        codes,
        [
            "twinflow::unknown-key",
            "twinflow::run-event-on-step",
            "twinflow::run-event-on-step"
        ],
        "{text}"
    );
    assert!(text.contains("did you mean `failure`?"), "{text}");
    assert!(text.contains("top-level `on:`"), "{text}");
}

#[test]
fn a_hook_of_the_wrong_shape_is_refused() {
    let (codes, text) = refused(&workflow("on: { failure: ./notify.sh }\n", ""));
    assert_eq!(codes, ["twinflow::wrong-type"], "{text}");
}
