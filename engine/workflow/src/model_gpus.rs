//! `resources.gpus` as written: a count or a mapping `{count, type}`, read
//! leniently (the count as written, unknown keys kept with their spans) so
//! that lowering reports each mistake at its place.

use super::ScalarString;
use crate::span::Spanned;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

/// `resources.gpus` as written: a count, or a mapping with `count` and
/// `type`. The count is kept as written (a negative or fractional one is
/// refused when lowering, with its span); unknown keys of the mapping are
/// kept with their spans for the same reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GpusDoc {
    Count(GpuCountDoc),
    Full(GpusFull),
}

/// A GPU count as written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GpuCountDoc {
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// `resources.gpus` as a mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct GpusFull {
    pub(crate) count: Option<Spanned<GpuCountDoc>>,
    pub(crate) gpu_type: Option<Spanned<ScalarString>>,
    /// Keys other than `count` and `type`.
    pub(crate) unknown: Vec<Spanned<String>>,
}

/// The keys of [`GpusFull`].
pub(crate) const GPUS_KEYS: [&str; 2] = ["count", "type"];

const GPU_COUNT_EXPECTED: &str = "a whole number of GPUs";

struct GpuCountVisitor;

impl Visitor<'_> for GpuCountVisitor {
    type Value = GpuCountDoc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(GPU_COUNT_EXPECTED)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<GpuCountDoc, E> {
        Ok(GpuCountDoc::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<GpuCountDoc, E> {
        Ok(GpuCountDoc::UInt(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<GpuCountDoc, E> {
        Ok(GpuCountDoc::Float(v))
    }
}

impl<'de> Deserialize<'de> for GpuCountDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(GpuCountVisitor)
    }
}

impl<'de> Deserialize<'de> for GpusDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct GpusVisitor;

        impl<'de> Visitor<'de> for GpusVisitor {
            type Value = GpusDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of GPUs or a mapping `{ count, type }`")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GpusDoc, E> {
                GpuCountVisitor.visit_i64(v).map(GpusDoc::Count)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GpusDoc, E> {
                GpuCountVisitor.visit_u64(v).map(GpusDoc::Count)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<GpusDoc, E> {
                GpuCountVisitor.visit_f64(v).map(GpusDoc::Count)
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<GpusDoc, A::Error> {
                let mut full = GpusFull::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "count" => full.count = Some(map.next_value()?),
                        "type" => full.gpu_type = Some(map.next_value()?),
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            full.unknown.push(key);
                        }
                    }
                }
                Ok(GpusDoc::Full(full))
            }
        }

        d.deserialize_any(GpusVisitor)
    }
}

impl JsonSchema for GpusDoc {
    fn schema_name() -> Cow<'static, str> {
        "Gpus".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "GPUs per task: a count, or `{ count, type }` (Slurm `--gres=gpu:TYPE:N`).",
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                {
                    "type": "object",
                    "properties": {
                        "count": { "type": "integer", "minimum": 1, "description": "GPUs per task." },
                        "type": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9_.-]{1,64}$",
                            "description": "GPU type, e.g. `a100` (Slurm `--gres=gpu:a100:N`)."
                        }
                    },
                    "required": ["count"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
