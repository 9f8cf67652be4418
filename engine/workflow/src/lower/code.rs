//! The code a step runs, for the cache key: the files under the workflow's
//! directory that its `run` names through `${{ workflow.dir }}`, and what
//! its `code:` lists (paths or globs relative to that directory, each of
//! which must find something inside it). The runtime digests these files
//! once per run (docs/running.md, "Caching").

use crate::diag::Diags;
use crate::model::StepDoc;
use crate::span::Spanned;
use std::path::{Component, Path, PathBuf};
use twinflow_core::{Piece, Ref, Template};

/// Characters that end a path written after `${{ workflow.dir }}` in a
/// shell script.
const PATH_END: &[char] = &['\'', '"', '`', ';', '|', '&', '<', '>', '(', ')', '$', '\\'];

/// The code files of a step, absolute, sorted, without repeats; a `code:`
/// entry that is not a path inside the workflow's directory, or finds
/// nothing, is a diagnostic at its span.
pub(super) fn collect(
    d: &mut Diags,
    s: &StepDoc,
    run: Option<&Template>,
    workflow_dir: &Path,
) -> Vec<PathBuf> {
    let mut code = Vec::new();
    if let Some(run) = run {
        named_in_run(run, workflow_dir, &mut code);
    }
    for entry in &s.code {
        listed(d, entry, workflow_dir, &mut code);
    }
    code.sort();
    code.dedup();
    code
}

/// Files named as `${{ workflow.dir }}/PATH` in the script: PATH runs to
/// the first blank, quote or shell operator. Only existing regular files
/// count (a directory, or a path the script builds further, is not code
/// the compiler can see: list it under `code:`).
fn named_in_run(run: &Template, workflow_dir: &Path, out: &mut Vec<PathBuf>) {
    for pair in run.pieces.windows(2) {
        let [Piece::Ref(Ref::WorkflowDir), Piece::Lit(text)] = pair else {
            continue;
        };
        let Some(rest) = text.strip_prefix('/') else {
            continue;
        };
        let end = rest
            .find(|c: char| c.is_whitespace() || PATH_END.contains(&c))
            .unwrap_or(rest.len());
        let Some(rel) = inside(&rest[..end]) else {
            continue;
        };
        let path = workflow_dir.join(rel);
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            out.push(path);
        }
    }
}

/// `rel` normalised, if it is a relative path that stays inside.
pub(crate) fn inside(rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

/// One `code:` entry: a file or directory, or a glob over files.
fn listed(d: &mut Diags, entry: &Spanned<String>, workflow_dir: &Path, out: &mut Vec<PathBuf>) {
    let text = entry.value.trim();
    let bad = |d: &mut Diags, message: String, label: &str| {
        d.at("twinflow::bad-code", entry.span, message, label)
            .set_help(Some(
                "`code:` lists files the script reads, relative to the workflow file's \
                 directory: `code: [twins/common.py, twins/lib/**/*.py]`"
                    .into(),
            ));
    };
    if text.is_empty() || text.contains("${{") {
        return bad(d, format!("`{}` is not a path", entry.value), "not a path");
    }
    let Some(rel) = inside(text) else {
        return bad(
            d,
            format!("`{text}` is outside the workflow's directory"),
            "outside the workflow's directory",
        );
    };
    let root = std::fs::canonicalize(workflow_dir).unwrap_or_else(|_| workflow_dir.to_owned());
    if !is_glob(text) {
        let path = workflow_dir.join(&rel);
        match std::fs::canonicalize(&path) {
            Err(_) => bad(
                d,
                format!("code `{text}` does not exist next to the workflow file"),
                "no such file",
            ),
            Ok(real) if !real.starts_with(&root) => bad(
                d,
                format!("code `{text}` leads outside the workflow's directory"),
                "a link out of the workflow's directory",
            ),
            Ok(_) => out.push(path),
        }
        return;
    }
    let matcher = match globset::GlobBuilder::new(&rel.to_string_lossy())
        .literal_separator(true)
        .build()
    {
        Ok(glob) => glob.compile_matcher(),
        Err(e) => return bad(d, format!("`{text}` is not a valid glob: {e}"), "bad glob"),
    };
    // Walk only below the glob's leading literal directories.
    let base: PathBuf = rel
        .components()
        .take_while(|c| !is_glob(&c.as_os_str().to_string_lossy()))
        .collect();
    let before = out.len();
    let mut todo = vec![base];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(workflow_dir.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = dir.join(entry.file_name());
            // Links are not followed into directories (no loops, nothing
            // outside); a link to a file inside counts as that file.
            let Ok(ty) = entry.file_type() else { continue };
            if ty.is_dir() {
                todo.push(rel);
            } else if matcher.is_match(&rel) {
                let path = workflow_dir.join(&rel);
                let real_file = std::fs::canonicalize(&path).is_ok_and(|real| {
                    real.starts_with(&root) && std::fs::metadata(&real).is_ok_and(|m| m.is_file())
                });
                if real_file {
                    out.push(path);
                }
            }
        }
    }
    if out.len() == before {
        bad(
            d,
            format!("code `{text}` matches no file in the workflow's directory"),
            "matches nothing",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::inside;
    use std::path::PathBuf;

    #[test]
    fn paths_are_normalised_and_may_not_leave() {
        assert_eq!(inside("./a/../b/c.py"), Some(PathBuf::from("b/c.py")));
        assert_eq!(inside("../x"), None);
        assert_eq!(inside("a/../../x"), None);
        assert_eq!(inside("/etc/passwd"), None);
        assert_eq!(inside("."), None);
    }
}
