//! Byte spans into a source text, and [`Spanned`], a value that remembers its span.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A byte range of the workflow source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Length in bytes (0 for a point).
    pub len: usize,
}

impl Span {
    /// A span from `start` covering `len` bytes.
    pub fn new(start: usize, len: usize) -> Self {
        Self { start, len }
    }

    /// The byte after the span.
    pub fn end(self) -> usize {
        self.start + self.len
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len).into()
    }
}

/// Struct name by which [`crate::de::NodeDeserializer`] recognises a `Spanned`.
pub(crate) const SPANNED_MARKER: &str = "$__twinflow_spanned";
pub(crate) const SPANNED_START: &str = "$__start";
pub(crate) const SPANNED_LEN: &str = "$__len";
pub(crate) const SPANNED_VALUE: &str = "$__value";

/// A value with the span of the YAML node it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs a value with a span.
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value from a workflow file")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut start = None;
                let mut len = None;
                let mut value = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        SPANNED_START => start = Some(map.next_value::<usize>()?),
                        SPANNED_LEN => len = Some(map.next_value::<usize>()?),
                        SPANNED_VALUE => value = Some(map.next_value::<T>()?),
                        other => return Err(de::Error::unknown_field(other, &[])),
                    }
                }
                let value = value.ok_or_else(|| de::Error::missing_field(SPANNED_VALUE))?;
                Ok(Spanned::new(
                    value,
                    Span::new(start.unwrap_or(0), len.unwrap_or(0)),
                ))
            }
        }

        deserializer.deserialize_struct(
            SPANNED_MARKER,
            &[SPANNED_START, SPANNED_LEN, SPANNED_VALUE],
            SpannedVisitor(PhantomData),
        )
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
