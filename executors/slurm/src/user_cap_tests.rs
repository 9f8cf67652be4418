use super::*;
use crate::parse::JobId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A waker that counts its calls.
fn waker() -> (Arc<AtomicU32>, OnEnd) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    (
        calls,
        Arc::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }),
    )
}

fn wake(all: Vec<OnEnd>) -> usize {
    let n = all.len();
    for f in all {
        f();
    }
    n
}

#[test]
fn room_is_the_cap_less_our_jobs_and_the_users_others() {
    let mut u = UserJobs::default();
    assert_eq!(u.room(None), u32::MAX);
    assert_eq!(u.room(Some(3)), 0, "nothing before the first poll");
    assert_eq!(wake(u.seen(0)), 0);
    assert_eq!(u.room(Some(3)), 3);
    u.take(2);
    assert_eq!(u.room(Some(3)), 1);
    assert_eq!(wake(u.seen(1)), 0);
    assert_eq!(u.room(Some(3)), 0);
    // Over the cap (the user submitted by hand meanwhile): no room, no panic.
    assert_eq!(wake(u.seen(5)), 0);
    assert_eq!(u.room(Some(3)), 0);
    assert_eq!(wake(u.give_back(9)), 0);
    assert_eq!(u.room(Some(3)), 0, "others alone fill it");
    assert_eq!(wake(u.seen(0)), 0);
    assert_eq!(u.room(Some(3)), 3);
}

/// A simulation: two executors (two runs) with 10 attempts each share a cap
/// of 3; jobs end one per step, the user's other jobs come and go with the
/// polls. Admission takes what `room` gives and waits otherwise; the count
/// of the user's live jobs never passes the cap, and every attempt goes out.
#[test]
fn two_runs_sharing_a_cap_never_pass_it_and_all_go_out() {
    let cap = 3;
    let mut u = UserJobs::default();
    let _ = u.seen(0);
    let mut queued = [10u32, 10u32];
    let mut running: Vec<usize> = Vec::new(); // owner of each live job of ours
    let mut others = 0u32;
    let mut sent = [0u32, 0u32];
    let (calls, wake_fn) = waker();
    for step in 0..200 {
        // Each executor admits what fits, or waits.
        for (owner, q) in queued.iter_mut().enumerate() {
            let fit = u.room(Some(cap)).min(*q);
            u.take(fit);
            *q -= fit;
            sent[owner] += fit;
            running.extend(std::iter::repeat_n(owner, fit as usize));
            if *q > 0 {
                u.wait(owner as u64, cap, *q as usize, Arc::clone(&wake_fn));
            }
        }
        assert!(
            u32::try_from(running.len()).unwrap() + others <= cap,
            "step {step}: {} of ours and {others} others over {cap}",
            running.len()
        );
        // One of ours ends; every fifth step a poll sees the user's own
        // jobs change.
        if !running.is_empty() {
            running.remove(0);
            wake(u.give_back(1));
        }
        if step % 5 == 0 {
            others = u32::from(step % 10 == 0);
            let _ = wake(u.seen(others));
        }
        if queued == [0, 0] && running.is_empty() {
            break;
        }
    }
    assert_eq!(sent, [10, 10]);
    assert!(calls.load(Ordering::SeqCst) > 0, "waiters were woken");
}

#[test]
fn a_waiter_wakes_on_a_quarter_of_its_cap_all_it_holds_or_nothing_of_ours_left() {
    let mut u = UserJobs::default();
    let _ = u.seen(0);
    u.take(20);
    let (calls, w) = waker();
    u.wait(1, 20, 100, Arc::clone(&w));
    // One free of 20: not yet (a quarter is 5).
    assert_eq!(wake(u.give_back(1)), 0);
    assert_eq!(wake(u.give_back(3)), 0);
    assert_eq!(wake(u.give_back(1)), 1, "5 free");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Woken waiters leave the list.
    assert!(!u.has_waiters());
    assert_eq!(wake(u.give_back(1)), 0);
    // Holding 2: wakes when 2 fit.
    let mut u = UserJobs::default();
    let _ = u.seen(0);
    u.take(20);
    u.wait(1, 20, 2, Arc::clone(&w));
    assert_eq!(wake(u.give_back(1)), 0);
    assert_eq!(wake(u.give_back(1)), 1);
    // The user's other jobs hold all but one place and none of ours runs:
    // that one place is taken, rather than wait for a quarter.
    let mut u = UserJobs::default();
    assert_eq!(wake(u.seen(20)), 0);
    u.wait(1, 20, 100, Arc::clone(&w));
    assert_eq!(wake(u.seen(20)), 0, "no room");
    assert_eq!(wake(u.seen(19)), 1);
    // Forgotten (shut down): never woken.
    let mut u = UserJobs::default();
    let _ = u.seen(0);
    u.take(4);
    u.wait(1, 4, 1, Arc::clone(&w));
    u.forget(1);
    assert_eq!(wake(u.give_back(4)), 0);
    // Before the first poll nobody wakes; the first poll wakes them.
    let mut u = UserJobs::default();
    u.wait(1, 4, 1, w);
    assert_eq!(wake(u.give_back(0)), 0);
    assert_eq!(wake(u.seen(0)), 1);
}

#[test]
fn the_users_other_live_jobs_count_array_elements_and_het_components() {
    let out = "\
10|RUNNING|None
11|PENDING|Priority
12_0|RUNNING|None
12_[1-5%2]|PENDING|JobArrayTaskLimit
13_[0,2,7-9]|PENDING|Priority
14+0|PENDING|Resources
14+1|PENDING|Resources
15|COMPLETED|None
16_3|CANCELLED|None
17|COMPLETING|None
20|RUNNING|None
21_4|PENDING|Priority
garbage line
";
    let ours = |j: &JobRef| {
        *j == JobRef::Job(JobId(20))
            || *j
                == JobRef::ArrayTask {
                    array: JobId(21),
                    task: 4,
                }
    };
    // 10, 11, 12_0, five of 12, five of 13, two components, 17 (still
    // counted by Slurm while it completes).
    assert_eq!(count_others(out, ours), 1 + 1 + 1 + 5 + 5 + 2 + 1);
    assert_eq!(count_others("", |_| false), 0);
}

#[test]
fn array_expressions_count_their_indices() {
    assert_eq!(indices("4-9%2"), 6);
    assert_eq!(indices("1,3,5-7"), 5);
    assert_eq!(indices("0-10:5"), 3);
    assert_eq!(indices("7"), 1);
    assert_eq!(indices("9-4"), 1);
}
