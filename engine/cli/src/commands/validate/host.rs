//! What `twinflow validate` checks on this machine beyond the compiler:
//! the container runtimes of the steps whose tasks run here (on a local
//! executor) are installed. The runtime resolves every image again at
//! submit and refuses there too; this says so before anything is queued.

use std::ffi::OsStr;
use twinflow_core::{BackendConfig, Plan};

/// One problem per (local executor, runtime) pair whose runtime is not on
/// `path` (a `PATH` value), naming the first step that needs it.
pub(crate) fn missing_runtimes(plan: &Plan, path: Option<&OsStr>) -> Vec<String> {
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for step in &plan.steps {
        let (Some(container), Some(executor)) =
            (&step.container, plan.executors.get(step.executor.index()))
        else {
            continue;
        };
        if !matches!(executor.backend, BackendConfig::Local(_)) {
            continue;
        }
        let Some(runtime) = container.runtime.or(executor.container_runtime) else {
            continue;
        };
        if seen.contains(&(step.executor, runtime)) {
            continue;
        }
        seen.push((step.executor, runtime));
        if !on_path(runtime.as_str(), path) {
            problems.push(format!(
                "step `{}` runs in `{}` under {runtime} on executor `{}` (local), but {runtime} is \
                 not installed on this machine (not on PATH)",
                step.name, container.image, executor.name
            ));
        }
    }
    problems
}

/// Whether an executable file `program` is in one of `path`'s directories.
fn on_path(program: &str, path: Option<&OsStr>) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = path else {
        return false;
    };
    std::env::split_paths(path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plan(yaml: &str) -> Plan {
        let options = twinflow_workflow::CompileOptions::default();
        match twinflow_workflow::compile_str("t.yaml", yaml, &options) {
            Ok(plan) => plan,
            Err(e) => panic!("{}", e.render(false)),
        }
    }

    const YAML: &str = "
version: 1
name: boxed
executors:
  here: { kind: local, container_runtime: podman }
  hpc: { kind: slurm, container_runtime: apptainer }
steps:
  a: { executor: here, container: localhost/m:1, run: echo a }
  b: { executor: here, container: localhost/m:1, run: echo b }
  c: { executor: hpc, container: docker://m:1, run: echo c }
  d: { executor: here, run: echo d }
";

    #[test]
    fn a_local_runtime_missing_from_path_is_named_once_and_a_cluster_one_not_at_all() {
        let empty = tempfile::tempdir().unwrap();
        let problems = missing_runtimes(&plan(YAML), Some(empty.path().as_os_str()));
        assert_eq!(
            problems,
            [
                "step `a` runs in `localhost/m:1` under podman on executor `here` (local), but \
              podman is not installed on this machine (not on PATH)"
            ]
        );
    }

    #[test]
    fn an_executable_runtime_on_path_passes_and_a_non_executable_file_does_not() {
        let bin = tempfile::tempdir().unwrap();
        let podman = bin.path().join("podman");
        std::fs::write(&podman, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&podman, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            missing_runtimes(&plan(YAML), Some(bin.path().as_os_str())).len(),
            1
        );
        std::fs::set_permissions(&podman, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(missing_runtimes(&plan(YAML), Some(bin.path().as_os_str())).is_empty());
    }
}
