//! Operator reruns in the scheduler.

use super::*;

fn rerun(tasks: &[u32], downstream: bool) -> Event {
    op(Operator::Rerun { downstream }, tasks)
}

fn done(t: u32, attempt: u32) -> Event {
    Event::Finished {
        task: TaskId(t),
        attempt,
        outcome: Outcome::Succeeded,
    }
}

fn resets(actions: &[Action]) -> Vec<(u32, TaskState)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reset { task, was } => Some((task.0, *was)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_finished_task_runs_again_as_a_new_attempt_and_a_running_or_waiting_one_is_refused() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (3, 0)]);
    let r = Operator::Rerun { downstream: false };
    assert!(!sc.applies(r, TaskId(0)), "a running task is not rerun");
    assert!(!sc.applies(r, TaskId(1)), "nor a waiting one");
    sc.handle(ok(3), 1);
    assert!(sc.applies(r, TaskId(3)));
    let actions = sc.handle(rerun(&[3], false), 2);
    assert_eq!(resets(&actions), [(3, TaskState::Succeeded)]);
    assert_eq!(launched(&actions), [(3, 1)], "a new attempt");
    assert_eq!(sc.attempt(TaskId(3)), 1);
    sc.handle(done(3, 1), 3);
    assert_eq!(sc.task_state(TaskId(3)), TaskState::Succeeded);
}

#[test]
fn a_rerun_makes_unfinished_dependents_wait_and_kills_and_reruns_running_ones() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    sc.handle(ok(0), 1);
    // 1 runs on 0's result when 0 is rerun: 1 is killed and waits for 0.
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Running);
    let actions = sc.handle(rerun(&[0], false), 2);
    assert!(actions.contains(&Action::Kill {
        task: TaskId(1),
        attempt: 0,
        reason: KillReason::Rerun,
    }));
    assert_eq!(
        resets(&actions),
        [(0, TaskState::Succeeded), (1, TaskState::Running)]
    );
    assert!(launched(&actions).is_empty(), "1 and 3 fill both slots");
    // 1's killed attempt ends: it waits (not failed), as a new attempt.
    let actions = sc.handle(
        Event::Finished {
            task: TaskId(1),
            attempt: 0,
            outcome: Outcome::Killed,
        },
        3,
    );
    assert_eq!(launched(&actions), [(0, 1)]);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Waiting);
    assert_eq!(sc.attempt(TaskId(1)), 1);
    // 0's rerun succeeds: 1 runs again, then 2, and the run succeeds.
    assert_eq!(launched(&sc.handle(done(0, 1), 4)), [(1, 1)]);
    assert_eq!(launched(&sc.handle(done(1, 1), 5)), [(2, 0)]);
    sc.handle(ok(3), 6);
    assert_eq!(
        sc.handle(ok(2), 7),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn downstream_reruns_finished_dependents_and_without_it_they_stay() {
    // 0 -> 1, 0 -> 2, all finished but an independent 3 keeps the run live.
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
    sc.handle(Event::Start, 0);
    sc.handle(ok(0), 1);
    sc.handle(ok(1), 2);
    sc.handle(ok(2), 3);
    let alone = sc.handle(rerun(&[0], false), 4);
    assert_eq!(resets(&alone), [(0, TaskState::Succeeded)]);
    sc.handle(done(0, 1), 5);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Succeeded);
    assert_eq!(
        sc.rerun_closure(&[TaskId(0)], true),
        [TaskId(0), TaskId(1), TaskId(2)]
    );
    let actions = sc.handle(rerun(&[0], true), 6);
    assert_eq!(
        resets(&actions),
        [
            (0, TaskState::Succeeded),
            (1, TaskState::Succeeded),
            (2, TaskState::Succeeded)
        ]
    );
    assert_eq!(launched(&actions), [(0, 2)]);
    // Two slots, 3 holds one.
    assert_eq!(launched(&sc.handle(done(0, 2), 7)), [(1, 1)]);
    assert_eq!(launched(&sc.handle(done(1, 1), 8)), [(2, 1)]);
}

#[test]
fn rerunning_a_failed_task_runs_its_skipped_dependents_and_the_run_can_succeed() {
    let p = chain_and_one();
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    let actions = sc.handle(fail(0, 0), 1);
    assert!(actions.contains(&Action::GaveUp { task: TaskId(0) }));
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Skipped);
    let actions = sc.handle(rerun(&[0], false), 2);
    assert_eq!(
        resets(&actions),
        [
            (0, TaskState::Failed),
            (1, TaskState::Skipped),
            (2, TaskState::Skipped)
        ]
    );
    assert_eq!(launched(&actions), [(0, 1)]);
    assert_eq!(launched(&sc.handle(done(0, 1), 3)), [(1, 1)]);
    sc.handle(done(1, 1), 4);
    sc.handle(ok(3), 5);
    assert_eq!(
        sc.handle(
            Event::Finished {
                task: TaskId(2),
                attempt: 1,
                outcome: Outcome::Succeeded
            },
            6
        ),
        [Action::RunFinished(RunOutcome::Succeeded)],
        "the failure was rerun away"
    );
}

#[test]
fn a_rerun_counts_its_retries_afresh_and_a_reset_task_with_a_failed_dependency_is_skipped() {
    // 0 (retries 1) and 1 -> 2 with 1 failed: rerunning 2 skips it again.
    let p = plan(
        &[S { retries: 1, ..s(1) }, s(1), s(1), s(1)],
        &|t| match t {
            2 => vec![1],
            _ => vec![],
        },
        1,
        None,
    );
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    sc.handle(fail(1, 0), 1);
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Skipped);
    sc.handle(fail(0, 0), 1);
    sc.handle(Event::Tick, 5_000);
    sc.handle(fail(0, 1), 5_001);
    assert_eq!(sc.task_state(TaskId(0)), TaskState::Failed);
    let actions = sc.handle(rerun(&[0], false), 5_002);
    assert_eq!(launched(&actions), [(0, 2)]);
    let actions = sc.handle(fail(0, 2), 5_003);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::RetryAt { attempt: 3, .. })),
        "the rerun has its retry again: {actions:?}"
    );
    let actions = sc.handle(rerun(&[2], false), 5_005);
    assert!(actions.contains(&Action::Skip {
        task: TaskId(2),
        because: Some(TaskId(1)),
    }));
    assert!(launched(&actions).is_empty());
}
