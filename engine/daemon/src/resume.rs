//! Turning a submission into a plan (also when a restarted daemon takes up
//! the runs a dead one left), and the settings stored with each run so it
//! can be taken up again: [`RunSettings`], which `twinflow run` stores too,
//! so either front end resumes the other's runs.

use crate::api::SubmitRequest;
use std::path::Path;
use twinflow_engine::{
    ActionReport, Engine, EngineError, OperatorAction, RunInfo, RunOptions, RunSettings, RunState,
    StateStore,
};
use twinflow_workflow::{CompileOptions, Plan, SiteSource, compile_file, parse_param_arg};

/// Compiles a submission; a compile error comes back rendered (no colour),
/// as `twinflow validate` prints it.
pub(crate) fn compile(req: &SubmitRequest, run_id: &str) -> Result<Plan, String> {
    let mut options = CompileOptions {
        local: req.local,
        run_id: run_id.to_owned(),
        ..CompileOptions::default()
    };
    for raw in &req.params {
        options
            .params
            .push(parse_param_arg(raw).map_err(|d| d.render(false))?);
    }
    if let Some(site) = &req.site {
        options.site = Some(SiteSource::read(Path::new(site)).map_err(|e| e.render(false))?);
    }
    compile_file(Path::new(&req.file), &options).map_err(|e| e.render(false))
}

/// What is stored with a run so it can be taken up again.
pub(crate) fn stored_args(req: &SubmitRequest) -> RunSettings {
    RunSettings {
        file: Some(req.file.clone()),
        params: req.params.clone(),
        site: req.site.clone(),
        local: req.local,
        job: None,
        bind: None,
    }
}

/// The submission a run's stored settings describe (its workflow file
/// `file` when the settings name none).
fn from_stored(file: &str, settings: RunSettings) -> SubmitRequest {
    SubmitRequest {
        file: settings.file.unwrap_or_else(|| file.to_owned()),
        params: settings.params,
        site: settings.site,
        local: settings.local,
        no_cache: false,
        fail_fast: false,
    }
}

/// Takes up every interrupted run of the state directory (its process died:
/// a killed daemon, a rebooted login node): jobs still in Slurm are
/// re-attached, finished tasks are not run again. Runs that cannot be taken
/// up (their workflow file is gone or no longer compiles) are reported and
/// left as they are.
pub(crate) async fn take_up_interrupted(engine: &Engine, runs: &crate::runs::Runs) {
    // Through the engine's connection: on a network file system the store
    // is held exclusively by it, and a connection of our own would be refused.
    let interrupted: Vec<_> = match engine.read_state(StateStore::runs) {
        Ok(all) => all
            .into_iter()
            .filter(|r| r.state == RunState::Interrupted)
            .collect(),
        Err(e) => {
            tracing::warn!("cannot look for interrupted runs: {e}");
            return;
        }
    };
    for run in interrupted {
        let Some(file) = run.file.clone() else {
            continue;
        };
        let settings = run.settings();
        let req = from_stored(&file, settings.clone());
        let plan = match compile(&req, &run.id) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!("cannot take up run {}: {}", run.id, e.trim());
                continue;
            }
        };
        let options = RunOptions {
            resume: true,
            args: settings,
            ..RunOptions::default()
        };
        match engine.submit(plan, options).await {
            Ok(handle) => {
                tracing::info!("took up interrupted run {}", run.id);
                runs.add(handle);
            }
            Err(e) => tracing::warn!("cannot take up run {}: {e}", run.id),
        }
    }
}

/// Why an ended run was not taken up again by a rerun.
#[derive(Debug)]
pub(crate) enum TakeUpError {
    /// The action itself was refused (a selector that matches nothing, no
    /// finished task selected): 400.
    Refused(String),
    /// The run cannot be taken up (another process runs it, its workflow
    /// changed or is gone): 409.
    Conflict(String),
    /// The store or the engine failed: 500.
    Failed(String),
}

/// Takes the ended run `run` up again by applying the rerun `action` first
/// ([`RunOptions::rerun`]): its plan is compiled again from its stored
/// settings, as when a restarted daemon takes up a run, and must be the
/// plan it ran (as `twinflow run --resume` requires). The run is then
/// carried like any other; the report says it was taken up.
pub(crate) async fn take_up_for_rerun(
    engine: &Engine,
    runs: &crate::runs::Runs,
    run: &RunInfo,
    action: OperatorAction,
) -> Result<ActionReport, TakeUpError> {
    let cannot = |why: String| {
        TakeUpError::Conflict(format!("cannot take run `{}` up again: {why}", run.id))
    };
    if run.state == RunState::Running {
        return Err(cannot(format!(
            "another twinflow process runs it (pid {} on {}); act through it",
            run.pid, run.host
        )));
    }
    let Some(file) = run.file.clone() else {
        return Err(cannot("its workflow file is not recorded".to_owned()));
    };
    let settings = run.settings();
    let req = from_stored(&file, settings.clone());
    let id = run.id.clone();
    let plan = match tokio::task::spawn_blocking(move || compile(&req, &id)).await {
        Ok(Ok(plan)) => plan,
        Ok(Err(rendered)) => {
            return Err(cannot(format!(
                "its workflow {file} no longer compiles: {}",
                rendered.trim()
            )));
        }
        Err(e) => return Err(TakeUpError::Failed(e.to_string())),
    };
    let options = RunOptions {
        resume: true,
        args: settings,
        rerun: Some(action),
        ..RunOptions::default()
    };
    match engine.submit(plan, options).await {
        Ok(handle) => {
            let report = handle.taken_up_by().cloned();
            tracing::info!("took up ended run {} for a rerun", run.id);
            runs.add(handle);
            report.ok_or_else(|| TakeUpError::Failed("the rerun was not applied".to_owned()))
        }
        Err(EngineError::Action(e)) if e.is_bad_request() => {
            Err(TakeUpError::Refused(e.to_string()))
        }
        Err(e @ (EngineError::StillRunning { .. } | EngineError::PlanChanged(_))) => {
            Err(cannot(e.to_string()))
        }
        Err(e @ EngineError::State(_)) => Err(TakeUpError::Failed(e.to_string())),
        Err(e) => Err(cannot(e.to_string())),
    }
}
