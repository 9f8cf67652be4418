//! twinflow-core owns the data every part of twinflow shares: ids, the compiled
//! [`Plan`] (an immutable task DAG) and its stable JSON form.
//!
//! It knows nothing of YAML, files, tokio or how any backend works: the
//! workflow compiler builds a `Plan`, the runtime executes one. The plan
//! carries each executor's settings as the workflow language defines them
//! ([`ExecutorSpec`], [`BackendConfig`]): data of the plan, in its JSON form
//! and its digest, which the executor crates read and act on. The one thing
//! the core reads from them is capacity ([`ExecutorSpec::capacity`]),
//! computed once per run into the scheduler's config; the scheduler itself
//! sees limits and costs, never a backend kind.

mod container;
mod contract;
mod executor;
mod groups;
mod hooks;
mod ids;
mod json;
mod plan;
mod resources;
pub mod scheduler;
mod source;
mod template;

pub use container::{ImageRef, ImageRefError, OciRef, ResolvedImage};
pub use contract::{
    AttemptKey, AttemptStatus, Executor, ExecutorError, ExecutorFactory, Handle, Job, JobInput,
    JobOutput, RunRef, Update, UpdateSink, default_shape_refusal, group_container_refusal,
    group_refusal, parallel_pack_refusal,
};
pub use executor::{
    BackendConfig, CloudConfig, ContainerRuntime, ContainerSpec, ExecutorKind, ExecutorSpec,
    FETCH_EXECUTOR, FETCH_SLOTS, LocalConfig, S3Location, SlurmConfig, SshTarget,
};
pub use groups::{GroupInstance, JobGroup, group_dir, group_env, group_instances, job_group};
pub use hooks::{
    DEFAULT_HOOK_TIMEOUT_SECONDS, Hook, HookAction, HookEvent, WebhookError, WebhookSender,
};
pub use ids::{ExecutorId, StepId, TaskId};
pub use json::{PLAN_FORMAT, PlanJson};
pub use plan::{
    AfterSpec, CyclePoint, CycleSpec, ForEachKey, InputSpec, OutputSpec, PackSpec, ParamValue,
    Plan, PlanBuilder, StepSpec, Task, TaskInput, WorkflowInfo, input_paths, task_name,
};
pub use resources::{GpuVendor, Launcher, Resources};
pub use source::{
    FetchConfig, SOURCE_RECORD_FILE, SourceFormat, SourceOptions, SourceRecord, SourceScheme,
    SourceSpec, WaitSpec,
};
pub use template::{Piece, Ref, Template, push_shell_quoted, shell_quote, shell_words};
