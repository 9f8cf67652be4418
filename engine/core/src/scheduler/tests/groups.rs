//! Coupling-group instances in the scheduler: readiness, all-or-nothing
//! launch, stopping and retrying an instance as a whole.

use super::*;

/// `plan` with `steps` in group `g`; a step of several tasks that does
/// not cycle runs over `for_each` key `k` (one value per task).
fn grouped(mut p: Plan, steps: &[usize]) -> Plan {
    for &s in steps {
        let step = &mut p.steps[s];
        step.group = Some("g".into());
        if !step.cycling && step.tasks.len() > 1 {
            step.for_each = vec![crate::ForEachKey {
                name: "k".into(),
                values: (0..step.tasks.len()).map(|v| v.to_string()).collect(),
            }];
        }
    }
    p
}

fn killed(actions: &[Action]) -> Vec<(u32, KillReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Kill { task, reason, .. } => Some((task.0, *reason)),
            _ => None,
        })
        .collect()
}

fn retried(actions: &[Action]) -> Vec<(u32, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RetryAt { task, attempt, .. } => Some((task.0, *attempt)),
            _ => None,
        })
        .collect()
}

fn ended(t: u32, attempt: u32, outcome: Outcome) -> Event {
    Event::Finished {
        task: TaskId(t),
        attempt,
        outcome,
    }
}

#[test]
fn an_instance_is_ready_when_every_member_is_and_launches_as_one_batch() {
    // s0 -> s1; s1 and s2 form the group: s2 has no dependency but waits for s1's.
    let p = grouped(
        plan(
            &[s(1), s(1), s(1)],
            &|t| if t == 1 { vec![0] } else { vec![] },
            1,
            None,
        ),
        &[1, 2],
    );
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Ready);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(1, 0), (2, 0)]);
    let members: Vec<u32> = sc
        .group_instance(TaskId(2))
        .map(|g| g.members.iter().map(|m| m.0).collect())
        .unwrap_or_default();
    assert_eq!(members, [1, 2]);
    assert!(sc.group_instance(TaskId(0)).is_none());
}

#[test]
fn an_instance_launches_only_when_all_members_fit_what_starts_at_once() {
    // Local executor of 2 slots whose backend holds 2 more ahead: the
    // scheduler's capacity is 4, but an instance must fit into the 2 that
    // start. s0 (1 cpu) runs; the 2-member instance would fit 4, not 2.
    let p = grouped(plan(&[s(1), s(1), s(1), s(1)], &no_deps, 1, None), &[1, 2]);
    let mut config = SchedulerConfig::with_capacity(vec![ExecutorCapacity::cores(4)]);
    config.held_ahead = vec![2];
    let mut sc = Scheduler::new(&p, config);
    assert_eq!(
        launched(&sc.handle(Event::Start, 0)),
        [(0, 0)],
        "neither member starts while only one would fit; the task behind waits its turn"
    );
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(1, 0), (2, 0), (3, 0)]);

    // Without anything held ahead, the same 2 slots: one member never goes alone.
    let mut sc = Scheduler::new(
        &p,
        SchedulerConfig::with_capacity(vec![ExecutorCapacity::cores(2)]),
    );
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(1, 0), (2, 0)]);
    assert_eq!(
        launched(&sc.handle(ok(1), 2)),
        [(3, 0)],
        "a member that ended frees its core"
    );
}

#[test]
fn a_failed_member_stops_the_others_and_the_instance_is_retried_as_a_whole() {
    // Group s0 + s1 (retries 1), s2 needs s0.
    let p = grouped(
        plan(
            &[S { retries: 1, ..s(1) }, S { retries: 3, ..s(1) }, s(1)],
            &|t| if t == 2 { vec![0] } else { vec![] },
            1,
            None,
        ),
        &[0, 1],
    );
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);
    let a = sc.handle(fail(1, 0), 10);
    assert_eq!(killed(&a), [(0, KillReason::Group { failed: TaskId(1) })]);
    assert!(retried(&a).is_empty(), "not before every member ended");
    assert_eq!(sc.group_failure(TaskId(0)), Some(TaskId(1)));
    let a = sc.handle(ended(0, 0, Outcome::Killed), 20);
    assert_eq!(retried(&a), [(0, 1), (1, 1)]);
    assert!(a.contains(&Action::RetryAt {
        task: TaskId(0),
        attempt: 1,
        at: 1_020
    }));
    assert_eq!(
        launched(&sc.handle(Event::Tick, 1_020)),
        [(0, 1), (1, 1)],
        "both members, a new attempt each"
    );
    assert_eq!(sc.group_failure(TaskId(0)), None);
    // The first member to succeed waits for the other; its dependent too.
    let a = sc.handle(ended(0, 1, Outcome::Succeeded), 1_100);
    assert!(launched(&a).is_empty());
    assert_eq!(sc.task_state(TaskId(0)), TaskState::RetryWait);
    let a = sc.handle(ended(1, 1, Outcome::Succeeded), 1_200);
    assert_eq!(launched(&a), [(2, 0)]);
    assert_eq!(sc.task_state(TaskId(0)), TaskState::Succeeded);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Succeeded);
}

#[test]
fn a_member_that_succeeded_runs_again_when_another_fails() {
    let p = grouped(
        plan(
            &[S { retries: 1, ..s(1) }, S { retries: 1, ..s(1) }],
            &no_deps,
            1,
            None,
        ),
        &[0, 1],
    );
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    sc.handle(Event::Start, 0);
    assert!(launched(&sc.handle(ok(0), 1)).is_empty());
    assert_eq!(sc.task_state(TaskId(0)), TaskState::RetryWait);
    let a = sc.handle(fail(1, 0), 2);
    assert!(killed(&a).is_empty(), "nothing left running to stop");
    assert_eq!(retried(&a), [(0, 1), (1, 1)]);
}

#[test]
fn retries_exhausted_fail_every_member_and_skip_their_dependents() {
    // The instance's retries are its members' fewest: 0 here.
    let p = grouped(
        plan(
            &[S { retries: 0, ..s(1) }, S { retries: 2, ..s(1) }, s(1)],
            &|t| if t == 2 { vec![1] } else { vec![] },
            1,
            None,
        ),
        &[0, 1],
    );
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    sc.handle(Event::Start, 0);
    let a = sc.handle(fail(0, 0), 1);
    assert_eq!(killed(&a), [(1, KillReason::Group { failed: TaskId(0) })]);
    let a = sc.handle(ended(1, 0, Outcome::Killed), 2);
    assert!(a.contains(&Action::GaveUp { task: TaskId(0) }));
    assert!(a.contains(&Action::GaveUp { task: TaskId(1) }));
    assert!(a.contains(&Action::Skip {
        task: TaskId(2),
        because: Some(TaskId(1))
    }));
    assert_eq!(a.last(), Some(&Action::RunFinished(RunOutcome::Failed)));
}

#[test]
fn a_member_timing_out_stops_the_others() {
    let p = grouped(
        plan(
            &[
                S {
                    timeout: Some(5),
                    ..s(1)
                },
                s(1),
            ],
            &no_deps,
            1,
            None,
        ),
        &[0, 1],
    );
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    sc.handle(Event::Start, 0);
    let a = sc.handle(Event::Tick, 5_000);
    assert_eq!(killed(&a), [(0, KillReason::Timeout)]);
    let a = sc.handle(ended(0, 0, Outcome::Killed), 5_001);
    assert_eq!(killed(&a), [(1, KillReason::Group { failed: TaskId(0) })]);
    let a = sc.handle(ended(1, 0, Outcome::Killed), 5_002);
    assert!(a.contains(&Action::GaveUp { task: TaskId(1) }));
}

#[test]
fn cycled_instances_run_point_after_point_with_earlier_point_needs() {
    // Two cycling members over 3 points; s0@p needs s1@p-1 (`@-1`).
    let p = grouped(
        plan(
            &[
                S {
                    cycling: true,
                    ..s(3)
                },
                S {
                    cycling: true,
                    ..s(3)
                },
            ],
            &|t| match t {
                1 => vec![3],
                2 => vec![4],
                _ => vec![],
            },
            3,
            None,
        ),
        &[0, 1],
    );
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    assert_eq!(
        launched(&sc.handle(Event::Start, 0)),
        [(0, 0), (3, 0)],
        "point 0's instance; point 1's s1 waits for its partner"
    );
    assert!(launched(&sc.handle(ok(3), 1)).is_empty());
    assert_eq!(launched(&sc.handle(ok(0), 2)), [(1, 0), (4, 0)]);
    sc.handle(ok(1), 3);
    assert_eq!(launched(&sc.handle(ok(4), 4)), [(2, 0), (5, 0)]);
    sc.handle(ok(2), 5);
    assert_eq!(
        sc.handle(ok(5), 6),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn cancelling_kills_running_members_and_cancels_one_that_waits_for_its_instance() {
    let p = grouped(plan(&[s(1), s(1)], &no_deps, 1, None), &[0, 1]);
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    sc.handle(Event::Start, 0);
    sc.handle(ok(0), 1);
    let a = sc.handle(Event::Cancel, 2);
    assert_eq!(killed(&a), [(1, KillReason::Cancelled)]);
    assert!(a.contains(&Action::Skip {
        task: TaskId(0),
        because: None
    }));
    let a = sc.handle(ended(1, 0, Outcome::Killed), 3);
    assert_eq!(a, [Action::RunFinished(RunOutcome::Cancelled)]);
}

#[test]
fn a_resumed_instance_is_done_only_if_every_member_is_and_a_partly_running_one_restarts() {
    let p = grouped(plan(&[s(2), s(2)], &no_deps, 1, None), &[0, 1]);
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    // Instance (0, 2) is done; of instance (1, 3) only 1 is, and 3 runs.
    sc.handle(Event::AlreadyDone(vec![TaskId(0), TaskId(2), TaskId(1)]), 0);
    sc.handle(Event::Adopted(vec![(TaskId(3), 0)]), 0);
    assert_eq!(sc.task_state(TaskId(0)), TaskState::Succeeded);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Waiting);
    let a = sc.handle(Event::Start, 0);
    assert_eq!(killed(&a), [(3, KillReason::Group { failed: TaskId(1) })]);
    assert!(launched(&a).is_empty());
    let a = sc.handle(ended(3, 0, Outcome::Killed), 5);
    assert_eq!(retried(&a), [(1, 1), (3, 1)], "a restart costs no retry");
    assert_eq!(launched(&a), [(1, 1), (3, 1)], "at once, together");
}

#[test]
fn group_members_are_neither_triggered_nor_set_by_hand() {
    // s0 -> s1; s1 and s2 form the group.
    let p = grouped(
        plan(
            &[s(1), s(1), s(1)],
            &|t| if t == 1 { vec![0] } else { vec![] },
            1,
            None,
        ),
        &[1, 2],
    );
    let mut sc = Scheduler::new(&p, SchedulerConfig::for_plan(&p, 8));
    assert!(sc.applies(Operator::SetFailed, TaskId(0)), "not a member");
    assert!(sc.applies(Operator::Trigger, TaskId(0)), "not a member");
    sc.handle(Event::Start, 0);
    for t in [1, 2] {
        assert!(!sc.applies(Operator::Trigger, TaskId(t)), "{t}");
        assert!(!sc.applies(Operator::SetSucceeded, TaskId(t)), "{t}");
        assert!(!sc.applies(Operator::SetFailed, TaskId(t)), "{t}");
    }
    assert!(launched(&sc.handle(op(Operator::Trigger, &[1]), 1)).is_empty());
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Waiting);
}
