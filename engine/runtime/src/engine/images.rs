//! Container images at submit: each distinct (executor, `container:`) pair
//! of a plan is handed to its executor's [`Executor::resolve_image`] once,
//! before anything is recorded or dispatched. An executor that refuses (the
//! default: it does not run containers) refuses the run, naming the step,
//! the image and the executor; the tasks never run on the host instead.
//! What is resolved is recorded in the run's event log (kind
//! [`IMAGE_EVENT`], one per step, detail a JSON object) so that exports can
//! name the digest, and each step's digest enters its tasks' cache keys.

use super::EngineError;
use crate::state::StateStore;
use std::sync::Arc;
use twinflow_core::{ContainerSpec, Executor, Plan, ResolvedImage};

/// The event kind of a resolved image. Its detail is
/// `{"step", "image", "runtime", "digest"}`; a resumed run records its
/// resolution again, and the last one of a step counts.
pub(crate) const IMAGE_EVENT: &str = "image-resolved";

/// The resolved image of each step (by index), `None` for a step on the host.
pub(crate) type StepImages = Vec<Option<ResolvedImage>>;

/// Resolves every step's image on its executor, each (executor, container)
/// pair once.
pub(super) async fn resolve(
    plan: &Plan,
    executors: &[Arc<dyn Executor>],
) -> Result<StepImages, EngineError> {
    let mut images: StepImages = vec![None; plan.steps.len()];
    let mut groups: Vec<(usize, &ContainerSpec, Vec<usize>)> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let Some(container) = &step.container else {
            continue;
        };
        let executor = step.executor.index();
        match groups
            .iter_mut()
            .find(|(e, c, _)| *e == executor && *c == container)
        {
            Some((_, _, steps)) => steps.push(i),
            None => groups.push((executor, container, vec![i])),
        }
    }
    for (executor, container, steps) in groups {
        let names: Vec<String> = steps.iter().map(|&s| plan.steps[s].name.clone()).collect();
        let spec = &plan.executors[executor];
        let refused = |reason: String| EngineError::ContainerRefused {
            step: names.join("`, `"),
            image: container.image.clone(),
            executor: spec.name.clone(),
            kind: spec.backend.kind().as_str(),
            reason,
        };
        let Some(backend) = executors.get(executor) else {
            return Err(refused("is not in the plan".to_owned()));
        };
        let resolved = backend
            .resolve_image(container, &names)
            .await
            .map_err(|e| refused(e.message))?;
        for s in steps {
            images[s] = Some(resolved.clone());
        }
    }
    Ok(images)
}

/// Records the resolved images of run `run` as events.
pub(super) fn record(
    store: &mut StateStore,
    run: &str,
    plan: &Plan,
    images: &StepImages,
    now_ms: i64,
) -> Result<(), EngineError> {
    if images.iter().all(Option::is_none) {
        return Ok(());
    }
    store.write(|tx| {
        for (step, image) in plan.steps.iter().zip(images) {
            let Some(image) = image else { continue };
            let detail = serde_json::json!({
                "step": step.name,
                "image": step.container.as_ref().map(|c| c.image.as_str()),
                "runtime": image.runtime.as_str(),
                "digest": image.digest,
            });
            tx.event(
                run,
                None,
                None,
                IMAGE_EVENT,
                Some(&detail.to_string()),
                now_ms,
            )?;
        }
        Ok(())
    })?;
    Ok(())
}
