//! Operator actions in the scheduler: hold, release and kill.

use super::*;

fn killed(t: u32) -> Event {
    Event::Finished {
        task: TaskId(t),
        attempt: 0,
        outcome: Outcome::Killed,
    }
}

#[test]
fn a_held_task_that_becomes_ready_does_not_launch_until_released() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (3, 0)]);
    // Held while its dependency runs: the dependency's end makes it ready
    // in the same turn, and it must not start.
    assert!(sc.applies(Operator::Hold, TaskId(1)));
    assert!(sc.handle(op(Operator::Hold, &[1]), 1).is_empty());
    assert!(launched(&sc.handle(ok(0), 2)).is_empty());
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Ready);
    assert!(sc.is_held(TaskId(1)));
    // Others go on and finish; the run waits for the held one.
    assert!(launched(&sc.handle(ok(3), 3)).is_empty());
    assert!(!sc.is_finished());
    // Released: it launches, and the run completes.
    assert!(sc.applies(Operator::Release, TaskId(1)));
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[1]), 4)),
        [(1, 0)]
    );
    assert!(!sc.is_held(TaskId(1)));
    assert_eq!(launched(&sc.handle(ok(1), 5)), [(2, 0)]);
    assert_eq!(
        sc.handle(ok(2), 6),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn a_task_held_while_queued_for_capacity_is_passed_over() {
    // Two slots, four independent tasks: 2 and 3 wait in the queue.
    let p = plan(&[s(4)], &no_deps, 1, None);
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);
    sc.handle(op(Operator::Hold, &[2]), 1);
    assert_eq!(launched(&sc.handle(ok(0), 2)), [(3, 0)], "2 is passed over");
    assert!(launched(&sc.handle(ok(1), 3)).is_empty());
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[2]), 4)),
        [(2, 0)]
    );
}

#[test]
fn a_held_running_task_finishes_and_a_failed_one_does_not_retry_while_held() {
    let p = plan(&[S { retries: 1, ..s(2) }], &no_deps, 1, None);
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    sc.handle(op(Operator::Hold, &[0, 1]), 1);
    assert_eq!(sc.task_state(TaskId(0)), TaskState::Running, "it finishes");
    sc.handle(ok(0), 2);
    assert_eq!(sc.task_state(TaskId(0)), TaskState::Succeeded);
    sc.handle(fail(1, 0), 3);
    // The retry is due at 1,003 ms; held, it does not launch.
    assert!(launched(&sc.handle(Event::Tick, 5_000)).is_empty());
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[1]), 6_000)),
        [(1, 1)]
    );
}

#[test]
fn hold_and_release_apply_only_where_they_mean_something() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    sc.handle(ok(3), 1);
    assert!(!sc.applies(Operator::Hold, TaskId(3)), "finished");
    assert!(!sc.applies(Operator::Release, TaskId(2)), "not held");
    assert!(!sc.applies(Operator::Kill, TaskId(2)), "not running");
    assert!(sc.applies(Operator::Kill, TaskId(0)));
    assert!(!sc.applies(Operator::Hold, TaskId(99)), "no such task");
}

#[test]
fn a_killed_task_fails_for_good_and_its_dependents_are_skipped() {
    let p = plan(
        &[S { retries: 3, ..s(3) }, s(1)],
        &|t| match t {
            1 => vec![0],
            2 => vec![1],
            _ => vec![],
        },
        1,
        None,
    );
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    assert_eq!(
        sc.handle(op(Operator::Kill, &[0]), 1),
        [Action::Kill {
            task: TaskId(0),
            attempt: 0,
            reason: KillReason::Operator
        }]
    );
    // Not retried although retries are left.
    let a = sc.handle(killed(0), 2);
    assert_eq!(
        a[..3],
        [
            Action::GaveUp { task: TaskId(0) },
            Action::Skip {
                task: TaskId(1),
                because: Some(TaskId(0))
            },
            Action::Skip {
                task: TaskId(2),
                because: Some(TaskId(0))
            },
        ]
    );
    assert_eq!(
        sc.handle(ok(3), 3),
        [Action::RunFinished(RunOutcome::Failed)]
    );
}

#[test]
fn a_held_dependent_of_a_killed_task_waits_and_is_skipped_once_released() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    sc.handle(op(Operator::Hold, &[1]), 1);
    sc.handle(op(Operator::Kill, &[0]), 2);
    let a = sc.handle(killed(0), 3);
    assert_eq!(a, [Action::GaveUp { task: TaskId(0) }]);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Waiting);
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Waiting);
    sc.handle(ok(3), 4);
    assert!(!sc.is_finished(), "the held task waits");
    let a = sc.handle(op(Operator::Release, &[1]), 5);
    assert_eq!(
        a,
        [
            Action::Skip {
                task: TaskId(1),
                because: Some(TaskId(0))
            },
            Action::Skip {
                task: TaskId(2),
                because: Some(TaskId(0))
            },
            Action::RunFinished(RunOutcome::Failed),
        ]
    );
}

#[test]
fn a_held_task_is_not_announced_ready_until_released() {
    let p = plan(
        &[s(1), s(1)],
        &|t| if t == 1 { vec![0] } else { vec![] },
        1,
        None,
    );
    let mut config = SchedulerConfig::for_plan(&p, 2);
    config.announce_ready = true;
    let mut sc = Scheduler::new(&p, config);
    sc.handle(Event::Start, 0);
    sc.handle(op(Operator::Hold, &[1]), 1);
    let a = sc.handle(ok(0), 2);
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::Ready { .. } | Action::Launch { .. })),
        "{a:?}"
    );
    let a = sc.handle(op(Operator::Release, &[1]), 3);
    assert_eq!(
        a,
        [
            Action::Ready {
                task: TaskId(1),
                attempt: 0
            },
            Action::Launch {
                task: TaskId(1),
                attempt: 0
            },
        ]
    );
}

#[test]
fn actions_apply_in_the_order_they_come() {
    let p = plan(&[s(1)], &no_deps, 1, None);
    let mut sc = sched(&p);
    // Before the start: held, released, held again: it stays held.
    sc.handle(op(Operator::Hold, &[0]), 0);
    sc.handle(op(Operator::Release, &[0]), 0);
    sc.handle(op(Operator::Hold, &[0]), 0);
    assert!(launched(&sc.handle(Event::Start, 0)).is_empty());
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[0]), 1)),
        [(0, 0)]
    );
}

#[test]
fn runahead_does_not_release_a_held_task() {
    let p = plan(
        &[S {
            cycling: true,
            ..s(3)
        }],
        &no_deps,
        3,
        Some(0),
    );
    let mut sc = sched(&p);
    sc.handle(op(Operator::Hold, &[1]), 0);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    // Point 1 comes into the window: its held task stays out.
    assert!(launched(&sc.handle(ok(0), 1)).is_empty());
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[1]), 2)),
        [(1, 0)]
    );
}
