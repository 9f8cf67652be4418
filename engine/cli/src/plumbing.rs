//! The CLI's plumbing, shared by the commands: where the state directory
//! is, opening its store, the async runtime and the engine with every
//! backend this binary has, which daemon a command talks to, and finding the
//! run a `RUN` argument names. Commands import from here; nothing here
//! imports a command.

use crate::args::{CompileArgs, DaemonArgs, StateArgs};
use crate::exit;
use crate::output::Output;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinflow_core::ExecutorKind;
use twinflow_daemon::api::NotFound;
use twinflow_daemon::query::{self, QueryError};
use twinflow_daemon::{Client, DaemonError, DaemonPaths};
use twinflow_engine::{Engine, RunInfo, RunSettings, StateStore};
use twinflow_executor_cloud::{CloudFactory, RunnerBinary};
use twinflow_executor_local::{LocalFactory, SlotPool, SupervisorBinary};
use twinflow_executor_slurm::SlurmFactory;
use twinflow_sources::FetchFactory;

/// The state directory the user chose, or the default.
pub(crate) fn state_dir(args: &StateArgs) -> PathBuf {
    args.state_dir
        .clone()
        .unwrap_or_else(twinflow_engine::default_state_dir)
}

/// Opens the state store or says why not (exit 3).
pub(crate) fn open_store(out: &Output, dir: &Path) -> Result<StateStore, u8> {
    StateStore::open(dir).map_err(|e| {
        out.error(&e.to_string());
        exit::UNREACHABLE
    })
}

/// `given` with the parameters, site file and `--local` of a run's stored
/// settings (`runs.args`), and those settings as command-line words.
pub(crate) fn stored_settings(
    given: &CompileArgs,
    stored: &RunSettings,
) -> (CompileArgs, Vec<String>) {
    let mut args = given.clone();
    args.params.clone_from(&stored.params);
    args.site = stored.site.as_ref().map(PathBuf::from);
    args.local = stored.local;
    args.job = stored.job.as_ref().map(PathBuf::from);
    args.bind = stored.bind.as_ref().map(PathBuf::from);
    let mut shown: Vec<String> = args.params.iter().map(|p| format!("-p {p}")).collect();
    if let Some(site) = &args.site {
        shown.push(format!("--site {}", site.display()));
    }
    if args.local {
        shown.push("--local".to_owned());
    }
    (args, shown)
}

/// The engine of state directory `dir`, with every backend this binary has;
/// local tasks of all its runs share `pool` if given (the daemon).
pub(crate) fn build_engine(
    out: &Output,
    dir: &Path,
    pool: Option<Arc<SlotPool>>,
) -> Result<Engine, u8> {
    let local = match pool {
        Some(pool) => local_factory().with_pool(pool),
        None => local_factory(),
    };
    let webhooks = twinflow_sources::HttpWebhooks::new().map_err(|e| {
        out.error(&e);
        exit::UNREACHABLE
    })?;
    Engine::builder()
        .state_dir(dir)
        .webhooks(webhooks)
        .executor(ExecutorKind::Local, local)
        .executor(ExecutorKind::Slurm, slurm_factory())
        .executor(ExecutorKind::Cloud, cloud_factory())
        .executor(ExecutorKind::Fetch, FetchFactory::new(sources_cache(dir)))
        .build()
        .map_err(|e| {
            out.error(&e.to_string());
            exit::UNREACHABLE
        })
}

/// The cache of external sources of state directory `dir`, shared by all
/// its runs: `<dir>/sources`, absolute.
fn sources_cache(dir: &Path) -> PathBuf {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .join("sources")
}

/// The local backend; its tasks' supervisor is this binary's
/// `local-supervisor` command, a process of its own that outlives a killed
/// twinflow with its tasks.
fn local_factory() -> LocalFactory {
    let factory = LocalFactory::default();
    match std::env::current_exe() {
        Ok(path) => factory.with_supervisor(SupervisorBinary {
            path,
            args: vec!["local-supervisor".to_owned()],
        }),
        Err(_) => factory,
    }
}

/// The cloud backend; its runner on the VM is this binary's `cloud-task`
/// command, uploaded there.
fn cloud_factory() -> CloudFactory {
    let factory = CloudFactory::default();
    match std::env::current_exe() {
        Ok(path) => factory.with_runner(RunnerBinary {
            path,
            args: vec!["cloud-task".to_owned()],
        }),
        Err(_) => factory,
    }
}

/// The Slurm backend; packed jobs run this binary's `worker` command: on
/// the login node at this path, which the cluster's nodes must share (true
/// of a login node's home or project directory); over SSH the executor
/// uploads it (unless the executor's `twinflow:` names one there).
fn slurm_factory() -> SlurmFactory {
    let factory = SlurmFactory::default();
    match std::env::current_exe() {
        Ok(exe) => factory.with_worker(exe),
        Err(_) => factory,
    }
}

/// The daemon a command talks to.
pub(crate) struct Target {
    pub(crate) client: Client,
    /// Named with `--daemon` or `$TWINFLOW_DAEMON`: then it must answer
    /// (no falling back to the state store).
    pub(crate) explicit: bool,
    /// What messages name as where runs are: the state directory, or the
    /// daemon's address.
    pub(crate) place: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The daemon of `--daemon URL` (else `$TWINFLOW_DAEMON`), else at the
/// address of `--access-file FILE` (else `$TWINFLOW_ACCESS_FILE`), else of
/// the state directory's socket. A bad URL exits 2; an unusable access file
/// 3.
pub(crate) fn target(out: &Output, state: &StateArgs, args: &DaemonArgs) -> Result<Target, u8> {
    let dir = state_dir(state);
    let access_file = args
        .access_file
        .clone()
        .or_else(|| env("TWINFLOW_ACCESS_FILE").map(PathBuf::from));
    let url = args.daemon.clone().or_else(|| env("TWINFLOW_DAEMON"));
    if url.is_none()
        && let Some(file) = &access_file
    {
        let client = Client::from_access_file(file).map_err(|e| failed(out, &e))?;
        return Ok(Target {
            place: client.endpoint(),
            client,
            explicit: true,
        });
    }
    let Some(url) = url else {
        return Ok(Target {
            client: Client::for_state_dir(&dir),
            explicit: false,
            place: dir.display().to_string(),
        });
    };
    if let Some(addr) = url.strip_prefix("tcp://") {
        let addr = addr.trim_end_matches('/');
        if addr
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            out.error(&format!("--daemon {url}: expected tcp://HOST:PORT"));
            return Err(exit::INVALID);
        }
        let access_file = access_file
            .or_else(|| env("TWINFLOW_TOKEN_FILE").map(PathBuf::from))
            .unwrap_or_else(|| DaemonPaths::new(&dir).token);
        let client =
            Client::tcp_with_access_file(addr, &access_file).map_err(|e| failed(out, &e))?;
        return Ok(Target {
            client,
            explicit: true,
            place: format!("tcp://{addr}"),
        });
    }
    if let Some(socket) = url.strip_prefix("unix:").filter(|s| !s.is_empty()) {
        return Ok(Target {
            client: Client::new(socket),
            explicit: true,
            place: socket.to_owned(),
        });
    }
    out.error(&format!(
        "--daemon {url}: expected tcp://HOST:PORT or unix:SOCKET"
    ));
    Err(exit::INVALID)
}

/// The run `run` names (`None`: the latest) in the state directory's
/// store, when the store can be read and has it.
pub(crate) fn stored_run(state: &StateArgs, run: Option<&str>) -> Option<RunInfo> {
    let store = StateStore::open(&state_dir(state)).ok()?;
    query::find_run(&store, run).ok()
}

/// A client of the own socket of the run `run` names, when a `twinflow
/// run` in progress serves one ([`twinflow_daemon::RunSocket`]); a stale
/// socket (its process was killed) is removed and gives `None`.
pub(crate) fn run_socket(state: &StateArgs, run: Option<&str>) -> Option<(Client, String)> {
    let info = stored_run(state, run)?;
    let socket = twinflow_daemon::live_run_socket(Path::new(&info.run_dir))?;
    Some((Client::new(&socket), socket.display().to_string()))
}

/// The process to ask about run `run`: unless a daemon is named
/// (`--daemon`, `$TWINFLOW_DAEMON`), the run's own socket when a `twinflow
/// run` in progress serves it, else the daemon of the state directory
/// ([`target`]).
pub(crate) fn target_for_run(
    out: &Output,
    state: &StateArgs,
    args: &DaemonArgs,
    run: Option<&str>,
) -> Result<Target, u8> {
    let target = target(out, state, args)?;
    if target.explicit {
        return Ok(target);
    }
    Ok(match run_socket(state, run) {
        Some((client, place)) => Target {
            client,
            explicit: true,
            place,
        },
        None => target,
    })
}

/// The exit code of a client error, after reporting it: 3 when the daemon
/// cannot be used (none answers, the token or the user is refused, the
/// exchange broke), 2 when it refused the request itself.
pub(crate) fn failed(out: &Output, e: &DaemonError) -> u8 {
    out.error(&e.to_string());
    match e {
        DaemonError::Refused { status, .. } if *status == 401 || *status == 403 => {
            exit::UNREACHABLE
        }
        DaemonError::Refused { status, .. } if *status < 500 => exit::INVALID,
        DaemonError::NotFound(_) => exit::INVALID,
        _ => exit::UNREACHABLE,
    }
}

/// A current-thread runtime for client calls.
pub(crate) fn runtime(out: &Output) -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            out.error(&format!("failed to start the async runtime: {e}"));
            exit::UNREACHABLE
        })
}

/// Runs one client call to its end.
pub(crate) fn block_on<T>(out: &Output, f: impl std::future::Future<Output = T>) -> Result<T, u8> {
    runtime(out).map(|rt| rt.block_on(f))
}

/// The run a `RUN` argument names in `store` (an id, a unique prefix of
/// one, or `latest`), as `status` and the daemon find it; `None` when there
/// is no such run. An ambiguous prefix (exit 2, with the runs it begins)
/// and an unreadable store (exit 3) are reported here.
pub(crate) fn find_run(out: &Output, store: &StateStore, run: &str) -> Result<Option<RunInfo>, u8> {
    match query::find_run(store, Some(run)) {
        Ok(info) => Ok(Some(info)),
        Err(QueryError::NotFound(NotFound::Run { .. } | NotFound::NoRuns)) => Ok(None),
        Err(QueryError::NotFound(nf)) => {
            out.error(&nf.to_string());
            Err(exit::INVALID)
        }
        Err(QueryError::Store(e)) => {
            out.error(&e.to_string());
            Err(exit::UNREACHABLE)
        }
        Err(QueryError::Invalid(e)) => {
            out.error(&e);
            Err(exit::INVALID)
        }
    }
}

/// The exit code of a client call about run `run` that failed, after
/// reporting it. When no daemon answers for the state directory, the run is
/// looked for in the store as `status` finds it, so that a name that names
/// no run (or several) is said to be wrong (exit 2) before the daemon is
/// said to be missing (exit 3).
pub(crate) fn failed_for_run(
    out: &Output,
    state: &StateArgs,
    target: &Target,
    e: &DaemonError,
    run: &str,
) -> u8 {
    if !target.explicit
        && matches!(e, DaemonError::NotRunning { .. })
        && let Ok(store) = StateStore::open(&state_dir(state))
    {
        match query::find_run(&store, Some(run)) {
            Err(QueryError::NotFound(NotFound::Run { .. } | NotFound::NoRuns)) => {
                out.error(&format!(
                    "no run `{run}` in {} (`twinflow runs` lists them)",
                    target.place
                ));
                return exit::INVALID;
            }
            Err(QueryError::NotFound(nf)) => {
                out.error(&nf.to_string());
                return exit::INVALID;
            }
            Ok(info) => {
                out.error(&format!(
                    "{e}; run {} is {} and no daemon carries it",
                    info.id,
                    info.state.as_str()
                ));
                return exit::UNREACHABLE;
            }
            Err(QueryError::Store(_) | QueryError::Invalid(_)) => {}
        }
    }
    failed(out, e)
}
