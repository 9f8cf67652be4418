//! Rendering one attempt as a Slurm batch script (`#SBATCH` header and body).
//!
//! The header carries everything Slurm must know before the job starts:
//!
//! | `#SBATCH` option | from | notes |
//! | --- | --- | --- |
//! | `--job-name` | [`Job::key`] | `tf-<task>-<attempt>`: digits and dashes only |
//! | `--comment` | the status file | `twinflow:single:<status file>`: how a restarted executor finds a job whose id it never stored |
//! | `--chdir` | [`Job::workdir`] | |
//! | `--output`, `--error` | [`Job::stdout`], [`Job::stderr`] | `%` is refused: Slurm reads it as a file name pattern (`%j`) |
//! | `--nodes`, `--ntasks`, `--ntasks-per-node`, `--exclusive` | `resources.nodes`, `tasks`, `tasks_per_node`, `exclusive` | only when set (`--ntasks` when more than 1); see [`crate::ranks`] |
//! | `--cpus-per-task` | `resources.cpus` | at least 1; per rank |
//! | `--mem=<N>M` | `resources.memory_bytes` | whole MiB, rounded up; only when set; 0 is refused (Slurm reads `--mem=0` as "all of the node's memory") |
//! | `--time=D-HH:MM:SS` | `resources.time_seconds` | whole minutes, rounded up; only when set; 0 is refused (Slurm reads a limit of 0 as "no limit") |
//! | `--gpus=<N>` | `resources.gpus` | only when more than 0 and no type is asked for; a job array's elements get N each, a packed job N for the whole allocation (see [`crate::pack_gpus`]) |
//! | `--gres=gpu:<TYPE>:<N>` | `resources.gpus`, `resources.gpu_type` | in place of `--gpus` when a type is asked for; the type is letters, digits, `_`, `-` and `.` only |
//! | `--partition`, `--account`, `--qos` | [`SlurmConfig`] | only when set |
//! | each of [`SlurmConfig::sbatch`] | [`SlurmConfig`] | one option per line, in order |
//!
//! sbatch splits an `#SBATCH` line itself (not a shell): it ends a word at
//! white space unless quoted, treats `"`, `'` and `\` as quoting, starts a
//! comment at `#`, and takes any line that mentions `hetjob` or `packjob` as
//! the separator of a heterogeneous job. So a value with a control character
//! (a newline above all), a quote, a backslash or `#`, or one of those words
//! is refused with a [`ScriptError`]; a value with spaces is put in double
//! quotes. Extra options must start with `-` and may not set what the header
//! already sets (`--job-name`, `--comment`, `--chdir`, `--output`, `--error`,
//! `--array`, or `-J`, `-D`, `-o`, `-e`, `-a`): the runtime relies on those
//! (an array's range and throttle come from the executor, see
//! [`crate::group::render_array`]).
//!
//! The body exports the job's environment (values shell-quoted), `cd`s into
//! the working directory (Slurm itself falls back to `/tmp` when `--chdir`
//! fails; the explicit `cd` turns that into a failure instead), runs the
//! task's script as one quoted argument of `/bin/sh -e -c` (under `srun`
//! or `mpirun` for a task of several ranks, see [`crate::ranks`]), and writes the
//! exit status to the status file: first to `<status file>.tmp`, then renamed
//! over it with `mv`, so a reader never sees half a number. The job then
//! exits with that status. A job that ends this way records its own exit
//! status, so its result does not depend on `squeue` (which forgets finished
//! jobs after `MinJobAge`) or on accounting. A job that Slurm kills
//! (`scancel`, time limit, node failure) dies with its batch shell and leaves
//! no status file; its fate comes from `squeue` or `sacct`.
//!
//! sbatch refuses a script with a DOS line break (`\r\n`) anywhere, and a
//! shell cannot carry a NUL byte, so scripts or environment values holding
//! either are refused too.

use crate::containers::StepContainer;
use crate::pack_container::PackContainer;
use crate::prologue::Prologue;
use std::fmt::Write as _;
use std::path::Path;
use twinflow_core::{Job, SlurmConfig, shell_quote};

pub use crate::script_error::ScriptError;

/// Options the header sets itself, which an extra option may not override.
const OWNED_LONG: [&str; 6] = ["job-name", "comment", "chdir", "output", "error", "array"];
const OWNED_SHORT: [char; 5] = ['J', 'D', 'o', 'e', 'a'];

/// The batch script of `job` for an executor configured by `config`; the
/// script writes the task's exit status to `status_file` (see the module
/// documentation). `status_file` should be absolute: it is written after the
/// `cd`, so a relative one is taken from the working directory.
pub fn render(job: &Job, config: &SlurmConfig, status_file: &Path) -> Result<String, ScriptError> {
    render_in(job, config, status_file, None)
}

/// [`render`], running the task inside `container` when given (see
/// [`crate::containers`]).
pub fn render_in(
    job: &Job,
    config: &SlurmConfig,
    status_file: &Path,
    container: Option<&StepContainer>,
) -> Result<String, ScriptError> {
    let how = Wrapping {
        container,
        ..Wrapping::default()
    };
    render_with(job, config, status_file, &how)
}

/// How a task runs besides its script: in its own container, in its pack's
/// shared one ([`crate::pack_container`]), after its executor's prologue
/// ([`crate::prologue`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wrapping<'a> {
    /// The task's own container.
    pub container: Option<&'a StepContainer>,
    /// Its pack's shared container (a member script only; wins over
    /// `container`).
    pub shared: Option<&'a PackContainer>,
    /// The executor's prologue: a plain job runs it; every task script
    /// reports its failure.
    pub prologue: Option<&'a Prologue<'a>>,
}

/// [`render`], run as `how` says.
pub fn render_with(
    job: &Job,
    config: &SlurmConfig,
    status_file: &Path,
    how: &Wrapping<'_>,
) -> Result<String, ScriptError> {
    let workdir = path_text(&job.workdir, "working directory")?;
    let stdout = path_text(&job.stdout, "standard output path")?;
    let stderr = path_text(&job.stderr, "standard error path")?;
    let mut out = String::from("#!/bin/sh\n");
    header(
        &mut out,
        &Header {
            job_name: format!("tf-{}-{}", job.key.task, job.key.attempt),
            comment: comment("single", status_file)?,
            chdir: workdir,
            output: no_pattern(stdout, "standard output path")?,
            error: Some(no_pattern(stderr, "standard error path")?),
            array: None,
            time_seconds: job.resources.time_seconds,
        },
        job,
        config,
    )?;
    if how.prologue.is_some() {
        crate::prologue::open(&mut out);
    }
    body(&mut out, job, status_file, how)?;
    if let Some(p) = how.prologue {
        crate::prologue::close(&mut out, p)?;
    }
    Ok(out)
}

/// The `--comment` of a submission: `twinflow:<kind>:<status file of its
/// first task>` (kind `single`, `array` or `pack`). A restarted executor
/// that lost a job's id finds the job by it (`squeue --me -o %k`) and, from
/// the status file, the submission's other files.
pub(crate) fn comment(kind: &str, first_status: &Path) -> Result<String, ScriptError> {
    Ok(format!(
        "twinflow:{kind}:{}",
        path_text(first_status, "status file")?
    ))
}

/// The `#SBATCH` lines of one submission that are not the resources.
pub(crate) struct Header<'a> {
    /// `--job-name`.
    pub(crate) job_name: String,
    /// `--comment`: [`comment`], so the job can be found again.
    pub(crate) comment: String,
    /// `--chdir`.
    pub(crate) chdir: &'a str,
    /// `--output` (may be a pattern when twinflow wrote it: `%A_%a`).
    pub(crate) output: &'a str,
    /// `--error`; `None` sends standard error to `output`.
    pub(crate) error: Option<&'a str>,
    /// `--array=<spec>`.
    pub(crate) array: Option<String>,
    /// `--time`, in seconds (a packed job's is its tasks' sum).
    pub(crate) time_seconds: Option<u64>,
}

/// Writes the `#SBATCH` header: `h`, then the resources of `job` (the
/// model of every task in the submission) and the executor's options.
pub(crate) fn header(
    out: &mut String,
    h: &Header<'_>,
    job: &Job,
    config: &SlurmConfig,
) -> Result<(), ScriptError> {
    let r = &job.resources;
    let line =
        |out: &mut String, option: &str, value: &str, what: &str| -> Result<(), ScriptError> {
            out.push_str("#SBATCH ");
            out.push_str(&sbatch_word(&format!("--{option}={value}"), value, what)?);
            out.push('\n');
            Ok(())
        };
    line(out, "job-name", &h.job_name, "job name")?;
    line(out, "comment", &h.comment, "job comment")?;
    line(out, "chdir", h.chdir, "working directory")?;
    line(out, "output", h.output, "standard output path")?;
    if let Some(error) = h.error {
        line(out, "error", error, "standard error path")?;
    }
    if let Some(array) = &h.array {
        line(out, "array", array, "array range")?;
    }
    if r.cpus == 0 {
        return Err(ScriptError::new(format!(
            "`{}` asks for 0 cpus; slurm needs at least 1",
            job.name
        )));
    }
    for option in crate::ranks::sbatch_options(job)? {
        out.push_str("#SBATCH ");
        out.push_str(&option);
        out.push('\n');
    }
    line(out, "cpus-per-task", &r.cpus.to_string(), "cpu count")?;
    if let Some(bytes) = r.memory_bytes {
        line(
            out,
            "mem",
            &format!("{}M", mebibytes(bytes, &job.name)?),
            "memory",
        )?;
    }
    if let Some(seconds) = h.time_seconds {
        line(out, "time", &time_limit(seconds, &job.name)?, "time limit")?;
    }
    if r.gpus > 0 {
        match &r.gpu_type {
            None => line(out, "gpus", &r.gpus.to_string(), "gpu count")?,
            Some(t) => {
                let gres_name = !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !gres_name {
                    return Err(ScriptError::new(format!(
                        "`{}` asks for gpu type {t:?}, which is not a gres type name (letters, digits, `_`, `-`, `.`)",
                        job.name
                    )));
                }
                line(out, "gres", &format!("gpu:{t}:{}", r.gpus), "gpu type")?;
            }
        }
    }
    for (option, value) in [
        ("partition", &config.partition),
        ("account", &config.account),
        ("qos", &config.qos),
    ] {
        if let Some(value) = value {
            line(out, option, value, option)?;
        }
    }
    for extra in &config.sbatch {
        out.push_str("#SBATCH ");
        out.push_str(&extra_option(extra)?);
        out.push('\n');
    }
    Ok(())
}

/// The script of one task run inside an array job or a packed job: it sends
/// its own output to the task's log files, marks that it started
/// (`<status file>.started`) and records its exit status like a job of its
/// own would.
pub fn render_member(job: &Job, status_file: &Path) -> Result<String, ScriptError> {
    render_member_in(job, status_file, None)
}

/// [`render_member`], running the task inside `container` when given.
pub fn render_member_in(
    job: &Job,
    status_file: &Path,
    container: Option<&StepContainer>,
) -> Result<String, ScriptError> {
    let how = Wrapping {
        container,
        ..Wrapping::default()
    };
    render_member_with(job, status_file, &how)
}

/// [`render_member`], run as `how` says (a member runs no prologue: its
/// job did; it reports the prologue's failure).
pub fn render_member_with(
    job: &Job,
    status_file: &Path,
    how: &Wrapping<'_>,
) -> Result<String, ScriptError> {
    let stdout = path_text(&job.stdout, "standard output path")?;
    let stderr = path_text(&job.stderr, "standard error path")?;
    let status = path_text(status_file, "status file")?;
    let mut out = String::from("#!/bin/sh\n");
    let _ = writeln!(
        out,
        "exec >{} 2>{}",
        shell_quote(stdout),
        shell_quote(stderr)
    );
    let _ = writeln!(out, ": >{}", shell_quote(&format!("{status}.started")));
    body(&mut out, job, status_file, how)?;
    Ok(out)
}

/// The environment, the `cd`, the task's script (run as `how` says) and
/// the status file.
fn body(
    out: &mut String,
    job: &Job,
    status_file: &Path,
    how: &Wrapping<'_>,
) -> Result<(), ScriptError> {
    let workdir = path_text(&job.workdir, "working directory")?;
    let status = path_text(status_file, "status file")?;
    let status_tmp = format!("{status}.tmp");
    for (name, value) in &job.env {
        if !is_shell_name(name) {
            return Err(ScriptError::new(format!(
                "the environment variable name {name:?} is not a shell variable name"
            )));
        }
        body_text(value, &format!("the value of {name}"))?;
        // Also with a container: the batch shell keeps the job's
        // environment as before; the launch passes it inside itself.
        let _ = writeln!(out, "export {name}={}", shell_quote(value));
    }
    body_text(&job.script, &format!("the script of `{}`", job.name))?;
    let run = match (how.shared, how.container) {
        (Some(shared), _) => shared.member_lines(job)?,
        (None, Some(container)) => {
            crate::ranks::container_refusal(job)?;
            crate::containers::lines(job, container)?
        }
        (None, None) => vec![crate::ranks::run_line(job, workdir)],
    };
    let run = match how.prologue {
        Some(p) => crate::prologue::check(p, run),
        None => run,
    };
    crate::prologue::push_lines(out, &run);
    out.push_str("status=$?\n");
    let _ = writeln!(
        out,
        "printf '%s\\n' \"$status\" >{tmp} && mv -f -- {tmp} {status}",
        tmp = shell_quote(&status_tmp),
        status = shell_quote(status),
    );
    out.push_str("exit \"$status\"\n");
    Ok(())
}

pub(crate) fn path_text<'a>(path: &'a Path, what: &str) -> Result<&'a str, ScriptError> {
    path.to_str().ok_or_else(|| {
        ScriptError::new(format!("the {what} {} is not valid utf-8", path.display()))
    })
}

/// Refuses `%`, which `--output`/`--error` read as a file name pattern.
fn no_pattern<'a>(path: &'a str, what: &str) -> Result<&'a str, ScriptError> {
    if path.contains('%') {
        return Err(ScriptError::new(format!(
            "the {what} {path:?} contains `%`, which slurm would read as a file name pattern"
        )));
    }
    Ok(path)
}

/// `bytes` in whole MiB, rounded up.
fn mebibytes(bytes: u64, job: &str) -> Result<u64, ScriptError> {
    if bytes == 0 {
        return Err(ScriptError::new(format!(
            "`{job}` asks for 0 bytes of memory; slurm reads `--mem=0` as all of a node's memory"
        )));
    }
    Ok(bytes.div_ceil(1024 * 1024))
}

/// `D-HH:MM:SS`, rounded up to whole minutes.
fn time_limit(seconds: u64, job: &str) -> Result<String, ScriptError> {
    if seconds == 0 {
        return Err(ScriptError::new(format!(
            "`{job}` asks for a time limit of 0 s; slurm reads a limit of 0 as no limit"
        )));
    }
    let minutes = seconds.div_ceil(60);
    Ok(format!(
        "{}-{:02}:{:02}:00",
        minutes / (24 * 60),
        minutes / 60 % 24,
        minutes % 60
    ))
}

/// `word` as sbatch must see it on an `#SBATCH` line: refused when `value`
/// (the part of it that came from outside) holds anything sbatch reads
/// specially there, in double quotes when it holds a space.
fn sbatch_word(word: &str, value: &str, what: &str) -> Result<String, ScriptError> {
    let refuse = |why: &str| {
        Err(ScriptError::new(format!(
            "the {what} {value:?} cannot go on an #SBATCH line: {why}"
        )))
    };
    if value.is_empty() {
        return refuse("it is empty");
    }
    if value.contains(['\n', '\r']) {
        return refuse("it contains a newline");
    }
    if value.chars().any(char::is_control) {
        return refuse("it contains a control character");
    }
    if let Some(c) = value.chars().find(|c| matches!(c, '"' | '\'' | '\\' | '#')) {
        return refuse(&format!("sbatch reads `{c}` specially there"));
    }
    let lower = value.to_ascii_lowercase();
    if let Some(w) = ["hetjob", "packjob"]
        .into_iter()
        .find(|w| lower.contains(w))
    {
        return refuse(&format!(
            "sbatch takes a line containing `{w}` as a heterogeneous job separator"
        ));
    }
    if word.contains(' ') {
        Ok(format!("\"{word}\""))
    } else {
        Ok(word.to_owned())
    }
}

/// One extra option of [`SlurmConfig::sbatch`], checked.
fn extra_option(option: &str) -> Result<String, ScriptError> {
    let word = sbatch_word(option, option, "extra sbatch option")?;
    let refuse = |why: &str| {
        Err(ScriptError::new(format!(
            "the extra sbatch option {option:?} {why}"
        )))
    };
    if let Some(long) = option.strip_prefix("--") {
        let name = long.split_once('=').map_or(long, |(name, _)| name);
        // getopt_long also takes an unambiguous prefix (`--out=x`).
        if let Some(owned) = OWNED_LONG
            .into_iter()
            .find(|owned| !name.is_empty() && owned.starts_with(name))
        {
            return refuse(&format!(
                "would override `--{owned}`, which twinflow sets itself"
            ));
        }
    } else if let Some(short) = option.strip_prefix('-') {
        if let Some(c) = short.chars().next().filter(|c| OWNED_SHORT.contains(c)) {
            return refuse(&format!(
                "would override `-{c}`, which twinflow sets itself"
            ));
        }
    } else {
        return refuse("does not start with `-`");
    }
    Ok(word)
}

/// Text that goes into the body (shell-quoted): no NUL, no `\r\n`.
fn body_text(text: &str, what: &str) -> Result<(), ScriptError> {
    if text.contains('\0') {
        return Err(ScriptError::new(format!(
            "{what} contains a nul byte, which a shell script cannot hold: {text:?}"
        )));
    }
    if text.contains("\r\n") {
        return Err(ScriptError::new(format!(
            "{what} contains a dos line break (\\r\\n), which sbatch refuses: {text:?}"
        )));
    }
    Ok(())
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_shell_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_status_file;
    use std::fs;
    use std::path::PathBuf;
    use twinflow_core::{AttemptKey, Resources, TaskId};

    fn job(task: u32, attempt: u32, script: &str, env: &[(&str, &str)], run: &str) -> Job {
        let logs = Path::new(run).join("logs/simulate");
        Job {
            key: AttemptKey {
                task: TaskId(task),
                attempt,
            },
            name: "simulate[scenario=ssp126]@2030".to_owned(),
            script: script.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            workdir: Path::new(run).join("work/simulate/0"),
            stdout: logs.join(format!("0.{attempt}.out")),
            stderr: logs.join(format!("0.{attempt}.err")),
            resources: Resources::default(),
            step: "simulate".to_owned(),
            pack: None,
            launcher: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            group: None,
        }
    }

    const RUN: &str = "/scratch/tf/runs/r-20261124-0001";

    fn status_of(job: &Job) -> PathBuf {
        job.stdout.with_extension("status")
    }

    fn rendered(job: &Job, config: &SlurmConfig) -> String {
        render(job, config, &status_of(job)).unwrap()
    }

    #[test]
    fn minimal_job() {
        let job = job(7, 0, "echo hello", &[], RUN);
        insta::assert_snapshot!(rendered(&job, &SlurmConfig::default()));
    }

    #[test]
    fn job_with_every_resource_and_option() {
        let mut job = job(
            12,
            2,
            "landis run scenario.txt",
            &[
                ("TWINFLOW_RUN_ID", "r-20261124-0001"),
                ("SCENARIO", "ssp126"),
            ],
            "/scratch/my runs/r-20261124-0001",
        );
        job.resources = Resources {
            cpus: 4,
            // 1.5 GiB and one byte: rounds up to 1537 MiB.
            memory_bytes: Some(3 * 512 * 1024 * 1024 + 1),
            // 1 d 1 h 1 min 1 s: rounds up to 1-01:02:00.
            time_seconds: Some(90_061),
            gpus: 2,
            gpu_type: None,
            ..Resources::default()
        };
        let config = SlurmConfig {
            partition: Some("small-g".to_owned()),
            account: Some("project_465000001".to_owned()),
            qos: Some("normal".to_owned()),
            sbatch: vec![
                "--exclusive".to_owned(),
                "--hint=nomultithread".to_owned(),
                "--reservation=twin week 7".to_owned(),
                "--mail-type=END,FAIL".to_owned(),
            ],
            ..SlurmConfig::default()
        };
        insta::assert_snapshot!(rendered(&job, &config));
    }

    #[test]
    fn gpus_without_a_type_are_gpus_and_with_one_a_typed_gres() {
        let mut j = job(4, 0, "train", &[], RUN);
        let gpu_lines = |j: &Job| -> Vec<String> {
            rendered(j, &SlurmConfig::default())
                .lines()
                .filter(|l| l.contains("gpu"))
                .map(str::to_owned)
                .collect()
        };
        assert!(gpu_lines(&j).is_empty(), "no gpus, no line");
        j.resources.gpus = 2;
        assert_eq!(gpu_lines(&j), ["#SBATCH --gpus=2"]);
        j.resources.gpu_type = Some("a100".to_owned());
        assert_eq!(gpu_lines(&j), ["#SBATCH --gres=gpu:a100:2"]);
        j.resources.gpu_type = Some("mi250x.gcd_1-2".to_owned());
        insta::assert_snapshot!(rendered(&j, &SlurmConfig::default()));
        for bad in ["a100:2", "a100,gpu:h100", "", "a 100", "a#1"] {
            j.resources.gpu_type = Some(bad.to_owned());
            assert!(error(&j, &SlurmConfig::default(), "simulate").contains("gres type name"));
        }
    }

    #[test]
    fn job_with_quotes_substitutions_and_newlines() {
        let job = job(
            3,
            1,
            "echo \"it's $(date) and `hostname`\"\nprintf '%s\\n' \"$MESSAGE\" > 'out file.txt'\nexit 0",
            &[
                ("MESSAGE", "say \"hi\" and it's $(touch pwned)"),
                ("MULTI", "line one\nline two"),
                ("EMPTY", ""),
            ],
            RUN,
        );
        insta::assert_snapshot!(rendered(&job, &SlurmConfig::default()));
    }

    #[test]
    fn memory_rounds_up_to_whole_mebibytes() {
        assert_eq!(mebibytes(1, "j").unwrap(), 1);
        assert_eq!(mebibytes(1024 * 1024, "j").unwrap(), 1);
        assert_eq!(mebibytes(1024 * 1024 + 1, "j").unwrap(), 2);
        assert_eq!(mebibytes(200 * 1024 * 1024, "j").unwrap(), 200);
        assert_eq!(mebibytes(u64::MAX, "j").unwrap(), 1 << 44);
    }

    #[test]
    fn time_rounds_up_to_whole_minutes() {
        assert_eq!(time_limit(1, "j").unwrap(), "0-00:01:00");
        assert_eq!(time_limit(60, "j").unwrap(), "0-00:01:00");
        assert_eq!(time_limit(61, "j").unwrap(), "0-00:02:00");
        assert_eq!(time_limit(300, "j").unwrap(), "0-00:05:00");
        assert_eq!(time_limit(3600, "j").unwrap(), "0-01:00:00");
        assert_eq!(time_limit(86_400, "j").unwrap(), "1-00:00:00");
        assert_eq!(time_limit(90_061, "j").unwrap(), "1-01:02:00");
        assert_eq!(time_limit(30 * 86_400, "j").unwrap(), "30-00:00:00");
    }

    /// The error of rendering `job` with `config`, checked to be lowercase
    /// and to name `offending`.
    fn error(job: &Job, config: &SlurmConfig, offending: &str) -> String {
        let message = render(job, config, &status_of(job))
            .unwrap_err()
            .to_string();
        assert!(
            !message.starts_with(|c: char| c.is_uppercase()),
            "{message}"
        );
        assert!(
            message.contains(offending),
            "{message:?} lacks {offending:?}"
        );
        message
    }

    #[test]
    fn values_that_would_break_an_sbatch_line_are_refused() {
        let j = job(1, 0, "true", &[], RUN);
        let with_partition = |p: &str| SlurmConfig {
            partition: Some(p.to_owned()),
            ..SlurmConfig::default()
        };
        let m = error(&j, &with_partition("debug\n#SBATCH --qos=high"), "debug\\n");
        assert!(m.contains("newline"), "{m}");
        assert!(error(&j, &with_partition("a\rb"), "a\\rb").contains("newline"));
        assert!(error(&j, &with_partition("a\tb"), "a\\tb").contains("control"));
        assert!(error(&j, &with_partition("a#b"), "a#b").contains("`#`"));
        assert!(error(&j, &with_partition("a\"b"), "a\\\"b").contains("`\"`"));
        assert!(error(&j, &with_partition("it's"), "it's").contains("`'`"));
        assert!(error(&j, &with_partition("a\\b"), "a\\\\b").contains("`\\`"));
        assert!(error(&j, &with_partition("x-HetJob"), "x-HetJob").contains("hetjob"));
        assert!(error(&j, &with_partition("packjob"), "packjob").contains("packjob"));
        assert!(error(&j, &with_partition(""), "partition").contains("empty"));

        let mut k = j.clone();
        k.workdir = PathBuf::from("/scratch/a\nb");
        assert!(error(&k, &SlurmConfig::default(), "/scratch/a\\nb").contains("newline"));
        let mut k = j.clone();
        k.stdout = PathBuf::from("/scratch/out-%j.txt");
        assert!(error(&k, &SlurmConfig::default(), "out-%j.txt").contains("pattern"));
        let mut k = j.clone();
        k.stderr = PathBuf::from("/scratch/#err");
        error(&k, &SlurmConfig::default(), "/scratch/#err");
    }

    #[test]
    fn extra_options_must_be_options_and_leave_the_header_alone() {
        let j = job(1, 0, "true", &[], RUN);
        let with_extra = |o: &str| SlurmConfig {
            sbatch: vec![o.to_owned()],
            ..SlurmConfig::default()
        };
        assert!(error(&j, &with_extra("exclusive"), "exclusive").contains("`-`"));
        for o in [
            "--output=/tmp/x",
            "--out=/tmp/x",
            "--error=/tmp/x",
            "--job-name=x",
            "--job=x",
            "--chdir=/tmp",
            "--comment=mine",
            "--array=0-9%2",
        ] {
            assert!(error(&j, &with_extra(o), o).contains("twinflow sets itself"));
        }
        for o in ["-Jname", "-D/tmp", "-o/tmp/x", "-e/tmp/x", "-a0-3"] {
            assert!(error(&j, &with_extra(o), o).contains("twinflow sets itself"));
        }
        assert!(error(&j, &with_extra("--constraint=a\nb"), "a\\nb").contains("newline"));
        let fine = with_extra("--exclude=node1");
        assert!(rendered(&j, &fine).contains("\n#SBATCH --exclude=node1\n"));
        let fine = with_extra("--acctg-freq=30");
        assert!(rendered(&j, &fine).contains("\n#SBATCH --acctg-freq=30\n"));
        let fine = with_extra("--export=ALL");
        assert!(rendered(&j, &fine).contains("\n#SBATCH --export=ALL\n"));
    }

    #[test]
    fn bad_resources_and_body_text_are_refused() {
        let j = job(1, 0, "true", &[], RUN);
        let c = SlurmConfig::default();
        let mut k = j.clone();
        k.resources.cpus = 0;
        assert!(error(&k, &c, "simulate[scenario=ssp126]@2030").contains("0 cpus"));
        let mut k = j.clone();
        k.resources.memory_bytes = Some(0);
        assert!(error(&k, &c, "simulate").contains("--mem=0"));
        let mut k = j.clone();
        k.resources.time_seconds = Some(0);
        assert!(error(&k, &c, "simulate").contains("no limit"));
        let mut k = j.clone();
        k.script = "echo a\r\necho b".to_owned();
        assert!(error(&k, &c, "echo a\\r\\necho b").contains("dos line break"));
        let mut k = j.clone();
        k.env = vec![("A".to_owned(), "x\0y".to_owned())];
        assert!(error(&k, &c, "x\\0y").contains("nul"));
        for name in ["1A", "A-B", "A B", "", "A=B", "$(x)"] {
            let mut k = j.clone();
            k.env = vec![(name.to_owned(), "v".to_owned())];
            error(&k, &c, &format!("{name:?}"));
        }
    }

    #[test]
    fn script_errors_become_permanent_executor_errors() {
        let e =
            twinflow_core::ExecutorError::from(ScriptError::new("the qos \"a#b\" ...".to_owned()));
        assert_eq!(e.message, "the qos \"a#b\" ...");
        assert!(!e.transient);
    }

    /// A directory under the system's temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "twinflow-executor-slurm-test-{name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `job`'s script with `sh` (no Slurm) from `dir`; returns its
    /// exit code and the status file's text.
    fn run(dir: &Path, job: &Job) -> (Option<i32>, Option<String>) {
        let status = dir.join("status");
        let script = dir.join("job.sh");
        fs::write(
            &script,
            render(job, &SlurmConfig::default(), &status).unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new("sh")
            .arg(&script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            !dir.join("status.tmp").exists(),
            "the temporary status file was left behind"
        );
        (out.status.code(), fs::read_to_string(&status).ok())
    }

    #[test]
    fn a_rendered_script_records_its_exit_status_and_runs_no_values() {
        let tmp = TempDir::new("run");
        let work = tmp.0.join("work dir");
        fs::create_dir_all(&work).unwrap();
        let value = "$(touch pwned) `touch pwned2` it's \"quoted\"\nand a newline";
        let mut j = job(
            5,
            0,
            "printf '%s' \"$VALUE\" > value.txt\npwd > pwd.txt\nexit 3\necho not reached > after.txt",
            &[("VALUE", value)],
            "/unused",
        );
        j.workdir = work.clone();
        j.stdout = tmp.0.join("0.0.out");
        j.stderr = tmp.0.join("0.0.err");

        let (code, status) = run(&tmp.0, &j);
        assert_eq!(code, Some(3));
        assert_eq!(status.as_deref(), Some("3\n"));
        assert_eq!(parse_status_file(&status.unwrap()), Some(3));
        assert_eq!(fs::read_to_string(work.join("value.txt")).unwrap(), value);
        assert_eq!(
            fs::read_to_string(work.join("pwd.txt")).unwrap().trim_end(),
            work.canonicalize().unwrap().to_str().unwrap()
        );
        assert!(!work.join("after.txt").exists());
        for dir in [&tmp.0, &work] {
            for name in ["pwned", "pwned2"] {
                assert!(!dir.join(name).exists(), "{name} was created in {dir:?}");
            }
        }
    }

    #[test]
    fn a_rendered_script_runs_its_task_under_sh_e() {
        let tmp = TempDir::new("errexit");
        let mut j = job(6, 0, "false\necho not reached > after.txt", &[], "/unused");
        j.workdir = tmp.0.clone();
        let (code, status) = run(&tmp.0, &j);
        assert_eq!(code, Some(1));
        assert_eq!(status.as_deref().and_then(parse_status_file), Some(1));
        assert!(!tmp.0.join("after.txt").exists());

        j.script = "true".to_owned();
        let (code, status) = run(&tmp.0, &j);
        assert_eq!(code, Some(0));
        assert_eq!(status.as_deref().and_then(parse_status_file), Some(0));
    }

    #[test]
    fn a_missing_workdir_fails_the_job_instead_of_running_elsewhere() {
        let tmp = TempDir::new("nocd");
        let mut j = job(8, 0, "touch ran", &[], "/unused");
        j.workdir = tmp.0.join("missing");
        let (code, status) = run(&tmp.0, &j);
        assert_ne!(code, Some(0));
        let recorded = status.as_deref().and_then(parse_status_file);
        assert!(matches!(recorded, Some(c) if c != 0), "{recorded:?}");
        assert_eq!(code, recorded);
        assert!(!tmp.0.join("ran").exists());
    }
}
