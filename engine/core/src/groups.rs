//! Coupling-group instances of a plan (`group: NAME`): the tasks of a
//! group's steps that share their `for_each` coordinates and cycle point
//! form one instance, which the scheduler readies, launches, fails and
//! retries as a unit, and whose members the runtime tells about each other
//! (`TWINFLOW_GROUP_*`, [`group_env`]).
//!
//! The compiler checks that the members of a group share `for_each` keys
//! and values (in any order) and cycling, so each instance has one task of
//! every member step; instances are matched by coordinates, not by
//! position, since members may list keys or values in another order.

use crate::{Plan, TaskId};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One group instance: its group's name and its members, one task per
/// member step, in the workflow's step order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    /// The group's name (`group:`).
    pub group: String,
    /// Its tasks, in step order; the first is the instance's leader.
    pub members: Vec<TaskId>,
}

/// Every group instance of `plan`, by group (in the order groups first
/// appear) and then by the leader's position in its step. Only the tasks of
/// grouped steps are looked at: a plan without groups costs nothing.
pub fn group_instances(plan: &Plan) -> Vec<GroupInstance> {
    let mut groups: BTreeMap<(usize, &str), Vec<usize>> = BTreeMap::new();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if let Some(g) = step.group.as_deref() {
            let order = *first_seen.entry(g).or_insert(i);
            groups.entry((order, g)).or_default().push(i);
        }
    }
    let mut out: Vec<GroupInstance> = Vec::new();
    for ((_, name), steps) in groups {
        let mut at: HashMap<Coordinate<'_>, usize> = HashMap::new();
        for &s in &steps {
            for id in plan.steps[s].tasks.clone().map(TaskId) {
                let key = coordinate(plan, id);
                match at.get(&key) {
                    Some(&i) => out[i].members.push(id),
                    None => {
                        at.insert(key, out.len());
                        out.push(GroupInstance {
                            group: name.to_owned(),
                            members: vec![id],
                        });
                    }
                }
            }
        }
    }
    out
}

/// A task's `for_each` values sorted by key, and its cycle point's index.
type Coordinate<'a> = (Vec<(&'a str, &'a str)>, Option<u32>);

/// The [`Coordinate`] of a task.
fn coordinate(plan: &Plan, id: TaskId) -> Coordinate<'_> {
    let mut keys = plan.coordinates(id);
    keys.sort_unstable();
    let point = plan.step_of(id).cycling.then(|| {
        let len = plan.cycle.as_ref().map_or(1, |c| c.points.len().max(1)) as u32;
        plan.instance_index(id) % len
    });
    (keys, point)
}

/// Where a group instance's members share files: `groups/<group>/<index>/<attempt>`
/// under the run directory, `index` being the leader's position in its step
/// and `attempt` the leader's attempt (each attempt of an instance starts
/// with an empty directory).
pub fn group_dir(run_dir: &Path, plan: &Plan, instance: &GroupInstance, attempt: u32) -> PathBuf {
    let index = instance
        .members
        .first()
        .map_or(0, |&leader| plan.instance_index(leader));
    run_dir
        .join("groups")
        .join(&instance.group)
        .join(index.to_string())
        .join(attempt.to_string())
}

/// What a member's [`crate::Job`] says of its coupling-group instance (set
/// by the runtime for every member; `None` for a task outside groups). The
/// members of one instance attempt come one after another in one launch
/// batch ([`crate::Executor::submit_batch`]) and share `dir`, which tells
/// them apart from another instance's ([`JobGroup::same_instance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobGroup {
    /// The group's name (`group:`).
    pub name: String,
    /// The instance attempt's shared directory ([`group_dir`]), as its
    /// members see it in `TWINFLOW_GROUP_DIR`; it exists (empty) when the
    /// members are submitted.
    pub dir: PathBuf,
    /// The member steps' names, in step order.
    pub members: Vec<String>,
    /// This member's step name.
    pub member: String,
}

impl JobGroup {
    /// Whether `other` is a member of the same instance attempt.
    pub fn same_instance(&self, other: &Self) -> bool {
        self.name == other.name && self.dir == other.dir
    }
}

/// The [`JobGroup`] of `member` of `instance` whose shared directory is
/// `dir`.
pub fn job_group(plan: &Plan, instance: &GroupInstance, member: TaskId, dir: &Path) -> JobGroup {
    JobGroup {
        name: instance.group.clone(),
        dir: dir.to_path_buf(),
        members: instance
            .members
            .iter()
            .map(|&m| plan.step_of(m).name.clone())
            .collect(),
        member: plan.step_of(member).name.clone(),
    }
}

/// The group variables of `member` of `instance`: `TWINFLOW_GROUP` (the
/// group's name), `TWINFLOW_GROUP_DIR`, `TWINFLOW_GROUP_MEMBERS` (the
/// member steps' names, space-separated, in step order) and
/// `TWINFLOW_GROUP_MEMBER` (this member's step name).
pub fn group_env(
    plan: &Plan,
    instance: &GroupInstance,
    member: TaskId,
    dir: &Path,
) -> Vec<(String, String)> {
    let names: Vec<&str> = instance
        .members
        .iter()
        .map(|&m| plan.step_of(m).name.as_str())
        .collect();
    vec![
        ("TWINFLOW_GROUP".to_owned(), instance.group.clone()),
        ("TWINFLOW_GROUP_DIR".to_owned(), dir.display().to_string()),
        ("TWINFLOW_GROUP_MEMBERS".to_owned(), names.join(" ")),
        (
            "TWINFLOW_GROUP_MEMBER".to_owned(),
            plan.step_of(member).name.clone(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        BackendConfig, ExecutorId, ExecutorSpec, ForEachKey, LocalConfig, PlanBuilder, Resources,
        StepId, StepSpec, WorkflowInfo,
    };

    fn step(
        name: &str,
        group: Option<&str>,
        keys: &[(&str, &[&str])],
        tasks: u32,
        at: u32,
    ) -> StepSpec {
        StepSpec {
            name: name.into(),
            description: None,
            executor: ExecutorId(0),
            for_each: keys
                .iter()
                .map(|(k, v)| ForEachKey {
                    name: (*k).into(),
                    values: v.iter().map(|s| (*s).into()).collect(),
                })
                .collect(),
            cycling: false,
            inputs: Vec::new(),
            after: Vec::new(),
            outputs: Vec::new(),
            resources: Resources::default(),
            retries: 0,
            timeout_seconds: None,
            pack: None,
            group: group.map(Into::into),
            launcher: None,
            env: Vec::new(),
            container: None,
            model: None,
            code: Vec::new(),
            hooks: Vec::new(),
            tasks: at..at + tasks,
        }
    }

    #[test]
    fn members_are_matched_by_coordinates_not_by_position() {
        // `b` lists the keys and values in another order than `a`.
        let steps = vec![
            step(
                "a",
                Some("g"),
                &[("x", &["1", "2"]), ("y", &["p", "q"])],
                4,
                0,
            ),
            step("lone", None, &[], 1, 4),
            step(
                "b",
                Some("g"),
                &[("y", &["q", "p"]), ("x", &["2", "1"])],
                4,
                5,
            ),
        ];
        let executors = vec![ExecutorSpec {
            name: "here".into(),
            backend: BackendConfig::Local(LocalConfig::default()),
            prologue: None,
            env: Vec::new(),
            container_runtime: None,
            bound_by: None,
        }];
        let info = WorkflowInfo {
            name: "t".into(),
            description: None,
            file: None,
            dir: ".".into(),
            run_id: "r".into(),
        };
        let mut b = PlanBuilder::new(info, Vec::new(), None, executors, steps.clone());
        for (s, spec) in steps.iter().enumerate() {
            for _ in spec.tasks.clone() {
                b.push_task(StepId(s as u32), String::new(), &mut Vec::new());
            }
        }
        let plan = b.finish();
        let instances = group_instances(&plan);
        assert_eq!(instances.len(), 4);
        for inst in &instances {
            let [a, b] = inst.members[..] else {
                panic!("{inst:?}");
            };
            let mut ca = plan.coordinates(a);
            let mut cb = plan.coordinates(b);
            ca.sort_unstable();
            cb.sort_unstable();
            assert_eq!(ca, cb);
        }
        // a[x=1,y=p] (task 0) pairs with b[y=p,x=1], b's last task (8).
        assert_eq!(instances[0].members, [TaskId(0), TaskId(8)]);
        let env = group_env(&plan, &instances[0], TaskId(8), Path::new("/g"));
        assert_eq!(
            env,
            [
                ("TWINFLOW_GROUP".to_owned(), "g".to_owned()),
                ("TWINFLOW_GROUP_DIR".to_owned(), "/g".to_owned()),
                ("TWINFLOW_GROUP_MEMBERS".to_owned(), "a b".to_owned()),
                ("TWINFLOW_GROUP_MEMBER".to_owned(), "b".to_owned()),
            ]
        );
        let g = job_group(&plan, &instances[0], TaskId(8), Path::new("/g"));
        assert_eq!(g.members, ["a", "b"]);
        assert_eq!(g.member, "b");
        let other = job_group(&plan, &instances[1], TaskId(1), Path::new("/h"));
        assert!(g.same_instance(&job_group(&plan, &instances[0], TaskId(0), Path::new("/g"))));
        assert!(!g.same_instance(&other));
        assert_eq!(
            group_dir(Path::new("/run"), &plan, &instances[1], 2),
            Path::new("/run/groups/g/1/2")
        );
    }
}
