//! Turning a submission into a plan (also when a restarted daemon takes up
//! the runs a dead one left), and the settings stored with each run so it
//! can be taken up again: the same JSON `twinflow run` stores
//! (`{"file","params","site","local"}`), so either front end resumes the
//! other's runs.

use crate::api::SubmitRequest;
use std::path::Path;
use twinflow_engine::{Engine, RunOptions, RunState, StateStore};
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
pub(crate) fn stored_args(req: &SubmitRequest) -> String {
    serde_json::json!({
        "file": req.file,
        "params": req.params,
        "site": req.site,
        "local": req.local,
    })
    .to_string()
}

/// The submission a run's stored settings describe.
fn from_stored(file: &str, args: &str) -> SubmitRequest {
    let v: serde_json::Value = serde_json::from_str(args).unwrap_or_default();
    SubmitRequest {
        file: v["file"].as_str().unwrap_or(file).to_owned(),
        params: v["params"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        site: v["site"].as_str().map(str::to_owned),
        local: v["local"].as_bool().unwrap_or(false),
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
        let req = from_stored(&file, &run.args);
        let plan = match compile(&req, &run.id) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!("cannot take up run {}: {}", run.id, e.trim());
                continue;
            }
        };
        let options = RunOptions {
            resume: true,
            args: run.args.clone(),
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
