//! Sending a coupling-group instance attempt to Slurm as one job
//! ([`crate::coupled`]): its members' scripts, its manifest (for a restart
//! that lost the job's id), its batch script, and following its members as
//! a pack's, under one job handle.

use super::*;

impl Inner {
    /// `sbatch`es the members of one instance attempt as one job; a handle
    /// per member (`slurm-pack:<job>:<status>`).
    pub(super) async fn launch_group(
        self: &Arc<Self>,
        jobs: Vec<Job>,
        context: impl Fn(ExecutorError, &str) -> ExecutorError,
    ) -> Result<Vec<Handle>, ExecutorError> {
        let name = jobs
            .first()
            .and_then(|j| j.group.as_ref())
            .map_or("?", |g| g.name.as_str());
        let what = format!("coupling group `{name}` of {} members", jobs.len());
        let members = group_members(&jobs);
        let Some(first) = jobs.first().map(|j| &j.stdout) else {
            return Ok(Vec::new());
        };
        let path = first.with_extension("group.sbatch");
        let log = first.with_extension("group.log");
        let prologue = self.prologue();
        let mut files = member_files(&members, &self.containers, None, prologue.as_ref())
            .map_err(|e| context(e, &what))?;
        files.push((
            crate::recover::manifest_path("group", &status_file(&jobs[0])),
            group::pack_manifest(&members),
        ));
        let script = crate::coupled::render_group(&members, &self.config, &log, prologue.as_ref())
            .map_err(|e| context(e.into(), &what))?;
        files.push((path.clone(), script));
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
