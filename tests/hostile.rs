//! Hostile input is refused with a clear diagnostic: never a panic, never a
//! hang. Alias bombs, huge and deeply nested files, task and cycle-point
//! explosions, odd documents, non-UTF-8 bytes, and shell injection through
//! `--param` overrides.
//!
//! Nothing here measures time: a test that finishes shows the input was
//! refused before the work it asks for (10^15 tasks, 3 × 10^9 cycle points,
//! 10^10 alias expansions) was done.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use twinflow_workflow::{
    CompileError, CompileOptions, MAX_SOURCE_BYTES, Plan, compile_file, compile_str,
};

// ---------------------------------------------------------------- helpers

/// Compiles `text` with default options.
fn compile(text: &str) -> Result<Plan, CompileError> {
    compile_str("hostile.yaml", text, &CompileOptions::default())
}

/// Compiles `text` with `--param` overrides.
fn compile_with_params(text: &str, params: &[(&str, &str)]) -> Result<Plan, CompileError> {
    let options = CompileOptions {
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..CompileOptions::default()
    };
    compile_str("hostile.yaml", text, &options)
}

/// Checks a refusal: some diagnostic has `code` and a message naming every
/// needle (case-insensitively); every diagnostic has a `twinflow::` code and
/// a message, and renders. `Err` says what is wrong, with all diagnostics.
fn check(result: Result<Plan, CompileError>, code: &str, needles: &[&str]) -> Result<(), String> {
    let err = match result {
        Ok(plan) => {
            return Err(format!(
                "accepted (with {} tasks), expected a `{code}` refusal",
                plan.task_count()
            ));
        }
        Err(err) => err,
    };
    let all = err
        .diagnostics
        .iter()
        .map(|d| format!("[{}] {}", d.code(), d.message()))
        .collect::<Vec<_>>()
        .join("\n");
    if err.diagnostics.is_empty() {
        return Err("refused without a diagnostic".to_owned());
    }
    for d in &err.diagnostics {
        if !d.code().starts_with("twinflow::") || d.message().trim().is_empty() {
            return Err(format!("a diagnostic without code or message:\n{all}"));
        }
        if !d.render(false).contains(d.code()) {
            return Err(format!("`{}` does not render", d.code()));
        }
    }
    let Some(d) = err.diagnostics.iter().find(|d| d.code() == code) else {
        return Err(format!("no `{code}` diagnostic among:\n{all}"));
    };
    let message = d.message().to_lowercase();
    for needle in needles {
        if !message.contains(&needle.to_lowercase()) {
            return Err(format!(
                "the `{code}` message does not mention {needle:?}: {}",
                d.message()
            ));
        }
    }
    Ok(())
}

/// The hint of the first diagnostic with `code`, lower-cased.
fn hint_of(result: &Result<Plan, CompileError>, code: &str) -> String {
    match result {
        Ok(_) => String::new(),
        Err(err) => err
            .diagnostics
            .iter()
            .find(|d| d.code() == code)
            .and_then(|d| d.hint())
            .unwrap_or("")
            .to_lowercase(),
    }
}

/// A file under the temp dir that is removed when dropped (also when the
/// test fails).
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!(
            "twinflow-hostile-{}-{n}-{tag}.yaml",
            std::process::id()
        )))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The documented quoting, written independently of twinflow's: a word of
/// only `A-Za-z0-9@%+=:,./_-` as it is, anything else in POSIX single quotes
/// (`'`, the value with each `'` as `'\''`, `'`).
fn quoted(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Runs `script` with `/bin/sh -c` and returns its standard output.
fn sh(script: &str) -> std::io::Result<String> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A minimal valid workflow to embed things in.
const MINIMAL: &str = "version: 1\nsteps:\n  a:\n    run: echo hi\n";

// ------------------------------------------------------------- YAML bombs

/// `levels` anchors, each a list of ten aliases of the previous one: the
/// last one stands for 10^levels strings.
fn alias_bomb(levels: usize) -> String {
    let mut text = String::from(
        "version: 1\nparams:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..levels {
        let aliases = vec![format!("*l{}", i - 1); 10].join(", ");
        text.push_str(&format!("  l{i}: &l{i} [{aliases}]\n"));
    }
    text.push_str(&format!(
        "steps:\n  boom:\n    run: echo ${{{{ params.l{} }}}}\n",
        levels - 1
    ));
    text
}

#[test]
fn an_alias_bomb_is_refused_by_the_yaml_budget() {
    // Ten levels: 10^10 strings. (Nine are refused at the same anchor, the
    // fifth, once a million replayed events are spent.)
    let result = compile(&alias_bomb(10));
    let hint = hint_of(&result, "twinflow::yaml");
    assert_eq!(
        check(result, "twinflow::yaml", &["refused", "alias"]),
        Ok(())
    );
    assert!(
        hint.contains("alias"),
        "the hint should name alias bombs: {hint:?}"
    );
}

#[test]
fn ten_thousand_nested_flow_sequences_are_refused() {
    let closed = format!(
        "version: 1\nsteps: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let unclosed = format!("version: 1\nsteps: {}\n", "[".repeat(10_000));
    let maps = format!(
        "version: 1\nsteps: {}{}\n",
        "{a: ".repeat(10_000),
        "}".repeat(10_000)
    );
    for (what, text, needle) in [
        ("closed", closed, "nests too deeply"),
        ("unclosed", unclosed, "nests too deeply"),
        ("flow mappings", maps, "levels deep"),
    ] {
        let result = compile(&text);
        let hint = hint_of(&result, "twinflow::yaml");
        assert_eq!(check(result, "twinflow::yaml", &[needle]), Ok(()), "{what}");
        assert!(
            hint.contains("nesting"),
            "{what}: the hint should name deep nesting: {hint:?}"
        );
    }
}

#[test]
fn two_hundred_levels_of_block_mappings_are_refused() {
    let mut text = String::from("version: 1\nsteps:\n");
    for level in 1..=200 {
        text.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
    }
    text.push_str(&format!("{}run: echo\n", "  ".repeat(201)));
    let result = compile(&text);
    assert!(hint_of(&result, "twinflow::yaml").contains("nesting"));
    assert_eq!(
        check(result, "twinflow::yaml", &["refused", "levels deep"]),
        Ok(())
    );

    // Block sequences too.
    let mut text = String::from("version: 1\nsteps:\n  a:\n    run: echo\nparams:\n  p:\n");
    for level in 0..200 {
        text.push_str(&format!("{}-\n", "  ".repeat(level + 2)));
    }
    assert_eq!(
        check(compile(&text), "twinflow::yaml", &["levels deep"]),
        Ok(())
    );
}

// ------------------------------------------------------------------ size

#[test]
fn a_fifty_megabyte_file_is_refused_before_reading() {
    let file = TempFile::new("50mb");
    let len: u64 = 50 * 1024 * 1024;
    let f = std::fs::File::create(file.path()).expect("create the temp file");
    // Sparse: nothing is written, and nothing need be read.
    f.set_len(len).expect("size the temp file");
    drop(f);
    let result = compile_file(file.path(), &CompileOptions::default());
    assert_eq!(
        check(
            result,
            "twinflow::io",
            &[&len.to_string(), "limit", &MAX_SOURCE_BYTES.to_string()]
        ),
        Ok(())
    );
}

#[test]
fn a_fifty_megabyte_string_is_refused() {
    let mut text = String::from(MINIMAL);
    text.push('#');
    text.push_str(&"x".repeat(50 * 1024 * 1024));
    text.push('\n');
    let result = compile(&text);
    assert_eq!(
        check(
            result,
            "twinflow::too-large",
            &[
                &text.len().to_string(),
                "limit",
                &MAX_SOURCE_BYTES.to_string()
            ]
        ),
        Ok(())
    );

    // One byte over the limit is over the limit.
    let mut text = String::from(MINIMAL);
    text.push('#');
    text.push_str(&"x".repeat(MAX_SOURCE_BYTES + 1 - MINIMAL.len() - 2));
    text.push('\n');
    assert_eq!(text.len(), MAX_SOURCE_BYTES + 1);
    assert_eq!(
        check(compile(&text), "twinflow::too-large", &["limit"]),
        Ok(())
    );
}

#[test]
fn a_one_megabyte_single_line_description_still_compiles() {
    let description = "forest ".repeat(150_000);
    assert!(description.len() > 1_000_000);
    let text = format!(
        "version: 1\nname: long\ndescription: {}\nsteps:\n  a:\n    run: echo hi\n",
        description.trim_end()
    );
    let plan = compile(&text).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(plan.task_count(), 1);
    assert_eq!(
        plan.workflow.description.as_deref(),
        Some(description.trim_end())
    );
}

// ----------------------------------------------------- task explosions

#[test]
fn a_for_each_product_of_ten_to_the_fifteen_tasks_is_refused_before_expansion() {
    // Five keys of 1000 values each: 10^15 tasks, from 5000 values of text.
    let mut text = String::from("version: 1\nsteps:\n  sweep:\n    for_each:\n");
    for key in ["a", "b", "c", "d", "e"] {
        let values = (0..1000).map(|v| v.to_string()).collect::<Vec<_>>();
        text.push_str(&format!("      {key}: [{}]\n", values.join(", ")));
    }
    text.push_str("    run: echo ${{ a }} ${{ b }} ${{ c }} ${{ d }} ${{ e }}\n");
    let result = compile(&text);
    assert_eq!(
        check(result, "twinflow::too-many-tasks", &["tasks", "5000000"]),
        Ok(())
    );

    // The same through params, and spread over two steps that each fit.
    let values = (0..1000)
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        concat!(
            "version: 1\n",
            "params:\n",
            "  v: [{values}]\n",
            "steps:\n",
            "  one:\n",
            "    for_each:\n",
            "      a: ${{{{ params.v }}}}\n",
            "      b: ${{{{ params.v }}}}\n",
            "      c: ${{{{ params.v }}}}\n",
            "    run: echo\n",
            "  two:\n",
            "    for_each:\n",
            "      a: ${{{{ params.v }}}}\n",
            "      b: ${{{{ params.v }}}}\n",
            "    run: echo\n",
        ),
        values = values
    );
    assert_eq!(
        check(compile(&text), "twinflow::too-many-tasks", &["tasks"]),
        Ok(())
    );
    let text = concat!(
        "version: 1\n",
        "steps:\n",
        "  one:\n",
        "    for_each: { a: [1, 2, 3], b: [1, 2] }\n",
        "    run: echo\n",
        "  two:\n",
        "    for_each: { a: [1, 2] }\n",
        "    run: echo\n",
    );
    let options = CompileOptions {
        max_tasks: 7,
        ..CompileOptions::default()
    };
    assert_eq!(
        check(
            compile_str("hostile.yaml", text, &options),
            "twinflow::too-many-tasks",
            &["7 tasks"]
        ),
        Ok(())
    );
}

#[test]
fn a_one_second_cycle_over_a_hundred_years_is_refused() {
    let text = concat!(
        "version: 1\n",
        "cycle:\n",
        "  start: 2000-01-01T00:00:00\n",
        "  stop: 2100-01-01T00:00:00\n",
        "  step: PT1S\n",
        "steps:\n",
        "  tick:\n",
        "    cycling: true\n",
        "    run: echo ${{ cycle.point }}\n",
    );
    assert_eq!(
        check(compile(text), "twinflow::bad-cycle", &["200000", "points"]),
        Ok(())
    );
}

// ------------------------------------------------------- odd documents

#[test]
fn non_utf8_bytes_in_a_file_are_refused() {
    let file = TempFile::new("latin1");
    let bytes = b"version: 1\nsteps:\n  a:\n    run: echo caf\xe9 \xff\xfe\n";
    std::fs::write(file.path(), bytes).expect("write the temp file");
    let offset = bytes.iter().position(|&b| b == 0xe9).unwrap_or(0);
    let result = compile_file(file.path(), &CompileOptions::default());
    assert_eq!(
        check(
            result,
            "twinflow::io",
            &["not UTF-8", &format!("offset {offset}")]
        ),
        Ok(())
    );
}

#[test]
fn an_empty_file_is_refused() {
    assert_eq!(check(compile(""), "twinflow::empty", &["empty"]), Ok(()));
    let file = TempFile::new("empty");
    std::fs::write(file.path(), "").expect("write the temp file");
    let result = compile_file(file.path(), &CompileOptions::default());
    assert_eq!(check(result, "twinflow::empty", &["empty"]), Ok(()));
}

#[test]
fn a_file_of_only_comments_is_refused() {
    let text = concat!(
        "# yaml-language-server: $schema=../../schemas/workflow.v1.schema.json\n",
        "# a workflow\n",
        "   # indented\n",
        "\n",
    );
    assert_eq!(
        check(compile(text), "twinflow::empty", &["empty", "comments"]),
        Ok(())
    );
}

#[test]
fn a_null_document_is_refused() {
    for text in ["null\n", "~\n", "---\nnull\n...\n"] {
        assert_eq!(
            check(compile(text), "twinflow::wrong-type", &["mapping", "null"]),
            Ok(()),
            "{text:?}"
        );
    }
}

#[test]
fn two_yaml_documents_are_refused() {
    let text = format!("{MINIMAL}---\n{MINIMAL}");
    assert_eq!(
        check(compile(&text), "twinflow::yaml", &["several", "documents"]),
        Ok(())
    );
    // One document with explicit markers is fine.
    let text = format!("---\n{MINIMAL}...\n");
    let plan = compile(&text).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(plan.task_count(), 1);
}

#[test]
fn two_yaml_documents_message_names_no_library_api() {
    let text = format!("{MINIMAL}---\n{MINIMAL}");
    let result = compile(&text);
    assert_eq!(
        check(result.clone(), "twinflow::yaml", &["documents"]),
        Ok(())
    );
    if let Err(err) = result {
        for d in &err.diagnostics {
            assert!(
                !d.message().contains("from_str"),
                "the message advises a Rust function: {}",
                d.message()
            );
        }
    }
}

#[test]
fn a_top_level_list_is_refused() {
    let text = "- version: 1\n- steps:\n    a:\n      run: echo\n";
    assert_eq!(
        check(compile(text), "twinflow::wrong-type", &["mapping", "list"]),
        Ok(())
    );
}

#[test]
fn a_json_workflow_compiles() {
    let text = r#"{
  "version": 1,
  "name": "from-json",
  "params": {"climate": ["ssp126", "ssp585"]},
  "steps": {
    "ingest": {
      "for_each": {"climate": "${{ params.climate }}"},
      "run": "echo ${{ climate }} > ${{ outputs.data }}",
      "outputs": {"data": "data.csv"}
    },
    "summary": {
      "needs": {"all": "ingest.data"},
      "run": "cat ${{ inputs.all }}"
    }
  }
}"#;
    let plan = compile(text).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(plan.workflow.name, "from-json");
    assert_eq!(plan.task_count(), 3);
    let ingest = plan
        .find_task("ingest[climate=ssp585]")
        .expect("ingest[climate=ssp585]");
    assert_eq!(&*plan.task(ingest).command, "echo ssp585 > data.csv");
    let summary = plan.find_task("summary").expect("summary");
    assert_eq!(
        &*plan.task(summary).command,
        "cat inputs/all/0.csv inputs/all/1.csv"
    );
}

// ------------------------------------------------------ shell injection

#[test]
fn shell_injection_through_a_param_override_stays_one_literal_word() {
    let marker = TempFile::new("pwned");
    let marker_path = marker.path().display().to_string();
    let text = concat!(
        "version: 1\n",
        "params:\n",
        "  x: harmless\n",
        "steps:\n",
        "  a:\n",
        "    run: printf '%s\\n' ${{ params.x }}\n",
    );
    let values = [
        "x; rm -rf /".to_owned(),
        format!("$(touch {marker_path})"),
        format!("`touch {marker_path}`"),
        format!("'; touch {marker_path}; echo '"),
        "it's".to_owned(),
        "a,b".to_owned(),
        "two  spaces\tand a tab\nand a newline".to_owned(),
        "*".to_owned(),
        String::new(),
    ];
    // What the hostile words must look like in the command.
    assert_eq!(quoted("x; rm -rf /"), "'x; rm -rf /'");
    assert_eq!(quoted("$(touch /tmp/pwned)"), "'$(touch /tmp/pwned)'");
    assert_eq!(quoted("it's"), r"'it'\''s'");
    assert_eq!(quoted("a,b"), "a,b");
    assert_eq!(quoted(""), "''");
    for value in &values {
        let plan = compile_with_params(text, &[("x", value)])
            .unwrap_or_else(|e| panic!("{value:?}: {}", e.render(false)));
        let id = plan.find_task("a").expect("task a");
        let command = &*plan.task(id).command;
        assert_eq!(
            command,
            format!("printf '%s\\n' {}", quoted(value)),
            "{value:?} is not single-quoted"
        );
        let printed = sh(command).expect("run /bin/sh");
        assert_eq!(
            printed,
            format!("{value}\n"),
            "{value:?} did not arrive as one word"
        );
        assert!(
            !marker.path().exists(),
            "{value:?} ran a command: {} exists",
            marker_path
        );
    }
}

#[test]
fn a_list_param_overridden_with_a_comma_gives_one_task_per_value() {
    let text = concat!(
        "version: 1\n",
        "params:\n",
        "  climate: [ssp126, ssp245, ssp585]\n",
        "steps:\n",
        "  run-model:\n",
        "    for_each: { climate: \"${{ params.climate }}\" }\n",
        "    run: printf '%s\\n' ${{ climate }} ${{ params.climate }}\n",
    );
    let plan = compile_with_params(text, &[("climate", "a,b")])
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(plan.task_count(), 2);
    let a = plan.find_task("run-model[climate=a]").expect("climate=a");
    let b = plan.find_task("run-model[climate=b]").expect("climate=b");
    assert_eq!(&*plan.task(a).command, "printf '%s\\n' a a b");
    assert_eq!(&*plan.task(b).command, "printf '%s\\n' b a b");

    // Hostile list values: each is one word, and there are as many tasks.
    let plan = compile_with_params(text, &[("climate", "$(id),x y")])
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(plan.task_count(), 2);
    let first = plan.find_task("run-model[climate=$(id)]").expect("$(id)");
    let command = &*plan.task(first).command;
    assert_eq!(command, "printf '%s\\n' '$(id)' '$(id)' 'x y'");
    assert_eq!(sh(command).expect("run /bin/sh"), "$(id)\n$(id)\nx y\n");
}

// ------------------------------------------------- plans quadratic in the file

/// Set in the child process that checks plan explosions under a memory cap.
const UNDER_MEMORY_CAP: &str = "TWINFLOW_HOSTILE_UNDER_MEMORY_CAP";

/// `n` values in a list param, substituted whole into the command of each of
/// the `n` tasks iterating over it: ~8n bytes of YAML, ~8n² of commands.
fn command_explosion(n: usize) -> String {
    let values = (0..n)
        .map(|i| format!("v{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        concat!(
            "version: 1\n",
            "params:\n",
            "  v: [{values}]\n",
            "steps:\n",
            "  a:\n",
            "    for_each: {{ k: \"${{{{ params.v }}}}\" }}\n",
            "    run: echo ${{{{ params.v }}}}\n",
        ),
        values = values
    )
}

/// `n` consumers each gathering the same `n` producers: n² dependency edges
/// and input paths.
fn gather_explosion(n: usize) -> String {
    let values = (0..n)
        .map(|i| format!("v{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        concat!(
            "version: 1\n",
            "params:\n",
            "  v: [{values}]\n",
            "steps:\n",
            "  a:\n",
            "    for_each: {{ x: \"${{{{ params.v }}}}\" }}\n",
            "    run: echo > ${{{{ outputs.o }}}}\n",
            "    outputs: {{ o: o.txt }}\n",
            "  b:\n",
            "    for_each: {{ y: \"${{{{ params.v }}}}\" }}\n",
            "    needs: {{ all: a.o }}\n",
            "    run: cat ${{{{ inputs.all }}}}\n",
        ),
        values = values
    )
}

#[test]
fn plans_quadratic_in_the_file_are_refused_before_expansion() {
    // The check runs in a child process capped at 2 GiB of address space, so
    // that a regression (expanding before refusing) fails there instead of exhausting the machine.
    let exe = std::env::current_exe().expect("the test binary");
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(concat!(
            "ulimit -v 2097152 && exec \"$0\" --exact --include-ignored ",
            "--test-threads 1 plan_explosions_under_a_memory_cap",
        ))
        .arg(&exe)
        .env(UNDER_MEMORY_CAP, "1")
        .status()
        .expect("run /bin/sh");
    assert!(
        status.success(),
        "the explosions were not refused within 2 GiB ({status})"
    );
}

#[test]
#[ignore = "run by plans_quadratic_in_the_file_are_refused_before_expansion, under a memory cap"]
fn plan_explosions_under_a_memory_cap() {
    if std::env::var_os(UNDER_MEMORY_CAP).is_none() {
        return;
    }
    for (what, text) in [
        ("gather", gather_explosion(50_000)),
        ("command", command_explosion(50_000)),
    ] {
        assert!(text.len() < 1_000_000, "{what}: {} bytes", text.len());
        let Err(err) = compile(&text) else {
            panic!("{what}: accepted");
        };
        for d in &err.diagnostics {
            assert!(d.code().starts_with("twinflow::"), "{what}: {}", d.code());
        }
        assert!(
            err.diagnostics
                .iter()
                .any(|d| d.message().contains("more than") || d.message().contains("limit")),
            "{what}: no diagnostic names the limit:\n{}",
            err.render(false)
        );
    }
}
