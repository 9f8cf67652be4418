//! Executor roles: per-kind validation, `--site` rebinding and `--local`.

use super::check_name;
use crate::de::Lenient;
#[cfg(test)]
use crate::de::{Entries, Sink, from_node};
use crate::diag::Diags;
use crate::model::{ExecutorDoc, KIND_KEYS, KindDoc, RuntimeDoc, SiteDoc, WorkflowDoc};
use crate::options::CompileOptions;
use crate::source::source;
use crate::span::{Span, Spanned};
use crate::suggest::did_you_mean;
use twinflow_core::{
    BackendConfig, CloudConfig, ContainerRuntime, ExecutorSpec, LocalConfig, S3Location,
    SlurmConfig, SshTarget,
};

/// An executor with what steps still need from it.
#[derive(Debug)]
pub(crate) struct ExecIr {
    pub(crate) spec: ExecutorSpec,
    /// `env` as written in the workflow (values may hold `${{ }}`, resolved per step).
    pub(crate) env: Vec<(Spanned<String>, Spanned<String>)>,
    /// `env` of the site file that rebound it (plain values).
    pub(crate) site_env: Vec<(String, String)>,
}

/// Name of the executor a workflow without `executors` gets.
pub(crate) const IMPLICIT_LOCAL: &str = "local";

pub(crate) fn runtime(r: RuntimeDoc) -> ContainerRuntime {
    match r {
        RuntimeDoc::Apptainer => ContainerRuntime::Apptainer,
        RuntimeDoc::Singularity => ContainerRuntime::Singularity,
        RuntimeDoc::Podman => ContainerRuntime::Podman,
        RuntimeDoc::Docker => ContainerRuntime::Docker,
    }
}

pub(crate) fn lower_all(doc: &WorkflowDoc, d: &mut Diags, opts: &CompileOptions) -> Vec<ExecIr> {
    let mut out = Vec::new();
    for (name, spanned) in doc.executors.iter() {
        check_name(d, name.span, "executor", &name.value);
        let Lenient(Some(e)) = &spanned.value else {
            continue;
        };
        if let Some(spec) = lower_one(&name.value, e, d, None) {
            let env = e.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            out.push(ExecIr {
                spec,
                env,
                site_env: Vec::new(),
            });
        }
    }
    if doc.executors.is_empty() {
        out.push(local_role(IMPLICIT_LOCAL));
    }
    if let Some(site) = &opts.site {
        let roles: Vec<&str> = doc
            .executors
            .iter()
            .map(|(k, _)| k.value.as_str())
            .collect();
        rebind_to_site(&mut out, &roles, d, &site.name, &site.text);
    }
    bind_local(&mut out, opts);
    out
}

/// The executors of a plan another front end builds (CWL): each of `roles`
/// a local executor, unless the site file of `opts` binds it (`--local`
/// binds them all locally again). Each comes with the site's `env` for it.
pub(crate) fn for_roles(roles: &[&str], d: &mut Diags, opts: &CompileOptions) -> Vec<ExecIr> {
    let mut out: Vec<ExecIr> = roles.iter().map(|role| local_role(role)).collect();
    if let Some(site) = &opts.site {
        rebind_to_site(&mut out, roles, d, &site.name, &site.text);
    }
    bind_local(&mut out, opts);
    out
}

/// Role `name` as a local executor with the machine's cores.
fn local_role(name: &str) -> ExecIr {
    ExecIr {
        spec: ExecutorSpec {
            name: name.to_owned(),
            backend: BackendConfig::Local(LocalConfig::default()),
            prologue: None,
            env: Vec::new(),
            container_runtime: None,
            bound_by: None,
        },
        env: Vec::new(),
        site_env: Vec::new(),
    }
}

fn bind_local(out: &mut [ExecIr], opts: &CompileOptions) {
    if opts.local {
        for e in out.iter_mut() {
            // A local executor keeps its slots and GPUs; a Slurm or cloud
            // one becomes a local one without GPUs, so a step that asks
            // for GPUs there is refused (see `gpus::check_step`).
            let local = match &e.spec.backend {
                BackendConfig::Local(l) => l.clone(),
                _ => LocalConfig::default(),
            };
            e.spec.backend = BackendConfig::Local(local);
            e.spec.prologue = None;
            e.spec.bound_by = Some("--local".to_owned());
        }
    }
}

fn rebind_to_site(out: &mut [ExecIr], roles: &[&str], d: &mut Diags, name: &str, text: &str) {
    let site_source = source(name, text);
    let mut sd = Diags::new(site_source);
    let parsed = crate::parse_into::<SiteDoc>(text, &mut sd);
    if let Some(site) = parsed {
        if site.version.value != 1 {
            sd.at(
                "twinflow::version",
                site.version.span,
                format!("unsupported site file version {}", site.version.value),
                "this twinflow reads version 1",
            );
        }
        for (role, spanned) in site.executors.iter() {
            let Some(slot) = out.iter_mut().find(|e| e.spec.name == role.value) else {
                let help = did_you_mean(&role.value, roles.iter().copied())
                    .unwrap_or_else(|| format!("the workflow's executors: {}", roles.join(", ")));
                sd.at(
                    "twinflow::unknown-executor",
                    role.span,
                    format!(
                        "the site binds `{}`, which the workflow does not use",
                        role.value
                    ),
                    "no such executor in the workflow",
                )
                .set_help(Some(help));
                continue;
            };
            let Lenient(Some(e)) = &spanned.value else {
                continue;
            };
            for (k, v) in e.env.iter() {
                if v.value.contains("${{") {
                    sd.at(
                        "twinflow::site-expression",
                        v.span,
                        format!("site env `{}` uses an expression", k.value),
                        "site files hold plain values",
                    );
                }
            }
            if let Some(spec) = lower_one(&role.value, e, &mut sd, Some(name)) {
                slot.site_env = spec.env.clone();
                slot.spec = spec;
                slot.env = Vec::new();
            }
        }
    }
    d.list.append(&mut sd.list);
}

fn lower_one(
    name: &str,
    e: &ExecutorDoc,
    d: &mut Diags,
    bound_by: Option<&str>,
) -> Option<ExecutorSpec> {
    let kind = e.kind.value;
    let kind_name = match kind {
        KindDoc::Local => "local",
        KindDoc::Slurm => "slurm",
        KindDoc::Cloud => "cloud",
    };
    let spans: [Option<Span>; 14] = [
        e.slots.as_ref().map(|s| s.span),
        e.gpus.as_ref().map(|s| s.span),
        e.gpu_vendor.as_ref().map(|s| s.span),
        e.partition.as_ref().map(|s| s.span),
        e.account.as_ref().map(|s| s.span),
        e.qos.as_ref().map(|s| s.span),
        e.max_jobs.as_ref().map(|s| s.span),
        e.user_max_jobs.as_ref().map(|s| s.span),
        e.array_throttle.as_ref().map(|s| s.span),
        e.sbatch.as_ref().map(|s| s.span),
        e.twinflow.as_ref().map(|s| s.span),
        e.ssh.as_ref().map(|s| s.span),
        e.workdir.as_ref().map(|s| s.span),
        e.store.as_ref().map(|s| s.span),
    ];
    let fields = KIND_KEYS.iter().zip(spans).map(|((f, k), s)| (*f, s, *k));
    let before = d.list.len();
    for (field, span, kinds) in fields {
        if let Some(span) = span
            && !kinds.contains(&kind)
        {
            let owners: Vec<&str> = kinds
                .iter()
                .map(|k| match k {
                    KindDoc::Local => "local",
                    KindDoc::Slurm => "slurm",
                    KindDoc::Cloud => "cloud",
                })
                .collect();
            d.at(
                "twinflow::executor-key",
                span,
                format!("`{field}` does not apply to a {kind_name} executor (`{name}`)"),
                format!("only for {} executors", owners.join(" and ")),
            )
            .add_label(e.kind.span, format!("`{name}` is {kind_name}"))
            .set_help((field == "gpus" && kind == KindDoc::Slurm).then(|| {
                "Slurm chooses the devices itself: ask for them with a step's `resources.gpus`"
                    .to_owned()
            }));
        }
    }
    let ssh = e.ssh.as_ref().and_then(|s| match parse_ssh(&s.value) {
        Ok(t) => Some(t),
        Err(msg) => {
            d.at(
                "twinflow::bad-ssh",
                s.span,
                msg,
                "expected user@host[:port]",
            )
            .set_help(Some(
                "for example `ubuntu@vm.example.org` or `alice@lumi.csc.fi:22`".into(),
            ));
            None
        }
    });
    let store = e.store.as_ref().and_then(|s| match parse_s3(&s.value) {
        Ok(t) => Some(t),
        Err(msg) => {
            d.at(
                "twinflow::bad-store",
                s.span,
                msg,
                "expected s3://bucket/prefix",
            )
            .set_help(Some(
                "for example `s3://dtwin-artefacts/forest-bird`".into(),
            ));
            None
        }
    });
    for (field, value) in [
        ("slots", &e.slots),
        ("max_jobs", &e.max_jobs),
        ("user_max_jobs", &e.user_max_jobs),
        ("array_throttle", &e.array_throttle),
    ] {
        if let Some(v) = value
            && v.value == 0
        {
            d.at(
                "twinflow::zero",
                v.span,
                format!("`{field}` must be at least 1"),
                "zero",
            );
        }
    }
    if let Some(path) = &e.twinflow
        && !path.value.starts_with('/')
    {
        d.at(
            "twinflow::bad-path",
            path.span,
            format!(
                "`twinflow` must be an absolute path on the cluster, not `{}`",
                path.value
            ),
            "not absolute",
        )
        .set_help(Some(
            "for example `/appl/twinflow/bin/twinflow`; packed jobs run it from their log directory".into(),
        ));
    }
    if kind == KindDoc::Cloud {
        for (field, present) in [("ssh", e.ssh.is_some()), ("store", e.store.is_some())] {
            if !present {
                d.at(
                    "twinflow::missing-key",
                    e.kind.span,
                    format!("the cloud executor `{name}` needs `{field}`"),
                    format!("add `{field}` to this executor"),
                )
                .set_help(Some(match field {
                    "ssh" => "`ssh: user@host[:port]` of the VM".to_owned(),
                    _ => "`store: s3://bucket/prefix` for its artefacts".to_owned(),
                }));
            }
        }
    }
    let gpus = e
        .gpus
        .as_ref()
        .map(|g| super::gpus::device_ids(d, name, &g.value))
        .unwrap_or_default();
    let gpu_vendor = super::gpus::vendor(e.gpu_vendor.as_ref());
    if d.list.len() > before {
        return None;
    }
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.value.clone());
    let backend = match kind {
        KindDoc::Local => BackendConfig::Local(LocalConfig {
            slots: e.slots.as_ref().map(|s| s.value),
            gpus,
            gpu_vendor,
        }),
        KindDoc::Slurm => BackendConfig::Slurm(SlurmConfig {
            partition: text(&e.partition),
            account: e.account.as_ref().map(|s| s.value.0.clone()),
            qos: text(&e.qos),
            ssh,
            max_jobs: e.max_jobs.as_ref().map(|s| s.value),
            user_max_jobs: e.user_max_jobs.as_ref().map(|s| s.value),
            sbatch: e
                .sbatch
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            workdir: text(&e.workdir),
            array_throttle: e.array_throttle.as_ref().map(|s| s.value),
            twinflow: text(&e.twinflow),
            gpu_vendor,
        }),
        KindDoc::Cloud => BackendConfig::Cloud(CloudConfig {
            ssh,
            store,
            workdir: text(&e.workdir),
        }),
    };
    Some(ExecutorSpec {
        name: name.to_owned(),
        backend,
        prologue: text(&e.prologue),
        env: e
            .env
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        container_runtime: e.container_runtime.as_ref().map(|r| runtime(r.value)),
        bound_by: bound_by.map(str::to_owned),
    })
}

/// `[user@]host[:port]`.
pub(crate) fn parse_ssh(text: &str) -> Result<SshTarget, String> {
    if let Some(rest) = text.strip_prefix("ssh://") {
        return Err(format!(
            "`{text}` is a URL; write `{rest}` (user@host[:port], without `ssh://`)"
        ));
    }
    let (user, rest) = match text.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, text),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port: u16 = p
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("`{p}` is not a port number (1-65535)"))?;
            (h, Some(port))
        }
        _ => (rest, None),
    };
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    if user == Some("") {
        return Err(format!("`{text}` has no user name before `@`"));
    }
    if host.is_empty() {
        return Err(format!("`{text}` has no host name"));
    }
    if let Some(u) = user
        && !word_ok(u)
    {
        return Err(format!("`{u}` is not a valid user name"));
    }
    if !word_ok(host) {
        return Err(format!("`{host}` is not a valid host name"));
    }
    Ok(SshTarget {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
    })
}

/// `s3://bucket[/prefix]`.
pub(crate) fn parse_s3(text: &str) -> Result<S3Location, String> {
    let rest = text
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`{text}` is not an s3:// address"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !bucket_ok {
        return Err(format!(
            "`{bucket}` is not a valid bucket name (3-63 lowercase letters, digits, `-` and `.`)"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|seg| seg == "..") {
        return Err("the store prefix may not contain `..`".into());
    }
    Ok(S3Location {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
    })
}

/// Parses a site file into [`SiteDoc`], for schema tests and tooling.
#[cfg(test)]
pub(crate) fn parse_site(text: &str) -> Option<SiteDoc> {
    let node = crate::node::parse(text).ok()?;
    let sink = Sink::default();
    from_node::<SiteDoc>(&node, &sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_targets() {
        let t = parse_ssh("ubuntu@vm.example.org").unwrap();
        assert_eq!(t.user.as_deref(), Some("ubuntu"));
        assert_eq!(t.port, None);
        let t = parse_ssh("alice@127.0.0.1:2222").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", Some(2222)));
        assert!(parse_ssh("alice@").is_err());
        assert!(parse_ssh("a b@host").is_err());
        assert!(parse_ssh("host:99999").is_err());
        assert!(parse_ssh("host;rm -rf /").is_err());
    }

    #[test]
    fn s3_locations() {
        let s = parse_s3("s3://dtwin-artefacts/forest-bird/").unwrap();
        assert_eq!(
            (s.bucket.as_str(), s.prefix.as_str()),
            ("dtwin-artefacts", "forest-bird")
        );
        assert!(parse_s3("http://x/y").is_err());
        assert!(parse_s3("s3://Bad_Bucket/x").is_err());
        assert!(parse_s3("s3://bucket/../x").is_err());
    }

    #[test]
    fn site_files_parse() {
        let site = parse_site("version: 1\nexecutors:\n  hpc: { kind: local }\n").unwrap();
        assert_eq!(site.executors.iter().count(), 1);
        let _: &Entries<Spanned<Lenient<ExecutorDoc>>> = &site.executors;
    }
}
