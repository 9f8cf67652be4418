//! GPUs in the language: `resources.gpus` as a count or `{count, type}`, a
//! local executor's `gpus: [ids]` and `gpu_vendor`, a Slurm executor's
//! `gpu_vendor`, the check that a step's executor has the GPUs it asks for
//! (also under `--local`), and the diagnostics of each mistake
//! (snapshot-tested as rendered).
#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use twinflow_core::{BackendConfig, GpuVendor, Plan};
use twinflow_workflow::{CompileError, CompileOptions, compile_str};

fn compile_with(yaml: &str, options: &CompileOptions) -> Result<Plan, CompileError> {
    compile_str("gpus.yaml", yaml, options)
}

fn compile(yaml: &str) -> Plan {
    match compile_with(yaml, &CompileOptions::default()) {
        Ok(plan) => plan,
        Err(e) => panic!("did not compile:\n{}", e.render(false)),
    }
}

/// The rendered diagnostics of a file that must fail, checking the code
/// of the first one.
fn refused_with(yaml: &str, options: &CompileOptions, code: &str) -> String {
    let err = match compile_with(yaml, options) {
        Ok(_) => panic!("compiled, expected {code}:\n{yaml}"),
        Err(e) => e,
    };
    let first = err.diagnostics.first().map(|d| d.code());
    assert_eq!(first, Some(code), "{}", err.render(false));
    err.render(false)
}

fn refused(yaml: &str, code: &str) -> String {
    refused_with(yaml, &CompileOptions::default(), code)
}

const EXECUTORS: &str = r#"version: 1
executors:
  gpu-box:
    kind: local
    gpus: [0, 1, 3]
    gpu_vendor: amd
  hpc:
    kind: slurm
    partition: small-g
    gpu_vendor: amd
  laptop:
    kind: local
"#;

/// `EXECUTORS` with one step on `executor` whose `resources:` are `resources`.
fn step(executor: &str, resources: &str) -> String {
    format!(
        "{EXECUTORS}steps:\n  train:\n    executor: {executor}\n    resources: {resources}\n    run: \"true\"\n"
    )
}

#[test]
fn a_count_or_a_count_and_a_type_are_lowered() {
    let plan = compile(&step("hpc", "{ gpus: 2 }"));
    let r = &plan.steps[0].resources;
    assert_eq!((r.gpus, r.gpu_type.as_deref()), (2, None));

    let plan = compile(&step("hpc", "{ gpus: { count: 4, type: a100 } }"));
    let r = &plan.steps[0].resources;
    assert_eq!((r.gpus, r.gpu_type.as_deref()), (4, Some("a100")));

    let plan = compile(&step("hpc", "{ gpus: { count: 1, type: mi250x.gcd_1-2 } }"));
    assert_eq!(
        plan.steps[0].resources.gpu_type.as_deref(),
        Some("mi250x.gcd_1-2")
    );

    let plan = compile(&step("gpu-box", "{ gpus: 3 }"));
    assert_eq!(plan.steps[0].resources.gpus, 3);
}

#[test]
fn executors_carry_their_devices_and_vendor() {
    let plan = compile(&step("gpu-box", "{ gpus: 1 }"));
    let by_name = |name: &str| {
        plan.executors
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.backend.clone())
            .unwrap_or_else(|| panic!("no executor {name}"))
    };
    match by_name("gpu-box") {
        BackendConfig::Local(l) => {
            assert_eq!(l.gpus, [0, 1, 3]);
            assert_eq!(l.gpu_vendor, GpuVendor::Amd);
        }
        other => panic!("{other:?}"),
    }
    match by_name("laptop") {
        BackendConfig::Local(l) => {
            assert!(l.gpus.is_empty());
            assert_eq!(l.gpu_vendor, GpuVendor::Nvidia, "the default");
        }
        other => panic!("{other:?}"),
    }
    match by_name("hpc") {
        BackendConfig::Slurm(s) => assert_eq!(s.gpu_vendor, GpuVendor::Amd),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_plan_json_shows_the_type_and_the_devices() {
    let plan = compile(&step("gpu-box", "{ gpus: 2 }"));
    let json = serde_json::to_value(&plan.executors).unwrap_or_default();
    assert_eq!(json[0]["gpus"], serde_json::json!([0, 1, 3]));
    assert_eq!(json[0]["gpu_vendor"], "amd");
    let plan = compile(&step("hpc", "{ gpus: { count: 2, type: a100 } }"));
    let r = serde_json::to_value(&plan.steps[0].resources).unwrap_or_default();
    assert_eq!(
        r,
        serde_json::json!({"cpus": 1, "memory_bytes": null, "time_seconds": null, "gpus": 2, "gpu_type": "a100"})
    );
}

#[test]
fn bad_counts_types_and_keys_are_refused_at_their_span() {
    let cases: [(&str, &str, &str); 8] = [
        ("zero", "{ gpus: 0 }", "twinflow::bad-gpus"),
        ("negative", "{ gpus: -2 }", "twinflow::bad-gpus"),
        ("fraction", "{ gpus: 1.5 }", "twinflow::bad-gpus"),
        (
            "zero_in_mapping",
            "{ gpus: { count: 0, type: a100 } }",
            "twinflow::bad-gpus",
        ),
        (
            "unknown_key",
            "{ gpus: { count: 1, typ: a100 } }",
            "twinflow::unknown-key",
        ),
        (
            "missing_count",
            "{ gpus: { type: a100 } }",
            "twinflow::missing-key",
        ),
        (
            "unsafe_type",
            "{ gpus: { count: 2, type: \"a100:2,gpu:h100\" } }",
            "twinflow::bad-gpu-type",
        ),
        (
            "empty_type",
            "{ gpus: { count: 2, type: \"\" } }",
            "twinflow::bad-gpu-type",
        ),
    ];
    for (name, resources, code) in cases {
        insta::assert_snapshot!(name, refused(&step("hpc", resources), code));
    }
    // Not a number at all: the reader's own wrong-type diagnostic.
    refused(&step("hpc", "{ gpus: two }"), "twinflow::wrong-type");
    refused(&step("hpc", "{ gpus: [1] }"), "twinflow::wrong-type");
}

#[test]
fn executor_gpu_keys_are_checked() {
    let slurm_gpus = "version: 1\nexecutors:\n  hpc: { kind: slurm, gpus: [0, 1] }\nsteps:\n  a: { run: \"true\" }\n";
    insta::assert_snapshot!(
        "gpus_on_slurm",
        refused(slurm_gpus, "twinflow::executor-key")
    );
    let cloud_vendor = "version: 1\nexecutors:\n  vm: { kind: cloud, ssh: u@h, store: s3://bucket/x, gpu_vendor: amd }\nsteps:\n  a: { run: \"true\" }\n";
    refused(cloud_vendor, "twinflow::executor-key");
    let twice = "version: 1\nexecutors:\n  box: { kind: local, gpus: [0, 1, 0] }\nsteps:\n  a: { run: \"true\" }\n";
    insta::assert_snapshot!(
        "duplicate_device",
        refused(twice, "twinflow::duplicate-value")
    );
    let negative = "version: 1\nexecutors:\n  box: { kind: local, gpus: [0, -1] }\nsteps:\n  a: { run: \"true\" }\n";
    refused(negative, "twinflow::invalid-value");
    let vendor = "version: 1\nexecutors:\n  box: { kind: local, gpus: [0], gpu_vendor: intel }\nsteps:\n  a: { run: \"true\" }\n";
    insta::assert_snapshot!("unknown_vendor", refused(vendor, "twinflow::unknown-value"));
}

#[test]
fn a_step_asks_no_more_gpus_than_its_local_executor_lists() {
    insta::assert_snapshot!(
        "more_than_listed",
        refused(&step("gpu-box", "{ gpus: 4 }"), "twinflow::too-many-gpus")
    );
    insta::assert_snapshot!(
        "local_without_devices",
        refused(&step("laptop", "{ gpus: 1 }"), "twinflow::gpus-unavailable")
    );
    insta::assert_snapshot!(
        "type_on_local",
        refused(
            &step("gpu-box", "{ gpus: { count: 1, type: a100 } }"),
            "twinflow::gpu-type-on-local"
        )
    );
    let cloud = "version: 1\nexecutors:\n  vm: { kind: cloud, ssh: u@h, store: s3://bucket/x }\nsteps:\n  a: { resources: { gpus: 1 }, run: \"true\" }\n";
    refused(cloud, "twinflow::gpus-unavailable");
}

#[test]
fn local_rebinding_keeps_local_devices_and_refuses_cluster_gpu_steps() {
    let local = CompileOptions {
        local: true,
        ..CompileOptions::default()
    };
    // A local executor keeps its devices under --local.
    let plan = compile_with(&step("gpu-box", "{ gpus: 2 }"), &local)
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    match &plan.executors[0].backend {
        BackendConfig::Local(l) => assert_eq!((l.gpus.len(), l.gpu_vendor), (3, GpuVendor::Amd)),
        other => panic!("{other:?}"),
    }
    // A Slurm step without GPUs runs locally as before.
    assert!(compile_with(&step("hpc", "{ cpus: 2 }"), &local).is_ok());
    // A Slurm step with GPUs is refused: this machine's executor has none.
    insta::assert_snapshot!(
        "under_local_flag",
        refused_with(
            &step("hpc", "{ gpus: 2 }"),
            &local,
            "twinflow::gpus-unavailable"
        )
    );
    refused_with(
        &step("hpc", "{ gpus: { count: 1, type: a100 } }"),
        &local,
        "twinflow::gpu-type-on-local",
    );
}
