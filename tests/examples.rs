//! Every example in `workflows/` and the normative `../shared/spec/forest-bird.yaml`
//! compiles; the normative one has the brief's 166 tasks; examples carry the
//! editor modeline.

use twinflow_tests::{repo_root, shared_dir, yaml_files};
use twinflow_workflow::{CompileOptions, SiteSource, compile_file};

#[test]
fn the_normative_example_compiles_to_166_tasks() {
    let path = shared_dir().join("spec/forest-bird.yaml");
    let plan = compile_file(&path, &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let counts: Vec<usize> = plan.steps.iter().map(|s| s.tasks.len()).collect();
    assert_eq!(counts, [3, 81, 81, 1]);
    assert_eq!(plan.task_count(), 166);
}

#[test]
fn every_example_workflow_compiles() {
    let files: Vec<_> = yaml_files(&repo_root().join("workflows"))
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "sites"))
        .collect();
    assert!(
        files.len() >= 3,
        "expected at least three example workflows, found {files:?}"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read example");
        assert!(
            text.starts_with("# yaml-language-server: $schema="),
            "{} lacks the yaml-language-server modeline",
            path.display()
        );
        if let Err(e) = compile_file(&path, &CompileOptions::default()) {
            panic!("{} does not compile:\n{}", path.display(), e.render(false));
        }
    }
}

#[test]
fn every_site_file_binds_the_forest_bird_demo() {
    let sites = yaml_files(&repo_root().join("workflows/sites"));
    let demo = repo_root().join("workflows/forest-bird/forest-bird.yaml");
    for site in sites {
        let options = CompileOptions {
            site: Some(SiteSource::read(&site).unwrap_or_else(|e| panic!("{}", e.render(false)))),
            ..CompileOptions::default()
        };
        let plan = compile_file(&demo, &options).unwrap_or_else(|e| {
            panic!(
                "{} with {}:\n{}",
                demo.display(),
                site.display(),
                e.render(false)
            )
        });
        assert!(
            plan.executors.iter().any(|e| e.bound_by.is_some()),
            "{} rebinds nothing",
            site.display()
        );
    }
}
