//! The machine's cores shared by every executor one factory builds (the
//! daemon: all its runs at once), handed out fairly.
//!
//! Each run's scheduler still keeps to its own executor's `slots`; the pool
//! adds the limit of the machine across runs. An attempt that does not fit
//! waits in its executor's line; when cores come free, the lines are served
//! in turn (round robin), so a run of two thousand tasks does not hold back
//! a run of three that came later. An attempt that asks for more cores than
//! the pool has runs alone, when the whole pool is free.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// Cores shared by executors; see the module documentation.
#[derive(Debug)]
pub struct SlotPool {
    total: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    free: u32,
    /// Each waiting executor's line: cores asked and where to say yes.
    lines: HashMap<u64, VecDeque<(u32, oneshot::Sender<()>)>>,
    /// Executors with a line, in the order they are served.
    turn: VecDeque<u64>,
    next_owner: u64,
}

/// Cores held by one attempt; given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    pool: Arc<SlotPool>,
    cpus: u32,
}

/// A place in line; if given up after the pool said yes (the waiting
/// future dropped in between), the cores go back.
struct Wait {
    pool: Arc<SlotPool>,
    cpus: u32,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.pool.release(self.cpus);
            }
        }
    }
}

impl Permit {
    /// One permit per entry of `sizes`, out of this one (the last takes
    /// what is left: the pool counts an attempt bigger than itself as the
    /// whole pool).
    pub(crate) fn split(mut self, sizes: &[u32]) -> Vec<Permit> {
        let mut out = Vec::with_capacity(sizes.len());
        for (i, &size) in sizes.iter().enumerate() {
            let take = if i + 1 == sizes.len() {
                self.cpus
            } else {
                size.min(self.cpus)
            };
            self.cpus -= take;
            out.push(Permit {
                pool: Arc::clone(&self.pool),
                cpus: take,
            });
        }
        out
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.pool.release(self.cpus);
    }
}

impl SlotPool {
    /// A pool of `total` cores (at least 1).
    pub fn new(total: u32) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Self {
            total,
            state: Mutex::new(State {
                free: total,
                ..State::default()
            }),
        })
    }

    /// A pool of this machine's cores.
    pub fn of_this_machine() -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::new(u32::try_from(cores).unwrap_or(u32::MAX))
    }

    /// Its size.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Cores free now.
    pub fn free(&self) -> u32 {
        self.lock().free
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new owner (an executor) for [`Self::try_acquire`] and [`Self::acquire`].
    pub(crate) fn owner(&self) -> u64 {
        let mut state = self.lock();
        state.next_owner += 1;
        state.next_owner
    }

    fn size(&self, cpus: u32) -> u32 {
        cpus.clamp(1, self.total)
    }

    /// Cores for an attempt now, if they are free and no one waits for them.
    pub(crate) fn try_acquire(self: &Arc<Self>, cpus: u32) -> Option<Permit> {
        let cpus = self.size(cpus);
        let mut state = self.lock();
        if !state.turn.is_empty() || state.free < cpus {
            return None;
        }
        state.free -= cpus;
        Some(Permit {
            pool: Arc::clone(self),
            cpus,
        })
    }

    /// Cores for an attempt of `owner`, once it is its turn. Dropping the
    /// future gives up its place.
    pub(crate) async fn acquire(self: &Arc<Self>, owner: u64, cpus: u32) -> Permit {
        let cpus = self.size(cpus);
        let rx = {
            let mut state = self.lock();
            let (tx, rx) = oneshot::channel();
            let line = state.lines.entry(owner).or_default();
            line.push_back((cpus, tx));
            if line.len() == 1 {
                state.turn.push_back(owner);
            }
            rx
        };
        let mut wait = Wait {
            pool: Arc::clone(self),
            cpus,
            rx: Some(rx),
        };
        self.grant();
        if let Some(rx) = wait.rx.as_mut() {
            // The sender lives in the pool until it says yes.
            let _ = rx.await;
        }
        wait.rx = None;
        Permit {
            pool: Arc::clone(self),
            cpus,
        }
    }

    fn release(&self, cpus: u32) {
        self.lock().free += cpus;
        self.grant();
    }

    /// Serves the lines in turn while the first in line fits.
    fn grant(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        while let Some(owner) = state.turn.pop_front() {
            let Some(line) = state.lines.get_mut(&owner) else {
                continue;
            };
            match line.front() {
                None => {
                    state.lines.remove(&owner);
                    continue;
                }
                Some(&(cpus, _)) if cpus > state.free => {
                    // Its turn stays first: a big attempt is not overtaken
                    // forever by small ones.
                    state.turn.push_front(owner);
                    return;
                }
                Some(_) => {}
            }
            let Some((cpus, tx)) = line.pop_front() else {
                continue;
            };
            if line.is_empty() {
                state.lines.remove(&owner);
            } else {
                state.turn.push_back(owner);
            }
            if tx.send(()).is_ok() {
                state.free -= cpus;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether `fut` is done after the runtime has had a moment.
    async fn done<T>(fut: &mut (impl std::future::Future<Output = T> + Unpin)) -> Option<T> {
        tokio::time::timeout(Duration::from_millis(20), fut)
            .await
            .ok()
    }

    #[tokio::test]
    async fn lines_are_served_in_turn_not_first_come_first_served() {
        let pool = SlotPool::new(1);
        let (big, small) = (pool.owner(), pool.owner());
        let first = pool.try_acquire(1);
        assert!(first.is_some() && pool.try_acquire(1).is_none());
        let mut big_run: Vec<_> = (0..3).map(|_| Box::pin(pool.acquire(big, 1))).collect();
        // Polled once, so that each takes its place in line.
        for f in &mut big_run {
            assert!(done(f).await.is_none());
        }
        let mut late = Box::pin(pool.acquire(small, 1));
        assert!(done(&mut late).await.is_none());
        drop(first);
        // The big run's first, then the late run, then the big run again.
        let p = done(&mut big_run[0]).await;
        assert!(p.is_some());
        assert!(done(&mut late).await.is_none());
        drop(p);
        let p = done(&mut late).await;
        assert!(p.is_some(), "the late run's task went second");
        assert!(done(&mut big_run[1]).await.is_none());
        drop(p);
        assert!(done(&mut big_run[1]).await.is_some());
    }

    #[tokio::test]
    async fn an_attempt_bigger_than_the_pool_runs_alone_and_given_up_places_free_their_cores() {
        let pool = SlotPool::new(2);
        let owner = pool.owner();
        let one = pool.try_acquire(1);
        let mut huge = Box::pin(pool.acquire(owner, 8));
        assert!(done(&mut huge).await.is_none());
        // Someone waits: no one jumps the line.
        assert!(pool.try_acquire(1).is_none());
        drop(one);
        let huge = done(&mut huge).await;
        assert!(huge.is_some());
        assert_eq!(pool.free(), 0);
        drop(huge);
        assert_eq!(pool.free(), 2);
        // A waiter that gave up its place (its future dropped) takes nothing.
        let held = pool.try_acquire(2);
        let mut gone = Box::pin(pool.acquire(owner, 1));
        assert!(done(&mut gone).await.is_none());
        drop(gone);
        drop(held);
        assert_eq!(pool.free(), 2);
        // Nor one dropped after it was said yes but before it looked.
        let held = pool.try_acquire(2);
        let mut late = Box::pin(pool.acquire(owner, 2));
        assert!(done(&mut late).await.is_none());
        drop(held);
        assert_eq!(pool.free(), 0, "granted to the waiter");
        drop(late);
        assert_eq!(pool.free(), 2);
        assert!(pool.try_acquire(2).is_some());
    }

    #[tokio::test]
    async fn a_group_takes_its_cores_at_once_and_gives_each_members_back() {
        let pool = SlotPool::new(4);
        let owner = pool.owner();
        let one = pool.try_acquire(1);
        // Members of 2 + 2 cores: not 3 of them now, all 4 later.
        assert!(pool.try_acquire(4).is_none());
        let mut both = Box::pin(pool.acquire(owner, 4));
        assert!(done(&mut both).await.is_none());
        drop(one);
        let both = done(&mut both).await.unwrap();
        let mut parts = both.split(&[2, 2]);
        assert_eq!(pool.free(), 0);
        parts.pop();
        assert_eq!(pool.free(), 2, "one member ended");
        drop(parts);
        assert_eq!(pool.free(), 4);
    }
}
