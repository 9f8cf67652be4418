//! twinflow's CWL v1.2 front end.
//!
//! Turns a CWL `CommandLineTool`, `ExpressionTool` or `Workflow` and a job object into a
//! twinflow [`Plan`](twinflow_core::Plan) whose tasks call back into this
//! crate's step runner, which builds each tool's command line, runs it and
//! collects its outputs at run time (what CWL decides only then: globs,
//! `cwl.output.json`, file sizes and contents).

pub mod error;
pub mod expr;
pub mod expression_tool;
pub mod files;
pub mod js;
pub mod load;
pub mod model;
pub mod tool;
pub mod types;
pub mod workflow;

pub use error::{CwlError, ErrorKind};
pub mod bind;
pub mod check;
pub mod compile;
pub mod runner;
pub mod split;
pub mod step;

pub use compile::{Compiled, CwlInput, check_document, compile, read_job};
