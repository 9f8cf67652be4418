//! The workflow file as written (language v1): typed, spanned, and the source
//! of the JSON Schema in `schemas/`. Meaning is given to it in `lower`.

use crate::de::{Entries, Lenient};
use crate::span::Spanned;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

#[path = "model_gpus.rs"]
mod gpus;
pub(crate) use gpus::{GPUS_KEYS, GpuCountDoc, GpusDoc};
#[path = "model_hooks.rs"]
mod hooks;
pub(crate) use hooks::{HOOK_KEYS, HookDoc, HooksDoc, OnDoc};
#[path = "model_pack.rs"]
mod pack;
pub(crate) use pack::{PACK_KEYS, PackDoc};
#[path = "model_sources.rs"]
mod sources;
pub(crate) use sources::{FormatDoc, OPTION_SCHEMES, SourceDoc, WAIT_FOR_KEYS, WaitForDoc};

/// A twinflow workflow (language version 1).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "twinflow workflow, language v1")]
pub(crate) struct WorkflowDoc {
    /// Language version; must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub(crate) version: Spanned<u32>,
    /// Workflow name (default: the file name without extension).
    #[serde(default)]
    pub(crate) name: Option<Spanned<String>>,
    /// What the workflow does.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Parameters: scalars or lists of scalars, overridable with `--param k=v`.
    #[serde(default)]
    pub(crate) params: Entries<Spanned<ParamDoc>>,
    /// The date cycle of cycling steps.
    #[serde(default)]
    pub(crate) cycle: Option<Spanned<Lenient<CycleDoc>>>,
    /// Environment variables for every task.
    #[serde(default)]
    pub(crate) env: Entries<Spanned<String>>,
    /// Executor roles (`local`, `slurm`, `cloud`), rebindable with `--site`.
    #[serde(default)]
    pub(crate) executors: Entries<Spanned<Lenient<ExecutorDoc>>>,
    /// External inputs (`https`, `s3`, `stac`, `gbif`), fetched on the
    /// submitting host and needed as `sources.NAME`.
    #[serde(default)]
    pub(crate) sources: Entries<Spanned<Lenient<SourceDoc>>>,
    /// Hooks fired by the run's events: `failure`, `retry`, `success` (of
    /// any task), `stalled` and `finished`.
    #[serde(default)]
    pub(crate) on: Option<Spanned<Lenient<OnDoc>>>,
    /// The steps (twins) and how they couple.
    pub(crate) steps: Spanned<Entries<Spanned<Lenient<StepDoc>>>>,
}

/// A parameter value: a scalar or a list of scalars.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParamDoc {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl JsonSchema for ParamDoc {
    fn schema_name() -> Cow<'static, str> {
        "ParamValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A scalar or a list of scalars.",
            "anyOf": [
                { "type": ["string", "number", "boolean"] },
                { "type": "array", "items": { "type": ["string", "number", "boolean"] } }
            ]
        })
    }
}

/// Accepts a scalar as its text; refuses null, lists and mappings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalarText(pub(crate) String);

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = ScalarText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar (string, number or boolean)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

impl<'de> Deserialize<'de> for ParamDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ParamVisitor;

        impl<'de> Visitor<'de> for ParamVisitor {
            type Value = ParamDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar or a list of scalars")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ParamDoc, E> {
                ScalarVisitor.visit_bool(v).map(|s| ParamDoc::One(s.0))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamDoc, E> {
                ScalarVisitor.visit_i64(v).map(|s| ParamDoc::One(s.0))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamDoc, E> {
                ScalarVisitor.visit_u64(v).map(|s| ParamDoc::One(s.0))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParamDoc, E> {
                ScalarVisitor.visit_f64(v).map(|s| ParamDoc::One(s.0))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamDoc, E> {
                Ok(ParamDoc::One(v.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParamDoc, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<ScalarText>>()? {
                    items.push(Spanned::new(item.value.0, item.span));
                }
                Ok(ParamDoc::Many(items))
            }
        }

        d.deserialize_any(ParamVisitor)
    }
}

/// `cycle:` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CycleDoc {
    /// First cycle point, an ISO 8601 date (`2020-01-01`) or date-time (`2020-01-01T06:00`).
    pub(crate) start: Spanned<ScalarString>,
    /// Last cycle point (inclusive).
    pub(crate) stop: Spanned<ScalarString>,
    /// Interval between points, an ISO 8601 duration (`P10Y`, `P1M`, `P1D`, `PT6H`).
    pub(crate) step: Spanned<String>,
    /// Most cycle points that may run ahead of the oldest unfinished one (default: unlimited).
    #[serde(default)]
    pub(crate) runahead: Option<Spanned<u32>>,
}

/// A string, also accepting numbers written without quotes (their text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalarString(pub(crate) String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ScalarText::deserialize(d).map(|s| ScalarString(s.0))
    }
}

impl JsonSchema for ScalarString {
    fn schema_name() -> Cow<'static, str> {
        "String".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number"] })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Backend kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindDoc {
    /// Processes on this machine.
    Local,
    /// Jobs on a Slurm cluster.
    Slurm,
    /// A VM over SSH with an S3 artefact store.
    Cloud,
}

/// Container runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RuntimeDoc {
    /// Apptainer.
    Apptainer,
    /// Singularity.
    Singularity,
    /// Podman.
    Podman,
    /// Docker.
    Docker,
}

/// GPU vendors of an executor's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum GpuVendorDoc {
    /// NVIDIA: `CUDA_VISIBLE_DEVICES`, Apptainer `--nv`, CDI for podman.
    Nvidia,
    /// AMD: `ROCR_VISIBLE_DEVICES`/`HIP_VISIBLE_DEVICES`, Apptainer `--rocm`,
    /// `/dev/kfd` and `/dev/dri` for podman.
    Amd,
}

/// What starts a task's ranks (step `launcher:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LauncherDoc {
    /// `srun`: one Slurm job step running the command once per rank.
    Srun,
    /// `mpirun`: the command once per rank under `mpirun`.
    Mpirun,
    /// None: the command runs once with the whole allocation and starts
    /// its ranks itself.
    None,
}

/// Keys that belong to one executor kind (or two), for the schema and the checks.
pub(crate) const KIND_KEYS: [(&str, &[KindDoc]); 14] = [
    ("slots", &[KindDoc::Local]),
    ("gpus", &[KindDoc::Local]),
    ("gpu_vendor", &[KindDoc::Local, KindDoc::Slurm]),
    ("partition", &[KindDoc::Slurm]),
    ("account", &[KindDoc::Slurm]),
    ("qos", &[KindDoc::Slurm]),
    ("max_jobs", &[KindDoc::Slurm]),
    ("user_max_jobs", &[KindDoc::Slurm]),
    ("array_throttle", &[KindDoc::Slurm]),
    ("sbatch", &[KindDoc::Slurm]),
    ("twinflow", &[KindDoc::Slurm]),
    ("ssh", &[KindDoc::Slurm, KindDoc::Cloud]),
    ("workdir", &[KindDoc::Slurm, KindDoc::Cloud]),
    ("store", &[KindDoc::Cloud]),
];

/// Adds to the executor schema what the compiler checks per kind: keys of
/// other kinds are refused, a cloud executor needs `ssh` and `store`.
fn executor_kind_rules(schema: &mut Schema) {
    let kinds = [
        (KindDoc::Local, "local"),
        (KindDoc::Slurm, "slurm"),
        (KindDoc::Cloud, "cloud"),
    ];
    let rules: Vec<serde_json::Value> = kinds
        .iter()
        .map(|(kind, name)| {
            let forbidden: serde_json::Map<String, serde_json::Value> = KIND_KEYS
                .iter()
                .filter(|(_, owners)| !owners.contains(kind))
                .map(|(key, _)| ((*key).to_owned(), serde_json::Value::Bool(false)))
                .collect();
            let mut then = serde_json::json!({ "properties": forbidden });
            if *kind == KindDoc::Cloud {
                then["required"] = serde_json::json!(["ssh", "store"]);
            }
            serde_json::json!({
                "if": { "properties": { "kind": { "const": name } }, "required": ["kind"] },
                "then": then
            })
        })
        .collect();
    schema.insert("allOf".to_owned(), serde_json::Value::Array(rules));
}

/// An executor role. Keys other than `kind`, `prologue`, `env` and
/// `container_runtime` belong to one kind each.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = executor_kind_rules)]
pub(crate) struct ExecutorDoc {
    /// Backend kind.
    pub(crate) kind: Spanned<KindDoc>,
    /// Shell lines run before each task, e.g. `module load LUMI/24.03`.
    #[serde(default)]
    pub(crate) prologue: Option<Spanned<String>>,
    /// Environment variables for tasks on this executor.
    #[serde(default)]
    pub(crate) env: Entries<Spanned<String>>,
    /// Default container runtime (apptainer on HPC).
    #[serde(default)]
    pub(crate) container_runtime: Option<Spanned<RuntimeDoc>>,
    /// local: concurrent cpu slots (default: the machine's cores).
    #[serde(default)]
    pub(crate) slots: Option<Spanned<u32>>,
    /// local: the host's GPU device ids this executor hands out, each to
    /// one task at a time (default: none).
    #[serde(default)]
    #[schemars(extend("uniqueItems" = true))]
    pub(crate) gpus: Option<Spanned<Vec<Spanned<u32>>>>,
    /// local, slurm: whose GPUs the tasks get (default `nvidia`): decides
    /// the device variables and the container runtime's GPU flags.
    #[serde(default)]
    pub(crate) gpu_vendor: Option<Spanned<GpuVendorDoc>>,
    /// slurm: `--partition`.
    #[serde(default)]
    pub(crate) partition: Option<Spanned<String>>,
    /// slurm: `--account`.
    #[serde(default)]
    pub(crate) account: Option<Spanned<ScalarString>>,
    /// slurm: `--qos`.
    #[serde(default)]
    pub(crate) qos: Option<Spanned<String>>,
    /// slurm, cloud: `user@host[:port]` to reach over SSH.
    #[serde(default)]
    pub(crate) ssh: Option<Spanned<String>>,
    /// slurm: the most jobs of a run queued at once.
    #[serde(default)]
    pub(crate) max_jobs: Option<Spanned<u32>>,
    /// slurm: the most jobs of this user on the cluster at once, across all
    /// runs of one daemon (e.g. 220 on LUMI `small`). No executor enforces
    /// it yet: a run that sets it is refused at submit.
    #[serde(default)]
    pub(crate) user_max_jobs: Option<Spanned<u32>>,
    /// slurm: the most elements of one job array that run at once (`--array=0-K%N`).
    #[serde(default)]
    pub(crate) array_throttle: Option<Spanned<u32>>,
    /// slurm: extra `sbatch` options.
    #[serde(default)]
    pub(crate) sbatch: Option<Spanned<Vec<String>>>,
    /// slurm: absolute path of a `twinflow` binary on the cluster, which runs packed jobs.
    #[serde(default)]
    pub(crate) twinflow: Option<Spanned<String>>,
    /// slurm, cloud: working directory on the cluster's shared file system or the VM.
    #[serde(default)]
    pub(crate) workdir: Option<Spanned<String>>,
    /// cloud: `s3://bucket/prefix` for artefacts.
    #[serde(default)]
    pub(crate) store: Option<Spanned<String>>,
}

/// A step: one twin program, instantiated per `for_each` element and cycle point.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepDoc {
    /// What the step does.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Executor role from `executors` (optional when there is exactly one).
    #[serde(default)]
    pub(crate) executor: Option<Spanned<String>>,
    /// Key -> values (a list, or `${{ params.X }}`): one task per element of the product.
    #[serde(default)]
    pub(crate) for_each: Entries<Spanned<ForEachDoc>>,
    /// One task per cycle point as well.
    #[serde(default)]
    pub(crate) cycling: Option<Spanned<bool>>,
    /// Input name -> `step.output` or `step.output@-k`.
    #[serde(default)]
    pub(crate) needs: Entries<Spanned<String>>,
    /// Steps to wait for without artefacts (`step` or `step@-k`).
    #[serde(default)]
    pub(crate) after: Vec<Spanned<String>>,
    /// Sources to wait for until they are published (data triggers):
    /// `sources.NAME` or `{ source, interval, timeout }`.
    #[serde(default)]
    pub(crate) wait_for: Vec<Spanned<WaitForDoc>>,
    /// Output name -> path relative to the task's working directory.
    #[serde(default)]
    pub(crate) outputs: Entries<Spanned<String>>,
    /// Shell script (`/bin/sh -e`); `${{ expr }}` is substituted, shell-quoted.
    pub(crate) run: Spanned<String>,
    /// What each task needs.
    #[serde(default)]
    pub(crate) resources: Option<Spanned<ResourcesDoc>>,
    /// Extra attempts after a failure (default 0).
    #[serde(default)]
    pub(crate) retries: Option<Spanned<u32>>,
    /// Kill the task's process tree after this long (`90s`, `30m`, `2h`, `1d`, `HH:MM:SS`).
    #[serde(default)]
    pub(crate) timeout: Option<Spanned<ScalarString>>,
    /// Slurm: run this many tasks inside one allocation (1: never pack;
    /// default: pack tasks whose time limit is under a minute), or
    /// `{ tasks: N, parallel: K }`: K at a time.
    #[serde(default)]
    pub(crate) pack: Option<Spanned<PackDoc>>,
    /// What starts each task's ranks: `srun`, `mpirun` or `none` (default:
    /// the executor's, `srun` on Slurm and `mpirun` elsewhere when
    /// `resources.tasks > 1`).
    #[serde(default)]
    pub(crate) launcher: Option<Spanned<LauncherDoc>>,
    /// Coupling group: steps with the same group run together, one group
    /// instance per shared `for_each` coordinate and cycle point.
    #[serde(default)]
    pub(crate) group: Option<Spanned<String>>,
    /// Environment variables; values may use `${{ }}`.
    #[serde(default)]
    pub(crate) env: Entries<Spanned<String>>,
    /// Image to run in: `docker://...` or `{ image, runtime, options }`.
    #[serde(default)]
    pub(crate) container: Option<Spanned<ContainerDoc>>,
    /// The model this step runs, packaged as an RO-Crate directory (with an
    /// `ro-crate-metadata.json`), relative to the workflow file's directory.
    /// Its metadata names the software in the run's provenance crate.
    #[serde(default)]
    pub(crate) model: Option<Spanned<String>>,
    /// Code the step's script reads without naming it through
    /// `${{ workflow.dir }}` (modules it imports, configuration): paths or
    /// globs (`*`, `?`, `**`, `[ab]`, `{a,b}`) relative to the workflow
    /// file's directory. The cache key covers their contents.
    #[serde(default)]
    pub(crate) code: Vec<Spanned<String>>,
    /// Hooks fired by this step's tasks: `failure`, `retry`, `success`.
    #[serde(default)]
    #[schemars(schema_with = "hooks::step_on_schema")]
    pub(crate) on: Option<Spanned<Lenient<OnDoc>>>,
}

/// `for_each` values: a literal list or `${{ params.X }}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ForEachDoc {
    List(Vec<Spanned<String>>),
    Expr(String),
}

impl<'de> Deserialize<'de> for ForEachDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match ParamDoc::deserialize(d)? {
            ParamDoc::Many(items) => Ok(ForEachDoc::List(items)),
            ParamDoc::One(text) => Ok(ForEachDoc::Expr(text)),
        }
    }
}

impl JsonSchema for ForEachDoc {
    fn schema_name() -> Cow<'static, str> {
        "ForEachValues".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A list of scalars, or `${{ params.X }}`.",
            "anyOf": [
                { "type": "array", "items": { "type": ["string", "number", "boolean"] }, "minItems": 1 },
                { "type": "string", "pattern": "^\\$\\{\\{.*\\}\\}$" }
            ]
        })
    }
}

/// `resources:` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourcesDoc {
    /// CPU cores of each rank (default 1).
    #[serde(default)]
    pub(crate) cpus: Option<Spanned<u32>>,
    /// Ranks (processes started by the launcher, e.g. MPI ranks; default 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub(crate) tasks: Option<Spanned<u32>>,
    /// Nodes the ranks spread over (at most `tasks`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub(crate) nodes: Option<Spanned<u32>>,
    /// Ranks on each node (divides `tasks`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub(crate) tasks_per_node: Option<Spanned<u32>>,
    /// Whole nodes, shared with no other job.
    #[serde(default)]
    pub(crate) exclusive: Option<Spanned<bool>>,
    /// Memory: `512MiB`, `8GiB`, `2GB`.
    #[serde(default)]
    pub(crate) memory: Option<Spanned<ScalarString>>,
    /// Wall time: `90s`, `30m`, `2h`, `1d`, `HH:MM:SS`.
    #[serde(default)]
    pub(crate) time: Option<Spanned<ScalarString>>,
    /// GPUs: a count (`2`) or `{ count: 2, type: a100 }`.
    #[serde(default)]
    pub(crate) gpus: Option<Spanned<GpusDoc>>,
}

/// `container:` as written: an image, or a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ContainerDoc {
    Image(String),
    Full(ContainerFull),
}

/// `container:` as a mapping.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContainerFull {
    /// Image reference, e.g. `docker://ghcr.io/biodt/landis:7`.
    pub(crate) image: Spanned<String>,
    /// Runtime (default: the executor's `container_runtime`).
    #[serde(default)]
    pub(crate) runtime: Option<Spanned<RuntimeDoc>>,
    /// Extra options for the runtime.
    #[serde(default)]
    pub(crate) options: Vec<String>,
}

impl<'de> Deserialize<'de> for ContainerDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ContainerVisitor;

        impl<'de> Visitor<'de> for ContainerVisitor {
            type Value = ContainerDoc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an image reference or a mapping with `image`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ContainerDoc, E> {
                Ok(ContainerDoc::Image(v.to_owned()))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ContainerDoc, A::Error> {
                ContainerFull::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ContainerDoc::Full)
            }
        }

        d.deserialize_any(ContainerVisitor)
    }
}

impl JsonSchema for ContainerDoc {
    fn schema_name() -> Cow<'static, str> {
        "Container".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string", "description": "Image reference, e.g. docker://ghcr.io/biodt/landis:7" },
                generator.subschema_for::<ContainerFull>()
            ]
        })
    }
}

/// A site file (`--site FILE`): executor roles rebound to this site's backends.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "twinflow site file, version 1")]
pub(crate) struct SiteDoc {
    /// Site file version; must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub(crate) version: Spanned<u32>,
    /// What this site is.
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for readers of the site file")]
    pub(crate) description: Option<String>,
    /// Role name -> executor settings replacing the workflow's.
    pub(crate) executors: Entries<Spanned<Lenient<ExecutorDoc>>>,
}
