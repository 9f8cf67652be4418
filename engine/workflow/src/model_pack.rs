//! A step's `pack:` as written: a count (`pack: 20`, one task after
//! another) or a mapping `{tasks: N, parallel: K}` (K at a time), read
//! leniently (unknown keys kept with their spans) so that lowering reports
//! each mistake at its place.

use crate::span::Spanned;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

/// `pack:` as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PackDoc {
    /// `pack: N`.
    Count(u32),
    /// `pack: {tasks: N, parallel: K}`.
    Full(PackFull),
}

/// `pack:` as a mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct PackFull {
    pub(crate) tasks: Option<Spanned<u32>>,
    pub(crate) parallel: Option<Spanned<u32>>,
    /// Keys other than `tasks` and `parallel`.
    pub(crate) unknown: Vec<Spanned<String>>,
}

/// The keys of [`PackFull`].
pub(crate) const PACK_KEYS: [&str; 2] = ["tasks", "parallel"];

impl<'de> Deserialize<'de> for PackDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PackVisitor;

        impl<'de> Visitor<'de> for PackVisitor {
            type Value = PackDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of tasks or a mapping `{ tasks, parallel }`")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PackDoc, E> {
                u32::try_from(v)
                    .map(PackDoc::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PackDoc, E> {
                u32::try_from(v)
                    .map(PackDoc::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<PackDoc, A::Error> {
                let mut full = PackFull::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "tasks" => full.tasks = Some(map.next_value()?),
                        "parallel" => full.parallel = Some(map.next_value()?),
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            full.unknown.push(key);
                        }
                    }
                }
                Ok(PackDoc::Full(full))
            }
        }

        d.deserialize_any(PackVisitor)
    }
}

impl JsonSchema for PackDoc {
    fn schema_name() -> Cow<'static, str> {
        "Pack".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Slurm: run this many tasks inside one allocation, one after another (1: never pack; default: pack tasks whose time limit is under a minute), or `{ tasks: N, parallel: K }`: one allocation sized for K tasks, running the N tasks K at a time.",
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 10000 },
                {
                    "type": "object",
                    "properties": {
                        "tasks": { "type": "integer", "minimum": 1, "maximum": 10000, "description": "Tasks per allocation." },
                        "parallel": { "type": "integer", "minimum": 1, "description": "How many of them run at once (at most `tasks`; default 1)." }
                    },
                    "required": ["tasks"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
