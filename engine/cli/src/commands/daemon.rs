//! The daemon's commands: `daemon start|run|stop|status|rotate-token`, and the client
//! commands `submit`, `watch` and `cancel`, which talk to it through
//! [`twinflow_daemon::Client`].

use super::compile;
use crate::args::{DaemonAction, DaemonArgs, ServeArgs, StateArgs, SubmitArgs};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{
    block_on, build_engine, failed, failed_for_run, state_dir, target, target_for_run,
};
use crate::progress::{Mode, Reporter, summary_text};
use crate::term::shown;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twinflow_daemon::api::SubmitRequest;
use twinflow_daemon::{
    AccessFile, Client, DaemonError, DaemonPaths, ServeOptions, listen_warning, running_pid,
};
use twinflow_engine::{Outcome, RunEvent, StepCounts};
use twinflow_executor_local::SlotPool;

pub(crate) fn daemon(out: &Output, action: &DaemonAction) -> u8 {
    match action {
        DaemonAction::Run {
            state,
            serve,
            detached,
        } => run(out, state, serve, *detached),
        DaemonAction::Start { state, serve } => start(out, state, serve),
        DaemonAction::Stop { state } => stop(out, state),
        DaemonAction::RotateToken { state } => rotate_token(out, state),
        DaemonAction::Status { state, daemon } => status(out, state, daemon),
    }
}

fn run(out: &Output, state: &StateArgs, serve: &ServeArgs, detached: bool) -> u8 {
    if detached {
        // Out of the starting terminal's session: logging out does not
        // take the daemon along (SIGHUP).
        let _ = nix::unistd::setsid();
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(!detached && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let dir = state_dir(state);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&format!("failed to start the async runtime: {e}"));
            return exit::UNREACHABLE;
        }
    };
    let result = rt.block_on(async {
        // One pool of cores for the local tasks of every run.
        let pool = serve
            .slots
            .map_or_else(SlotPool::of_this_machine, SlotPool::new);
        tracing::info!(
            "local tasks of all runs share {}",
            crate::term::count(pool.total(), "core")
        );
        let engine = build_engine(out, &dir, Some(pool))?;
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
            tracing::info!("stopping on a signal; runs are taken up by the next daemon");
        };
        let mut options = ServeOptions::default();
        if let Some(addr) = serve.listen {
            options = options.listen(addr);
            if serve.listen_plain_http {
                options = options.plain_http();
            }
        }
        twinflow_daemon::serve_with(engine, options, shutdown)
            .await
            .map_err(|e| failed(out, &e))
    });
    // Runs still carried are left to the next daemon: do not wait for them.
    rt.shutdown_background();
    match result {
        Ok(()) => exit::SUCCESS,
        Err(code) => code,
    }
}

fn start(out: &Output, state: &StateArgs, serve: &ServeArgs) -> u8 {
    let dir = state_dir(state);
    let paths = DaemonPaths::new(&dir);
    if let Some(pid) = running_pid(&paths) {
        eprintln!(
            "a twinflow daemon (pid {pid}) already runs for {}",
            dir.display()
        );
        return exit::SUCCESS;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            out.error(&format!("cannot find this twinflow binary: {e}"));
            return exit::UNREACHABLE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&paths.dir) {
        out.error(&format!("failed to create {}: {e}", paths.dir.display()));
        return exit::UNREACHABLE;
    }
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
    {
        Ok(f) => f,
        Err(e) => {
            out.error(&format!("failed to open {}: {e}", paths.log.display()));
            return exit::UNREACHABLE;
        }
    };
    let spawned = log.try_clone().and_then(|err| {
        let mut command = Command::new(exe);
        command
            .args(["daemon", "run", "--detached", "--state-dir"])
            .arg(&dir);
        if let Some(n) = serve.slots {
            command.arg(format!("--slots={n}"));
        }
        if let Some(addr) = serve.listen {
            command.arg("--listen").arg(addr.to_string());
        }
        if serve.listen_plain_http {
            command.arg("--listen-plain-http");
        }
        command.stdin(Stdio::null()).stdout(log).stderr(err).spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            out.error(&format!("failed to start the daemon: {e}"));
            return exit::UNREACHABLE;
        }
    };
    let client = Client::for_state_dir(&dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Ok(ping)) = block_on(out, client.ping()) {
            eprintln!(
                "twinflow daemon started (pid {}) for {}\n  socket: {}\n  log:    {}",
                ping.pid,
                dir.display(),
                client.endpoint(),
                paths.log.display()
            );
            if let Some(addr) = &ping.listen {
                let scheme = match AccessFile::read(&paths.token) {
                    Ok(access) => match access.tls_sha256 {
                        Some(fp) => format!("https, certificate sha-256 {fp}"),
                        None => "plain http".to_owned(),
                    },
                    Err(e) => e.to_string(),
                };
                eprintln!(
                    "  tcp:    {addr} ({scheme})\n  access: {} (copy it, mode 0600, to reach the daemon from another login node)",
                    paths.token.display()
                );
                // Said in the daemon's log too, where nobody may look.
                if let Some(warning) = addr
                    .parse()
                    .ok()
                    .and_then(|a| listen_warning(a, serve.listen_plain_http))
                {
                    eprintln!("warning: {warning}");
                }
            }
            return exit::SUCCESS;
        }
        if let Ok(Some(status)) = child.try_wait() {
            out.error(&format!(
                "the daemon exited ({status}) before it answered; see {}",
                paths.log.display()
            ));
            return exit::UNREACHABLE;
        }
        if Instant::now() > deadline {
            out.error(&format!(
                "the daemon did not answer within 20 s; see {}",
                paths.log.display()
            ));
            return exit::UNREACHABLE;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(out: &Output, state: &StateArgs) -> u8 {
    let dir = state_dir(state);
    let paths = DaemonPaths::new(&dir);
    let Some(pid) = running_pid(&paths) else {
        eprintln!("no twinflow daemon runs for {}", dir.display());
        return exit::SUCCESS;
    };
    let client = Client::for_state_dir(&dir);
    match block_on(out, client.shutdown()) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return failed(out, &e),
        Err(code) => return code,
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while running_pid(&paths).is_some() {
        if Instant::now() > deadline {
            out.error(&format!("the daemon (pid {pid}) did not stop within 20 s"));
            return exit::UNREACHABLE;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("twinflow daemon (pid {pid}) stopped; its runs go on when one starts again");
    exit::SUCCESS
}

fn rotate_token(out: &Output, state: &StateArgs) -> u8 {
    let client = Client::for_state_dir(&state_dir(state));
    match block_on(out, client.rotate_token()) {
        Ok(Ok(rotated)) => {
            eprintln!(
                "the tcp token is replaced: the new one is in {} (copy it again to the other login nodes); the old one is refused from now on",
                shown(&rotated.access_file)
            );
            exit::SUCCESS
        }
        Ok(Err(e)) => failed(out, &e),
        Err(code) => code,
    }
}

fn status(out: &Output, state: &StateArgs, daemon: &DaemonArgs) -> u8 {
    let client = match target(out, state, daemon) {
        Ok(t) => t.client,
        Err(code) => return code,
    };
    match block_on(out, client.ping()) {
        Ok(Ok(ping)) => {
            println!("twinflow daemon {} (pid {})", ping.version, ping.pid);
            println!("  state:  {}", ping.state_dir);
            match client.socket() {
                Some(socket) => println!("  socket: {}", socket.display()),
                None => println!("  asked:  {}", client.endpoint()),
            }
            if let Some(addr) = &ping.listen {
                println!("  tcp:    {addr}");
            }
            if ping.live_runs.is_empty() {
                println!("  no runs in progress");
            } else {
                let ids: Vec<_> = ping.live_runs.iter().map(|r| shown(r)).collect();
                println!("  runs in progress: {}", ids.join(", "));
            }
            exit::SUCCESS
        }
        Ok(Err(e)) => failed(out, &e),
        Err(code) => code,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}

pub(crate) fn submit(out: &Output, args: &SubmitArgs) -> u8 {
    if super::cwl::is_cwl(&args.compile.file) {
        out.error(&format!(
            "{}: the daemon does not take CWL documents yet; run it with `twinflow run` (docs/cwl.md)",
            args.compile.file.display()
        ));
        return exit::INVALID;
    }
    // Checked here first, so diagnostics show in this terminal, in colour.
    if let Err(code) = compile(out, &args.compile) {
        return code;
    }
    let request = SubmitRequest {
        file: absolute(&args.compile.file).display().to_string(),
        params: args.compile.params.clone(),
        site: args
            .compile
            .site
            .as_deref()
            .map(|s| absolute(s).display().to_string()),
        local: args.compile.local,
        no_cache: args.no_cache,
        fail_fast: args.fail_fast,
    };
    let client = match target(out, &args.state, &args.daemon) {
        Ok(t) => t.client,
        Err(code) => return code,
    };
    match block_on(out, client.submit(&request)) {
        Ok(Ok(run)) => {
            println!("{}", shown(&run.run_id));
            let id = shown(&run.run_id);
            eprintln!(
                "submitted {id}: follow it with `twinflow watch {id}`; its files: {}",
                shown(&run.run_dir)
            );
            exit::SUCCESS
        }
        Ok(Err(e)) => failed(out, &e),
        Err(code) => code,
    }
}

pub(crate) fn cancel(out: &Output, state: &StateArgs, daemon: &DaemonArgs, run: &str) -> u8 {
    let target = match target_for_run(out, state, daemon, Some(run)) {
        Ok(t) => t,
        Err(code) => return code,
    };
    match block_on(out, target.client.cancel(run)) {
        Ok(Ok(id)) => {
            eprintln!("cancelling {}", shown(&id));
            exit::SUCCESS
        }
        Ok(Err(e)) => failed_for_run(out, state, &target, &e, run),
        Err(code) => code,
    }
}

pub(crate) fn watch(
    out: &Output,
    state: &StateArgs,
    daemon: &DaemonArgs,
    run: &str,
    json: bool,
) -> u8 {
    let target = match target_for_run(out, state, daemon, Some(run)) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let client = &target.client;
    let mode = if json {
        Mode::Json
    } else if std::io::stderr().is_terminal() {
        Mode::Live
    } else {
        Mode::Lines { verbose: false }
    };
    let result = block_on(out, async {
        let mut events = client.events(run).await?;
        let mut reporter = Reporter::new(mode);
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut summary = None;
        loop {
            let line = tokio::select! {
                line = events.next() => line?,
                _ = ticks.tick() => {
                    reporter.tick();
                    continue;
                }
            };
            let Some(line) = line else { break };
            if line["event"] == twinflow_daemon::api::PROGRESS_EVENT {
                if let Ok(counts) = serde_json::from_value::<Vec<StepCounts>>(line["steps"].clone())
                {
                    reporter.snapshot(&counts);
                }
                continue;
            }
            // Kinds this twinflow does not know (a newer daemon) are passed over.
            let Ok(event) = serde_json::from_value::<RunEvent>(line) else {
                continue;
            };
            if let RunEvent::RunFinished(s) = &event {
                summary = Some(s.clone());
            }
            reporter.event(&event);
        }
        Ok::<_, DaemonError>(summary)
    });
    match result {
        Ok(Ok(Some(summary))) => {
            if mode != Mode::Json {
                eprint!("{}", summary_text(&summary, false));
            }
            match summary.outcome {
                Outcome::Succeeded => exit::SUCCESS,
                Outcome::Failed => exit::TASK_FAILED,
                Outcome::Cancelled => exit::INTERRUPTED,
            }
        }
        Ok(Ok(None)) => {
            out.error(&format!("the daemon stopped before run {run} ended"));
            exit::UNREACHABLE
        }
        Ok(Err(e)) => failed_for_run(out, state, &target, &e, run),
        Err(code) => code,
    }
}
