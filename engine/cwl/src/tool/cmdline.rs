//! The command line of a tool: `baseCommand`, then `arguments` and the
//! inputs' `inputBinding`s sorted by their keys (position, then argument
//! index or input name, recursively through arrays and records), each
//! turned into words as cwltool does (prefixes, `separate`,
//! `itemSeparator`, booleans as flags, files as paths).

use crate::error::{CwlError, Result};
use crate::expr::{self, Context, Js};
use crate::model::Process;
use crate::types::{Binding, Type};
use serde_json::Value;
use std::cmp::Ordering;

pub use twinflow_core::shell_quote;

/// A part of a sort key: numbers sort before names.
#[derive(Debug, Clone, PartialEq)]
enum KeyPart {
    Num(f64),
    Name(String),
}

impl KeyPart {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Num(a), Self::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Self::Num(_), Self::Name(_)) => Ordering::Less,
            (Self::Name(_), Self::Num(_)) => Ordering::Greater,
            (Self::Name(a), Self::Name(b)) => a.cmp(b),
        }
    }
}

/// A binding with its key and the value it binds.
#[derive(Debug, Clone)]
struct Bound {
    key: Vec<KeyPart>,
    binding: Binding,
    datum: Value,
    /// Bound from an input (not an `arguments` entry).
    from_input: bool,
    /// Where it is written in the process (`arguments/0`, `inputs/x`), for errors.
    at: String,
}

/// One word of the command line and whether it may be shell-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text.
    pub text: String,
    /// False for a binding with `shellQuote: false`.
    pub quote: bool,
}

/// Builds the words of `tool`'s command line for inputs `inputs`.
pub fn build(tool: &Process, inputs: &Value, runtime: &Value) -> Result<Vec<Word>> {
    let js = tool.js();
    let base = Context {
        inputs,
        self_: &Value::Null,
        runtime,
        lib: tool.expression_lib(),
    };
    let mut bound = Vec::new();
    if let Some(Value::Array(args)) = tool.field("arguments") {
        for (i, arg) in args.iter().enumerate() {
            let binding = match arg {
                Value::Object(_) => Binding::parse(arg)?,
                other => Binding {
                    position: Value::from(0),
                    prefix: None,
                    separate: true,
                    item_separator: None,
                    value_from: Some(other.clone()),
                    shell_quote: true,
                    load_contents: false,
                },
            };
            let at = format!("arguments/{i}");
            let mut key = position(&binding.position, &base, js).map_err(|e| tool.error(&at, e))?;
            key.push(KeyPart::Num(i as f64));
            bound.push(Bound {
                key,
                binding,
                datum: Value::Null,
                from_input: false,
                at,
            });
        }
    }
    for param in &tool.inputs {
        let datum = inputs.get(&param.id).cloned().unwrap_or(Value::Null);
        let tail = vec![KeyPart::Name(param.id.clone())];
        let at = format!("inputs/{}", param.id);
        let first = bound.len();
        bind(
            &param.ty,
            param.binding.as_ref(),
            &datum,
            &[],
            &tail,
            &base,
            js,
            &mut bound,
        )
        .map_err(|e| tool.error(&at, e))?;
        for b in bound.iter_mut().skip(first) {
            b.at.clone_from(&at);
        }
    }
    bound.sort_by(|a, b| compare_keys(&a.key, &b.key));
    let mut words: Vec<Word> = Vec::new();
    match tool.field("baseCommand") {
        Some(Value::String(s)) => words.push(Word {
            text: s.clone(),
            quote: true,
        }),
        Some(Value::Array(items)) => {
            for item in items {
                words.push(Word {
                    text: to_str(item)?,
                    quote: true,
                });
            }
        }
        _ => {}
    }
    for b in &bound {
        let quote = b.binding.shell_quote;
        for text in generate(b, &base, js).map_err(|e| tool.error(&b.at, e))? {
            words.push(Word { text, quote });
        }
    }
    Ok(words)
}

fn compare_keys(a: &[KeyPart], b: &[KeyPart]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.cmp(y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

fn position(pos: &Value, ctx: &Context, js: Js) -> Result<Vec<KeyPart>> {
    let v = expr::eval(pos, ctx, js)?;
    Ok(match v {
        Value::Number(n) => vec![KeyPart::Num(n.as_f64().unwrap_or(0.0))],
        Value::Null => vec![KeyPart::Num(0.0)],
        Value::String(s) if s.is_empty() => vec![KeyPart::Num(0.0)],
        Value::String(s) => match s.parse::<f64>() {
            Ok(n) => vec![KeyPart::Num(n)],
            Err(_) => {
                return Err(CwlError::invalid(format!("position `{s}` is not a number")));
            }
        },
        other => {
            return Err(CwlError::invalid(format!(
                "position {other} is not a number"
            )));
        }
    })
}

/// cwltool's `bind_input`: the bindings of `datum` of type `ty` whose own
/// binding is `binding`, keys prefixed by `lead` and followed by `tail`;
/// expressions see `base` (with `self` the datum).
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors cwltool's bind_input, recursive"
)]
fn bind(
    ty: &Type,
    binding: Option<&Binding>,
    datum: &Value,
    lead: &[KeyPart],
    tail: &[KeyPart],
    base: &Context<'_>,
    js: Js,
    out: &mut Vec<Bound>,
) -> Result<()> {
    let mut own: Option<Bound> = match binding {
        Some(b) => {
            let ctx = Context {
                self_: datum,
                ..*base
            };
            let mut key = lead.to_vec();
            key.extend(position(&b.position, &ctx, js)?);
            key.extend(tail.iter().cloned());
            Some(Bound {
                key,
                binding: b.clone(),
                datum: datum.clone(),
                from_input: true,
                at: String::new(),
            })
        }
        None => None,
    };
    let value_from = binding.is_some_and(|b| b.value_from.is_some());
    let mut children = Vec::new();
    if !value_from {
        let ty = match ty {
            Type::Union(_) => match ty.select(datum) {
                Some(t) => t,
                None if datum.is_null() => &Type::Null,
                None => {
                    return Err(CwlError::invalid(format!(
                        "{datum} is not a value of {}",
                        ty.describe()
                    )));
                }
            },
            t => t,
        };
        match (ty, datum) {
            (Type::Record(fields), Value::Object(m)) => {
                for f in fields.iter() {
                    if let Some(v) = m.get(&f.name).filter(|v| !v.is_null()) {
                        let tail = vec![KeyPart::Name(f.name.clone())];
                        bind(
                            &f.ty,
                            f.binding.as_ref(),
                            v,
                            &[],
                            &tail,
                            base,
                            js,
                            &mut children,
                        )?;
                    }
                }
            }
            (Type::Array(items, item_binding), Value::Array(vs)) => {
                // An array bound as a whole without itemSeparator binds its
                // items too (with an empty binding if they have none).
                let implied;
                let item_binding = match item_binding.as_deref() {
                    Some(b) => Some(b),
                    None if binding.is_some_and(|b| b.item_separator.is_none()) => {
                        implied = Binding::parse(&Value::Object(Default::default()))?;
                        Some(&implied)
                    }
                    None => None,
                };
                for (n, item) in vs.iter().enumerate() {
                    let lead = vec![KeyPart::Num(n as f64)];
                    bind(
                        items,
                        item_binding,
                        item,
                        &lead,
                        &[],
                        base,
                        js,
                        &mut children,
                    )?;
                }
            }
            (Type::Enum(_, Some(b)), v) => {
                bind(&Type::String, Some(b), v, &[], &[], base, js, &mut children)?;
            }
            _ => {}
        }
    }
    if let Some(own) = own.as_mut() {
        for child in &mut children {
            let mut key = own.key.clone();
            key.append(&mut child.key);
            child.key = key;
        }
    }
    out.append(&mut children);
    if let Some(own) = own {
        out.push(own);
    }
    Ok(())
}

/// cwltool's `generate_arg`: the words of one binding.
fn generate(b: &Bound, base: &Context<'_>, js: Js) -> Result<Vec<String>> {
    let binding = &b.binding;
    let value = match &binding.value_from {
        // The spec: a null input's `valueFrom` is not evaluated, and the
        // input adds nothing.
        Some(_) if b.from_input && b.datum.is_null() => Value::Null,
        Some(vf) => {
            let ctx = Context {
                self_: &b.datum,
                ..*base
            };
            expr::eval(vf, &ctx, js)?
        }
        None => b.datum.clone(),
    };
    let prefix = binding.prefix.as_deref();
    if prefix.is_none() && !binding.separate {
        return Err(CwlError::invalid(
            "`separate` can not be specified without `prefix`",
        ));
    }
    let items: Vec<Value> = match &value {
        Value::Array(vs) => {
            if let (Some(sep), false) = (&binding.item_separator, vs.is_empty()) {
                let joined = vs.iter().map(to_str).collect::<Result<Vec<_>>>()?.join(sep);
                vec![Value::String(joined)]
            } else if binding.value_from.is_some() {
                let mut out: Vec<String> = prefix.map(str::to_owned).into_iter().collect();
                for v in vs {
                    out.push(to_str(v)?);
                }
                return Ok(out);
            } else {
                return Ok(match prefix {
                    Some(p) if !vs.is_empty() => vec![p.to_owned()],
                    _ => Vec::new(),
                });
            }
        }
        Value::Object(_) if crate::files::class_of(&value).is_some() => vec![value.clone()],
        Value::Object(_) => return Ok(prefix.map(str::to_owned).into_iter().collect()),
        Value::Bool(true) => return Ok(prefix.map(str::to_owned).into_iter().collect()),
        Value::Bool(false) | Value::Null => return Ok(Vec::new()),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for item in &items {
        let text = to_str(item)?;
        match (prefix, binding.separate) {
            (Some(p), true) => {
                out.push(p.to_owned());
                out.push(text);
            }
            (Some(p), false) => out.push(format!("{p}{text}")),
            (None, _) => out.push(text),
        }
    }
    Ok(out)
}

/// A value as one word: a file's path, a string as is, numbers and
/// booleans as Python prints them.
pub fn to_str(v: &Value) -> Result<String> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        // Decimals, never scientific notation (`0.0000123`, `123000`), as
        // cwltool writes floats on command lines.
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => format!("{f}"),
            _ => n.to_string(),
        },
        Value::Object(_) if crate::files::class_of(v).is_some() => {
            match v.get("path").and_then(Value::as_str) {
                Some(p) => p.to_owned(),
                None => return Err(CwlError::invalid(format!("{v} has no path"))),
            }
        }
        other => other.to_string(),
    })
}
