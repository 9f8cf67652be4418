//! Mutated workflows never make the compiler panic, and every refusal comes
//! with a proper diagnostic: a `twinflow::` code and a message.
//!
//! The property test mutates every example workflow at random (byte ranges
//! deleted, YAML and expression syntax inserted, lines duplicated and
//! swapped, identifiers replaced by others of the same file, truncation);
//! the deterministic test applies hand-picked nasty edits to the normative
//! example.

use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use twinflow_tests::{repo_root, shared_dir, yaml_files};
use twinflow_workflow::{CompileOptions, compile_str};

// ------------------------------------------------------------- the check

/// Text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not a string)".to_owned())
}

/// What compiling `text` did: `Ok(true)` compiled, `Ok(false)` refused with
/// well-formed diagnostics, `Err` a panic or a malformed refusal.
fn verdict(name: &str, text: &str) -> Result<bool, String> {
    // As from the demo's directory, where its `model:` crate is.
    let options = CompileOptions {
        workflow_dir: repo_root().join("workflows").join("forest-bird"),
        ..CompileOptions::default()
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| compile_str(name, text, &options)))
        .map_err(|payload| format!("compile_str panicked: {}", panic_text(&*payload)))?;
    let Err(err) = outcome else {
        return Ok(true);
    };
    if err.diagnostics.is_empty() {
        return Err("refused without a diagnostic".to_owned());
    }
    for d in &err.diagnostics {
        if !d.code().starts_with("twinflow::") {
            return Err(format!(
                "a diagnostic without a twinflow:: code: {:?}",
                d.code()
            ));
        }
        if d.message().trim().is_empty() {
            return Err(format!("`{}` has an empty message", d.code()));
        }
    }
    // Rendering (spans into the mutated text, line/column) must not panic either.
    catch_unwind(AssertUnwindSafe(|| {
        for d in &err.diagnostics {
            let _ = d.line_col();
            let _ = d.render(false);
        }
        let _ = err.render(false);
    }))
    .map_err(|payload| format!("rendering panicked: {}", panic_text(&*payload)))?;
    Ok(false)
}

// ------------------------------------------------------------ the corpus

/// Every example workflow and the normative example: (file name, text).
fn corpus() -> &'static [(String, String)] {
    static CORPUS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        // Site files (`workflows/sites/`) are not workflows.
        let mut files: Vec<_> = yaml_files(&repo_root().join("workflows"))
            .into_iter()
            .filter(|p| !p.components().any(|c| c.as_os_str() == "sites"))
            .collect();
        files.push(shared_dir().join("spec/forest-bird.yaml"));
        files
            .iter()
            .filter_map(|path| {
                let text = std::fs::read_to_string(path).ok()?;
                let name = path.file_name()?.to_string_lossy().into_owned();
                Some((name, text))
            })
            .collect()
    })
}

/// The normative example's text, or "" when it cannot be read.
fn normative() -> String {
    std::fs::read_to_string(shared_dir().join("spec/forest-bird.yaml")).unwrap_or_default()
}

// ------------------------------------------------------------- mutations

#[derive(Debug, Clone)]
enum Mutation {
    /// Delete up to `len` bytes from `at` (both taken modulo the text).
    Delete { at: usize, len: usize },
    /// Insert `text` at `at`.
    Insert { at: usize, text: String },
    /// Write line `line` twice.
    DuplicateLine { line: usize },
    /// Swap lines `a` and `b`.
    SwapLines { a: usize, b: usize },
    /// Replace identifier-like token number `from` by token number `to`.
    ReplaceToken { from: usize, to: usize },
    /// Cut the text at `at`.
    Truncate { at: usize },
}

/// Syntax that matters to YAML, to expressions and to references.
const FRAGMENTS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "${{",
    "}}",
    "${{ ",
    " }}",
    "${{ }}",
    "@-1",
    "@-0",
    "@-",
    "@-99999999999",
    "\t",
    "\n",
    "\r\n",
    "\n  ",
    "\n    - ",
    "\"",
    "'",
    "#",
    " #",
    "&a ",
    "*a",
    "<<: ",
    "? ",
    "!!str ",
    "!x ",
    "|",
    ">",
    "%",
    "@",
    "`",
    "~",
    "null",
    "...",
    "---",
    "\u{feff}",
    "\0",
    "é",
    "\u{202e}",
    "${{ params.",
    "${{ inputs.x }}",
    "${{ cycle.point }}",
    ".",
    "..",
    "/",
    "../",
    "inputs/",
    "P0D",
    "PT1S",
    "9999-12-31",
    "-1",
    "0",
    "1e308",
    ".nan",
    "yes",
    "true",
    "99999999999999999999999",
];

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(FRAGMENTS).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
        1 => proptest::collection::vec(any::<char>(), 0..4)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        6 => (any::<usize>(), fragment()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        2 => any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        3 => (any::<usize>(), any::<usize>())
            .prop_map(|(from, to)| Mutation::ReplaceToken { from, to }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// `at` modulo the text, moved back to a char boundary.
fn boundary(text: &str, at: usize) -> usize {
    let mut i = at % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of identifier-like tokens (`[A-Za-z_][A-Za-z0-9_-]*`).
fn tokens(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let word = c.is_ascii_alphanumeric() || c == '_' || c == '-';
        match start {
            None if c.is_ascii_alphabetic() || c == '_' => start = Some(i),
            Some(s) if !word => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

fn apply(text: &str, m: &Mutation) -> String {
    match m {
        Mutation::Delete { at, len } => {
            let start = boundary(text, *at);
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}{}", &text[..start], &text[end..])
        }
        Mutation::Insert { at, text: piece } => {
            let at = boundary(text, *at);
            format!("{}{piece}{}", &text[..at], &text[at..])
        }
        Mutation::DuplicateLine { line } => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let i = line % lines.len();
            lines.insert(i, lines[i]);
            lines.join("\n")
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Mutation::ReplaceToken { from, to } => {
            let toks = tokens(text);
            if toks.is_empty() {
                return text.to_owned();
            }
            let (s, e) = toks[from % toks.len()];
            let (rs, re) = toks[to % toks.len()];
            format!("{}{}{}", &text[..s], &text[rs..re], &text[e..])
        }
        Mutation::Truncate { at } => text[..boundary(text, *at)].to_owned(),
    }
}

fn apply_all(text: &str, mutations: &[Mutation]) -> String {
    mutations
        .iter()
        .fold(text.to_owned(), |acc, m| apply(&acc, m))
}

// --------------------------------------------------------- the property

#[test]
fn the_corpus_is_there_and_compiles_unmutated() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 2,
        "expected the examples and the normative example, found {}",
        corpus.len()
    );
    for (name, text) in corpus {
        assert_eq!(verdict(name, text), Ok(true), "{name} does not compile");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_workflows_never_panic_and_every_refusal_is_diagnosed(
        file in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..=4),
    ) {
        let corpus = corpus();
        prop_assume!(!corpus.is_empty());
        let (name, text) = &corpus[file % corpus.len()];
        let mutated = apply_all(text, &mutations);
        if let Err(problem) = verdict(name, &mutated) {
            return Err(TestCaseError::fail(format!(
                "{name}: {problem}\n--- mutated text ---\n{mutated}"
            )));
        }
    }
}

// ----------------------------------------------- hand-picked mutations

/// One hand-picked edit of the normative example.
enum Edit {
    /// Replace the first occurrence of `.0` (which must occur) by `.1`.
    Replace(&'static str, &'static str),
    /// Put text before the file.
    Prefix(&'static str),
    /// Rewrite the whole text.
    Whole(&'static str, fn(&str) -> String),
}

/// Whether the edited workflow must be refused or may compile.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Refused,
    Either,
}

use Edit::{Prefix, Replace, Whole};
use Expect::{Either, Refused};

const NASTY: &[(Edit, Expect)] = &[
    // version
    (Replace("version: 1", "version: 2"), Refused),
    (Replace("version: 1", "version: \"1\""), Either),
    (Replace("version: 1", "version: 1.0"), Either),
    (
        Replace("version: 1", "version: 99999999999999999999999"),
        Refused,
    ),
    (Replace("version: 1", "version: -1"), Refused),
    (Replace("version: 1\n", ""), Refused),
    (Replace("steps:", "step:"), Refused),
    // references and offsets
    (Replace("@-1", "@-0"), Refused),
    (Replace("@-1", "@-4294967296"), Refused),
    (Replace("@-1", "@-99999999999999999999999"), Refused),
    (Replace("@-1", "@--1"), Refused),
    (Replace("@-1", "@-"), Refused),
    (Replace("@-1", "@+1"), Refused),
    (Replace("@-1", "@-1@-1"), Refused),
    (Replace("@-1", "@-1000000"), Either),
    (
        Replace(
            "drivers: climate-ingest.drivers",
            "drivers: forest-structure.stands",
        ),
        Refused,
    ),
    (
        Replace(
            "stands: forest-structure.stands\n",
            "stands: bird-biodiversity.richness\n",
        ),
        Refused,
    ),
    (
        Replace("drivers: climate-ingest.drivers", "drivers: climate-ingest"),
        Refused,
    ),
    (
        Replace("drivers: climate-ingest.drivers", "drivers: .drivers"),
        Refused,
    ),
    (
        Replace(
            "drivers: climate-ingest.drivers",
            "drivers: ${{ params.region }}.x",
        ),
        Refused,
    ),
    // expressions
    (
        Replace("${{ params.climate }}", "${{ params.climate"),
        Refused,
    ),
    (Replace("${{ params.climate }}", "${{ }}"), Refused),
    (
        Replace("${{ params.climate }}", "${{ ${{ params.climate }} }}"),
        Refused,
    ),
    (
        Replace("${{ workflow.dir }}", "${{ workflow.dir.x.y.z }}"),
        Refused,
    ),
    (
        Replace("${{ cycle.year }}", "${{ cycle.year }}${{"),
        Refused,
    ),
    (
        Replace("${{ inputs.drivers }}", "${{ inputs.nope }}"),
        Refused,
    ),
    (
        Replace("${{ inputs.drivers }}", "${{ params.climate + 1 }}"),
        Refused,
    ),
    (
        Replace("${{ inputs.drivers }}", "$${{ inputs.drivers }}}}"),
        Either,
    ),
    // cycle
    (Replace("step: P10Y", "step: P0Y"), Refused),
    (Replace("step: P10Y", "step: PT1S"), Refused),
    (Replace("step: P10Y", "step: P99999999999Y"), Either),
    (Replace("step: P10Y", "step: -P10Y"), Refused),
    (Replace("step: P10Y", "step: P"), Refused),
    (Replace("stop: 2100-01-01", "stop: 9999-12-31"), Either),
    (Replace("start: 2020-01-01", "start: -009999-01-01"), Either),
    (Replace("start: 2020-01-01", "start: 2020-02-30"), Refused),
    (Replace("stop: 2100-01-01", "stop: 1900-01-01"), Refused),
    (Replace("runahead: 2", "runahead: 0"), Refused),
    (Replace("runahead: 2", "runahead: -1"), Refused),
    (
        Replace("runahead: 2", "runahead: 18446744073709551616"),
        Refused,
    ),
    (Replace("cycling: true", "cycling: yes"), Refused),
    (Replace("cycling: true", "cycling: 1"), Refused),
    // numbers and units
    (Replace("retries: 2", "retries: 1e308"), Refused),
    (Replace("retries: 2", "retries: .nan"), Refused),
    (Replace("retries: 2", "retries: 101"), Refused),
    (Replace("cpus: 4", "cpus: 0"), Refused),
    (Replace("cpus: 4", "cpus: -4"), Refused),
    (
        Replace("memory: 8GiB", "memory: 99999999999999999999TiB"),
        Refused,
    ),
    (
        Replace("memory: 8GiB", "memory: 1.7976931348623157e308GiB"),
        Refused,
    ),
    (Replace("memory: 8GiB", "memory: 1..5GiB"), Refused),
    (Replace("memory: 8GiB", "memory: .nanGiB"), Refused),
    (Replace("time: 2h", "time: 99999999999999999999h"), Refused),
    (
        Replace("time: 2h", "time: 18446744073709551615:59:59"),
        Refused,
    ),
    (
        Replace("time: 2h", "time: 999999999999999-23:59:59"),
        Refused,
    ),
    (Replace("time: 2h", "time: 0s"), Refused),
    (Replace("time: 2h", "time: 1:2:3:4"), Refused),
    // lists and names
    (
        Replace("climate: [ssp126, ssp245, ssp585]", "climate: []"),
        Refused,
    ),
    (
        Replace(
            "climate: [ssp126, ssp245, ssp585]",
            "climate: [ssp126, ssp126]",
        ),
        Refused,
    ),
    (
        Replace(
            "climate: [ssp126, ssp245, ssp585]",
            "climate: [[ssp126], {a: b}]",
        ),
        Refused,
    ),
    (
        Replace(
            "climate: [ssp126, ssp245, ssp585]",
            "climate: [\"\", ssp126]",
        ),
        Either,
    ),
    (Replace("  summary:", "  summary[x]:"), Refused),
    (Replace("  summary:", "  \"\":"), Refused),
    (Replace("  summary:", "  \"\u{202e}summary\":"), Refused),
    (
        Replace(
            "name: forest-bird",
            concat!(
                "name: ",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ),
        ),
        Refused,
    ),
    (
        Replace("name: forest-bird", "name: !!binary aGVsbG8="),
        Either,
    ),
    (Replace("name: forest-bird", "name: !custom x"), Either),
    (Replace("region: south-finland", "region: null"), Either),
    (Replace("region: south-finland", "region: {a: 1}"), Refused),
    (
        Replace(
            "management: ${{ params.management }}",
            "params: ${{ params.management }}",
        ),
        Refused,
    ),
    (Replace("for_each:", "for_each: ~"), Either),
    (Replace("needs:", "needs: []"), Refused),
    (
        Replace(
            "outputs:\n      drivers: drivers.csv",
            "outputs: drivers.csv",
        ),
        Refused,
    ),
    (
        Replace("drivers: drivers.csv", "drivers: ../drivers.csv"),
        Refused,
    ),
    (
        Replace("drivers: drivers.csv", "drivers: inputs/x"),
        Refused,
    ),
    (Replace("drivers: drivers.csv", "drivers: \"\""), Refused),
    (
        Replace("drivers: drivers.csv", "drivers: /etc/passwd"),
        Refused,
    ),
    // executors
    (Replace("executor: hpc", "executor: [hpc]"), Refused),
    (Replace("executor: hpc", "executor: nowhere"), Refused),
    (Replace("kind: slurm", "kind: 7"), Refused),
    (
        Replace("ssh: ubuntu@vm.example.org", "ssh: \"@:\""),
        Refused,
    ),
    (
        Replace("ssh: ubuntu@vm.example.org", "ssh: u@h:99999999"),
        Refused,
    ),
    (
        Replace("store: s3://dtwin-artefacts/forest-bird", "store: s3://"),
        Refused,
    ),
    (Replace("slots: 2", "slots: *nowhere"), Refused),
    (Replace("slots: 2", "slots: &s 2\n    <<: *s"), Refused),
    // YAML structure
    (
        Replace(
            "executor: workstation",
            "executor: workstation\n    executor: hpc",
        ),
        Refused,
    ),
    (Replace("run: >", "run: >-999"), Refused),
    (Replace("    retries: 2", "\tretries: 2"), Refused),
    (
        Replace(
            "resources: { cpus: 4, memory: 8GiB, time: 2h }",
            "resources: { cpus: 4, memory: 8GiB, time: 2h",
        ),
        Refused,
    ),
    (
        Replace("params:", "? [complex, key]\n: 1\nparams:"),
        Refused,
    ),
    (Prefix("%YAML 1.2\n---\n"), Either),
    (Prefix("%YAML 9.9\n---\n"), Either),
    (Prefix("%TAG ! tag:example.org,2000:\n---\n"), Either),
    (Prefix("\u{feff}"), Either),
    (Prefix("--- |\n"), Refused),
    (
        Whole("CRLF line endings", |t| t.replace('\n', "\r\n")),
        Either,
    ),
    (Whole("CR line endings", |t| t.replace('\n', "\r")), Either),
    (
        Whole("NUL in the middle", |t| {
            let mid = t.len() / 2;
            let mut i = mid;
            while !t.is_char_boundary(i) {
                i -= 1;
            }
            format!("{}\0{}", &t[..i], &t[i..])
        }),
        Either,
    ),
    (
        Whole("cut in half", |t| {
            let mut i = t.len() / 2;
            while !t.is_char_boundary(i) {
                i -= 1;
            }
            t[..i].to_owned()
        }),
        Either,
    ),
    (
        Whole("indentation with tabs", |t| t.replace("    ", "\t")),
        Refused,
    ),
    (
        Whole("every line doubled", |t| {
            t.lines()
                .flat_map(|l| [l, l])
                .collect::<Vec<_>>()
                .join("\n")
        }),
        Refused,
    ),
    (
        Whole("lines reversed", |t| {
            t.lines().rev().collect::<Vec<_>>().join("\n")
        }),
        Refused,
    ),
    (
        Whole("flattened to one line", |t| t.replace('\n', " ")),
        Refused,
    ),
];

/// The edited text, or `None` when the edit does not apply.
fn edited(text: &str, edit: &Edit) -> Option<String> {
    match edit {
        Replace(from, to) => text.contains(from).then(|| text.replacen(from, to, 1)),
        Prefix(prefix) => Some(format!("{prefix}{text}")),
        Whole(_, f) => Some(f(text)),
    }
}

fn describe(edit: &Edit) -> String {
    match edit {
        Replace(from, to) => format!("{from:?} -> {to:?}"),
        Prefix(prefix) => format!("prefix {prefix:?}"),
        Whole(what, _) => (*what).to_owned(),
    }
}

#[test]
fn hand_picked_nasty_mutations_are_diagnosed() {
    let text = normative();
    assert!(!text.is_empty(), "the normative example is missing");
    let mut problems = Vec::new();
    for (edit, expect) in NASTY {
        let Some(mutated) = edited(&text, edit) else {
            problems.push(format!("{}: does not apply", describe(edit)));
            continue;
        };
        assert_ne!(mutated, text, "{} changes nothing", describe(edit));
        match verdict("forest-bird.yaml", &mutated) {
            Err(problem) => problems.push(format!("{}: {problem}", describe(edit))),
            Ok(true) if *expect == Refused => {
                problems.push(format!("{}: accepted, should be refused", describe(edit)));
            }
            Ok(_) => {}
        }
    }
    assert!(
        NASTY.len() >= 50,
        "only {} hand-picked mutations",
        NASTY.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------- problems the hand-picked mutations found

/// The message of the first diagnostic, or "" when `text` compiles.
fn first_message(text: &str) -> String {
    compile_str("forest-bird.yaml", text, &CompileOptions::default())
        .err()
        .and_then(|e| e.diagnostics.first().map(|d| d.message().to_owned()))
        .unwrap_or_default()
}

#[test]
fn numbers_in_messages_are_quoted_as_written() {
    let text = normative();
    for (from, to, written) in [
        ("version: 1", "version: 1.0", "1.0"),
        (
            "runahead: 2",
            "runahead: 18446744073709551616",
            "18446744073709551616",
        ),
        (
            "version: 1",
            "version: 99999999999999999999999",
            "99999999999999999999999",
        ),
        ("retries: 2", "retries: 2.5", "2.5"),
    ] {
        let mutated = text.replacen(from, to, 1);
        assert_ne!(mutated, text, "{from:?} does not occur");
        let message = first_message(&mutated);
        assert!(
            message.contains(&format!("`{written}`")),
            "{to:?}: the message does not quote `{written}`: {message}"
        );
    }
}

#[test]
fn a_cycle_ending_at_the_end_of_the_calendar_compiles() {
    let text = concat!(
        "version: 1\n",
        "cycle:\n",
        "  start: 2020-01-01\n",
        "  stop: 9999-12-31\n",
        "  step: P10Y\n",
        "steps:\n",
        "  tick:\n",
        "    cycling: true\n",
        "    run: echo ${{ cycle.point }}\n",
    );
    let plan = compile_str("calendar-end.yaml", text, &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(plan.task_count(), 798);
    let last = plan
        .find_task("tick@9990-01-01")
        .expect("the last point is 9990-01-01");
    assert_eq!(&*plan.task(last).command, "echo 9990-01-01");
}
