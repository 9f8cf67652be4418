//! Operator actions in the scheduler: trigger, and set succeeded or failed.

use super::*;

fn killed(t: u32) -> Event {
    Event::Finished {
        task: TaskId(t),
        attempt: 0,
        outcome: Outcome::Killed,
    }
}

fn skipped(actions: &[Action]) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Skip { task, .. } => Some(task.0),
            _ => None,
        })
        .collect()
}

#[test]
fn a_triggered_task_starts_now_and_its_dependency_ending_does_not_queue_it_again() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(op(Operator::Hold, &[0]), 0);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(3, 0)]);
    // 1 waits for the held 0: triggered, it launches now.
    assert!(sc.applies(Operator::Trigger, TaskId(1)));
    assert_eq!(
        launched(&sc.handle(op(Operator::Trigger, &[1]), 1)),
        [(1, 0)]
    );
    assert!(sc.is_triggered(TaskId(1)));
    assert!(!sc.applies(Operator::Trigger, TaskId(1)), "running");
    sc.handle(ok(1), 2);
    // Its dependent runs once it succeeded, although 0 has not.
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Running);
    sc.handle(ok(2), 3);
    sc.handle(ok(3), 4);
    // 0 released and done: 1 is not queued again.
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[0]), 5)),
        [(0, 0)]
    );
    assert_eq!(
        sc.handle(ok(0), 6),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Succeeded);
}

#[test]
fn a_dependency_failing_later_does_not_skip_a_triggered_task() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (3, 0)]);
    sc.handle(op(Operator::Trigger, &[1]), 1);
    // Both slots are taken: it is queued, and launches once one frees up.
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Ready);
    assert_eq!(launched(&sc.handle(ok(3), 2)), [(1, 0)]);
    // 0 fails: 1 (running) is left alone, and 2 waits for 1.
    let a = sc.handle(fail(0, 0), 3);
    assert_eq!(a, [Action::GaveUp { task: TaskId(0) }]);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Running);
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Waiting);
    assert_eq!(launched(&sc.handle(ok(1), 4)), [(2, 0)]);
    assert_eq!(
        sc.handle(ok(2), 5),
        [Action::RunFinished(RunOutcome::Failed)]
    );
}

#[test]
fn a_queued_triggered_task_is_not_skipped_nor_queued_twice_when_its_dependency_ends() {
    // One slot: 0 runs, the triggered 1 waits in the queue.
    let p = plan(&[s(2)], &|t| if t == 1 { vec![0] } else { vec![] }, 1, None);
    let mut config = SchedulerConfig::for_plan(&p, 1);
    config.capacity = vec![ExecutorCapacity::cores(1)];
    let mut sc = Scheduler::new(&p, config);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    sc.handle(op(Operator::Trigger, &[1]), 1);
    assert_eq!(launched(&sc.handle(ok(0), 2)), [(1, 0)], "launched once");
    assert_eq!(
        sc.handle(ok(1), 3),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
    let mut sc = Scheduler::new(&p, {
        let mut c = SchedulerConfig::for_plan(&p, 1);
        c.capacity = vec![ExecutorCapacity::cores(1)];
        c
    });
    sc.handle(Event::Start, 0);
    sc.handle(op(Operator::Trigger, &[1]), 1);
    let a = sc.handle(fail(0, 0), 2);
    assert!(skipped(&a).is_empty(), "{a:?}");
    assert_eq!(launched(&a), [(1, 0)]);
}

#[test]
fn triggering_a_held_task_lifts_the_hold_and_a_retry_does_not_wait_for_dependencies() {
    let p = plan(
        &[s(1), S { retries: 1, ..s(1) }],
        &|t| if t == 1 { vec![0] } else { vec![] },
        1,
        None,
    );
    let mut sc = sched(&p);
    sc.handle(op(Operator::Hold, &[0, 1]), 0);
    assert!(launched(&sc.handle(Event::Start, 0)).is_empty());
    assert_eq!(
        launched(&sc.handle(op(Operator::Trigger, &[1]), 1)),
        [(1, 0)]
    );
    assert!(!sc.is_held(TaskId(1)), "the hold is lifted");
    assert!(sc.is_held(TaskId(0)));
    sc.handle(fail(1, 0), 2);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::RetryWait);
    assert_eq!(launched(&sc.handle(Event::Tick, 5_000)), [(1, 1)]);
}

#[test]
fn a_ready_held_task_can_be_triggered_and_a_ready_one_that_is_not_held_cannot() {
    let p = plan(&[s(4)], &no_deps, 1, None);
    let mut sc = sched(&p);
    sc.handle(op(Operator::Hold, &[3]), 0);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Ready);
    assert!(!sc.applies(Operator::Trigger, TaskId(2)), "queued already");
    assert!(!sc.applies(Operator::Trigger, TaskId(0)), "running");
    assert!(sc.applies(Operator::Trigger, TaskId(3)));
    sc.handle(op(Operator::Trigger, &[3]), 1);
    // Queued behind 2, first come first served.
    assert_eq!(launched(&sc.handle(ok(0), 2)), [(2, 0)]);
    assert_eq!(launched(&sc.handle(ok(1), 3)), [(3, 0)]);
    sc.handle(ok(2), 4);
    assert!(!sc.applies(Operator::Trigger, TaskId(2)), "finished");
}

#[test]
fn set_succeeded_readies_the_dependents_and_the_dependency_ending_changes_nothing() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(op(Operator::Hold, &[0]), 0);
    sc.handle(Event::Start, 0);
    assert!(sc.applies(Operator::SetSucceeded, TaskId(1)));
    let a = sc.handle(op(Operator::SetSucceeded, &[1]), 1);
    assert_eq!(
        a[0],
        Action::Set {
            task: TaskId(1),
            was: TaskState::Waiting,
            succeeded: true
        }
    );
    assert_eq!(launched(&a), [(2, 0)]);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Succeeded);
    sc.handle(ok(2), 2);
    sc.handle(ok(3), 3);
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[0]), 4)),
        [(0, 0)]
    );
    assert_eq!(
        sc.handle(ok(0), 5),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn set_succeeded_on_a_failed_task_runs_its_skipped_dependents_and_the_run_succeeds() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    // 3 held keeps the run live.
    sc.handle(op(Operator::Hold, &[3]), 0);
    sc.handle(Event::Start, 0);
    let a = sc.handle(fail(0, 0), 1);
    assert_eq!(skipped(&a), [1, 2]);
    let a = sc.handle(op(Operator::SetSucceeded, &[0]), 3);
    assert_eq!(
        a[0],
        Action::Set {
            task: TaskId(0),
            was: TaskState::Failed,
            succeeded: true
        }
    );
    assert!(a.contains(&Action::Reset {
        task: TaskId(1),
        was: TaskState::Skipped
    }));
    assert_eq!(launched(&a), [(1, 1)], "a new attempt");
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Waiting);
    sc.handle(
        Event::Finished {
            task: TaskId(1),
            attempt: 1,
            outcome: Outcome::Succeeded,
        },
        4,
    );
    sc.handle(
        Event::Finished {
            task: TaskId(2),
            attempt: 1,
            outcome: Outcome::Succeeded,
        },
        5,
    );
    assert_eq!(
        launched(&sc.handle(op(Operator::Release, &[3]), 6)),
        [(3, 0)]
    );
    assert_eq!(
        sc.handle(ok(3), 7),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn set_failed_skips_the_dependents_and_a_held_one_waits() {
    let p = plan(
        &[s(3), s(1)],
        &|t| match t {
            1 | 2 => vec![0],
            _ => vec![],
        },
        1,
        None,
    );
    let mut sc = sched(&p);
    sc.handle(op(Operator::Hold, &[0, 2]), 0);
    sc.handle(Event::Start, 0);
    assert!(sc.applies(Operator::SetFailed, TaskId(0)));
    let a = sc.handle(op(Operator::SetFailed, &[0]), 1);
    assert_eq!(
        a[..3],
        [
            Action::Set {
                task: TaskId(0),
                was: TaskState::Ready,
                succeeded: false
            },
            Action::GaveUp { task: TaskId(0) },
            Action::Skip {
                task: TaskId(1),
                because: Some(TaskId(0))
            },
        ]
    );
    assert_eq!(sc.task_state(TaskId(0)), TaskState::Failed);
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Waiting, "held: waits");
    sc.handle(ok(3), 2);
    assert_eq!(
        sc.handle(op(Operator::Release, &[2]), 3),
        [
            Action::Skip {
                task: TaskId(2),
                because: Some(TaskId(0))
            },
            Action::RunFinished(RunOutcome::Failed)
        ]
    );
}

#[test]
fn set_failed_on_a_succeeded_task_skips_its_queued_dependents() {
    // One slot: 1 waits in the queue behind 2 once 0 succeeded.
    let p = plan(&[s(3)], &|t| if t == 1 { vec![0] } else { vec![] }, 1, None);
    let mut config = SchedulerConfig::for_plan(&p, 1);
    config.capacity = vec![ExecutorCapacity::cores(1)];
    let mut sc = Scheduler::new(&p, config);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(2, 0)]);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Ready);
    let a = sc.handle(op(Operator::SetFailed, &[0]), 2);
    assert_eq!(skipped(&a), [1]);
    assert!(launched(&sc.handle(ok(2), 3)).is_empty(), "1 never runs");
    assert!(sc.is_finished());
}

#[test]
fn set_applies_to_tasks_that_do_not_run_and_not_to_group_members_or_running_ones() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    assert!(!sc.applies(Operator::SetSucceeded, TaskId(0)), "running");
    assert!(!sc.applies(Operator::SetFailed, TaskId(0)), "running");
    assert!(sc.applies(Operator::SetFailed, TaskId(2)), "waiting");
    sc.handle(ok(3), 1);
    assert!(sc.applies(Operator::SetFailed, TaskId(3)), "succeeded");
    assert!(!sc.applies(Operator::SetSucceeded, TaskId(3)));
    sc.handle(op(Operator::Hold, &[2]), 2);
    sc.handle(op(Operator::Kill, &[0]), 3);
    sc.handle(killed(0), 4);
    assert!(sc.applies(Operator::SetSucceeded, TaskId(0)), "failed");
    assert!(
        !sc.applies(Operator::SetFailed, TaskId(0)),
        "failed already"
    );
    assert!(sc.applies(Operator::SetSucceeded, TaskId(1)), "skipped");
    assert!(
        !sc.applies(Operator::SetSucceeded, TaskId(99)),
        "no such task"
    );
    sc.handle(op(Operator::Release, &[2]), 5);
    assert!(sc.is_finished());
    assert!(
        !sc.applies(Operator::SetSucceeded, TaskId(0)),
        "the run is over"
    );
}

#[test]
fn a_task_triggered_before_the_start_is_queued_at_the_start_once() {
    // As a resumed run replays its journal.
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(op(Operator::Trigger, &[2]), 0);
    // Queued first, it launches first.
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(2, 0), (0, 0)]);
    assert_eq!(launched(&sc.handle(ok(2), 1)), [(3, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 2)), [(1, 0)]);
    sc.handle(ok(3), 3);
    assert_eq!(
        sc.handle(ok(1), 4),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn a_held_task_whose_dependency_failed_runs_when_triggered() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(op(Operator::Hold, &[1]), 0);
    sc.handle(Event::Start, 0);
    // 0 fails: the held 1 waits to be skipped once released.
    assert!(skipped(&sc.handle(fail(0, 0), 1)).is_empty());
    assert!(sc.applies(Operator::Trigger, TaskId(1)));
    assert_eq!(
        launched(&sc.handle(op(Operator::Trigger, &[1]), 2)),
        [(1, 0)]
    );
    // Not skipped: it ran, and its dependent runs after it.
    assert_eq!(launched(&sc.handle(ok(1), 3)), [(2, 0)]);
    sc.handle(ok(2), 4);
    assert_eq!(
        sc.handle(ok(3), 5),
        [Action::RunFinished(RunOutcome::Failed)]
    );
}
