//! What a job script checks on the node before it starts a container, so
//! that a fault there is an attempt's error naming the image, the runtime
//! and the host rather than a runtime's bare message: the runtime is on
//! `PATH` (else status 127), every bind source exists and, under
//! Apptainer, the image file does (else 125). Under podman and docker, a
//! launch that fails with 125 (the runtime's own failure) whose image the
//! node's store lacks says so too. The message is one line,
//!
//! ```text
//! twinflow: cannot run image `IMAGE` with RUNTIME on host NODE: WHY
//! ```
//!
//! on the task's standard error (or, for a pack's shared container, in the
//! file its members report, see [`crate::pack_container`]). These checks
//! are shell built-ins (`command -v`, `[ -e ]`), so they cost the task
//! nothing; a failing check never falls back to running on the host.

use crate::containers::StepContainer;
use twinflow_core::{ContainerRuntime, shell_quote};

/// Where the message of a failed check goes: a redirection, `>&2` or
/// `>FILE`.
pub(crate) type Sink<'a> = &'a str;

/// `printf` of the message `why` (shell text: quoted, or holding `$var`
/// in double quotes) about `c`'s image, sent to `to`.
pub(crate) fn say(c: &StepContainer, why: &str, to: Sink<'_>) -> String {
    format!("{} {why} {to}", printf(c, "%s\\n"))
}

/// `printf 'twinflow: cannot run image `%s` with %s on host %s: END' IMAGE
/// RUNTIME "$(uname -n)"`.
pub(crate) fn printf(c: &StepContainer, end: &str) -> String {
    format!(
        "printf 'twinflow: cannot run image `%s` with %s on host %s: {end}' {} {} \"$(uname -n)\"",
        shell_quote(&c.spec.image),
        c.resolved.runtime,
    )
}

/// `run` (lines that start the container and leave a status in `$?`)
/// behind the checks of `c`'s runtime, of `sources` (the bind sources) and,
/// under Apptainer, of the image file; a failed check leaves 127 (no
/// runtime) or 125 in `$?` after telling `to`.
pub(crate) fn guarded(
    c: &StepContainer,
    sources: &[&str],
    run: Vec<String>,
    to: Sink<'_>,
) -> Vec<String> {
    let runtime = c.resolved.runtime.as_str();
    let mut lines = vec!["tf_missing=".to_owned()];
    if !sources.is_empty() {
        let list: Vec<String> = sources.iter().map(|s| shell_quote(s)).collect();
        lines.push(format!(
            "for tf_p in {}; do [ -e \"$tf_p\" ] || {{ tf_missing=$tf_p; break; }}; done",
            list.join(" ")
        ));
    }
    lines.push(format!("if ! command -v {runtime} >/dev/null 2>&1; then"));
    lines.push(say(c, &format!("'{runtime} is not on PATH'"), to));
    lines.push("(exit 127)".to_owned());
    lines.push("elif [ -n \"$tf_missing\" ]; then".to_owned());
    lines.push(say(c, "\"the bind source $tf_missing does not exist\"", to));
    lines.push("(exit 125)".to_owned());
    if matches!(
        c.resolved.runtime,
        ContainerRuntime::Apptainer | ContainerRuntime::Singularity
    ) {
        let sif = shell_quote(&c.resolved.run_ref);
        lines.push(format!("elif [ ! -e {sif} ]; then"));
        lines.push(say(
            c,
            &shell_quote(&format!(
                "the image file {} does not exist",
                c.resolved.run_ref
            )),
            to,
        ));
        lines.push("(exit 125)".to_owned());
    }
    lines.push("else".to_owned());
    lines.extend(run);
    lines.push("fi".to_owned());
    lines
}

/// After a podman or docker launch whose status is in `$?`: when it is 125
/// and the node's store lacks the image, says so on standard error; leaves
/// the status in `$?`. Nothing under Apptainer (its image file is checked
/// before).
pub(crate) fn after_launch(c: &StepContainer) -> Vec<String> {
    let runtime = c.resolved.runtime;
    if !matches!(runtime, ContainerRuntime::Podman | ContainerRuntime::Docker) {
        return Vec::new();
    }
    vec![
        "tf_status=$?".to_owned(),
        format!(
            "if [ \"$tf_status\" = 125 ] && ! {runtime} image inspect {} >/dev/null 2>&1; then",
            shell_quote(&c.resolved.run_ref)
        ),
        say(
            c,
            &shell_quote(&format!(
                "the image ({}) is not in {runtime}'s store there",
                c.resolved.run_ref
            )),
            ">&2",
        ),
        "fi".to_owned(),
        "(exit \"$tf_status\")".to_owned(),
    ]
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
