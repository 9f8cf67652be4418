//! Resolution against a scripted runner: the commands it runs, in order,
//! and what it makes of their output.

use super::*;
use std::sync::Mutex;

const ID: &str = "2babe0e6b50b0bb98e0df0fd0a1067189e300d11121aae3f279d9f29234dc6c7";
const D: &str = "sha256:67323df64dd290b976ddb9d3d42d71d76da746eb18472cc31bb365385e9584ad";
const FILE_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Answers each command with the first rule whose program and argument
/// match (`None` argument: any), recording every command.
#[derive(Debug, Default)]
struct Scripted {
    rules: Vec<(&'static str, Option<&'static str>, Option<CommandOutput>)>,
    seen: Mutex<Vec<String>>,
}

impl Scripted {
    fn on(
        mut self,
        program: &'static str,
        arg: Option<&'static str>,
        out: Option<(i32, &str)>,
    ) -> Self {
        let out = out.map(|(status, stdout)| CommandOutput {
            status: Some(status),
            stdout: stdout.to_owned(),
            stderr: if status == 0 {
                String::new()
            } else {
                "boom".into()
            },
        });
        self.rules.push((program, arg, out));
        self
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl CommandRunner for Scripted {
    fn host(&self) -> &str {
        "node7"
    }

    fn run(&self, argv: &[OsString]) -> io::Result<CommandOutput> {
        let words: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.seen.lock().unwrap().push(words.join(" "));
        for (program, arg, out) in &self.rules {
            if words[0] == *program && arg.is_none_or(|a| words.iter().any(|w| w == a)) {
                return out
                    .clone()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound));
            }
        }
        Ok(CommandOutput {
            status: Some(0),
            stdout: String::new(),
            stderr: String::new(),
        })
    }
}

fn image(text: &str) -> ImageRef {
    ImageRef::parse(text).unwrap()
}

#[test]
fn podman_inspects_a_present_image_and_names_it_by_id() {
    let out = format!("{ID} localhost/twinflow-busybox@{D}\n");
    let r = Scripted::default().on("podman", Some("inspect"), Some((0, &out)));
    let resolver = PodmanResolver::new(ContainerRuntime::Podman, r);
    let got = resolver
        .resolve(&image("localhost/twinflow-busybox:1"))
        .unwrap();
    assert_eq!(got.digest, D);
    assert_eq!(got.run_ref, ID);
    assert_eq!(
        resolver.runner.seen(),
        [
            "podman image inspect --format={{.Id}}{{range .RepoDigests}} {{.}}{{end}} localhost/twinflow-busybox:1"
        ]
    );
}

#[test]
fn podman_pulls_a_missing_registry_image_once_then_inspects_again() {
    #[derive(Debug)]
    struct PullThenPresent(Scripted, Mutex<bool>);
    impl CommandRunner for PullThenPresent {
        fn host(&self) -> &str {
            "node7"
        }
        fn run(&self, argv: &[OsString]) -> io::Result<CommandOutput> {
            let pulled = *self.1.lock().unwrap();
            let out = self.0.run(argv)?;
            if argv[1] == "pull" {
                *self.1.lock().unwrap() = true;
            }
            if argv[1] == "image" && pulled {
                return Ok(CommandOutput {
                    status: Some(0),
                    stdout: format!("sha256:{ID} ghcr.io/biodt/landis@{D}"),
                    stderr: String::new(),
                });
            }
            Ok(out)
        }
    }
    let r = PullThenPresent(
        Scripted::default().on("docker", Some("inspect"), Some((1, ""))),
        Mutex::new(false),
    );
    let resolver = PodmanResolver::new(ContainerRuntime::Docker, r);
    let got = resolver
        .resolve(&image("docker://ghcr.io/biodt/landis:7"))
        .unwrap();
    assert_eq!((got.digest.as_str(), got.run_ref.as_str()), (D, ID));
    let seen = resolver.runner.0.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[1], "docker pull --quiet ghcr.io/biodt/landis:7");
}

#[test]
fn podman_never_pulls_a_local_image_and_names_image_runtime_and_host() {
    let r = Scripted::default().on("podman", Some("inspect"), Some((125, "")));
    let resolver = PodmanResolver::new(ContainerRuntime::Podman, r);
    let e = resolver.resolve(&image("localhost/nope:1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to resolve image `localhost/nope:1` with podman on host `node7`: no such image in the local store (localhost/ images are built or imported there, never pulled)"
    );
    assert_eq!(resolver.runner.seen().len(), 1);
}

#[test]
fn a_pinned_digest_the_image_does_not_hold_is_a_mismatch() {
    let other = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    let out = format!("{ID} ghcr.io/a/b@{D}");
    let r = Scripted::default().on("podman", Some("inspect"), Some((0, &out)));
    let e = PodmanResolver::new(ContainerRuntime::Podman, r)
        .resolve(&image(&format!("ghcr.io/a/b@{other}")))
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "digest mismatch: the image holds {D}, not {other}"
        )),
        "{e}"
    );
}

#[test]
fn a_missing_runtime_is_named() {
    let r = Scripted::default().on("podman", None, None);
    let e = PodmanResolver::new(ContainerRuntime::Podman, r)
        .resolve(&image("python:3.12"))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("on host `node7`: podman is not installed (not on PATH)"),
        "{e}"
    );
    assert!(!e.transient);
}

#[test]
fn apptainer_hashes_a_sif_file_and_runs_it_in_place() {
    let out = format!("{FILE_HEX}  /scratch/landis.sif\n");
    let r = Scripted::default().on("sha256sum", None, Some((0, &out)));
    let resolver = ApptainerResolver::new(ContainerRuntime::Apptainer, "/scratch/cache", r);
    let got = resolver.resolve(&image("/scratch/landis.sif")).unwrap();
    assert_eq!(got.digest, format!("sha256:{FILE_HEX}"));
    assert_eq!(got.run_ref, "/scratch/landis.sif");
    assert_eq!(resolver.runner.seen(), ["sha256sum -- /scratch/landis.sif"]);
    let missing = Scripted::default().on("sha256sum", None, Some((1, "")));
    let e = ApptainerResolver::new(ContainerRuntime::Apptainer, "/c", missing)
        .resolve(&image("/scratch/gone.sif"))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("`sha256sum -- /scratch/gone.sif` ended with status 1: boom"),
        "{e}"
    );
}

#[test]
fn apptainer_pulls_a_pinned_image_once_per_site() {
    let pinned = format!("docker://ghcr.io/a/b@{D}");
    let cached = Scripted::default().on("test", None, Some((0, "")));
    let resolver = ApptainerResolver::new(ContainerRuntime::Apptainer, "/scratch/cache/", cached);
    let got = resolver.resolve(&image(&pinned)).unwrap();
    let sif = format!("/scratch/cache/{}.sif", D.replace(':', "-"));
    assert_eq!(
        (got.digest.as_str(), got.run_ref.as_str()),
        (D, sif.as_str())
    );
    assert!(!resolver.runner.seen().iter().any(|c| c.contains(" pull ")));

    let absent = Scripted::default().on("test", None, Some((1, "")));
    let resolver = ApptainerResolver::new(ContainerRuntime::Apptainer, "/scratch/cache", absent);
    resolver.resolve(&image(&pinned)).unwrap();
    let seen = resolver.runner.seen();
    assert!(
        seen[2].starts_with("apptainer pull /scratch/cache/.pull-"),
        "{seen:?}"
    );
    assert!(seen[2].ends_with(&format!(" {pinned}")), "{seen:?}");
    assert!(
        seen[3].starts_with("mv -f -- /scratch/cache/.pull-") && seen[3].ends_with(&sif),
        "{seen:?}"
    );
}

#[test]
fn apptainer_names_a_tag_pull_by_the_sif_digest_and_cleans_up_a_failed_pull() {
    let out = format!("{FILE_HEX}  x\n");
    let r = Scripted::default().on("sha256sum", None, Some((0, &out)));
    let resolver = ApptainerResolver::new(ContainerRuntime::Singularity, "/c", r);
    let got = resolver.resolve(&image("oras://ghcr.io/a/b:1")).unwrap();
    assert_eq!(got.run_ref, format!("/c/sif-sha256-{FILE_HEX}.sif"));
    assert!(resolver.runner.seen()[1].starts_with("singularity pull /c/.pull-"));

    let r = Scripted::default().on("apptainer", Some("pull"), Some((255, "")));
    let resolver = ApptainerResolver::new(ContainerRuntime::Apptainer, "/c", r);
    let e = resolver
        .resolve(&image("docker://python:3.12"))
        .unwrap_err();
    assert!(e.to_string().starts_with("failed to resolve image `docker://python:3.12` with apptainer on host `node7`: `apptainer pull /c/.pull-"), "{e}");
    assert!(
        resolver
            .runner
            .seen()
            .last()
            .unwrap()
            .starts_with("rm -f -- /c/.pull-")
    );
}

#[test]
fn images_a_runtime_cannot_run_are_refused() {
    let e = PodmanResolver::new(ContainerRuntime::Podman, Scripted::default())
        .resolve(&image("/a/b.sif"))
        .unwrap_err();
    assert!(
        e.to_string().contains("need apptainer or singularity"),
        "{e}"
    );
    let e = ApptainerResolver::new(ContainerRuntime::Apptainer, "/c", Scripted::default())
        .resolve(&image("localhost/x:1"))
        .unwrap_err();
    assert!(e.to_string().contains("cannot run under apptainer"), "{e}");
    let e = ApptainerResolver::new(ContainerRuntime::Apptainer, "/c", Scripted::default())
        .resolve(&image("rel/x.sif"))
        .unwrap_err();
    assert!(e.to_string().contains("the .sif path is relative"), "{e}");
}
