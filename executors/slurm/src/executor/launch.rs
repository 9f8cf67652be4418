//! Sending a unit to Slurm: staging its files in (with a `workdir`),
//! writing its job scripts (a plain job, an array, a pack) and `sbatch`,
//! and following what it started.

use super::*;
use crate::pack_container::PackContainer;

impl Inner {
    /// `sbatch`es one unit; a result per attempt.
    pub(super) async fn launch(
        self: &Arc<Self>,
        unit: Unit,
    ) -> Vec<(AttemptKey, Result<Handle, ExecutorError>)> {
        let keys: Vec<AttemptKey> = match &unit {
            Unit::Single(job) => vec![job.key],
            Unit::Array(jobs) | Unit::Pack(jobs, _) | Unit::Group(jobs) => {
                jobs.iter().map(|j| j.key).collect()
            }
        };
        let cost = unit.cost();
        let unit = match &self.staging {
            Some(staging) => self.stage_in(staging, unit).await,
            None => Ok(unit),
        };
        match async { self.try_launch(unit?).await }.await {
            Ok(handles) => keys.into_iter().zip(handles.into_iter().map(Ok)).collect(),
            Err(e) => {
                let due = self.give_back(&mut lock(&self.budget), cost);
                for wake in due {
                    wake();
                }
                keys.into_iter().map(|k| (k, Err(e.clone()))).collect()
            }
        }
    }

    /// Uploads the unit's working directories; the unit as it runs there.
    pub(super) async fn stage_in(
        &self,
        staging: &Staging,
        unit: Unit,
    ) -> Result<Unit, ExecutorError> {
        let remote = |job: Job| async move {
            let there = staging.remote_job(&job)?;
            staging.stage_in(&job, &there).await?;
            Ok::<Job, ExecutorError>(there)
        };
        Ok(match unit {
            Unit::Single(job) => Unit::Single(Box::new(remote(*job).await?)),
            Unit::Array(jobs) => {
                let mut there = Vec::with_capacity(jobs.len());
                for job in jobs {
                    there.push(remote(job).await?);
                }
                Unit::Array(there)
            }
            Unit::Pack(jobs, worker) => {
                let mut there = Vec::with_capacity(jobs.len());
                for job in jobs {
                    there.push(remote(job).await?);
                }
                Unit::Pack(there, worker)
            }
            Unit::Group(jobs) => {
                let mut there = Vec::with_capacity(jobs.len());
                for job in jobs {
                    there.push(remote(job).await?);
                }
                Unit::Group(there)
            }
        })
    }

    pub(super) async fn try_launch(
        self: &Arc<Self>,
        unit: Unit,
    ) -> Result<Vec<Handle>, ExecutorError> {
        let context = |e: ExecutorError, what: &str| ExecutorError {
            message: format!("{} (executor `{}`, {what})", e.message, self.name),
            ..e
        };
        match unit {
            Unit::Group(jobs) => self.launch_group(jobs, context).await,
            Unit::Single(job) => {
                let status = status_file(&job);
                let path = job.stdout.with_extension("sbatch");
                let container = self.containers.of(&job.step);
                let prologue = self.prologue();
                let how = script::Wrapping {
                    container: container.as_deref(),
                    shared: None,
                    prologue: prologue.as_ref(),
                };
                let text = script::render_with(&job, &self.config, &status, &how)?;
                let what = match crate::ranks::describe(&job) {
                    Some(shape) => format!("{}: {shape}", job.name),
                    None => job.name.clone(),
                };
                let id = self
                    .sbatch(vec![(path.clone(), text)], &path)
                    .await
                    .map_err(|e| context(e, &what))?;
                let jref = JobRef::Job(id);
                let h = handle_of(&jref, &status, false);
                let member = self.member(&job, status, Some(self.releaser(1)));
                self.monitor.track(jref, vec![member], false);
                Ok(vec![h])
            }
            Unit::Array(jobs) => {
                let mut what = format!("{} tasks of step `{}`", jobs.len(), jobs[0].step);
                if let Some(shape) = crate::ranks::describe(&jobs[0]) {
                    what = format!("{what}, each {shape}");
                }
                let members = group_members(&jobs);
                let first = &jobs[0].stdout;
                let log = first.with_file_name(format!("{}.array-%A_%a.log", jobs[0].step));
                let path = first.with_extension("array.sbatch");
                let prologue = self.prologue();
                let mut files = member_files(&members, &self.containers, None, prologue.as_ref())?;
                files.push((
                    first.with_extension("array.json"),
                    group::pack_manifest(&members),
                ));
                files.push((
                    path.clone(),
                    group::render_array_with(
                        &members,
                        &self.config,
                        &log,
                        self.config.array_throttle,
                        prologue.as_ref(),
                    )?,
                ));
                let id = self
                    .sbatch(files, &path)
                    .await
                    .map_err(|e| context(e, &what))?;
                let mut handles = Vec::new();
                for (i, job) in jobs.iter().enumerate() {
                    let jref = JobRef::ArrayTask {
                        array: id,
                        task: u32::try_from(i).unwrap_or(u32::MAX),
                    };
                    let status = status_file(job);
                    handles.push(handle_of(&jref, &status, false));
                    let member = self.member(job, status, Some(self.releaser(1)));
                    self.monitor.track(jref, vec![member], false);
                }
                Ok(handles)
            }
            Unit::Pack(jobs, worker) => {
                let what = format!("a pack of {} tasks of step `{}`", jobs.len(), jobs[0].step);
                let members = group_members(&jobs);
                let first = &jobs[0].stdout;
                let manifest = first.with_extension("pack.json");
                let path = first.with_extension("pack.sbatch");
                let log = first.with_extension("pack.log");
                let prologue = self.prologue();
                let shared = PackContainer::of(&members, &self.containers);
                let mut files = member_files(
                    &members,
                    &self.containers,
                    shared.as_ref(),
                    prologue.as_ref(),
                )?;
                files.push((manifest.clone(), group::pack_manifest(&members)));
                let how = script::Wrapping {
                    container: None,
                    shared: shared.as_ref(),
                    prologue: prologue.as_ref(),
                };
                files.push((
                    path.clone(),
                    group::render_pack_with(
                        &members,
                        &self.config,
                        &worker,
                        &manifest,
                        &log,
                        &how,
                    )?,
                ));
                let id = self
                    .sbatch(files, &path)
                    .await
                    .map_err(|e| context(e, &what))?;
                let jref = JobRef::Job(id);
                let release = self.releaser(jobs.len());
                let tracked: Vec<Member> = jobs
                    .iter()
                    .map(|j| self.member(j, status_file(j), Some(Arc::clone(&release))))
                    .collect();
                let handles = jobs
                    .iter()
                    .map(|j| handle_of(&jref, &status_file(j), true))
                    .collect();
                self.monitor.track(jref, tracked, true);
                Ok(handles)
            }
        }
    }

    /// Writes `files` and `sbatch --parsable`s `script`.
    pub(super) async fn sbatch(
        &self,
        files: Vec<(PathBuf, String)>,
        script: &Path,
    ) -> Result<JobId, ExecutorError> {
        let cluster = self.monitor.cluster();
        cluster.write_files(files).await?;
        let out = cluster
            .command(
                "sbatch",
                &["--parsable".to_owned(), script.display().to_string()],
            )
            .await?;
        parse::parse_sbatch_parsable(&out)
            .map_err(|e| ExecutorError::new(format!("sbatch {}: {e}", script.display())))
    }

    pub(super) fn member(&self, job: &Job, status: PathBuf, on_end: Option<OnEnd>) -> Member {
        self.sink.send(Update {
            key: job.key,
            status: AttemptStatus::Queued,
        });
        Member::new(
            job.key,
            status,
            Arc::clone(&self.member_sink),
            self.owner,
            on_end,
        )
    }

    /// A callback that frees one job of the budget after `tasks` calls.
    pub(super) fn releaser(self: &Arc<Self>, tasks: usize) -> OnEnd {
        let left = AtomicU32::new(u32::try_from(tasks).unwrap_or(u32::MAX));
        let me = Arc::downgrade(self);
        Arc::new(move || {
            if left.fetch_sub(1, Ordering::SeqCst) == 1
                && let Some(me) = me.upgrade()
            {
                me.release();
            }
        })
    }
}
