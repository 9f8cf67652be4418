//! A serde `Deserializer` over the spanned node tree that keeps going after a
//! mistake: every unknown key is recorded (with a "did you mean") and skipped,
//! every error is recorded once with the span of the deepest node it passed
//! through, and a [`Lenient`] value swallows its error so the rest of the file
//! is still checked.

use crate::node::{Node, NodeKind};
use crate::span::{SPANNED_LEN, SPANNED_MARKER, SPANNED_START, SPANNED_VALUE, Span};
use crate::suggest::{closest, did_you_mean};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

/// A problem found while reading the tree into the typed model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) label: Option<String>,
    pub(crate) help: Option<String>,
    pub(crate) span: Option<Span>,
    recorded: bool,
}

impl DeError {
    fn new(code: &'static str, message: String) -> Self {
        Self {
            code,
            message,
            label: None,
            help: None,
            span: None,
            recorded: false,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// Turns serde's names of expected types into words a workflow author reads.
fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        other if other.starts_with("struct ") => "a mapping".into(),
        other => other.to_owned(),
    }
}

fn plain_unexpected(unexpected: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match unexpected {
        U::Bool(b) => format!("the boolean `{b}`"),
        U::Unsigned(n) => format!("the integer `{n}`"),
        U::Signed(n) => format!("the integer `{n}`"),
        U::Float(n) => format!("the number `{n}`"),
        U::Str(s) => format!("the string \"{s}\""),
        U::Unit | U::Option => "nothing (null)".into(),
        U::Seq => "a list".into(),
        U::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new("twinflow::invalid-value", msg.to_string())
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        let expected = plain_expected(&expected.to_string());
        let found = plain_unexpected(&unexpected);
        let mut e = Self::new(
            "twinflow::wrong-type",
            format!("expected {expected}, found {found}"),
        );
        e.label = Some(format!("expected {expected}"));
        e.help = match (&unexpected, expected.as_str()) {
            (de::Unexpected::Str(s), exp)
                if exp.contains("number") && s.trim().parse::<f64>().is_ok() =>
            {
                Some(format!("write the number without quotes: `{}`", s.trim()))
            }
            (_, "a list") => Some("write a list, e.g. `[a, b]`".to_owned()),
            _ => None,
        };
        e
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        let expected = plain_expected(&expected.to_string());
        let mut e = Self::new(
            "twinflow::invalid-value",
            format!(
                "expected {expected}, found {}",
                plain_unexpected(&unexpected)
            ),
        );
        e.label = Some(format!("expected {expected}"));
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::new(
            "twinflow::unknown-value",
            format!("unknown value `{variant}`"),
        );
        e.label = Some(format!("expected one of {}", one_of(expected)));
        e.help = did_you_mean(variant, expected.iter().copied());
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = Self::new(
            "twinflow::missing-key",
            format!("missing required key `{field}`"),
        );
        e.label = Some(format!("this mapping needs `{field}`"));
        e.help = match field {
            "kind" => Some("an executor's kind is one of `local`, `slurm`, `cloud`".into()),
            "run" => Some("`run` is the shell script each task of the step runs".into()),
            "version" => Some("start the file with `version: 1`".into()),
            "steps" => Some("a workflow needs at least one step under `steps:`".into()),
            _ => None,
        };
        e
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::new(
            "twinflow::duplicate-key",
            format!("duplicate key `{field}`"),
        )
    }
}

fn one_of(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where recorded errors go.
pub(crate) type Sink = RefCell<Vec<DeError>>;

/// Deserialises `T` from a node, recording problems in `sink`. Returns `None`
/// when the value could not be built (its errors are in the sink).
pub(crate) fn from_node<'de, T: Deserialize<'de>>(node: &Node, sink: &Sink) -> Option<T> {
    T::deserialize(NodeDeserializer { node, sink }).ok()
}

/// Deserializer for one node.
#[derive(Clone, Copy)]
pub(crate) struct NodeDeserializer<'a> {
    node: &'a Node,
    sink: &'a Sink,
}

impl<'a> NodeDeserializer<'a> {
    /// Records an error not seen before, giving it this node's span.
    fn record(&self, mut e: DeError) -> DeError {
        if !e.recorded {
            e.span.get_or_insert(self.node.span);
            e.recorded = true;
            self.sink.borrow_mut().push(e.clone());
        }
        e
    }

    fn finish<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|e| self.record(e))
    }

    fn wrong_type(&self, expected: &str) -> DeError {
        let mut e = DeError::new(
            "twinflow::wrong-type",
            format!("expected {expected}, found {}", self.node.kind.describe()),
        );
        e.label = Some(format!("expected {expected}"));
        self.record(e)
    }
}

impl<'de> Deserializer<'de> for NodeDeserializer<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Int(n) => visitor.visit_i64(*n),
            NodeKind::UInt(n) => visitor.visit_u64(*n),
            NodeKind::Float(n) => visitor.visit_f64(*n),
            NodeKind::Str(s) => visitor.visit_str(s),
            NodeKind::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                sink: self.sink,
            }),
            NodeKind::Map(entries) => visitor.visit_map(Map::new(entries, None, self.sink)),
        };
        self.finish(result)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        };
        self.finish(result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED_MARKER {
            return self.finish(visitor.visit_map(SpannedAccess {
                node: self.node,
                sink: self.sink,
                state: 0,
            }));
        }
        let NodeKind::Map(entries) = &self.node.kind else {
            return Err(self.wrong_type("a mapping"));
        };
        let result = visitor.visit_map(Map::new(entries, Some(fields), self.sink));
        self.finish(result)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = visitor.visit_newtype_struct(self);
        if name == LENIENT_MARKER {
            // Lenient's visitor never fails; nothing more to record here.
            return result;
        }
        self.finish(result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let NodeKind::Str(s) = &self.node.kind else {
            return Err(self.wrong_type("a name"));
        };
        let result = visitor.visit_enum(UnitVariant(s));
        self.finish(result)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct UnitVariant<'a>(&'a str);

impl<'de> EnumAccess<'de> for UnitVariant<'_> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let value = seed.deserialize(self.0.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"a mapping",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, DeError> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"a list",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, DeError> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"a mapping",
        ))
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Node>,
    sink: &'a Sink,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => seed
                .deserialize(NodeDeserializer {
                    node,
                    sink: self.sink,
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    /// For a struct: its keys; unknown ones are recorded and skipped.
    fields: Option<&'static [&'static str]>,
    /// For a struct: which of its keys are written in this mapping (at most
    /// one entry per key, however many unknown keys the mapping has).
    present: Vec<&'static str>,
    /// For a struct: "expected one of ...", made once for all unknown keys.
    expected: Option<String>,
    pending: Option<&'a Node>,
    sink: &'a Sink,
}

impl<'a> Map<'a> {
    fn new(
        entries: &'a [(Node, Node)],
        fields: Option<&'static [&'static str]>,
        sink: &'a Sink,
    ) -> Self {
        let present = match fields {
            Some(fields) => entries
                .iter()
                .filter_map(|(k, _)| match &k.kind {
                    NodeKind::Str(s) => fields.iter().copied().find(|f| f == s),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        Self {
            entries: entries.iter(),
            fields,
            present,
            expected: None,
            pending: None,
            sink,
        }
    }
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            if let Some(fields) = self.fields {
                let NodeKind::Str(name) = &key.kind else {
                    let at = NodeDeserializer {
                        node: key,
                        sink: self.sink,
                    };
                    at.wrong_type("a key name (a string)");
                    continue;
                };
                if !fields.contains(&name.as_str()) {
                    let mut e =
                        DeError::new("twinflow::unknown-key", format!("unknown key `{name}`"));
                    e.span = Some(key.span);
                    e.label = Some("not a key here".into());
                    let suggestion = closest(name, fields.iter().copied());
                    e.help = Some(match suggestion {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => self
                            .expected
                            .get_or_insert_with(|| format!("expected one of {}", one_of(fields)))
                            .clone(),
                    });
                    NodeDeserializer {
                        node: key,
                        sink: self.sink,
                    }
                    .record(e);
                    // Read a near miss as the key it was meant to be (unless
                    // that key is also present), so its value is still checked
                    // and nothing that refers to it is reported twice.
                    if let Some(meant) = suggestion
                        && !self.present.contains(&meant)
                    {
                        self.pending = Some(value);
                        return seed.deserialize(meant.into_deserializer()).map(Some);
                    }
                    continue;
                }
            }
            self.pending = Some(value);
            return seed
                .deserialize(NodeDeserializer {
                    node: key,
                    sink: self.sink,
                })
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.pending.take() {
            Some(node) => seed.deserialize(NodeDeserializer {
                node,
                sink: self.sink,
            }),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Feeds a `Spanned` its start, length and value.
struct SpannedAccess<'a> {
    node: &'a Node,
    sink: &'a Sink,
    state: u8,
}

impl<'de> MapAccess<'de> for SpannedAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let key = match self.state {
            0 => SPANNED_START,
            1 => SPANNED_LEN,
            2 => SPANNED_VALUE,
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.state += 1;
        match self.state {
            1 => seed.deserialize(self.node.span.start.into_deserializer()),
            2 => seed.deserialize(self.node.span.len.into_deserializer()),
            _ => seed.deserialize(NodeDeserializer {
                node: self.node,
                sink: self.sink,
            }),
        }
    }
}

const LENIENT_MARKER: &str = "$__twinflow_lenient";

/// A value that, when wrong, records its errors and lets the rest of the file
/// be checked. `None` means it was wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lenient<T>(pub(crate) Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for LenientVisitor<T> {
            type Value = Lenient<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Lenient<T>, D::Error> {
                // The error was recorded by the node deserializer it came from.
                Ok(Lenient(T::deserialize(d).ok()))
            }
        }

        deserializer.deserialize_newtype_struct(LENIENT_MARKER, LenientVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Lenient<T> {
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

/// An ordered mapping of names to values, keeping the span of every name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entries<T> {
    items: Vec<(crate::Spanned<String>, T)>,
    /// Entries written in the file, with those left out for a wrong name.
    written: usize,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            written: 0,
        }
    }
}

impl<T> Entries<T> {
    /// Iterates names and values.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&crate::Spanned<String>, &T)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    /// True without entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when the file wrote no entry at all (not even a wrong one).
    pub(crate) fn none_written(&self) -> bool {
        self.written == 0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                // A wrong entry is recorded by the node deserializer and left
                // out, so the rest of the mapping is still checked.
                let mut items = Vec::new();
                let mut written = 0;
                let mut size = map.size_hint().unwrap_or(usize::MAX);
                while size > 0 {
                    size -= 1;
                    match map.next_key::<crate::Spanned<String>>() {
                        Ok(None) => break,
                        Ok(Some(key)) => {
                            written += 1;
                            if let Ok(value) = map.next_value::<T>() {
                                items.push((key, value));
                            }
                        }
                        Err(_) => {
                            written += 1;
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Entries { items, written })
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Entries<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }

    fn inline_schema() -> bool {
        true
    }
}
