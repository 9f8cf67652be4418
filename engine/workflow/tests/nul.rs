//! A NUL character cannot reach a command line, an environment variable or a
//! path, so a value holding one is refused when compiling, not when a task
//! starts.

use twinflow_workflow::{CompileOptions, compile_str};

#[test]
fn nul_characters_in_values_are_refused_where_written() {
    let yaml = "version: 1\nparams:\n  p: \"a\\0b\"\nsteps:\n  a:\n    for_each: { x: [one, \"t\\0wo\"] }\n    env: { E: \"\\0\" }\n    run: echo ${{ x }} ${{ params.p }}\n";
    let err = compile_str("nul.yaml", yaml, &CompileOptions::default()).unwrap_err();
    let found: Vec<(&str, (usize, usize))> = err
        .diagnostics
        .iter()
        .map(|d| (d.code(), d.line_col().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            ("twinflow::nul", (3, 6)),
            ("twinflow::nul", (6, 26)),
            ("twinflow::nul", (7, 15)),
        ]
    );
}

#[test]
fn a_nul_character_in_a_param_override_is_refused() {
    let yaml = "version: 1\nparams:\n  p: [a, b]\nsteps:\n  a:\n    for_each: { x: \"${{ params.p }}\" }\n    run: echo ${{ x }}\n";
    let options = CompileOptions {
        params: vec![("p".into(), "a,b\0c".into())],
        ..CompileOptions::default()
    };
    let err = compile_str("nul.yaml", yaml, &options).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1);
    assert_eq!(err.diagnostics[0].code(), "twinflow::nul");
    assert_eq!(
        err.diagnostics[0].message(),
        "--param p=a,b\\u{0}c: the value holds a NUL character (`\\0`)"
    );
}
