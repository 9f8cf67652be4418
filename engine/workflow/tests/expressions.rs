//! Mistakes around `${{ }}` expressions and step names: every one reported
//! at once, none hiding or inventing another.
#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use twinflow_workflow::{CompileError, CompileOptions, compile_str};

fn errors(yaml: &str) -> CompileError {
    match compile_str("t.yaml", yaml, &CompileOptions::default()) {
        Ok(_) => panic!("compiled:\n{yaml}"),
        Err(e) => e,
    }
}

/// The code and the text under the primary label of each diagnostic.
fn found<'a>(err: &CompileError, yaml: &'a str) -> Vec<(&'static str, &'a str)> {
    err.diagnostics
        .iter()
        .map(|d| {
            let Some((line, col)) = d.line_col() else {
                panic!("{} points nowhere", d.code())
            };
            let Some(text) = yaml.lines().nth(line - 1) else {
                panic!("no line {line}")
            };
            let rest: String = text.chars().skip(col - 1).collect();
            (d.code(), &text[text.len() - rest.len()..])
        })
        .collect()
}

#[test]
fn every_bad_expression_of_a_run_script_is_reported() {
    let yaml = "version: 1\nsteps:\n  a:\n    run: |\n      echo ${{ a + b }}\n      echo ${{ }}\n      echo ${{ nope }}\n      echo ${{ also wrong }}\n";
    let err = errors(yaml);
    assert_eq!(
        found(&err, yaml),
        [
            ("twinflow::bad-expression", "${{ a + b }}"),
            ("twinflow::bad-expression", "${{ }}"),
            ("twinflow::unknown-expression", "${{ nope }}"),
            ("twinflow::bad-expression", "${{ also wrong }}"),
        ]
    );
}

#[test]
fn non_string_step_names_do_not_make_the_steps_empty() {
    for yaml in [
        "version: 1\nsteps:\n  1:\n    run: echo\n",
        "version: 1\nsteps:\n  [a]: {run: echo}\n",
    ] {
        let err = errors(yaml);
        let codes: Vec<&str> = err.diagnostics.iter().map(|d| d.code()).collect();
        assert_eq!(codes, ["twinflow::wrong-type"], "{}", err.render(false));
    }
    let err = errors("version: 1\nsteps: {}\n");
    assert_eq!(err.diagnostics[0].code(), "twinflow::no-steps");
}

#[test]
fn an_unquoted_expression_in_a_flow_mapping_gets_a_hint() {
    for (yaml, expr) in [
        (
            "version: 1\nsteps:\n  a:\n    run: echo\n    env: {X: ${{ params.p }}}\n",
            "${{ params.p }}",
        ),
        (
            "version: 1\nsteps:\n  a: {run: echo ${{ x }}}\n",
            "${{ x }}",
        ),
        (
            "version: 1\nsteps:\n  a:\n    run: echo\n    after: [${{ x }}]\n",
            "${{ x }}",
        ),
    ] {
        let err = errors(yaml);
        let d = &err.diagnostics[0];
        assert_eq!(d.code(), "twinflow::yaml");
        assert_eq!(
            d.hint().unwrap(),
            format!(
                "inside `{{ }}` or `[ ]`, YAML reads the `{{` of an unquoted `${{{{` as a mapping: quote the value, as in `\"{expr}\"`"
            )
        );
    }
    // Other flow-mapping mistakes get no such hint.
    let err = errors("version: 1\nsteps:\n  a: {run: echo, x: [}\n");
    assert_eq!(err.diagnostics[0].hint(), None);
}
