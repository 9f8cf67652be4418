//! The compiler's limits on what it reads and reports: files that are not
//! regular or never end are refused without reading them, and a file with a
//! great many mistakes is reported in time linear in its size, the first
//! [`MAX_REPORTED_DIAGNOSTICS`] of them shown and the rest counted.

use std::path::Path;
use twinflow_workflow::{
    CompileOptions, MAX_REPORTED_DIAGNOSTICS, SiteSource, compile_file, compile_str,
};

#[test]
fn dev_zero_is_refused_as_workflow_and_site_file() {
    let err = compile_file(Path::new("/dev/zero"), &CompileOptions::default()).unwrap_err();
    assert_eq!(
        err.diagnostics[0].message(),
        "workflow file `/dev/zero` is a character device, not a regular file"
    );
    let err = SiteSource::read(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        err.diagnostics[0].message(),
        "site file `/dev/zero` is a character device, not a regular file"
    );
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("w.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let err = compile_file(&fifo, &CompileOptions::default()).unwrap_err();
    let message = err.diagnostics[0].message();
    assert!(
        message.ends_with("is a FIFO (named pipe), not a regular file"),
        "{message}"
    );
    let err = SiteSource::read(&fifo).unwrap_err();
    assert_eq!(err.diagnostics[0].code(), "twinflow::io");
}

/// A step with `n` unknown keys.
fn unknown_keys(n: usize) -> String {
    let mut yaml = String::from("version: 1\nsteps:\n  a:\n    run: echo\n");
    for i in 0..n {
        yaml.push_str(&format!("    key{i}: {i}\n"));
    }
    yaml
}

#[test]
fn a_hundred_thousand_unknown_keys_are_reported_capped_and_counted() {
    let n = 100_000;
    let err = compile_str("many.yaml", &unknown_keys(n), &CompileOptions::default()).unwrap_err();
    assert_eq!(err.diagnostics.len(), MAX_REPORTED_DIAGNOSTICS);
    assert_eq!(err.omitted, n - MAX_REPORTED_DIAGNOSTICS);
    assert_eq!(err.error_count(), n);
    assert!(
        err.diagnostics
            .iter()
            .all(|d| d.code() == "twinflow::unknown-key")
    );
    // In file order: the first ones are shown.
    assert_eq!(err.diagnostics[0].message(), "unknown key `key0`");
    assert_eq!(err.diagnostics[0].line_col(), Some((5, 5)));
    let last = &err.diagnostics[MAX_REPORTED_DIAGNOSTICS - 1];
    assert_eq!(last.line_col(), Some((4 + MAX_REPORTED_DIAGNOSTICS, 5)));
    let rendered = err.render(false);
    assert!(
        rendered.ends_with(&format!(
            "error: and {} more errors (only the first {MAX_REPORTED_DIAGNOSTICS} are shown)\n",
            n - MAX_REPORTED_DIAGNOSTICS
        )),
        "{}",
        &rendered[rendered.len().saturating_sub(300)..]
    );
    assert!(err.to_string().starts_with("100000 errors, the first: "));
}

/// Unknown keys that are each a near miss of `run`: every one is read as
/// `run` only if no `run` is written, which is looked up once per mapping.
#[test]
fn many_near_misses_of_one_key_are_reported_in_linear_time() {
    let n = 20_000;
    let mut yaml = String::from("version: 1\nsteps:\n  a:\n    run: echo\n");
    for i in 0..n {
        yaml.push_str(&format!("    run{i}: x\n"));
    }
    let err = compile_str("runs.yaml", &yaml, &CompileOptions::default()).unwrap_err();
    assert_eq!(err.error_count(), n);
    assert_eq!(err.diagnostics[0].hint(), Some("did you mean `run`?"));
}

/// References to unknown steps in a workflow of many steps: hints are worked
/// out for the reported diagnostics only, and list at most 20 names.
#[test]
fn many_unknown_steps_get_short_hints() {
    let n = 3_000;
    let mut yaml = String::from("version: 1\nsteps:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  s{i}:\n    run: echo\n    needs: {{ x: missing{i}.out }}\n"
        ));
    }
    let err = compile_str("steps.yaml", &yaml, &CompileOptions::default()).unwrap_err();
    assert_eq!(err.error_count(), n);
    let hint = err.diagnostics[0].hint().unwrap();
    assert!(hint.starts_with("steps: s0, s1, s2, "), "{hint}");
    assert!(
        hint.ends_with(&format!("s19 and {} more", n - 20)),
        "{hint}"
    );
}

/// A chain of steps deeper than a thread's stack could recurse through.
#[test]
fn a_long_chain_of_steps_compiles() {
    let n = 10_000;
    let mut yaml = String::from("version: 1\nsteps:\n  s0:\n    run: echo\n");
    for i in 1..n {
        yaml.push_str(&format!(
            "  s{i}:\n    run: echo\n    after: [s{}]\n",
            i - 1
        ));
    }
    let plan = compile_str("chain.yaml", &yaml, &CompileOptions::default()).unwrap();
    assert_eq!(plan.task_count(), n);
}

/// A dependency cycle through thousands of steps is one short diagnostic:
/// its first steps named, the rest counted, a dozen links labelled.
#[test]
fn a_long_dependency_cycle_is_reported_in_short() {
    let n = 3_000;
    let mut yaml = String::from("version: 1\nsteps:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  s{i}:\n    run: echo\n    after: [s{}]\n",
            (i + 1) % n
        ));
    }
    let err = compile_str("cycle.yaml", &yaml, &CompileOptions::default()).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1);
    let d = &err.diagnostics[0];
    assert_eq!(d.code(), "twinflow::cycle");
    assert_eq!(
        d.message(),
        format!(
            "dependency cycle: s0 -> s2999 -> s2998 -> s2997 -> s2996 -> s2995 -> s2994 -> s2993 -> s2992 -> s2991 -> s2990 -> s2989 -> ... {} more ... -> s1 -> s0",
            n - 13
        )
    );
    let rendered = d.render(false);
    assert_eq!(rendered.matches("` needs `").count(), 12, "{rendered}");
}
