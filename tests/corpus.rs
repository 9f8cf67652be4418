//! The bad-file corpus: small, realistic workflow files under
//! `tests/corpus/bad/`, each with exactly one mistake, and the diagnostics the
//! compiler gives for them.
//!
//! Every file starts with header comments:
//!
//! ```yaml
//! # expect: twinflow::unknown-key      (required: code of the first diagnostic)
//! # param: region=north-finland        (optional, repeatable: a `--param` override)
//! # site: lumi.yaml                    (optional: a `--site` file under tests/corpus/sites/)
//! ```
//!
//! For each file the test checks that the compile fails, that the first
//! diagnostic has the expected code, that every diagnostic has a message, and
//! snapshots all rendered diagnostics (`tests/snapshots/bad__<stem>.snap`).
//! All files are checked before the test fails; the failure lists every file.
//! Update snapshots with `INSTA_UPDATE=always cargo test -p twinflow-tests --test corpus`
//! (or `cargo insta review`) and read them before committing.
//!
//! `tests/corpus/multi/` holds a file with several independent mistakes, all of
//! which must be reported by one compile.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use twinflow_tests::{repo_root, yaml_files};
use twinflow_workflow::{CompileError, CompileOptions, SiteSource, compile_str, parse_param_arg};

/// The corpus never shrinks below this many bad files.
const MIN_BAD_FILES: usize = 30;

fn corpus_dir() -> PathBuf {
    repo_root().join("tests").join("corpus")
}

fn bad_files() -> Vec<PathBuf> {
    yaml_files(&corpus_dir().join("bad"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// A corpus file with its header comments read.
struct Case {
    /// `bad/NN-name.yaml`: the name diagnostics show (machine-independent).
    display_name: String,
    text: String,
    /// `# expect:` code, if the header has one.
    expect: Option<String>,
    options: CompileOptions,
}

/// Reads a corpus file and the leading `# key: value` comments.
fn load(path: &Path) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .map_or_else(String::new, |d| d.to_string_lossy().into_owned());
    let mut case = Case {
        display_name: format!("{dir}/{}", file_name(path)),
        text: String::new(),
        expect: None,
        options: CompileOptions::default(),
    };
    for line in text.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = comment.trim().split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "expect" => {
                if case.expect.is_some() {
                    return Err("more than one `# expect:` line".into());
                }
                case.expect = Some(value.to_owned());
            }
            "param" => {
                let pair = parse_param_arg(value)
                    .map_err(|e| format!("bad `# param: {value}` header: {}", e.message()))?;
                case.options.params.push(pair);
            }
            "site" => {
                if case.options.site.is_some() {
                    return Err("more than one `# site:` line".into());
                }
                let site_path = corpus_dir().join("sites").join(value);
                let site_text = std::fs::read_to_string(&site_path)
                    .map_err(|e| format!("cannot read site file `{}`: {e}", site_path.display()))?;
                case.options.site = Some(SiteSource {
                    name: format!("sites/{value}"),
                    text: site_text,
                });
            }
            _ => {}
        }
    }
    case.text = text;
    Ok(case)
}

fn compile(case: &Case) -> Result<(), CompileError> {
    compile_str(&case.display_name, &case.text, &case.options).map(|_| ())
}

/// Every diagnostic rendered without colour, one after the other.
fn render_all(err: &CompileError) -> String {
    let mut out = String::new();
    for d in &err.diagnostics {
        out.push_str(&d.render(false));
        out.push('\n');
    }
    out
}

/// Checks one bad file; on success returns what to snapshot.
fn check_bad_file(path: &Path) -> Result<(Case, String), String> {
    let case = load(path)?;
    if !case.text.starts_with("# expect: ") {
        return Err("the first line must be `# expect: twinflow::CODE`".into());
    }
    let Some(expect) = case.expect.as_deref() else {
        return Err("no `# expect:` header".into());
    };
    let err = match compile(&case) {
        Ok(()) => return Err(format!("compiled without errors, expected `{expect}`")),
        Err(err) => err,
    };
    let Some(first) = err.diagnostics.first() else {
        return Err("the compile failed with no diagnostics".into());
    };
    if first.code() != expect {
        return Err(format!(
            "the first diagnostic is `{}` (\"{}\"), expected `{expect}`; all codes: {:?}",
            first.code(),
            first.message(),
            err.diagnostics.iter().map(|d| d.code()).collect::<Vec<_>>(),
        ));
    }
    if let Some(empty) = err
        .diagnostics
        .iter()
        .find(|d| d.message().trim().is_empty())
    {
        return Err(format!(
            "a `{}` diagnostic has an empty message",
            empty.code()
        ));
    }
    // A mistake in the file must be pointed at; only `--param` problems have no place.
    if case.options.params.is_empty() && first.line_col().is_none() {
        return Err(format!(
            "the first diagnostic (`{}`) points at no line",
            first.code()
        ));
    }
    let rendered = render_all(&err);
    Ok((case, rendered))
}

/// Snapshots `rendered` as `tests/snapshots/<name>.snap`.
fn snapshot(name: &str, input: &Path, description: &str, rendered: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(input);
    settings.set_description(description);
    settings.bind(|| insta::assert_snapshot!(name, rendered));
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".to_owned())
}

#[test]
fn every_bad_file_fails_with_its_expected_diagnostic() {
    let files = bad_files();
    assert!(
        !files.is_empty(),
        "no files in {}",
        corpus_dir().join("bad").display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = file_name(path);
        let checked = catch_unwind(AssertUnwindSafe(|| check_bad_file(path)))
            .unwrap_or_else(|payload| Err(format!("panicked: {}", panic_message(&*payload))));
        let (case, rendered) = match checked {
            Ok(ok) => ok,
            Err(why) => {
                failures.push(format!("{name}: {why}"));
                continue;
            }
        };
        let description = format!(
            "{} (expect {})",
            case.display_name,
            case.expect.as_deref().unwrap_or("?")
        );
        let snapshot_name = format!("bad__{}", file_stem(path));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
            snapshot(&snapshot_name, path, &description, &rendered);
        })) {
            failures.push(format!("{name}: {}", panic_message(&*payload)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files in tests/corpus/bad failed:\n  {}",
        failures.len(),
        files.len(),
        failures.join("\n  ")
    );
}

#[test]
fn the_corpus_is_large_and_well_named() {
    let files = bad_files();
    assert!(
        files.len() >= MIN_BAD_FILES,
        "tests/corpus/bad has {} files, expected at least {MIN_BAD_FILES}",
        files.len()
    );
    // Files are numbered `NN-short-name.yaml` (two digits or more), each
    // number once. Numbers may leave gaps: work done in parallel takes a
    // block of numbers (e.g. 120-159) so that branches merge cleanly.
    let mut seen = std::collections::BTreeMap::new();
    for path in &files {
        let name = file_name(path);
        let number = name
            .split_once('-')
            .filter(|(n, rest)| {
                n.len() >= 2 && n.bytes().all(|b| b.is_ascii_digit()) && rest.len() > 5
            })
            .and_then(|(n, _)| n.parse::<u32>().ok())
            .filter(|_| name.ends_with(".yaml"));
        let Some(number) = number else {
            panic!("tests/corpus/bad/{name}: expected a name like `NN-short-name.yaml`");
        };
        if let Some(other) = seen.insert(number, name.clone()) {
            panic!("tests/corpus/bad/{name} and {other} share the number {number}");
        }
    }
}

/// Reads `#   line N: ... (twinflow::CODE)` lines of a multi-mistake file.
fn expected_mistakes(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.trim_start_matches('#').trim().strip_prefix("line ")?;
            let (line, rest) = rest.split_once(':')?;
            let code = rest.rsplit_once('(')?.1.strip_suffix(')')?;
            Some((line.trim().parse().ok()?, code.trim().to_owned()))
        })
        .collect()
}

#[test]
fn every_mistake_in_one_file_is_reported_at_once() {
    let path = corpus_dir()
        .join("multi")
        .join("forest-bird-five-mistakes.yaml");
    let case = load(&path).unwrap();
    let expected = expected_mistakes(&case.text);
    assert_eq!(
        expected.len(),
        5,
        "the header of {} lists five mistakes",
        case.display_name
    );
    let err = compile(&case).expect_err("a file with five mistakes must not compile");
    let got: Vec<(usize, String)> = err
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.line_col().map_or(0, |(line, _)| line),
                d.code().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        expected,
        "one compile must report every mistake, in file order, as (line, code); rendered:\n{}",
        render_all(&err)
    );
    snapshot(
        &format!("multi__{}", file_stem(&path)),
        &path,
        &case.display_name,
        &render_all(&err),
    );
}
