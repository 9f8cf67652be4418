//! Running an `ExpressionTool`, as cwltool's `ExpressionJob`: its
//! `expression` evaluated with `inputs` and `runtime` must give an object,
//! the output object: File and Directory literals in it are written to the
//! output directory, Files completed (size, checksum) and each declared
//! output checked against its type, as a tool's `cwl.output.json` is
//! (except that null passes for `Any`: cwltool checks nothing here, and the
//! conformance suite relies on a null `Any`).
//!
//! Layout under the working directory, as a tool's: `out/` is
//! `runtime.outdir`, `tmp/` `runtime.tmpdir`. `ToolTimeLimit` does not
//! apply (cwltool ignores it here); the JavaScript engine's own time limit
//! does.

use crate::error::{CwlError, Result};
use crate::expr::{self, Context};
use crate::model::Process;
use crate::tool::{self, inputs::Discovery, outputs};
use serde_json::Value;
use std::path::Path;

/// Runs the ExpressionTool `process` on `job` (File objects resolved) in
/// `workdir`; returns its output object.
pub fn run(process: &Process, job: &Value, workdir: &Path, discovery: Discovery) -> Result<Value> {
    let outdir = workdir.join(tool::OUT_DIR);
    let tmpdir = workdir.join("tmp");
    for d in [&outdir, &tmpdir] {
        std::fs::create_dir_all(d).map_err(|e| CwlError::io("cannot create", d, &e))?;
    }
    let inputs =
        tool::inputs::prepare(process, job, discovery).map_err(|e| process.error("inputs", e))?;
    let runtime = tool::runtime(process, &inputs, &outdir, &tmpdir)?;
    let Some(expression) = process.field("expression") else {
        return Err(process.error(
            "",
            CwlError::invalid("an ExpressionTool needs an `expression`"),
        ));
    };
    let ctx = Context {
        inputs: &inputs,
        self_: &Value::Null,
        runtime: &runtime,
        lib: process.expression_lib(),
    };
    let value = expr::eval(expression, &ctx, process.js())
        .map_err(|e| process.error("expression", e.into()))?;
    let Value::Object(object) = value else {
        return Err(process.error(
            "expression",
            CwlError::failed(format!(
                "the expression gave {}, not an object of the outputs",
                short(&value)
            )),
        ));
    };
    outputs::from_object(process, object, &outdir, true).map_err(|e| process.error("outputs", e))
}

/// A value as JSON, cut to a readable length.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use serde_json::json;

    fn tool(dir: &Path, expression: &str, outputs: &str) -> Process {
        let doc = format!(
            "cwlVersion: v1.2\nclass: ExpressionTool\nrequirements:\n  InlineJavascriptRequirement:\n    expressionLib:\n      - \"function twice(x) {{ return 2 * x; }}\"\n  ResourceRequirement:\n    coresMin: 3\ninputs:\n  n: int\n  f: File\noutputs:\n{outputs}\nexpression: {expression}\n"
        );
        let path = dir.join("tool.cwl");
        std::fs::write(&path, doc).unwrap();
        model::load(&path).unwrap()
    }

    fn job(dir: &Path) -> Value {
        let data = dir.join("data.txt");
        std::fs::write(&data, "12345").unwrap();
        json!({"n": 21, "f": {"class": "File", "path": data.to_string_lossy()}})
    }

    #[test]
    fn the_expression_gives_the_output_object() {
        let dir = tempfile::tempdir().unwrap();
        let outputs = "  doubled: int\n  cores: int\n  same: File\n  lit: File\n  none: string?";
        let expression = r#"'${ return {"doubled": twice(inputs.n), "cores": runtime.cores, "same": inputs.f, "lit": {"class": "File", "basename": "lit.txt", "contents": "hello"}, "extra": [1]}; }'"#;
        let process = tool(dir.path(), expression, outputs);
        let work = dir.path().join("work");
        let out = run(&process, &job(dir.path()), &work, Discovery::FromDisk).unwrap();
        assert_eq!(out["doubled"], json!(42));
        assert_eq!(out["cores"], json!(3));
        assert_eq!(out["none"], Value::Null);
        assert_eq!(out["extra"], json!([1]));
        assert_eq!(out["same"]["size"], json!(5));
        assert_eq!(out["same"]["basename"], json!("data.txt"));
        let lit = &out["lit"];
        assert_eq!(lit["class"], json!("File"));
        assert_eq!(lit["size"], json!(5));
        assert!(lit["checksum"].as_str().unwrap().starts_with("sha1$"));
        let written = work.join("out/lit.txt");
        assert_eq!(lit["path"], json!(written.to_string_lossy()));
        assert_eq!(std::fs::read_to_string(written).unwrap(), "hello");
    }

    #[test]
    fn outputs_are_checked_and_the_value_must_be_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let wrong_type = tool(dir.path(), "'$({\"doubled\": \"x\"})'", "  doubled: int");
        let err = run(&wrong_type, &job(dir.path()), &work, Discovery::FromDisk).unwrap_err();
        assert!(err.message.contains("output `doubled`"), "{err}");
        let missing = tool(dir.path(), "'$({})'", "  doubled: int");
        let err = run(&missing, &job(dir.path()), &work, Discovery::FromDisk).unwrap_err();
        assert!(
            err.message
                .contains("required output `doubled` has no value"),
            "{err}"
        );
        let not_object = tool(dir.path(), "'$(inputs.n)'", "  doubled: int");
        let err = run(&not_object, &job(dir.path()), &work, Discovery::FromDisk).unwrap_err();
        assert!(err.message.contains("gave 21, not an object"), "{err}");
        let throws = tool(dir.path(), "'${ return inputs.n.x.y; }'", "  doubled: int");
        let err = run(&throws, &job(dir.path()), &work, Discovery::FromDisk).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Failed);
        assert!(
            err.to_string().contains("tool.cwl:")
                && err
                    .message
                    .contains("javascript error in ${ return inputs.n.x.y; }: TypeError"),
            "{err}"
        );
    }
}
