//! `File` and `Directory` objects: resolving `location`/`path` to a local
//! path, the derived fields (`basename`, `nameroot`, `nameext`, `dirname`,
//! `size`, `checksum`), `listing`, `secondaryFiles` patterns, and the
//! objects of files found on disk.

use crate::error::{CwlError, Result};
use serde_json::{Map, Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Most bytes `loadContents` reads.
pub const MAX_CONTENTS: u64 = 64 * 1024;

/// The class of a `File` or `Directory` object, if `v` is one.
pub fn class_of(v: &Value) -> Option<&str> {
    v.get("class")
        .and_then(Value::as_str)
        .filter(|c| *c == "File" || *c == "Directory")
}

/// Applies `f` to every File and Directory object of `v` that is not
/// inside another one (through arrays and records; a File's own
/// `secondaryFiles` and a Directory's `listing` are `f`'s to handle).
pub fn for_each_object(v: &mut Value, f: &mut dyn FnMut(&mut Value) -> Result<()>) -> Result<()> {
    if class_of(v).is_some() {
        return f(v);
    }
    match v {
        Value::Array(items) => items.iter_mut().try_for_each(|x| for_each_object(x, f)),
        Value::Object(m) => m.values_mut().try_for_each(|x| for_each_object(x, f)),
        _ => Ok(()),
    }
}

/// The local path of a File/Directory object (`path`, else a `file:`
/// `location`), when it has one.
pub fn local_path(v: &Value) -> Option<PathBuf> {
    if let Some(p) = v.get("path").and_then(Value::as_str) {
        return Some(PathBuf::from(p));
    }
    let loc = v.get("location").and_then(Value::as_str)?;
    if loc.starts_with("_:") {
        return None;
    }
    Some(PathBuf::from(percent_decode(
        crate::load::strip_file_scheme(loc),
    )))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a basename into `nameroot` and `nameext` (`a.tar.gz` gives
/// `a.tar` and `.gz`; `.bashrc` gives `.bashrc` and nothing).
pub fn split_name(basename: &str) -> (&str, &str) {
    match basename.rfind('.') {
        Some(0) | None => (basename, ""),
        Some(i) => (&basename[..i], &basename[i..]),
    }
}

/// Resolves every File and Directory object in `v` (recursively through
/// arrays and records) against `base`: absolute `path` and `location`, and
/// the derived name fields. `location` schemes other than `file:` are
/// refused as unsupported.
pub fn resolve(v: &mut Value, base: &Path) -> Result<()> {
    match v {
        Value::Array(items) => items.iter_mut().try_for_each(|x| resolve(x, base)),
        Value::Object(m) if class_of_map(m).is_some() => resolve_object(m, base),
        Value::Object(m) => m.values_mut().try_for_each(|x| resolve(x, base)),
        _ => Ok(()),
    }
}

fn class_of_map(m: &Map<String, Value>) -> Option<&str> {
    m.get("class")
        .and_then(Value::as_str)
        .filter(|c| *c == "File" || *c == "Directory")
}

fn resolve_object(m: &mut Map<String, Value>, base: &Path) -> Result<()> {
    let given = m
        .get("path")
        .or_else(|| m.get("location"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(given) = given {
        if let Some((scheme, _)) = given.split_once("://")
            && scheme != "file"
        {
            return Err(CwlError::unsupported(format!(
                "location {given}: only local files (file:) are read"
            )));
        }
        if !given.starts_with("_:") {
            let path = base.join(percent_decode(crate::load::strip_file_scheme(&given)));
            let path = normalise(&path);
            let text = path.to_string_lossy().into_owned();
            m.insert("path".into(), Value::String(text.clone()));
            m.insert("location".into(), Value::String(format!("file://{text}")));
            if let Some(parent) = path.parent() {
                m.insert(
                    "dirname".into(),
                    Value::String(parent.to_string_lossy().into_owned()),
                );
            }
            if !m.contains_key("basename") {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                m.insert("basename".into(), Value::String(name));
            }
        }
    }
    if let Some(name) = m.get("basename").and_then(Value::as_str).map(str::to_owned) {
        let (root, ext) = split_name(&name);
        m.insert("nameroot".into(), Value::String(root.to_owned()));
        m.insert("nameext".into(), Value::String(ext.to_owned()));
    }
    for key in ["secondaryFiles", "listing"] {
        if let Some(list) = m.get_mut(key) {
            resolve(list, base)?;
        }
    }
    Ok(())
}

/// `a/./b/../c` as `a/c`, without touching the file system.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `sha1$<hex>` of a file's bytes.
pub fn checksum(path: &Path) -> Result<String> {
    use sha1::Digest;
    let mut file = std::fs::File::open(path).map_err(|e| CwlError::io("cannot read", path, &e))?;
    let mut hasher = sha1::Sha1::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| CwlError::io("cannot read", path, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha1${hex}"))
}

/// The first [`MAX_CONTENTS`] bytes of a file, as text; more is an error
/// (CWL says so for `loadContents`).
pub fn contents(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| CwlError::io("cannot read", path, &e))?;
    if meta.len() > MAX_CONTENTS {
        return Err(CwlError::failed(format!(
            "loadContents of {}: {} bytes, more than the {MAX_CONTENTS} allowed",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| CwlError::io("cannot read", path, &e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The object of a file or directory found on disk at `path`: location,
/// path, names, and for a file its size and (with `with_checksum`) checksum,
/// for a directory its full listing.
pub fn object_of(path: &Path, with_checksum: bool) -> Result<Value> {
    let meta = std::fs::metadata(path).map_err(|e| CwlError::io("cannot read", path, &e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (root, ext) = split_name(&name);
    let text = path.to_string_lossy();
    let mut obj = json!({
        "location": format!("file://{text}"),
        "path": text,
        "basename": name,
        "nameroot": root,
        "nameext": ext,
    });
    if meta.is_dir() {
        obj["class"] = json!("Directory");
        obj["listing"] = Value::Array(listing(path, true, with_checksum)?);
    } else {
        obj["class"] = json!("File");
        obj["size"] = json!(meta.len());
        if with_checksum {
            obj["checksum"] = json!(checksum(path)?);
        }
    }
    Ok(obj)
}

/// The entries of directory `dir`, sorted by name; directories listed
/// recursively when `deep`.
pub fn listing(dir: &Path, deep: bool, with_checksum: bool) -> Result<Vec<Value>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CwlError::io("cannot list", dir, &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for p in names {
        if p.is_dir() {
            let mut obj = object_of_shallow(&p, "Directory");
            if deep {
                obj["listing"] = Value::Array(listing(&p, true, with_checksum)?);
            }
            out.push(obj);
        } else {
            out.push(object_of(&p, with_checksum)?);
        }
    }
    Ok(out)
}

fn object_of_shallow(path: &Path, class: &str) -> Value {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = path.to_string_lossy();
    json!({
        "class": class,
        "location": format!("file://{text}"),
        "path": text,
        "basename": name,
    })
}

/// A `secondaryFiles` pattern applied to a primary file's basename: `^`
/// strips an extension each, the rest is appended (`^.bai` on `a.bam` is
/// `a.bai`).
pub fn secondary_name(primary: &str, pattern: &str) -> String {
    let mut base = primary;
    let mut rest = pattern;
    while let Some(r) = rest.strip_prefix('^') {
        base = match base.rfind('.') {
            Some(i) => &base[..i],
            None => base,
        };
        rest = r;
    }
    format!("{base}{rest}")
}

/// The evaluated `required` of a `secondaryFiles` entry (null, as
/// JavaScript's falsy `inputs.flag` of an absent flag, is false).
pub fn required(v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        other => Err(CwlError::invalid(format!(
            "secondaryFiles `required` gave {other}, not a boolean"
        ))),
    }
}

/// What one `secondaryFiles` entry names for the primary File `ctx.self_`,
/// and whether it is required: a plain pattern applied to the primary's
/// basename (a name, as a string, beside the primary), else whatever its
/// expression gives (a name, a File object, a list of them, or null).
pub fn secondary_names(
    pattern: &Value,
    required: &Value,
    ctx: &crate::expr::Context<'_>,
    js: crate::expr::Js,
) -> Result<(Value, bool)> {
    let is_expr = pattern
        .as_str()
        .is_some_and(|p| p.contains("$(") || p.contains("${"));
    let required = self::required(&crate::expr::eval(required, ctx, js)?)?;
    let names = match crate::expr::eval(pattern, ctx, js)? {
        Value::String(p) if !is_expr => {
            let basename = ctx
                .self_
                .get("basename")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Value::String(secondary_name(basename, &p))
        }
        other => other,
    };
    Ok((names, required))
}

/// Normalised `secondaryFiles` entries: `(pattern or expression, required)`,
/// `required` a boolean or an expression that gives one.
pub fn secondary_patterns(spec: &Value, default_required: bool) -> Vec<(Value, Value)> {
    let one = |v: &Value| -> Option<(Value, Value)> {
        match v {
            Value::String(s) => match s.strip_suffix('?') {
                Some(p) => Some((Value::String(p.to_owned()), Value::Bool(false))),
                None => Some((v.clone(), Value::Bool(default_required))),
            },
            Value::Object(m) => {
                let pattern = m.get("pattern")?.clone();
                let required = match m.get("required") {
                    None | Some(Value::Null) => Value::Bool(default_required),
                    Some(r) => r.clone(),
                };
                Some((pattern, required))
            }
            _ => None,
        }
    };
    match spec {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_last_dot() {
        assert_eq!(split_name("a.tar.gz"), ("a.tar", ".gz"));
        assert_eq!(split_name(".bashrc"), (".bashrc", ""));
        assert_eq!(split_name("README"), ("README", ""));
    }

    #[test]
    fn secondary_patterns_strip_extensions_with_carets() {
        assert_eq!(secondary_name("a.bam", "^.bai"), "a.bai");
        assert_eq!(secondary_name("a.bam", ".bai"), "a.bam.bai");
        assert_eq!(secondary_name("a.x.y", "^^.z"), "a.z");
        let p = secondary_patterns(
            &json!([".idx?", {"pattern": "^.b", "required": false}, ".c"]),
            true,
        );
        assert_eq!(
            p,
            vec![
                (json!(".idx"), json!(false)),
                (json!("^.b"), json!(false)),
                (json!(".c"), json!(true))
            ]
        );
    }

    #[test]
    fn locations_resolve_against_the_base_and_gain_their_names() -> Result<()> {
        let mut v = json!({"class": "File", "location": "d/../x.tar.gz"});
        resolve(&mut v, Path::new("/jobs"))?;
        assert_eq!(v["path"], "/jobs/x.tar.gz");
        assert_eq!(v["location"], "file:///jobs/x.tar.gz");
        assert_eq!(
            (v["nameroot"].as_str(), v["nameext"].as_str()),
            (Some("x.tar"), Some(".gz"))
        );
        let mut remote = json!({"class": "File", "location": "https://example.org/x"});
        assert!(resolve(&mut remote, Path::new("/")).is_err());
        Ok(())
    }

    #[test]
    fn checksums_are_sha1_of_the_bytes() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| CwlError::io("tempdir", Path::new("/tmp"), &e))?;
        let p = dir.path().join("f");
        std::fs::write(&p, "hello\n").map_err(|e| CwlError::io("write", &p, &e))?;
        assert_eq!(
            checksum(&p)?,
            "sha1$f572d396fae9206628714fb2ce00f72e94f2258f"
        );
        Ok(())
    }
}
