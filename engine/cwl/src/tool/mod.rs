//! Running one `CommandLineTool` on one input object in a working
//! directory: inputs completed and staged, `InitialWorkDirRequirement`
//! placed, the command line built and run, the outputs collected.
//!
//! Layout under the working directory: `out/` is the tool's output and
//! working directory (`runtime.outdir`), `tmp/` its `runtime.tmpdir`,
//! `stage/` where its inputs are linked.

pub mod cmdline;
pub mod container;
pub mod exec;
pub mod inputs;
pub mod outputs;
pub mod stage;

use crate::error::{CwlError, Result};
use crate::expr::{self, Context};
use crate::model::Process;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The output directory under a working directory.
pub const OUT_DIR: &str = "out";

/// What a tool run produced.
#[derive(Debug, Clone)]
pub struct ToolResult {
    /// The output object (absolute paths under the working directory).
    pub outputs: Value,
    /// The command line as run.
    pub command: String,
}

/// Runs `tool` on `job` (File objects resolved) in `workdir`.
pub fn run(
    tool: &Process,
    job: &Value,
    workdir: &Path,
    discovery: inputs::Discovery,
) -> Result<ToolResult> {
    let outdir = workdir.join(OUT_DIR);
    let tmpdir = workdir.join("tmp");
    for d in [&outdir, &tmpdir] {
        std::fs::create_dir_all(d).map_err(|e| CwlError::io("cannot create", d, &e))?;
    }
    let mut inputs = inputs::prepare(tool, job, discovery).map_err(|e| tool.error("inputs", e))?;
    let input_paths = stage::input_paths(&inputs);
    stage::stage_inputs(&mut inputs, &workdir.join("stage"))?;
    let runtime = runtime(tool, &inputs, &outdir, &tmpdir)?;
    stage::initial_workdir(tool, &mut inputs, &runtime, &outdir)
        .map_err(|e| tool.error("requirements", e))?;
    let words = cmdline::build(tool, &inputs, &runtime).map_err(|e| tool.error("", e))?;
    let js = tool.js();
    let ctx = Context {
        inputs: &inputs,
        self_: &Value::Null,
        runtime: &runtime,
        lib: tool.expression_lib(),
    };
    let stream = |field: &str| -> Result<Option<String>> {
        match tool.field(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match expr::eval(v, &ctx, js)? {
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => Ok(Some(s)),
                Value::Null => Ok(None),
                other => Err(CwlError::invalid(format!(
                    "{field} gave {other}, not a file name"
                ))),
            },
        }
    };
    let stdin = stream("stdin")?.map(PathBuf::from);
    let mut stdout = stream("stdout")?;
    let mut stderr = stream("stderr")?;
    let has = |t: &crate::types::Type| tool.outputs.iter().any(|o| &o.ty == t);
    if stdout.is_none() && has(&crate::types::Type::Stdout) {
        stdout = Some("cwl.stdout.txt".into());
    }
    if stderr.is_none() && has(&crate::types::Type::Stderr) {
        stderr = Some("cwl.stderr.txt".into());
    }
    let stdout = stdout
        .map(|s| stage::safe_relative(&s).map(|p| outdir.join(p)))
        .transpose()?;
    let stderr = stderr
        .map(|s| stage::safe_relative(&s).map(|p| outdir.join(p)))
        .transpose()?;
    let shell = tool.find("ShellCommandRequirement").is_some();
    let container = container::required(tool).map_err(|e| tool.error("requirements", e))?;
    let mut env = environment(tool, &ctx, &outdir, &tmpdir)?;
    if container.is_some() {
        // Inside the image its own PATH applies.
        env.retain(|(k, _)| k != "PATH");
    }
    let mut launch = exec::Launch {
        env,
        shell,
        cwd: outdir.clone(),
        stdin,
        stdout: stdout.clone(),
        stderr: stderr.clone(),
        timelimit: timelimit(tool, &ctx)?,
        words,
        container: None,
    };
    if let Some(c) = &container {
        let script = exec::container_script(&launch);
        let mut binds = input_paths.clone();
        binds.retain(|p| !p.starts_with(workdir));
        let prepared = container::launch(c, &script, workdir, &binds, &launch.env)?;
        launch.container = Some((prepared, c.program()));
    }
    let command = exec::shell_line(&launch.words);
    let ended = exec::run(&launch)?;
    let code = match ended {
        exec::Ended::TimedOut => {
            return Err(CwlError::failed(format!(
                "`{command}` ran past its time limit and was killed"
            )));
        }
        exec::Ended::Exited(c) => c,
    };
    let codes = |field: &str| -> Vec<i64> {
        tool.field(field)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    let success = codes("successCodes");
    let ok = if success.is_empty() {
        code == 0
    } else {
        success.contains(&i64::from(code))
    };
    if !ok
        || codes("permanentFailCodes").contains(&i64::from(code))
        || codes("temporaryFailCodes").contains(&i64::from(code))
    {
        return Err(CwlError::failed(format!("`{command}` exited with {code}")));
    }
    stage::materialise_links(&outdir, workdir, &input_paths)?;
    let mut runtime = runtime;
    runtime["exitCode"] = json!(code);
    let streams = outputs::Streams { stdout, stderr };
    let outputs = outputs::collect(tool, &inputs, &runtime, &outdir, &streams)?;
    Ok(ToolResult { outputs, command })
}

/// `runtime`: directories and the resources of `ResourceRequirement`
/// (minimums, rounded up; cwltool's defaults of 1 core and 256 MiB).
pub(crate) fn runtime(
    tool: &Process,
    inputs: &Value,
    outdir: &Path,
    tmpdir: &Path,
) -> Result<Value> {
    let mut rt = json!({
        "outdir": outdir.to_string_lossy(),
        "tmpdir": tmpdir.to_string_lossy(),
        "cores": 1,
        "ram": 256,
        "outdirSize": 1024,
        "tmpdirSize": 1024,
    });
    if let Some(req) = tool.find("ResourceRequirement") {
        let snapshot = rt.clone();
        let ctx = Context {
            inputs,
            self_: &Value::Null,
            runtime: &snapshot,
            lib: tool.expression_lib(),
        };
        for (key, min, max) in [
            ("cores", "coresMin", "coresMax"),
            ("ram", "ramMin", "ramMax"),
            ("outdirSize", "outdirMin", "outdirMax"),
            ("tmpdirSize", "tmpdirMin", "tmpdirMax"),
        ] {
            let pick = req.value.get(min).or_else(|| req.value.get(max));
            if let Some(v) = pick {
                match expr::eval(v, &ctx, tool.js())? {
                    Value::Number(n) => {
                        let x = n.as_f64().unwrap_or(1.0).ceil().max(0.0) as u64;
                        rt[key] = json!(x);
                    }
                    Value::Null => {}
                    other => {
                        return Err(tool.error(
                            "requirements",
                            CwlError::invalid(format!(
                                "ResourceRequirement {min}: {other} is not a number"
                            )),
                        ));
                    }
                }
            }
        }
    }
    Ok(rt)
}

fn environment(
    tool: &Process,
    ctx: &Context,
    outdir: &Path,
    tmpdir: &Path,
) -> Result<Vec<(String, String)>> {
    let mut env = vec![
        ("HOME".to_owned(), outdir.to_string_lossy().into_owned()),
        ("TMPDIR".to_owned(), tmpdir.to_string_lossy().into_owned()),
        (
            "PATH".to_owned(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
    ];
    if let Some(req) = tool.find("EnvVarRequirement") {
        let defs = crate::model::entries(req.value.get("envDef"), "envName")?;
        for (name, def) in defs {
            let raw = match &def {
                Value::Object(m) => m.get("envValue").cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            let value = match expr::eval(&raw, ctx, tool.js())? {
                Value::String(s) => s,
                other => cmdline::to_str(&other)?,
            };
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
        }
    }
    Ok(env)
}

fn timelimit(tool: &Process, ctx: &Context) -> Result<Option<Duration>> {
    let Some(req) = tool.find("ToolTimeLimit") else {
        return Ok(None);
    };
    let v = req.value.get("timelimit").cloned().unwrap_or(Value::Null);
    match expr::eval(&v, ctx, tool.js())? {
        Value::Number(n) => match n.as_i64() {
            Some(0) => Ok(None),
            Some(s) if s > 0 => Ok(Some(Duration::from_secs(s as u64))),
            _ => Err(CwlError::invalid(format!(
                "ToolTimeLimit {n} is not a whole number of seconds >= 0"
            ))),
        },
        Value::Null => Ok(None),
        other => Err(CwlError::invalid(format!(
            "ToolTimeLimit {other} is not a number"
        ))),
    }
}
