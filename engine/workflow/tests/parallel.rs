//! Allocation-level shapes in the language: `resources.tasks`, `nodes`,
//! `tasks_per_node` and `exclusive`, `launcher:`, `pack:` as a count or
//! `{tasks, parallel}`, coupling groups (`group:`) and a Slurm executor's
//! `user_max_jobs`, lowered into the plan; and the mistakes the compiler
//! refuses that the bad-file corpus does not cover.
#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use twinflow_core::{BackendConfig, Launcher, PackSpec, Plan, PlanJson, StepSpec};
use twinflow_workflow::{CompileError, CompileOptions, compile_str};

fn compile_with(yaml: &str, options: &CompileOptions) -> Result<Plan, CompileError> {
    compile_str("parallel.yaml", yaml, options)
}

fn compile(yaml: &str) -> Plan {
    match compile_with(yaml, &CompileOptions::default()) {
        Ok(plan) => plan,
        Err(e) => panic!("did not compile:\n{}", e.render(false)),
    }
}

fn refused(yaml: &str, code: &str) -> String {
    let err = match compile_with(yaml, &CompileOptions::default()) {
        Ok(_) => panic!("compiled, expected {code}:\n{yaml}"),
        Err(e) => e,
    };
    let first = err.diagnostics.first().map(|d| d.code());
    assert_eq!(first, Some(code), "{}", err.render(false));
    err.render(false)
}

fn step<'a>(plan: &'a Plan, name: &str) -> &'a StepSpec {
    plan.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

const HEAD: &str = "version: 1
executors:
  hpc: { kind: slurm, partition: small }
  here: { kind: local, slots: 8 }
steps:
";

/// One step `model` on `hpc` with these extra lines (indented by 4).
fn one(lines: &str) -> String {
    format!("{HEAD}  model:\n    executor: hpc\n    run: ./model\n{lines}")
}

#[test]
fn ranks_and_their_layout_are_lowered_with_cpus_per_rank() {
    let plan = compile(&one(
        "    resources: { cpus: 4, tasks: 256, nodes: 2, tasks_per_node: 128, exclusive: true }\n",
    ));
    let r = &step(&plan, "model").resources;
    assert_eq!(
        (r.cpus, r.tasks, r.nodes, r.tasks_per_node, r.exclusive),
        (4, 256, Some(2), Some(128), true)
    );
    // Without `tasks`, the layout gives it.
    let plan = compile(&one("    resources: { nodes: 2, tasks_per_node: 8 }\n"));
    let r = &step(&plan, "model").resources;
    assert_eq!((r.tasks, r.nodes, r.tasks_per_node), (16, Some(2), Some(8)));
    let plan = compile(&one("    resources: { tasks_per_node: 4 }\n"));
    assert_eq!(step(&plan, "model").resources.tasks, 4);
    // Left out: one rank, no layout, shared nodes.
    let plan = compile(&one("    resources: { cpus: 2 }\n"));
    let r = &step(&plan, "model").resources;
    assert_eq!(
        (r.tasks, r.nodes, r.tasks_per_node, r.exclusive),
        (1, None, None, false)
    );
    assert!(!r.is_parallel());
}

#[test]
fn a_layout_whose_numbers_disagree_is_refused() {
    for (resources, code) in [
        ("{ tasks: 10, tasks_per_node: 4 }", "twinflow::bad-layout"),
        ("{ tasks: 2, nodes: 3 }", "twinflow::bad-layout"),
        ("{ nodes: 2 }", "twinflow::bad-layout"),
        (
            "{ tasks: 12, nodes: 2, tasks_per_node: 3 }",
            "twinflow::bad-layout",
        ),
        ("{ nodes: 0 }", "twinflow::zero"),
        ("{ tasks: -4 }", "twinflow::invalid-value"),
        ("{ tasks_per_node: -1 }", "twinflow::invalid-value"),
        ("{ exclusive: maybe }", "twinflow::wrong-type"),
    ] {
        let text = refused(&one(&format!("    resources: {resources}\n")), code);
        assert!(
            text.contains("parallel.yaml:"),
            "{resources}: no place in\n{text}"
        );
    }
    let text = refused(
        &one("    resources: { nodes: 2 }\n"),
        "twinflow::bad-layout",
    );
    assert!(
        text.contains("`nodes: 2` is more than 1 rank(s) (`tasks` not given)"),
        "{text}"
    );
}

#[test]
fn the_launcher_is_lowered_and_left_to_the_executor_when_unset() {
    for (written, launcher) in [
        ("srun", Launcher::Srun),
        ("mpirun", Launcher::Mpirun),
        ("none", Launcher::None),
    ] {
        let plan = compile(&one(&format!(
            "    resources: {{ tasks: 4 }}\n    launcher: {written}\n"
        )));
        assert_eq!(step(&plan, "model").launcher, Some(launcher), "{written}");
    }
    let plan = compile(&one("    resources: { tasks: 4 }\n"));
    assert_eq!(step(&plan, "model").launcher, None);
    let text = refused(&one("    launcher: srunn\n"), "twinflow::unknown-value");
    assert!(text.contains("did you mean `srun`?"), "{text}");
}

#[test]
fn pack_takes_a_count_or_tasks_and_parallel() {
    let pack = |lines: &str| step(&compile(&one(lines)), "model").pack;
    assert_eq!(
        pack("    pack: 20\n"),
        Some(PackSpec {
            tasks: 20,
            parallel: 1
        })
    );
    assert_eq!(
        pack("    pack: { tasks: 21, parallel: 7 }\n"),
        Some(PackSpec {
            tasks: 21,
            parallel: 7
        })
    );
    assert_eq!(
        pack("    pack: { tasks: 5 }\n"),
        Some(PackSpec {
            tasks: 5,
            parallel: 1
        })
    );
    assert_eq!(
        pack("    pack: { tasks: 5, parallel: 5 }\n"),
        Some(PackSpec {
            tasks: 5,
            parallel: 5
        })
    );
    assert_eq!(pack(""), None);
    for bad in [
        "pack: 0",
        "pack: 10001",
        "pack: { tasks: 0, parallel: 1 }",
        "pack: { tasks: 2, parallel: 3 }",
        "pack: { tasks: 2, parallel: 0 }",
    ] {
        refused(&one(&format!("    {bad}\n")), "twinflow::bad-pack");
    }
    refused(&one("    pack: -3\n"), "twinflow::invalid-value");
    refused(&one("    pack: [3]\n"), "twinflow::wrong-type");
}

#[test]
fn plan_json_shows_the_shape_of_each_step() {
    let plan = compile(&format!(
        "{HEAD}  a:\n    executor: here\n    group: g\n    resources: {{ tasks: 2 }}\n    launcher: mpirun\n    run: a\n  b:\n    executor: here\n    group: g\n    run: b\n  c:\n    executor: hpc\n    pack: {{ tasks: 6, parallel: 3 }}\n    run: c\n"
    ));
    let json = serde_json::to_value(PlanJson(&plan)).unwrap_or_default();
    let steps = &json["steps"];
    assert_eq!(steps[0]["group"], "g");
    assert_eq!(steps[0]["launcher"], "mpirun");
    assert_eq!(steps[1]["launcher"], serde_json::Value::Null);
    assert_eq!(
        (
            steps[2]["pack"].as_u64(),
            steps[2]["pack_parallel"].as_u64()
        ),
        (Some(6), Some(3))
    );
    assert_eq!(steps[2]["group"], serde_json::Value::Null);
    assert_eq!(json["tasks"][0]["resources"]["tasks"], 2);
}

const GROUP: &str = "version: 1
cycle: { start: 2020-01-01, stop: 2023-01-01, step: P1Y }
executors:
  here: { kind: local, slots: 4 }
steps:
  forest:
    for_each: { scenario: [baseline, drought] }
    cycling: true
    group: coupled
    needs: { damage: beetle.damage@-1 }
    resources: { cpus: 2 }
    run: forest
    outputs: { stands: stands.csv }
  beetle:
    for_each: { scenario: [drought, baseline] }
    cycling: true
    group: coupled
    needs: { stands: forest.stands@-1 }
    resources: { cpus: 2 }
    run: beetle
    outputs: { damage: damage.csv }
";

#[test]
fn a_coupling_group_is_lowered_and_its_members_may_need_earlier_points() {
    let plan = compile(GROUP);
    for name in ["forest", "beetle"] {
        assert_eq!(step(&plan, name).group.as_deref(), Some("coupled"));
    }
    assert_eq!(plan.task_count(), 16);
}

#[test]
fn waits_inside_a_group_instance_are_refused_also_through_other_steps() {
    // `after` at the same point.
    let text = refused(
        &GROUP.replace(
            "    needs: { stands: forest.stands@-1 }\n",
            "    after: [forest]\n",
        ),
        "twinflow::need-in-group",
    );
    assert!(
        text.contains("`beetle` waits for `forest` at the same cycle point"),
        "{text}"
    );
    // Through a step outside the group.
    let through = format!(
        "{}  relay:\n    for_each: {{ scenario: [baseline, drought] }}\n    cycling: true\n    needs: {{ s: forest.stands }}\n    run: relay\n    outputs: {{ r: r.csv }}\n",
        GROUP.replace(
            "    needs: { stands: forest.stands@-1 }\n",
            "    needs: { stands: forest.stands@-1, r: relay.r }\n"
        )
    );
    let text = refused(&through, "twinflow::need-in-group");
    assert!(text.contains("through other steps"), "{text}");
}

#[test]
fn a_group_is_checked_against_the_local_slots_counting_ranks() {
    // 2 + 2 cpus fit into 4 slots; 2 ranks of 2 cpus and 2 do not.
    let big = GROUP.replacen(
        "    resources: { cpus: 2 }\n",
        "    resources: { cpus: 2, tasks: 2 }\n",
        1,
    );
    let text = refused(&big, "twinflow::group-too-big");
    assert!(
        text.contains("needs 6 cpus at once (`forest` 4, `beetle` 2)"),
        "{text}"
    );
    // Without `slots` the machine's cores decide at run time: not checked here.
    compile(&big.replace("here: { kind: local, slots: 4 }", "here: { kind: local }"));
}

#[test]
fn a_bad_group_name_is_refused() {
    refused(
        &GROUP.replace("group: coupled", "group: \"two words\""),
        "twinflow::bad-name",
    );
}

#[test]
fn user_max_jobs_is_slurm_plan_data() {
    let plan = compile(
        "version: 1\nexecutors:\n  hpc: { kind: slurm, max_jobs: 50, user_max_jobs: 220 }\nsteps:\n  a:\n    run: a\n",
    );
    let BackendConfig::Slurm(s) = &plan.executors[0].backend else {
        panic!("not slurm");
    };
    assert_eq!((s.max_jobs, s.user_max_jobs), (Some(50), Some(220)));
    refused(
        "version: 1\nexecutors:\n  vm: { kind: cloud, ssh: u@h, store: s3://artefacts/p, user_max_jobs: 3 }\nsteps:\n  a:\n    run: a\n",
        "twinflow::executor-key",
    );
}

#[test]
fn local_rebinding_keeps_the_shape_for_the_local_executor_to_judge() {
    let options = CompileOptions {
        local: true,
        ..CompileOptions::default()
    };
    let plan = match compile_with(
        &one("    resources: { tasks: 4, nodes: 2 }\n    pack: { tasks: 4, parallel: 2 }\n"),
        &options,
    ) {
        Ok(p) => p,
        Err(e) => panic!("{}", e.render(false)),
    };
    let s = step(&plan, "model");
    assert_eq!((s.resources.tasks, s.resources.nodes), (4, Some(2)));
    assert!(twinflow_core::default_shape_refusal(s).is_some());
}
