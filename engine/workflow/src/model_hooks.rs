//! `on:` as written, at workflow and at step level: events (a strict
//! mapping: an unknown event gets a "did you mean") each with a hook or a
//! list of hooks. A hook is read leniently (unknown keys kept with their
//! spans) so that lowering reports each mistake at its place.

use super::ScalarString;
use crate::de::Lenient;
use crate::span::Spanned;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// `on:`: the hooks of each event.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnDoc {
    /// A task failed for good (no attempt left).
    #[serde(default)]
    pub(crate) failure: Option<Spanned<Lenient<HooksDoc>>>,
    /// An attempt failed and its task will be retried.
    #[serde(default)]
    pub(crate) retry: Option<Spanned<Lenient<HooksDoc>>>,
    /// A task succeeded (also when its result came from the cache).
    #[serde(default)]
    pub(crate) success: Option<Spanned<Lenient<HooksDoc>>>,
    /// Workflow level only: nothing runs, nothing is ready and tasks are
    /// unfinished (held, or behind a failed dependency); once per stall.
    #[serde(default)]
    pub(crate) stalled: Option<Spanned<Lenient<HooksDoc>>>,
    /// Workflow level only: the run ended (succeeded, failed or cancelled).
    #[serde(default)]
    pub(crate) finished: Option<Spanned<Lenient<HooksDoc>>>,
}

/// The schema of a step's `on:` (no `stalled`, no `finished`).
pub(crate) fn step_on_schema(generator: &mut SchemaGenerator) -> Schema {
    let hooks = generator.subschema_for::<HooksDoc>();
    json_schema!({
        "description": "Hooks fired by this step's tasks: `failure`, `retry`, `success` (`stalled` and `finished` belong to the workflow's `on:`).",
        "type": "object",
        "properties": {
            "failure": hooks.clone(),
            "retry": hooks.clone(),
            "success": hooks
        },
        "additionalProperties": false
    })
}

/// A hook, or a list of hooks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HooksDoc {
    /// `{run: …}` or `{webhook: …}`.
    One(HookDoc),
    /// `[{…}, {…}]`.
    Many(Vec<Spanned<HookDoc>>),
}

/// One hook as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct HookDoc {
    pub(crate) run: Option<Spanned<String>>,
    pub(crate) webhook: Option<Spanned<String>>,
    pub(crate) headers_file: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<ScalarString>>,
    /// Keys other than [`HOOK_KEYS`].
    pub(crate) unknown: Vec<Spanned<String>>,
}

/// The keys of a hook.
pub(crate) const HOOK_KEYS: [&str; 4] = ["run", "webhook", "headers_file", "timeout"];

fn read_hook<'de, A: MapAccess<'de>>(mut map: A) -> Result<HookDoc, A::Error> {
    let mut hook = HookDoc::default();
    while let Some(key) = map.next_key::<Spanned<String>>()? {
        match key.value.as_str() {
            "run" => hook.run = Some(map.next_value()?),
            "webhook" => hook.webhook = Some(map.next_value()?),
            "headers_file" => hook.headers_file = Some(map.next_value()?),
            "timeout" => hook.timeout = Some(map.next_value()?),
            _ => {
                map.next_value::<de::IgnoredAny>()?;
                hook.unknown.push(key);
            }
        }
    }
    Ok(hook)
}

impl<'de> Deserialize<'de> for HookDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HookVisitor;

        impl<'de> Visitor<'de> for HookVisitor {
            type Value = HookDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hook: a mapping `{ run }` or `{ webhook, headers_file }`")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HookDoc, A::Error> {
                read_hook(map)
            }
        }

        d.deserialize_any(HookVisitor)
    }
}

impl<'de> Deserialize<'de> for HooksDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HooksVisitor;

        impl<'de> Visitor<'de> for HooksVisitor {
            type Value = HooksDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hook (`{ run }` or `{ webhook }`) or a list of hooks")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HooksDoc, A::Error> {
                read_hook(map).map(HooksDoc::One)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HooksDoc, A::Error> {
                let mut hooks = Vec::new();
                while let Some(hook) = seq.next_element::<Spanned<HookDoc>>()? {
                    hooks.push(hook);
                }
                Ok(HooksDoc::Many(hooks))
            }
        }

        d.deserialize_any(HooksVisitor)
    }
}

impl JsonSchema for HooksDoc {
    fn schema_name() -> Cow<'static, str> {
        "Hooks".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let hook = json_schema!({
            "type": "object",
            "properties": {
                "run": { "type": "string", "minLength": 1, "description": "A shell command (`/bin/sh -c`), run in the run directory with the event as JSON on standard input and in `TWINFLOW_EVENT_*` variables." },
                "webhook": { "type": "string", "pattern": "^https?://", "description": "An `http(s)://` URL the event is POSTed to as JSON." },
                "headers_file": { "type": "string", "description": "webhook: a file of `Name: value` lines sent as headers (read when the hook fires, never logged), relative to the workflow's directory (or `~/…`)." },
                "timeout": { "type": ["string", "number"], "description": "Kill (or abandon) the hook after this long (default `30s`)." }
            },
            "oneOf": [ { "required": ["run"] }, { "required": ["webhook"] } ],
            "additionalProperties": false
        });
        json_schema!({
            "description": "A hook (`{ run }` or `{ webhook, headers_file }`, with an optional `timeout`) or a list of hooks.",
            "anyOf": [
                hook.clone(),
                { "type": "array", "items": hook, "minItems": 1 }
            ]
        })
    }
}
