//! The scheduler's rules on small hand-built plans, with an explicit clock.

use super::state::TaskState;
use super::*;
use crate::{
    BackendConfig, CyclePoint, CycleSpec, ExecutorId, ExecutorSpec, LocalConfig, Plan, PlanBuilder,
    Resources, SlurmConfig, StepId, StepSpec, WorkflowInfo,
};

/// One step of a test plan: tasks, executor, cpus, retries, timeout (s), cycling.
struct S {
    tasks: u32,
    executor: u32,
    cpus: u32,
    retries: u32,
    timeout: Option<u64>,
    cycling: bool,
}

fn s(tasks: u32) -> S {
    S {
        tasks,
        executor: 0,
        cpus: 1,
        retries: 0,
        timeout: None,
        cycling: false,
    }
}

/// Builds a plan: executor 0 is local with `slots`, executor 1 is Slurm;
/// `deps(task)` lists each task's dependencies; cycling steps get `points`
/// points (point innermost) and `runahead`.
fn plan(steps: &[S], deps: &dyn Fn(u32) -> Vec<u32>, points: usize, runahead: Option<u32>) -> Plan {
    let executor = |name: &str, backend| ExecutorSpec {
        name: name.into(),
        backend,
        prologue: None,
        env: Vec::new(),
        container_runtime: None,
        bound_by: None,
    };
    let executors = vec![
        executor(
            "local",
            BackendConfig::Local(LocalConfig {
                slots: Some(2),
                ..LocalConfig::default()
            }),
        ),
        executor("hpc", BackendConfig::Slurm(SlurmConfig::default())),
    ];
    let mut next = 0;
    let specs: Vec<StepSpec> = steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let spec = StepSpec {
                name: format!("s{i}"),
                description: None,
                executor: ExecutorId(st.executor),
                for_each: Vec::new(),
                cycling: st.cycling,
                inputs: Vec::new(),
                after: Vec::new(),
                outputs: Vec::new(),
                resources: Resources {
                    cpus: st.cpus,
                    ..Resources::default()
                },
                retries: st.retries,
                timeout_seconds: st.timeout,
                pack: None,
                group: None,
                launcher: None,
                env: Vec::new(),
                container: None,
                model: None,
                code: Vec::new(),
                hooks: Vec::new(),
                tasks: next..next + st.tasks,
            };
            next += st.tasks;
            spec
        })
        .collect();
    let cycle = (points > 1).then(|| CycleSpec {
        start: "2000-01-01".into(),
        stop: "2000-01-01".into(),
        step: "P1Y".into(),
        runahead,
        points: (0..points)
            .map(|p| CyclePoint {
                label: format!("{}-01-01", 2000 + p),
                year: 2000 + p as i16,
                month: 1,
                day: 1,
            })
            .collect(),
    });
    let info = WorkflowInfo {
        name: "t".into(),
        description: None,
        file: None,
        dir: ".".into(),
        run_id: "r".into(),
    };
    let mut b = PlanBuilder::new(info, Vec::new(), cycle, executors, specs.clone());
    for spec in &specs {
        for t in spec.tasks.clone() {
            let mut d: Vec<TaskId> = deps(t).into_iter().map(TaskId).collect();
            b.push_task(
                StepId(specs.iter().position(|x| x.name == spec.name).unwrap() as u32),
                format!("task {t}"),
                &mut d,
            );
        }
    }
    b.finish()
}

fn no_deps(_: u32) -> Vec<u32> {
    Vec::new()
}

fn sched(p: &Plan) -> Scheduler {
    Scheduler::new(p, SchedulerConfig::for_plan(p, 2))
}

fn launched(actions: &[Action]) -> Vec<(u32, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Launch { task, attempt } => Some((task.0, *attempt)),
            _ => None,
        })
        .collect()
}

fn ok(t: u32) -> Event {
    Event::Finished {
        task: TaskId(t),
        attempt: 0,
        outcome: Outcome::Succeeded,
    }
}

fn fail(t: u32, attempt: u32) -> Event {
    Event::Finished {
        task: TaskId(t),
        attempt,
        outcome: Outcome::Failed {
            reason: "exit 1".into(),
        },
    }
}

#[test]
fn a_chain_runs_in_order_and_finishes() {
    let p = plan(
        &[s(1), s(1), s(1)],
        &|t| if t == 0 { vec![] } else { vec![t - 1] },
        1,
        None,
    );
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(1, 0)]);
    assert_eq!(launched(&sc.handle(ok(1), 2)), [(2, 0)]);
    assert_eq!(
        sc.handle(ok(2), 3),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
    assert!(sc.is_finished());
}

#[test]
fn a_gather_waits_for_every_producer() {
    let p = plan(
        &[
            S {
                executor: 1,
                ..s(3)
            },
            S {
                executor: 1,
                ..s(1)
            },
        ],
        &|t| if t == 3 { vec![0, 1, 2] } else { vec![] },
        1,
        None,
    );
    let mut sc = sched(&p);
    assert_eq!(
        launched(&sc.handle(Event::Start, 0)),
        [(0, 0), (1, 0), (2, 0)]
    );
    assert!(launched(&sc.handle(ok(0), 1)).is_empty());
    assert!(launched(&sc.handle(ok(2), 2)).is_empty());
    assert_eq!(launched(&sc.handle(ok(1), 3)), [(3, 0)]);
}

#[test]
fn local_slots_bound_concurrent_cpus_and_a_big_task_runs_alone() {
    let p = plan(
        &[s(3), S { cpus: 2, ..s(1) }, S { cpus: 8, ..s(1) }],
        &no_deps,
        1,
        None,
    );
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(2, 0)]);
    assert!(
        launched(&sc.handle(ok(1), 2)).is_empty(),
        "a 2-cpu task waits for both slots"
    );
    assert_eq!(launched(&sc.handle(ok(2), 3)), [(3, 0)]);
    assert_eq!(
        launched(&sc.handle(ok(3), 4)),
        [(4, 0)],
        "more cpus than slots: runs alone"
    );
}

#[test]
fn failures_are_retried_with_doubling_backoff_then_dependents_are_skipped() {
    let p = plan(
        &[S { retries: 2, ..s(1) }, s(1), s(1)],
        &|t| if t == 0 { vec![] } else { vec![t - 1] },
        1,
        None,
    );
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    let a = sc.handle(fail(0, 0), 10);
    assert_eq!(
        a,
        [
            Action::RetryAt {
                task: TaskId(0),
                attempt: 1,
                at: 1_010
            },
            Action::WakeAt(1_010)
        ]
    );
    assert!(
        launched(&sc.handle(Event::Tick, 1_009)).is_empty(),
        "not before its time"
    );
    assert_eq!(launched(&sc.handle(Event::Tick, 1_010)), [(0, 1)]);
    let a = sc.handle(fail(0, 1), 2_000);
    assert!(
        a.contains(&Action::RetryAt {
            task: TaskId(0),
            attempt: 2,
            at: 4_000
        }),
        "{a:?}"
    );
    assert_eq!(launched(&sc.handle(Event::Tick, 4_000)), [(0, 2)]);
    let a = sc.handle(fail(0, 2), 5_000);
    assert_eq!(
        a,
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
            Action::RunFinished(RunOutcome::Failed),
        ]
    );
    assert_eq!(sc.task_state(TaskId(2)), TaskState::Skipped);
}

#[test]
fn independent_branches_go_on_after_a_failure() {
    // 0 -> 1 and 2 -> 3; 0 fails.
    let p = plan(
        &[S {
            executor: 1,
            ..s(4)
        }],
        &|t| match t {
            1 => vec![0],
            3 => vec![2],
            _ => vec![],
        },
        1,
        None,
    );
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (2, 0)]);
    let a = sc.handle(fail(0, 0), 1);
    assert!(a.contains(&Action::Skip {
        task: TaskId(1),
        because: Some(TaskId(0))
    }));
    assert_eq!(launched(&sc.handle(ok(2), 2)), [(3, 0)]);
    assert_eq!(
        sc.handle(ok(3), 3),
        [Action::RunFinished(RunOutcome::Failed)]
    );
}

#[test]
fn fail_fast_cancels_the_rest() {
    let p = plan(
        &[
            S {
                executor: 1,
                ..s(3)
            },
            S {
                executor: 1,
                ..s(1)
            },
        ],
        &|t| if t == 3 { vec![1] } else { vec![] },
        1,
        None,
    );
    let mut config = SchedulerConfig::for_plan(&p, 2);
    config.fail_fast = true;
    let mut sc = Scheduler::new(&p, config);
    sc.handle(Event::Start, 0);
    let a = sc.handle(fail(0, 0), 1);
    assert!(a.contains(&Action::Kill {
        task: TaskId(1),
        attempt: 0,
        reason: KillReason::Cancelled
    }));
    assert!(a.contains(&Action::Kill {
        task: TaskId(2),
        attempt: 0,
        reason: KillReason::Cancelled
    }));
    assert!(a.contains(&Action::Skip {
        task: TaskId(3),
        because: None
    }));
    sc.handle(
        Event::Finished {
            task: TaskId(1),
            attempt: 0,
            outcome: Outcome::Killed,
        },
        2,
    );
    let a = sc.handle(
        Event::Finished {
            task: TaskId(2),
            attempt: 0,
            outcome: Outcome::Killed,
        },
        3,
    );
    assert_eq!(a, [Action::RunFinished(RunOutcome::Failed)]);
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Cancelled);
}

#[test]
fn the_timeout_clock_stops_while_the_backend_says_an_attempt_is_queued() {
    let p = plan(
        &[S {
            timeout: Some(10),
            ..s(1)
        }],
        &no_deps,
        1,
        None,
    );
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    let queued = Event::Queued {
        task: TaskId(0),
        attempt: 0,
    };
    assert!(sc.handle(queued, 1_000).is_empty());
    // Pending far past its timeout: not killed.
    assert!(
        sc.handle(Event::Tick, 10_000)
            .iter()
            .all(|a| !matches!(a, Action::Kill { .. }))
    );
    assert!(sc.handle(Event::Tick, 500_000).is_empty());
    // It starts; ten seconds of running later it is killed.
    let started = Event::Started {
        task: TaskId(0),
        attempt: 0,
    };
    assert_eq!(sc.handle(started, 600_000), [Action::WakeAt(610_000)]);
    assert!(
        sc.handle(Event::Tick, 609_999)
            .iter()
            .all(|a| !matches!(a, Action::Kill { .. }))
    );
    assert_eq!(
        sc.handle(Event::Tick, 610_000),
        [Action::Kill {
            task: TaskId(0),
            attempt: 0,
            reason: KillReason::Timeout
        }]
    );
}

#[test]
fn a_timeout_kills_the_attempt_and_counts_as_a_failure() {
    let p = plan(
        &[S {
            timeout: Some(10),
            retries: 1,
            ..s(1)
        }],
        &no_deps,
        1,
        None,
    );
    let mut sc = sched(&p);
    let a = sc.handle(Event::Start, 0);
    assert_eq!(
        a,
        [
            Action::Launch {
                task: TaskId(0),
                attempt: 0
            },
            Action::WakeAt(10_000)
        ]
    );
    // Started later: the deadline counts from the start.
    // (Timers are lazy: the stale launch deadline still wakes the runtime once,
    // and that tick announces the real one.)
    assert!(
        sc.handle(
            Event::Started {
                task: TaskId(0),
                attempt: 0
            },
            2_000
        )
        .is_empty()
    );
    assert_eq!(sc.handle(Event::Tick, 10_000), [Action::WakeAt(12_000)]);
    let a = sc.handle(Event::Tick, 12_000);
    assert_eq!(
        a,
        [Action::Kill {
            task: TaskId(0),
            attempt: 0,
            reason: KillReason::Timeout
        }]
    );
    let a = sc.handle(
        Event::Finished {
            task: TaskId(0),
            attempt: 0,
            outcome: Outcome::Killed,
        },
        12_100,
    );
    assert!(
        a.contains(&Action::RetryAt {
            task: TaskId(0),
            attempt: 1,
            at: 13_100
        }),
        "{a:?}"
    );
}

#[test]
fn cancelling_kills_what_runs_and_skips_the_rest() {
    let p = plan(
        &[
            S {
                executor: 1,
                ..s(1)
            },
            S {
                executor: 1,
                ..s(1)
            },
        ],
        &|t| if t == 1 { vec![0] } else { vec![] },
        1,
        None,
    );
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    let a = sc.handle(Event::Cancel, 5);
    assert_eq!(
        a,
        [
            Action::Kill {
                task: TaskId(0),
                attempt: 0,
                reason: KillReason::Cancelled
            },
            Action::Skip {
                task: TaskId(1),
                because: None
            },
        ]
    );
    let a = sc.handle(
        Event::Finished {
            task: TaskId(0),
            attempt: 0,
            outcome: Outcome::Killed,
        },
        6,
    );
    assert_eq!(a, [Action::RunFinished(RunOutcome::Cancelled)]);
}

#[test]
fn runahead_holds_points_beyond_the_oldest_unfinished_one() {
    // One cycling step on Slurm (no capacity limit), 5 points, runahead 1.
    let p = plan(
        &[S {
            executor: 1,
            cycling: true,
            ..s(5)
        }],
        &no_deps,
        5,
        Some(1),
    );
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);
    assert!(
        launched(&sc.handle(ok(1), 1)).is_empty(),
        "point 0 still unfinished"
    );
    assert_eq!(
        launched(&sc.handle(ok(0), 2)),
        [(2, 0), (3, 0)],
        "oldest is now point 2"
    );
    assert_eq!(launched(&sc.handle(ok(2), 3)), [(4, 0)]);
}

#[test]
fn previous_point_dependencies_chain_the_cycle() {
    // A cycling step needing its own previous point (`@-1`) and a gather after it.
    let p = plan(
        &[
            S {
                executor: 1,
                cycling: true,
                ..s(3)
            },
            S {
                executor: 1,
                ..s(1)
            },
        ],
        &|t| match t {
            1 => vec![0],
            2 => vec![1],
            3 => vec![0, 1, 2],
            _ => vec![],
        },
        3,
        Some(1),
    );
    let mut sc = sched(&p);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(1, 0)]);
    assert_eq!(launched(&sc.handle(ok(1), 2)), [(2, 0)]);
    assert_eq!(launched(&sc.handle(ok(2), 3)), [(3, 0)]);
}

#[test]
fn already_done_tasks_are_not_run_again() {
    let p = plan(
        &[s(1), s(1)],
        &|t| if t == 1 { vec![0] } else { vec![] },
        1,
        None,
    );
    let mut sc = sched(&p);
    assert!(sc.handle(Event::AlreadyDone(vec![TaskId(0)]), 0).is_empty());
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(1, 0)]);
    assert_eq!(
        sc.handle(ok(1), 1),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn already_failed_tasks_stay_failed_and_skip_their_dependents() {
    // 0 -> 1; 2 alone.
    let p = plan(
        &[s(1), s(1), s(1)],
        &|t| if t == 1 { vec![0] } else { vec![] },
        1,
        None,
    );
    let mut sc = sched(&p);
    let skipped = sc.handle(Event::AlreadyFailed(vec![TaskId(0)]), 0);
    assert_eq!(
        skipped,
        [Action::Skip {
            task: TaskId(1),
            because: Some(TaskId(0)),
        }]
    );
    assert_eq!(sc.task_state(TaskId(0)), TaskState::Failed);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(2, 0)]);
    assert_eq!(
        sc.handle(ok(2), 1),
        [Action::RunFinished(RunOutcome::Failed)]
    );
}

#[test]
fn stale_and_unknown_reports_are_ignored() {
    let p = plan(&[S { retries: 1, ..s(1) }], &no_deps, 1, None);
    let mut sc = sched(&p);
    sc.handle(Event::Start, 0);
    sc.handle(fail(0, 0), 1);
    // A late report of attempt 0, and one for a task that does not exist.
    assert!(sc.handle(fail(0, 0), 2).is_empty());
    assert!(sc.handle(ok(99), 2).is_empty());
    assert_eq!(sc.task_state(TaskId(0)), TaskState::RetryWait);
}

#[test]
fn an_empty_plan_finishes_at_once() {
    let p = plan(&[], &no_deps, 1, None);
    let mut sc = sched(&p);
    assert_eq!(
        sc.handle(Event::Start, 0),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn a_large_fan_out_runs_within_capacity() {
    // 1 setup -> 10,000 tasks -> 1 gather on a local executor with 2 slots.
    let n = 10_000;
    let p = plan(
        &[s(1), s(n), s(1)],
        &move |t| match t {
            0 => vec![],
            t if t <= n => vec![0],
            _ => (1..=n).collect(),
        },
        1,
        None,
    );
    let mut sc = sched(&p);
    let mut queue: Vec<u32> = launched(&sc.handle(Event::Start, 0))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let mut done = 0;
    let mut max_running = queue.len();
    while let Some(t) = queue.pop() {
        done += 1;
        let a = sc.handle(ok(t), done);
        queue.extend(launched(&a).into_iter().map(|(t, _)| t));
        max_running = max_running.max(queue.len());
        if done == u64::from(n) + 2 {
            assert_eq!(a.last(), Some(&Action::RunFinished(RunOutcome::Succeeded)));
        }
    }
    assert_eq!(done, u64::from(n) + 2);
    assert!(max_running <= 2);
}

#[test]
fn ready_tasks_are_announced_once_queued_and_not_while_held_by_runahead() {
    // Three tasks of 2 cpus on the 2-slot local executor: one at a time.
    let p = plan(&[S { cpus: 2, ..s(3) }], &no_deps, 1, None);
    let mut config = SchedulerConfig::for_plan(&p, 2);
    config.announce_ready = true;
    let mut sc = Scheduler::new(&p, config);
    let ready = |actions: &[Action]| -> Vec<u32> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Ready { task, .. } => Some(task.0),
                _ => None,
            })
            .collect()
    };
    let first = sc.handle(Event::Start, 0);
    assert_eq!(ready(&first), [0, 1, 2], "every queued task is announced");
    assert_eq!(launched(&first), [(0, 0)], "only capacity for one");
    let second = sc.handle(ok(0), 1);
    assert_eq!(ready(&second), Vec::<u32>::new(), "announced once");
    assert_eq!(launched(&second), [(1, 0)]);

    // Held by runahead: announced only when the window reaches its point.
    let p = plan(
        &[S {
            executor: 1,
            cycling: true,
            ..s(3)
        }],
        &no_deps,
        3,
        Some(0),
    );
    let mut config = SchedulerConfig::for_plan(&p, 2);
    config.announce_ready = true;
    let mut sc = Scheduler::new(&p, config);
    assert_eq!(ready(&sc.handle(Event::Start, 0)), [0]);
    assert_eq!(ready(&sc.handle(ok(0), 1)), [1]);

    // Without the option nothing is announced.
    let p = plan(&[s(2)], &no_deps, 1, None);
    let mut sc = sched(&p);
    assert_eq!(ready(&sc.handle(Event::Start, 0)), Vec::<u32>::new());
}

#[test]
fn adopted_attempts_hold_capacity_and_finish_like_launched_ones() {
    // Three 2-cpu tasks on the 2-slot local executor; task 1 is already running.
    let p = plan(&[S { cpus: 2, ..s(3) }], &no_deps, 1, None);
    let mut sc = sched(&p);
    assert!(
        sc.handle(Event::Adopted(vec![(TaskId(1), 4)]), 0)
            .is_empty()
    );
    assert_eq!(sc.task_state(TaskId(1)), TaskState::Running);
    assert_eq!(sc.attempt(TaskId(1)), 4);
    assert_eq!(
        launched(&sc.handle(Event::Start, 0)),
        Vec::<(u32, u32)>::new(),
        "no capacity left"
    );
    let finished = Event::Finished {
        task: TaskId(1),
        attempt: 4,
        outcome: Outcome::Succeeded,
    };
    assert_eq!(launched(&sc.handle(finished, 1)), [(0, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 2)), [(2, 0)]);
    assert_eq!(
        sc.handle(ok(2), 3),
        [Action::RunFinished(RunOutcome::Succeeded)]
    );
}

#[test]
fn capacity_and_cost_come_from_the_config_not_the_backend_kind() {
    // Two 3-cpu tasks on executor 1 (Slurm in the plan), which the config
    // gives 4 cores counted in cpus: one at a time.
    let p = plan(
        &[S {
            executor: 1,
            cpus: 3,
            ..s(2)
        }],
        &no_deps,
        1,
        None,
    );
    let config = SchedulerConfig::with_capacity(vec![
        ExecutorCapacity::UNLIMITED,
        ExecutorCapacity::cores(4),
    ]);
    let mut sc = Scheduler::new(&p, config);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(1, 0)]);

    // Executor 0 (local in the plan), unlimited by the config: both at once.
    let p = plan(&[S { cpus: 2, ..s(2) }], &no_deps, 1, None);
    let mut sc = Scheduler::new(&p, SchedulerConfig::with_capacity(Vec::new()));
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);

    // A limit counting tasks: 2 tasks of 8 cpus each fit in a limit of 2.
    let p = plan(&[S { cpus: 8, ..s(3) }], &no_deps, 1, None);
    let jobs = ExecutorCapacity {
        limit: Some(2),
        cost: TaskCost::One,
    };
    let mut sc = Scheduler::new(&p, SchedulerConfig::with_capacity(vec![jobs]));
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);
}

#[test]
fn for_plan_takes_each_executors_capacity_from_its_settings() {
    let p = plan(&[s(1)], &no_deps, 1, None);
    let config = SchedulerConfig::for_plan(&p, 8);
    assert_eq!(
        config.capacity,
        [ExecutorCapacity::cores(2), ExecutorCapacity::UNLIMITED],
        "local: its slots; Slurm: no limit here"
    );
    let mut unset = p.executors[0].clone();
    unset.backend = BackendConfig::Local(LocalConfig {
        slots: None,
        ..LocalConfig::default()
    });
    assert_eq!(unset.capacity(8), ExecutorCapacity::cores(8), "the cores");
    assert_eq!(
        unset.capacity(0),
        ExecutorCapacity::cores(1),
        "at least one"
    );
}

#[test]
fn every_rank_of_a_task_counts_its_cpus() {
    // Three tasks of 2 ranks x 1 cpu on 4 cores counted in cpus: two at a
    // time (before ranks counted, all three went out at once).
    let mut p = plan(&[S { cpus: 1, ..s(3) }], &no_deps, 1, None);
    p.steps[0].resources.tasks = 2;
    let config = SchedulerConfig::with_capacity(vec![ExecutorCapacity::cores(4)]);
    let mut sc = Scheduler::new(&p, config);
    assert_eq!(launched(&sc.handle(Event::Start, 0)), [(0, 0), (1, 0)]);
    assert_eq!(launched(&sc.handle(ok(0), 1)), [(2, 0)]);
}

/// An operator action on `tasks` (the operator and rerun tests).
fn op(op: Operator, tasks: &[u32]) -> Event {
    Event::Operator {
        op,
        tasks: tasks.iter().map(|&t| TaskId(t)).collect(),
    }
}

/// 0 -> 1 -> 2, and an independent 3 (the operator and rerun tests).
fn chain_and_one() -> Plan {
    plan(
        &[s(3), s(1)],
        &|t| match t {
            1 => vec![0],
            2 => vec![1],
            _ => vec![],
        },
        1,
        None,
    )
}

mod groups;
mod operator;
mod rerun;
mod trigger;
