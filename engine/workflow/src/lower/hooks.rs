//! `on:` at workflow and step level: checks each hook (one action, an
//! `http(s)` URL, a timeout, no `${{ }}`) and compiles it into
//! [`twinflow_core::Hook`]s.

use crate::diag::Diags;
use crate::model::{HOOK_KEYS, HookDoc, HooksDoc, OnDoc};
use crate::span::{Span, Spanned};
use crate::units::parse_duration;
use std::path::Path;
use twinflow_core::{DEFAULT_HOOK_TIMEOUT_SECONDS, Hook, HookAction, HookEvent};

/// The hooks of an `on:` section, in the order written; `step` names the
/// step of a step's `on:` (which may not use the run's events).
pub(crate) fn lower(
    d: &mut Diags,
    on: Option<&Spanned<crate::de::Lenient<OnDoc>>>,
    step: Option<&str>,
    workflow_dir: &Path,
) -> Vec<Hook> {
    let Some(on) = on.and_then(|o| o.value.0.as_ref()) else {
        return Vec::new();
    };
    let mut hooks = Vec::new();
    for (event, written) in [
        (HookEvent::Failure, &on.failure),
        (HookEvent::Retry, &on.retry),
        (HookEvent::Success, &on.success),
        (HookEvent::Stalled, &on.stalled),
        (HookEvent::Finished, &on.finished),
    ] {
        let Some(written) = written else {
            continue;
        };
        if let Some(step) = step
            && !event.of_tasks()
        {
            d.at(
                "twinflow::run-event-on-step",
                written.span,
                format!("step `{step}` has an `on.{event}` hook, but `{event}` is an event of the whole run"),
                "not an event of a step",
            )
            .set_help(Some(
                "move it to the workflow's top-level `on:`; a step's `on:` has `failure`, `retry` and `success`"
                    .to_owned(),
            ));
            continue;
        }
        let Some(doc) = &written.value.0 else {
            continue;
        };
        match doc {
            HooksDoc::One(hook) => hooks.extend(one(d, event, hook, written.span, workflow_dir)),
            HooksDoc::Many(list) => {
                if list.is_empty() {
                    d.at(
                        "twinflow::empty-list",
                        written.span,
                        format!("`on.{event}` is an empty list of hooks"),
                        "no hooks",
                    )
                    .set_help(Some(format!("give a hook, or leave `{event}` out")));
                }
                for hook in list {
                    hooks.extend(one(d, event, &hook.value, hook.span, workflow_dir));
                }
            }
        }
    }
    hooks
}

/// One hook written at `span`.
fn one(
    d: &mut Diags,
    event: HookEvent,
    hook: &HookDoc,
    span: Span,
    workflow_dir: &Path,
) -> Option<Hook> {
    let before = d.list.len();
    super::report_unknown_keys(d, &hook.unknown, &HOOK_KEYS);
    let timeout_seconds = match &hook.timeout {
        None => DEFAULT_HOOK_TIMEOUT_SECONDS,
        Some(t) => match parse_duration(&t.value.0) {
            Ok(0) => {
                d.at(
                    "twinflow::bad-duration",
                    t.span,
                    "a hook's timeout must be more than 0 seconds",
                    "zero would kill it at once",
                )
                .set_help(Some(format!(
                    "leave `timeout` out for the default ({DEFAULT_HOOK_TIMEOUT_SECONDS}s)"
                )));
                0
            }
            Ok(s) => s,
            Err(message) => {
                d.at("twinflow::bad-duration", t.span, message, "invalid timeout")
                    .set_help(Some(
                        "durations: `90s`, `30m`, `2h`, `1d`, `1h30m`, `HH:MM:SS`".into(),
                    ));
                0
            }
        },
    };
    let action = match (&hook.run, &hook.webhook) {
        (Some(run), Some(webhook)) => {
            d.at(
                "twinflow::hook-action",
                webhook.span,
                "a hook has both `run` and `webhook`",
                "second action",
            )
            .add_label(run.span, "first action")
            .set_help(Some(
                "a hook does one thing: write two hooks in a list, `[{ run: … }, { webhook: … }]`"
                    .into(),
            ));
            None
        }
        (None, None) => {
            d.at(
                "twinflow::hook-action",
                span,
                format!("this `on.{event}` hook has neither `run` nor `webhook`"),
                "does nothing",
            )
            .set_help(Some(
                "write `{ run: \"a shell command\" }` or `{ webhook: https://… }`".into(),
            ));
            None
        }
        (Some(run), None) => {
            if let Some(h) = &hook.headers_file {
                d.at(
                    "twinflow::hook-action",
                    h.span,
                    "`headers_file` belongs to a `webhook` hook, not a `run` one",
                    "not used by `run`",
                )
                .set_help(Some(
                    "remove it; a command reads what it needs itself".into(),
                ));
            }
            command(d, run).map(|command| HookAction::Run { command })
        }
        (None, Some(webhook)) => url(d, webhook).map(|url| HookAction::Webhook {
            url,
            headers_file: hook.headers_file.as_ref().and_then(|h| {
                if h.value.trim().is_empty() {
                    d.at(
                        "twinflow::bad-path",
                        h.span,
                        "`headers_file` is empty",
                        "no file",
                    )
                    .set_help(Some(
                        "name a file of `Name: value` lines, or leave it out".into(),
                    ));
                    return None;
                }
                // `~/…` is the home of whoever runs the hook, expanded when
                // it fires.
                if h.value.starts_with("~/") {
                    return Some(std::path::PathBuf::from(&h.value));
                }
                Some(workflow_dir.join(&h.value))
            }),
        }),
    };
    if d.list.len() > before {
        return None;
    }
    Some(Hook {
        event,
        action: action?,
        timeout_seconds,
    })
}

fn command(d: &mut Diags, run: &Spanned<String>) -> Option<String> {
    if run.value.trim().is_empty() {
        d.at(
            "twinflow::empty-command",
            run.span,
            "a hook's `run` is empty",
            "nothing to run",
        )
        .set_help(Some("give a shell command, e.g. `run: ./notify.sh`".into()));
        return None;
    }
    if run.value.contains("${{") {
        d.at(
            "twinflow::hook-template",
            run.span,
            "a hook's command cannot use `${{ }}`",
            "not substituted in hooks",
        )
        .set_help(Some(
            "a hook reads its event from standard input (JSON) and `TWINFLOW_EVENT_*` variables, e.g. `$TWINFLOW_EVENT_TASK`"
                .into(),
        ));
        return None;
    }
    Some(run.value.clone())
}

fn url(d: &mut Diags, webhook: &Spanned<String>) -> Option<String> {
    let text = webhook.value.trim();
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let problem = match rest {
        None => Some("a webhook URL starts with `https://` or `http://`".to_owned()),
        Some(rest) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if authority.is_empty() {
                Some("the webhook URL has no host".to_owned())
            } else if authority.contains('@') {
                Some(
                    "the webhook URL holds credentials (`user@`), which would be logged".to_owned(),
                )
            } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Some("the webhook URL holds spaces or control characters".to_owned())
            } else if text.contains("${{") {
                Some("a webhook URL cannot use `${{ }}`".to_owned())
            } else {
                None
            }
        }
    };
    match problem {
        Some(message) => {
            d.at("twinflow::bad-url", webhook.span, message, "invalid webhook URL")
                .set_help(Some(
                    "write e.g. `webhook: https://chat.example.org/hooks/abc`; put tokens in a `headers_file`"
                        .into(),
                ));
            None
        }
        None => Some(text.to_owned()),
    }
}
