//! CWL types: the type language of parameters (primitives, `File`,
//! `Directory`, arrays, records, enums, unions, the `?` and `[]`
//! shorthands, names from `SchemaDefRequirement`), the command-line bindings
//! that can hang off them, and checking a value against a type.

use crate::error::{CwlError, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// An `inputBinding`: how a value becomes command-line words.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// `position` (a number or an expression); 0 when absent.
    pub position: Value,
    /// `prefix`.
    pub prefix: Option<String>,
    /// `separate` (default true): prefix and value as two words.
    pub separate: bool,
    /// `itemSeparator`: an array joined into one word.
    pub item_separator: Option<String>,
    /// `valueFrom`: the value to bind instead.
    pub value_from: Option<Value>,
    /// `shellQuote` (default true), under `ShellCommandRequirement`.
    pub shell_quote: bool,
    /// `loadContents` (v1.0 place of it).
    pub load_contents: bool,
}

impl Binding {
    /// Reads an `inputBinding` object.
    pub fn parse(v: &Value) -> Result<Self> {
        let Value::Object(m) = v else {
            return Err(CwlError::invalid("inputBinding must be a mapping"));
        };
        Ok(Self {
            position: m.get("position").cloned().unwrap_or(Value::from(0)),
            prefix: m.get("prefix").and_then(Value::as_str).map(str::to_owned),
            separate: m.get("separate").and_then(Value::as_bool).unwrap_or(true),
            item_separator: m
                .get("itemSeparator")
                .and_then(Value::as_str)
                .map(str::to_owned),
            value_from: m.get("valueFrom").cloned(),
            shell_quote: m.get("shellQuote").and_then(Value::as_bool).unwrap_or(true),
            load_contents: m
                .get("loadContents")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// A field of a record type.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Short name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Its `inputBinding`.
    pub binding: Option<Binding>,
    /// Its `secondaryFiles`, as written.
    pub secondary_files: Option<Value>,
    /// Its `outputBinding` (output records).
    pub output_binding: Option<Value>,
}

/// A CWL type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `null`.
    Null,
    /// `boolean`.
    Boolean,
    /// `int`.
    Int,
    /// `long`.
    Long,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `File`.
    File,
    /// `Directory`.
    Directory,
    /// `Any`: any non-null value.
    Any,
    /// `stdout` (outputs): the captured standard output.
    Stdout,
    /// `stderr` (outputs): the captured standard error.
    Stderr,
    /// An array of items, with the array's own `inputBinding`.
    Array(Box<Type>, Option<Box<Binding>>),
    /// A record.
    Record(Arc<Vec<Field>>),
    /// An enum: its symbols (short) and `inputBinding`.
    Enum(Arc<Vec<String>>, Option<Box<Binding>>),
    /// One of several.
    Union(Vec<Type>),
}

/// Named types of a document (`SchemaDefRequirement`), by short name.
#[derive(Debug, Clone, Default)]
pub struct Names {
    raw: HashMap<String, Value>,
}

impl Names {
    /// Registers the `types` of a `SchemaDefRequirement`.
    pub fn add_schema_defs(&mut self, types: &Value) {
        let mut add = |t: &Value| {
            if let Some(name) = t.get("name").and_then(Value::as_str) {
                self.raw.insert(short_name(name).to_owned(), t.clone());
            }
        };
        match types {
            Value::Array(items) => {
                for t in items {
                    match t {
                        Value::Array(inner) => inner.iter().for_each(&mut add),
                        other => add(other),
                    }
                }
            }
            other => add(other),
        }
    }
}

/// Deepest nesting of named types followed.
const MAX_TYPE_DEPTH: u32 = 32;

/// The last component of a CWL identifier: `#main/x` and `f.cwl#x` give `x`,
/// `#Stage/algo` gives `algo`.
pub fn short_name(id: &str) -> &str {
    let after_hash = id.rsplit('#').next().unwrap_or(id);
    after_hash.rsplit('/').next().unwrap_or(after_hash)
}

/// The name after the `#` (keeping `/` parts): `#main/step/out` gives
/// `main/step/out`.
pub fn after_hash(id: &str) -> &str {
    id.rsplit('#').next().unwrap_or(id)
}

impl Type {
    /// Parses a type as written (string with shorthands, list for a union,
    /// or a mapping for arrays, records and enums).
    pub fn parse(v: &Value, names: &Names) -> Result<Self> {
        parse_type(v, names, 0)
    }

    /// Whether `null` is allowed.
    pub fn is_optional(&self) -> bool {
        match self {
            Self::Null => true,
            Self::Union(ts) => ts.iter().any(Self::is_optional),
            _ => false,
        }
    }

    /// The CWL name of the type, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Null => "null".into(),
            Self::Boolean => "boolean".into(),
            Self::Int => "int".into(),
            Self::Long => "long".into(),
            Self::Float => "float".into(),
            Self::Double => "double".into(),
            Self::String => "string".into(),
            Self::File => "File".into(),
            Self::Directory => "Directory".into(),
            Self::Any => "Any".into(),
            Self::Stdout => "stdout".into(),
            Self::Stderr => "stderr".into(),
            Self::Array(items, _) => format!("{}[]", items.describe()),
            Self::Record(_) => "record".into(),
            Self::Enum(symbols, _) => format!("enum {{{}}}", symbols.join(", ")),
            Self::Union(ts) => ts
                .iter()
                .map(Self::describe)
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    /// Whether `v` is a value of this type.
    pub fn accepts(&self, v: &Value) -> bool {
        match (self, v) {
            (Self::Null, Value::Null) => true,
            (Self::Boolean, Value::Bool(_)) => true,
            (Self::Int | Self::Long, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Self::Float | Self::Double, Value::Number(_)) => true,
            (Self::String, Value::String(_)) => true,
            (Self::File, Value::Object(m)) => {
                m.get("class").and_then(Value::as_str) == Some("File")
            }
            (Self::Directory, Value::Object(m)) => {
                m.get("class").and_then(Value::as_str) == Some("Directory")
            }
            (Self::Any, v) => !v.is_null(),
            (Self::Stdout | Self::Stderr, Value::Object(_)) => Self::File.accepts(v),
            (Self::Array(items, _), Value::Array(vs)) => vs.iter().all(|x| items.accepts(x)),
            (Self::Record(fields), Value::Object(m)) => fields
                .iter()
                .all(|f| f.ty.accepts(m.get(&f.name).unwrap_or(&Value::Null))),
            (Self::Enum(symbols, _), Value::String(s)) => {
                symbols.iter().any(|x| x == short_name(s))
            }
            (Self::Union(ts), v) => ts.iter().any(|t| t.accepts(v)),
            _ => false,
        }
    }

    /// The member of a union (or the type itself) that accepts `v`.
    pub fn select(&self, v: &Value) -> Option<&Type> {
        match self {
            Self::Union(ts) => ts.iter().find_map(|t| t.select(v)),
            t if t.accepts(v) => Some(t),
            _ => None,
        }
    }
}

fn primitive(name: &str) -> Option<Type> {
    Some(match name {
        "null" => Type::Null,
        "boolean" => Type::Boolean,
        "int" => Type::Int,
        "long" => Type::Long,
        "float" => Type::Float,
        "double" => Type::Double,
        "string" => Type::String,
        "File" => Type::File,
        "Directory" => Type::Directory,
        "Any" => Type::Any,
        "stdout" => Type::Stdout,
        "stderr" => Type::Stderr,
        _ => return None,
    })
}

fn parse_type(v: &Value, names: &Names, depth: u32) -> Result<Type> {
    if depth > MAX_TYPE_DEPTH {
        return Err(CwlError::invalid(format!(
            "types nest more than {MAX_TYPE_DEPTH} deep (a type that names itself?)"
        )));
    }
    match v {
        Value::String(s) => parse_type_name(s, names, depth),
        Value::Array(items) => {
            let mut ts = Vec::with_capacity(items.len());
            for item in items {
                ts.push(parse_type(item, names, depth + 1)?);
            }
            Ok(Type::Union(ts))
        }
        Value::Object(m) => {
            let kind = m
                .get("type")
                .ok_or_else(|| CwlError::invalid("a type mapping needs `type`"))?;
            let binding = match m.get("inputBinding") {
                Some(b) => Some(Box::new(Binding::parse(b)?)),
                None => None,
            };
            match kind.as_str() {
                Some("array") => {
                    let items = m
                        .get("items")
                        .ok_or_else(|| CwlError::invalid("an array type needs `items`"))?;
                    Ok(Type::Array(
                        Box::new(parse_type(items, names, depth + 1)?),
                        binding,
                    ))
                }
                Some("enum") => {
                    let symbols = m.get("symbols").and_then(Value::as_array).ok_or_else(|| {
                        CwlError::invalid("an enum type needs a list of `symbols`")
                    })?;
                    let symbols = symbols
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|s| short_name(s).to_owned())
                        .collect();
                    Ok(Type::Enum(Arc::new(symbols), binding))
                }
                Some("record") => parse_record(m.get("fields"), names, depth),
                _ => parse_type(kind, names, depth + 1),
            }
        }
        other => Err(CwlError::invalid(format!("{other} is not a CWL type"))),
    }
}

fn parse_type_name(s: &str, names: &Names, depth: u32) -> Result<Type> {
    if let Some(base) = s.strip_suffix('?') {
        return Ok(Type::Union(vec![
            Type::Null,
            parse_type_name(base, names, depth + 1)?,
        ]));
    }
    if let Some(base) = s.strip_suffix("[]") {
        return Ok(Type::Array(
            Box::new(parse_type_name(base, names, depth + 1)?),
            None,
        ));
    }
    let plain = s
        .strip_prefix("https://w3id.org/cwl/salad#")
        .or_else(|| s.strip_prefix("http://www.w3.org/2001/XMLSchema#"))
        .or_else(|| s.strip_prefix("https://w3id.org/cwl/cwl#"))
        .unwrap_or(s);
    if let Some(t) = primitive(plain) {
        return Ok(t);
    }
    match names.raw.get(short_name(s)) {
        Some(def) => parse_type(def, names, depth + 1),
        None => Err(CwlError::invalid(format!("unknown type `{s}`"))),
    }
}

fn parse_record(fields: Option<&Value>, names: &Names, depth: u32) -> Result<Type> {
    let mut out = Vec::new();
    for (name, f) in crate::model::entries(fields, "name")? {
        let spec = match &f {
            Value::Object(_) => f.clone(),
            other => serde_json::json!({ "type": other }),
        };
        let ty = spec
            .get("type")
            .ok_or_else(|| CwlError::invalid(format!("record field `{name}` has no type")))?;
        out.push(Field {
            ty: parse_type(ty, names, depth + 1)?,
            binding: spec.get("inputBinding").map(Binding::parse).transpose()?,
            secondary_files: spec.get("secondaryFiles").cloned(),
            output_binding: spec.get("outputBinding").cloned(),
            name: short_name(&name).to_owned(),
        });
    }
    Ok(Type::Record(Arc::new(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Type {
        match Type::parse(&v, &Names::default()) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn shorthands_expand_to_unions_and_arrays() {
        assert_eq!(
            parse(json!("File?")),
            Type::Union(vec![Type::Null, Type::File])
        );
        assert_eq!(
            parse(json!("string[]?")),
            Type::Union(vec![Type::Null, Type::Array(Box::new(Type::String), None)])
        );
    }

    #[test]
    fn values_are_checked_against_types() {
        let t = parse(json!({"type": "array", "items": ["null", "int"]}));
        assert!(t.accepts(&json!([1, null, 3])));
        assert!(!t.accepts(&json!([1, "x"])));
        assert!(parse(json!("double")).accepts(&json!(2)));
        assert!(!parse(json!("int")).accepts(&json!(2.5)));
        let e = parse(json!({"type": "enum", "symbols": ["#main/x/a", "b"]}));
        assert!(e.accepts(&json!("a")) && !e.accepts(&json!("c")));
        assert!(!parse(json!("Any")).accepts(&Value::Null));
    }

    #[test]
    fn named_types_come_from_schema_defs_and_unknown_names_are_errors() {
        let mut names = Names::default();
        names.add_schema_defs(&json!([{"name": "#Pair", "type": "record",
            "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string?"}]}]));
        let t = Type::parse(&json!("#Pair"), &names);
        assert!(matches!(&t, Ok(Type::Record(f)) if f.len() == 2 && f[1].name == "b"));
        let err = Type::parse(&json!("Nope"), &names).err().map(|e| e.message);
        assert_eq!(err.as_deref(), Some("unknown type `Nope`"));
    }

    #[test]
    fn a_type_that_names_itself_is_an_error() {
        let mut names = Names::default();
        names.add_schema_defs(
            &json!([{"name": "Loop", "type": {"type": "array", "items": "Loop"}}]),
        );
        assert!(Type::parse(&json!("Loop"), &names).is_err());
    }
}
