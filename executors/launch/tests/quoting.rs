//! A value with spaces, quotes, `$()`, backticks or newlines stays one
//! argument of the argument vector, and the script lines hand a real
//! `/bin/sh` exactly the same words and variables.

#![expect(clippy::unwrap_used, reason = "helpers of a test fail it")]

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use twinflow_core::{ContainerRuntime, ImageRef};
use twinflow_launch::{ContainerLaunch, HostUser, Launch, LaunchSpec, Network, launch};

fn nasty() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("$(echo pwned)".to_owned()),
            Just("`id`".to_owned()),
            Just("'".to_owned()),
            Just("\"".to_owned()),
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            Just("\\".to_owned()),
            Just("${HOME}".to_owned()),
            "[a-zA-Z0-9ü*?;&|<>=,:#~!%-]{1,4}",
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn wrapped(runtime: Option<ContainerRuntime>, workdir: &Path, value: &str, script: &str) -> Launch {
    let image = ImageRef::parse("docker://ghcr.io/biodt/landis:7").unwrap();
    let options = vec![format!("--label=x={value}")];
    let c = runtime.map(|runtime| ContainerLaunch {
        runtime,
        image: &image,
        resolved: None,
        options: &options,
        name: "tf-r-0-0",
        network: &Network::Host,
        user: HostUser { uid: 0, gid: 0 },
    });
    let env = vec![("TWINFLOW_PARAM_X".to_owned(), value.to_owned())];
    launch(&LaunchSpec {
        script,
        workdir,
        inputs: &[],
        env: &env,
        gpus: None,
        container: c.as_ref(),
    })
    .unwrap()
}

/// Runs the script lines in `/bin/sh` with the program replaced by a
/// function that prints its arguments, then prints the exported variables;
/// everything NUL-separated.
fn through_sh(launch: &Launch) -> Vec<String> {
    let program = launch.argv[0].to_str().unwrap();
    let names: Vec<&str> = launch.env.iter().map(|(k, _)| k.as_str()).collect();
    let mut script = String::from("words() { for a in \"$@\"; do printf '%s\\0' \"$a\"; done; }\n");
    let mut lines = launch.script_lines().unwrap();
    let command = lines.pop().unwrap();
    for line in lines {
        script.push_str(&line);
        script.push('\n');
    }
    // `/bin/sh` as a program is not a function name: call the function for
    // whichever program the launch starts.
    let command = command.replacen(&format!("&& {program} "), "&& words ", 1);
    script.push_str(&command);
    script.push('\n');
    for n in names {
        script.push_str(&format!("printf '%s\\0' \"${n}\"\n"));
    }
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words: Vec<String> = text.split('\0').map(str::to_owned).collect();
    words.pop();
    words
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn values_survive_as_one_argument_and_through_a_real_shell(value in nasty(), script in nasty()) {
        let dir = tempfile::tempdir().unwrap();
        let workdir: PathBuf = dir.path().canonicalize().unwrap();
        for runtime in [
            None,
            Some(ContainerRuntime::Podman),
            Some(ContainerRuntime::Docker),
            Some(ContainerRuntime::Apptainer),
            Some(ContainerRuntime::Singularity),
        ] {
            let l = wrapped(runtime, &workdir, &value, &script);
            // The script is the last argument, whole.
            prop_assert_eq!(l.argv.last().unwrap().to_str().unwrap(), script.as_str());
            // The option is one argument, whole.
            let option = format!("--label=x={value}");
            prop_assert_eq!(l.argv.iter().filter(|a| a.to_str() == Some(&option)).count(), usize::from(runtime.is_some()));
            // The variable: an `--env` argument (podman, docker) or an
            // entry of the launching process's environment.
            let as_arg = format!("--env=TWINFLOW_PARAM_X={value}");
            let in_argv = l.argv.iter().filter(|a| a.to_str() == Some(&as_arg)).count();
            let in_env = l.env.iter().filter(|(k, v)| k.ends_with("TWINFLOW_PARAM_X") && v == &value).count();
            prop_assert_eq!(in_argv + in_env, 1);
            // The shell sees the same words and values.
            let seen = through_sh(&l);
            let mut want: Vec<String> = l.argv[1..].iter().map(|a| a.to_str().unwrap().to_owned()).collect();
            want.extend(l.env.iter().map(|(_, v)| v.clone()));
            prop_assert_eq!(seen, want);
        }
    }
}
