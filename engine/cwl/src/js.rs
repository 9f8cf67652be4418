//! The JavaScript engine of CWL expressions: QuickJS, embedded (rquickjs).
//!
//! It runs what [`crate::expr`] cannot evaluate natively, as cwltool does
//! (`cwl_utils.expression` and `sandboxjs`): in strict mode, the
//! `expressionLib` texts of InlineJavascriptRequirement first, `inputs`,
//! `self` and `runtime` as global JSON values, then `$(EXPR)` as
//! `(function(){return (EXPR);})()` and `${BODY}` as
//! `(function(){BODY})()`; the result comes back through `JSON.stringify`
//! (so `undefined`, functions and `NaN` are `null`).
//!
//! One QuickJS runtime and context per thread is reused: making them costs
//! about 0.1 ms (0.35 ms in a debug build), an expression about 8 µs (40 µs;
//! `cost_of_an_evaluation` prints it). The context is made
//! anew (and the library loaded into it) only when the library changes, so
//! state a library keeps between calls survives while the library stays the
//! same; `inputs`, `self` and `runtime` are parsed anew for every
//! evaluation, so what an expression does to them is never seen by the next.
//!
//! An evaluation is stopped after [`TIME_LIMIT`] (QuickJS's interrupt
//! handler) and may allocate at most [`MEMORY_LIMIT`]; after either the
//! engine is dropped and the next evaluation starts afresh.

use rquickjs::context::EvalOptions;
use rquickjs::{CatchResultExt, CaughtError, Coerced, Context, Ctx, Runtime};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long one evaluation may run, as cwltool's default `--eval-timeout` (loading a changed library gets as long
/// again).
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// How much memory the engine of a thread may allocate.
pub const MEMORY_LIMIT: usize = 1 << 30;

/// The file name QuickJS gives expressions in its messages.
const EXPRESSION_FILE: &str = "expression";
/// The file name QuickJS gives the library in its messages.
const LIB_FILE: &str = "expressionLib";

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code<'a> {
    /// The inside of `$(...)`: a JavaScript expression.
    Expression(&'a str),
    /// The inside of `${...}`: a function body.
    Body(&'a str),
}

impl Code<'_> {
    /// The script that evaluates it (`called`) or only defines it, the
    /// code's first line on the script's first (so QuickJS's line numbers
    /// are the expression's).
    fn script(self, called: bool) -> String {
        let call = if called { "()" } else { "" };
        match self {
            Code::Expression(e) => format!("(function(){{return ({e}\n);}}){call}"),
            Code::Body(b) => format!("(function(){{{b}\n}}){call}"),
        }
    }
}

/// What the code sees: `inputs`, `self`, `runtime`, and the
/// `expressionLib` entries (strings), loaded first.
pub use crate::expr::Context as Globals;

/// Evaluates `code` with `globals`; the error is a lowercase-fragment
/// message (`ReferenceError: x is not defined`, `timed out after 60 s`).
pub fn evaluate(code: Code<'_>, globals: &Globals<'_>) -> Result<Value, String> {
    evaluate_within(code, globals, TIME_LIMIT)
}

/// [`evaluate`] with another time limit.
pub fn evaluate_within(
    code: Code<'_>,
    globals: &Globals<'_>,
    limit: Duration,
) -> Result<Value, String> {
    let lib = lib_texts(globals.lib)?;
    with_engine(|engine| engine.run(code, globals, &lib, limit))
}

/// Whether `code` parses (without running it).
pub fn compiles(code: Code<'_>) -> Result<(), String> {
    // A function expression that is never called: parsing it runs nothing.
    let script = code.script(false);
    let empty = Value::Null;
    let globals = Globals {
        inputs: &empty,
        self_: &empty,
        runtime: &empty,
        lib: &[],
    };
    with_engine(|engine| engine.run_script(&script, &globals, TIME_LIMIT)).map(|_| ())
}

/// Runs `f` on this thread's engine (made if there is none); `f` says
/// whether the engine may be used again.
fn with_engine(
    f: impl FnOnce(&mut Engine) -> (Result<Value, String>, bool),
) -> Result<Value, String> {
    ENGINE.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return Err(
                "the JavaScript engine is busy (an expression within an expression)".into(),
            );
        };
        let mut engine = match slot.take() {
            Some(engine) => engine,
            None => Engine::new()?,
        };
        let (result, keep) = f(&mut engine);
        if keep {
            *slot = Some(engine);
        }
        result
    })
}

fn lib_texts(lib: &[Value]) -> Result<Vec<&str>, String> {
    lib.iter()
        .enumerate()
        .map(|(n, v)| {
            v.as_str().ok_or_else(|| {
                format!(
                    "expressionLib entry {} is not a string (an unresolved $include?)",
                    n + 1
                )
            })
        })
        .collect()
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// A thread's QuickJS runtime and context, and the library loaded in it.
struct Engine {
    // Dropped before the runtime it belongs to.
    context: Context,
    runtime: Runtime,
    /// The library loaded in `context`.
    lib: Vec<String>,
    /// When the running evaluation must stop (the interrupt handler reads it).
    deadline: Rc<Cell<Option<Instant>>>,
    /// Set by the interrupt handler when it stopped an evaluation.
    interrupted: Rc<Cell<bool>>,
}

impl Engine {
    fn new() -> Result<Self, String> {
        let runtime = Runtime::new().map_err(|e| format!("cannot start QuickJS: {e}"))?;
        runtime.set_memory_limit(MEMORY_LIMIT);
        let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
        let interrupted = Rc::new(Cell::new(false));
        let (d, i) = (Rc::clone(&deadline), Rc::clone(&interrupted));
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let late = d.get().is_some_and(|at| Instant::now() >= at);
            if late {
                i.set(true);
            }
            late
        })));
        let context = Context::full(&runtime).map_err(|e| format!("cannot start QuickJS: {e}"))?;
        Ok(Engine {
            context,
            runtime,
            lib: Vec::new(),
            deadline,
            interrupted,
        })
    }

    /// Runs `code`; the bool says whether the engine may be used again.
    fn run(
        &mut self,
        code: Code<'_>,
        globals: &Globals<'_>,
        lib: &[&str],
        limit: Duration,
    ) -> (Result<Value, String>, bool) {
        self.start(limit);
        if self.lib.iter().map(String::as_str).ne(lib.iter().copied())
            && let Err(e) = self.load(lib, limit)
        {
            return (Err(e), false);
        }
        self.run_script(&code.script(true), globals, limit)
    }

    /// Runs `script` in the current context.
    fn run_script(
        &self,
        script: &str,
        globals: &Globals<'_>,
        limit: Duration,
    ) -> (Result<Value, String>, bool) {
        self.start(limit);
        let result = self
            .context
            .with(|ctx| run_in(&ctx, script, globals, EXPRESSION_FILE));
        self.deadline.set(None);
        self.finish(result, limit)
    }

    fn start(&self, limit: Duration) {
        self.interrupted.set(false);
        self.deadline.set(Some(Instant::now() + limit));
    }

    /// A fresh context with `lib` loaded (strict, as cwltool runs it).
    fn load(&mut self, lib: &[&str], limit: Duration) -> Result<(), String> {
        self.context =
            Context::full(&self.runtime).map_err(|e| format!("cannot start QuickJS: {e}"))?;
        self.lib.clear();
        if !lib.is_empty() {
            let text = lib.join("\n");
            let loaded = self.context.with(|ctx| {
                eval(&ctx, &text, LIB_FILE)
                    .map(|_| ())
                    .map_err(|e| format!("in expressionLib: {e}"))
            });
            if self.interrupted.get() {
                return Err(format!("expressionLib: timed out after {}", seconds(limit)));
            }
            loaded?;
        }
        self.lib = lib.iter().map(|s| (*s).to_owned()).collect();
        Ok(())
    }

    fn finish(
        &self,
        result: Result<Value, String>,
        limit: Duration,
    ) -> (Result<Value, String>, bool) {
        if self.interrupted.get() {
            return (Err(format!("timed out after {}", seconds(limit))), false);
        }
        match result {
            Err(e) if e.contains("out of memory") => (
                Err(format!(
                    "{e} (an evaluation may use {} MiB)",
                    MEMORY_LIMIT >> 20
                )),
                false,
            ),
            other => (other, true),
        }
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// Sets the globals, evaluates `script`, and returns its value as JSON.
fn run_in(ctx: &Ctx<'_>, script: &str, globals: &Globals<'_>, file: &str) -> Result<Value, String> {
    let g = ctx.globals();
    for (name, value) in [
        ("inputs", globals.inputs),
        ("self", globals.self_),
        ("runtime", globals.runtime),
    ] {
        let parsed = ctx
            .json_parse(value.to_string())
            .catch(ctx)
            .map_err(|e| format!("cannot pass `{name}`: {}", message(&e, file)))?;
        g.set(name, parsed)
            .catch(ctx)
            .map_err(|e| format!("cannot pass `{name}`: {}", message(&e, file)))?;
    }
    let value = eval(ctx, script, file)?;
    let text = ctx
        .json_stringify(value)
        .catch(ctx)
        .map_err(|e| format!("the result is not JSON: {}", message(&e, file)))?;
    match text {
        None => Ok(Value::Null),
        Some(text) => {
            let text = text
                .to_string()
                .map_err(|e| format!("the result is not text: {e}"))?;
            serde_json::from_str(&text).map_err(|e| format!("the result is not JSON: {e}"))
        }
    }
}

fn eval<'js>(ctx: &Ctx<'js>, script: &str, file: &str) -> Result<rquickjs::Value<'js>, String> {
    let mut options = EvalOptions::default();
    options.strict = true;
    options.backtrace_barrier = true;
    options.filename = Some(file.to_owned());
    ctx.eval_with_options::<rquickjs::Value, _>(script, options)
        .catch(ctx)
        .map_err(|e| message(&e, file))
}

/// `ReferenceError: x is not defined`, with the line when the code has
/// several (`(line 3)`).
fn message(caught: &CaughtError<'_>, file: &str) -> String {
    match caught {
        CaughtError::Exception(e) => {
            let ctx = e.as_object().ctx();
            let text = rquickjs::Value::from(e.as_object().clone());
            let shown = <Coerced<String> as rquickjs::FromJs>::from_js(ctx, text)
                .map(|c| c.0)
                .unwrap_or_else(|_| e.message().unwrap_or_else(|| "an exception".into()));
            match e.stack().as_deref().and_then(|s| line_in(s, file)) {
                Some(line) => format!("{shown} (line {line})"),
                None => shown,
            }
        }
        CaughtError::Value(v) => {
            let shown = <Coerced<String> as rquickjs::FromJs>::from_js(v.ctx(), v.clone())
                .map(|c| c.0)
                .unwrap_or_else(|_| format!("{v:?}"));
            format!("uncaught exception: {shown}")
        }
        CaughtError::Error(e) => e.to_string(),
    }
}

/// The line of the first `file:LINE` in a QuickJS stack, when it is not 1.
fn line_in(stack: &str, file: &str) -> Option<usize> {
    let at = stack.find(&format!("{file}:"))?;
    let rest = stack.get(at + file.len() + 1..)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&line| line > 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(code: Code<'_>, inputs: &Value, lib: &[Value]) -> Result<Value, String> {
        let null = Value::Null;
        let runtime = json!({"cores": 4, "outdir": "/out"});
        let globals = Globals {
            inputs,
            self_: &null,
            runtime: &runtime,
            lib,
        };
        evaluate(code, &globals)
    }

    #[test]
    fn expressions_and_bodies() {
        let inputs = json!({"a": 1, "s": "x"});
        assert_eq!(
            run(Code::Expression("inputs.a + 1"), &inputs, &[]),
            Ok(json!(2))
        );
        assert_eq!(
            run(
                Code::Body("return [inputs.s, runtime.cores];"),
                &inputs,
                &[]
            ),
            Ok(json!(["x", 4]))
        );
        assert_eq!(run(Code::Body("var x = 1;"), &inputs, &[]), Ok(Value::Null));
        assert_eq!(
            run(
                Code::Expression("{a: undefined, b: NaN, c: 1/3}"),
                &inputs,
                &[]
            ),
            Ok(json!({"b": null, "c": 1.0 / 3.0}))
        );
        // Whole numbers come back as integers.
        assert_eq!(run(Code::Expression("6 / 2"), &inputs, &[]), Ok(json!(3)));
    }

    #[test]
    fn the_library_is_reloaded_only_when_it_changes() {
        let inputs = json!({});
        let lib = [json!(
            "var calls = 0; function next() { calls += 1; return calls; }"
        )];
        assert_eq!(run(Code::Expression("next()"), &inputs, &lib), Ok(json!(1)));
        assert_eq!(run(Code::Expression("next()"), &inputs, &lib), Ok(json!(2)));
        let other = [json!("function next() { return 'other'; }")];
        assert_eq!(
            run(Code::Expression("next()"), &inputs, &other),
            Ok(json!("other"))
        );
        // Back to the first library: loaded afresh.
        assert_eq!(run(Code::Expression("next()"), &inputs, &lib), Ok(json!(1)));
        // No library: nothing of the last one is left.
        let gone = run(Code::Expression("typeof next"), &inputs, &[]);
        assert_eq!(gone, Ok(json!("undefined")));
        let bad = run(Code::Expression("1"), &inputs, &[json!("function (")]);
        assert!(
            bad.as_ref()
                .is_err_and(|e| e.starts_with("in expressionLib: SyntaxError")),
            "{bad:?}"
        );
        let not_text = run(
            Code::Expression("1"),
            &inputs,
            &[json!({"$include": "x.js"})],
        );
        assert!(not_text.is_err_and(|e| e.contains("not a string")));
    }

    #[test]
    fn what_an_expression_does_to_inputs_is_not_kept() {
        let inputs = json!({"list": [3, 1, 2]});
        let sorted = run(
            Code::Body("inputs.list.sort(); return inputs.list;"),
            &inputs,
            &[],
        );
        assert_eq!(sorted, Ok(json!([1, 2, 3])));
        assert_eq!(
            run(Code::Expression("inputs.list"), &inputs, &[]),
            Ok(json!([3, 1, 2]))
        );
    }

    #[test]
    fn errors_name_the_exception_and_the_line() {
        let inputs = json!({});
        assert_eq!(
            run(Code::Expression("x"), &inputs, &[]),
            Err("ReferenceError: x is not defined".into())
        );
        assert_eq!(
            run(
                Code::Body("\n  var a = 1;\n  return a.b.c;\n"),
                &inputs,
                &[]
            ),
            Err("TypeError: cannot read property 'c' of undefined (line 3)".into())
        );
        assert_eq!(
            run(Code::Body("throw 'boom';"), &inputs, &[]),
            Err("uncaught exception: boom".into())
        );
        let syntax = run(Code::Expression("1 +"), &inputs, &[]);
        assert!(
            syntax.as_ref().is_err_and(|e| e.starts_with("SyntaxError")),
            "{syntax:?}"
        );
        // Strict mode, as cwltool's "use strict".
        let undeclared = run(Code::Body("y = 1; return y;"), &inputs, &[]);
        assert_eq!(undeclared, Err("ReferenceError: y is not defined".into()));
        // A failed evaluation leaves the engine usable.
        assert_eq!(run(Code::Expression("1"), &inputs, &[]), Ok(json!(1)));
    }

    #[test]
    fn a_runaway_loop_is_stopped() {
        let null = Value::Null;
        let globals = Globals {
            inputs: &null,
            self_: &null,
            runtime: &null,
            lib: &[],
        };
        let started = Instant::now();
        let got = evaluate_within(
            Code::Body("while (true) {}"),
            &globals,
            Duration::from_millis(200),
        );
        assert_eq!(got, Err("timed out after 0.2 s".into()));
        // Stopped near the limit (generous bound: this is no timing test).
        assert!(started.elapsed() < Duration::from_secs(30));
        // The next evaluation runs on a fresh engine.
        assert_eq!(evaluate(Code::Expression("1 + 1"), &globals), Ok(json!(2)));
    }

    #[test]
    fn memory_is_limited() {
        let null = Value::Null;
        let globals = Globals {
            inputs: &null,
            self_: &null,
            runtime: &null,
            lib: &[],
        };
        let got = evaluate(
            Code::Body("var a = []; while (true) { a.push(new ArrayBuffer(1 << 26)); }"),
            &globals,
        );
        assert!(
            got.as_ref().is_err_and(|e| e.contains("out of memory")),
            "{got:?}"
        );
        assert_eq!(evaluate(Code::Expression("2"), &globals), Ok(json!(2)));
    }

    #[test]
    fn compiles_checks_syntax_without_running() {
        assert_eq!(compiles(Code::Expression("inputs.x + 1")), Ok(()));
        assert_eq!(compiles(Code::Body("while (true) {}")), Ok(()));
        assert!(compiles(Code::Body("return (;")).is_err());
    }

    /// Prints what an evaluation costs (run with `--nocapture`); asserts nothing about time.
    #[test]
    fn cost_of_an_evaluation() {
        let inputs = json!({"a": 41, "file": {"class": "File", "path": "/data/in.txt", "size": 1234}, "list": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]});
        let lib = [json!("function double(x) { return 2 * x; }")];
        let n = 2000_u32;
        let started = Instant::now();
        for _ in 0..n {
            let got = run(
                Code::Expression("double(inputs.a) + inputs.list.length"),
                &inputs,
                &lib,
            );
            assert_eq!(got, Ok(json!(92)));
        }
        let each = started.elapsed() / n;
        let started = Instant::now();
        for _ in 0..50 {
            drop(Engine::new());
        }
        let fresh = started.elapsed() / 50;
        println!("javascript: {each:?} per expression, {fresh:?} per new runtime and context");
    }
}
