//! The code a step runs, which the cache key covers: files named in `run`
//! through `${{ workflow.dir }}`, and `code:` paths and globs, each checked
//! at compile time.
#![expect(clippy::unwrap_used, reason = "tests fail with a message")]

use std::path::Path;
use twinflow_workflow::{CompileError, CompileOptions, compile_str};

fn compile(dir: &Path, step: &str) -> Result<twinflow_core::Plan, CompileError> {
    let yaml = format!(
        "version: 1\nexecutors: {{ here: {{ kind: local }} }}\nsteps:\n  s:\n    executor: here\n{step}"
    );
    let options = CompileOptions {
        workflow_dir: dir.to_owned(),
        ..CompileOptions::default()
    };
    compile_str("test.yaml", &yaml, &options)
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("twins/lib/deep")).unwrap();
    std::fs::write(p.join("twins/summary.py"), "print(1)\n").unwrap();
    std::fs::write(p.join("twins/lib/a.py"), "").unwrap();
    std::fs::write(p.join("twins/lib/deep/b.py"), "").unwrap();
    std::fs::write(p.join("twins/lib/notes.txt"), "").unwrap();
    dir
}

#[test]
fn run_scripts_under_the_workflow_dir_and_code_globs_are_the_steps_code() {
    let dir = tree();
    let p = dir.path();
    let plan = compile(
        p,
        "    code: [twins/lib/**/*.py, ./twins/summary.py]\n    run: |\n      python3 ${{ workflow.dir }}/twins/summary.py --x 1\n      cat \"${{ workflow.dir }}/twins/lib/notes.txt\"; ls ${{ workflow.dir }}/twins\n      sh ${{ workflow.dir }}/twins/made-later.sh\n",
    )
    .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let code: Vec<String> = plan.steps[0]
        .code
        .iter()
        .map(|c| c.strip_prefix(p).unwrap().display().to_string())
        .collect();
    // A directory named in `run` and a file that does not exist are not code
    // the compiler can see; a file named twice counts once.
    assert_eq!(
        code,
        [
            "twins/lib/a.py",
            "twins/lib/deep/b.py",
            "twins/lib/notes.txt",
            "twins/summary.py"
        ]
    );
    let json = serde_json::to_value(twinflow_core::PlanJson(&plan)).unwrap();
    assert_eq!(json["steps"][0]["code"].as_array().unwrap().len(), 4);
}

#[test]
fn code_that_finds_nothing_or_leaves_the_workflow_dir_is_a_diagnostic_at_its_span() {
    let dir = tree();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
    for (entry, message) in [
        (
            "twins/*.R",
            "code `twins/*.R` matches no file in the workflow's directory",
        ),
        (
            "twins/missing.py",
            "code `twins/missing.py` does not exist next to the workflow file",
        ),
        (
            "../secret.py",
            "`../secret.py` is outside the workflow's directory",
        ),
        (
            "/etc/passwd",
            "`/etc/passwd` is outside the workflow's directory",
        ),
        (
            "etc/hostname",
            "code `etc/hostname` leads outside the workflow's directory",
        ),
        ("twins/[", "`twins/[` is not a valid glob"),
    ] {
        let step = format!("    code: ['{entry}']\n    run: \"true\"\n");
        let err = compile(dir.path(), &step).unwrap_err();
        let d = &err.diagnostics[0];
        assert_eq!(d.code(), "twinflow::bad-code", "{entry}");
        let text = err.render(false);
        assert!(text.contains(message), "{entry}: {text}");
        let yaml_at = format!("code: ['{entry}']");
        assert!(text.contains(&yaml_at), "the span shows the entry: {text}");
    }
}
