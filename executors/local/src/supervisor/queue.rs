//! The attempts a supervisor holds beyond its cores and GPUs, and what the
//! started ones take of them: an attempt starts, in order, once its cores
//! fit under `Launch::slots` (one larger than all of them when none is in
//! use) and as many of its executor's GPU devices as it asks for are free;
//! those devices are its own until it ends. The cores and devices of an
//! earlier supervisor's attempt that its executor adopted are held too
//! ([`Queue::hold`]) until the executor says it has ended.

use crate::wire::Launch;
use std::collections::{HashMap, VecDeque};

/// Attempts handed over beyond the cores or GPUs: they start here, in
/// order, the moment an attempt ends, without waiting for the executor to
/// hear of the end and send the next.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) waiting: VecDeque<Launch>,
    in_use: u32,
    /// The cores of each attempt started (or starting).
    costs: HashMap<(u32, u32), u32>,
    /// The GPU devices of each attempt started (or starting).
    devices: HashMap<(u32, u32), Vec<u32>>,
}

/// What the first waiting attempt can do now.
#[derive(Debug)]
pub(crate) enum Next {
    /// Nothing waits, or the first must wait on.
    Wait,
    /// Start it, with these GPU devices.
    Start(Launch, Vec<u32>),
    /// It asks for more GPUs than its executor has: it can never start.
    Refuse(Launch, String),
}

impl Queue {
    /// Takes the first waiting attempt if it can start now, and what it takes.
    pub(crate) fn next(&mut self) -> Next {
        let Some(first) = self.waiting.front() else {
            return Next::Wait;
        };
        let gpus = &first.extra.gpus;
        let wanted = gpus.count as usize;
        if wanted > gpus.devices.len() {
            let why = format!(
                "it asks for {} GPU(s) and its executor has {} ({:?})",
                gpus.count,
                gpus.devices.len(),
                gpus.devices
            );
            return match self.waiting.pop_front() {
                Some(launch) => Next::Refuse(launch, why),
                None => Next::Wait,
            };
        }
        let cost = first.cost.max(1);
        let cores = first.slots == 0 || self.in_use == 0 || self.in_use + cost <= first.slots;
        let free: Vec<u32> = gpus
            .devices
            .iter()
            .copied()
            .filter(|d| !self.devices.values().any(|held| held.contains(d)))
            .take(wanted)
            .collect();
        if !cores || free.len() < wanted {
            return Next::Wait;
        }
        let Some(launch) = self.waiting.pop_front() else {
            return Next::Wait;
        };
        self.in_use += cost;
        self.costs.insert(launch.key, cost);
        if !free.is_empty() {
            self.devices.insert(launch.key, free.clone());
        }
        Next::Start(launch, free)
    }

    /// Counts `cost` cores and the GPU `devices` as taken by `key`, an
    /// attempt this supervisor did not start (an earlier one's, adopted),
    /// until [`Queue::release`].
    pub(crate) fn hold(&mut self, key: (u32, u32), cost: u32, devices: Vec<u32>) {
        self.release(key);
        self.in_use += cost;
        self.costs.insert(key, cost);
        if !devices.is_empty() {
            self.devices.insert(key, devices);
        }
    }

    /// Frees what an attempt that ended (or failed to start) took.
    pub(crate) fn release(&mut self, key: (u32, u32)) {
        self.release_cores(key);
        self.devices.remove(&key);
    }

    /// Frees the cores of an attempt whose shell has ended, before what it
    /// left behind is killed and its logs are read to their end: the next
    /// attempt starts meanwhile. Its GPUs wait for [`Queue::release`]
    /// (an orphan may still hold one).
    pub(crate) fn release_cores(&mut self, key: (u32, u32)) {
        if let Some(cost) = self.costs.remove(&key) {
            self.in_use -= cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::{Extra, Gpus};

    fn launch(task: u32, gpus: u32) -> Launch {
        Launch {
            key: (task, 0),
            cost: 1,
            slots: 0,
            script: String::new(),
            env: Vec::new(),
            workdir: "/".into(),
            stdout: "/o".into(),
            stderr: "/e".into(),
            extra: Box::new(Extra {
                gpus: Gpus {
                    count: gpus,
                    devices: vec![4, 7, 9],
                    ..Gpus::default()
                },
                ..Extra::default()
            }),
        }
    }

    fn started(q: &mut Queue) -> Option<((u32, u32), Vec<u32>)> {
        match q.next() {
            Next::Start(l, d) => Some((l.key, d)),
            Next::Wait => None,
            Next::Refuse(l, why) => panic!("{:?} refused: {why}", l.key),
        }
    }

    #[test]
    fn an_ended_shell_frees_its_cores_at_once_and_its_gpus_only_when_released() {
        let mut q = Queue::default();
        let one_slot = |task, gpus| {
            let mut l = launch(task, gpus);
            l.slots = 1;
            l
        };
        q.waiting
            .extend([one_slot(1, 2), one_slot(2, 0), one_slot(3, 2)]);
        assert_eq!(started(&mut q), Some(((1, 0), vec![4, 7])));
        assert_eq!(started(&mut q), None, "one core");
        q.release_cores((1, 0));
        assert_eq!(started(&mut q), Some(((2, 0), vec![])));
        q.release_cores((2, 0));
        assert_eq!(started(&mut q), None, "4 and 7 are still held by 1");
        q.release((1, 0));
        assert_eq!(started(&mut q), Some(((3, 0), vec![4, 7])));
    }

    #[test]
    fn gpus_are_never_shared_and_free_again_when_their_attempt_ends() {
        let mut q = Queue::default();
        q.waiting.extend([launch(1, 2), launch(2, 2), launch(3, 1)]);
        assert_eq!(started(&mut q), Some(((1, 0), vec![4, 7])));
        // Two more do not fit on the one device left: it waits, and so does
        // the one behind it (in order).
        assert_eq!(started(&mut q), None);
        q.release((1, 0));
        assert_eq!(started(&mut q), Some(((2, 0), vec![4, 7])));
        assert_eq!(started(&mut q), Some(((3, 0), vec![9])));
        assert!(matches!(q.next(), Next::Wait));
    }

    #[test]
    fn what_an_adopted_attempt_holds_is_not_handed_out_until_released() {
        let mut q = Queue::default();
        q.hold((9, 0), 1, vec![4, 7]);
        q.waiting.extend([launch(1, 1), launch(2, 1)]);
        assert_eq!(started(&mut q), Some(((1, 0), vec![9])));
        assert_eq!(started(&mut q), None, "4 and 7 are held");
        q.release((9, 0));
        assert_eq!(started(&mut q), Some(((2, 0), vec![4])));
    }

    #[test]
    fn more_gpus_than_the_executor_has_are_refused_not_held_for_ever() {
        let mut q = Queue::default();
        q.waiting.extend([launch(1, 4), launch(2, 0)]);
        match q.next() {
            Next::Refuse(l, why) => {
                assert_eq!(l.key, (1, 0));
                assert!(why.contains("asks for 4 GPU(s)"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(started(&mut q), Some(((2, 0), vec![])));
    }

    #[test]
    fn a_group_batch_that_fits_the_free_cores_starts_whole_and_in_order() {
        // What the scheduler relies on for a coupling-group instance: sent
        // only when its members fit the free cores, they all start at once,
        // in batch order; a batch sent while cores were held would start
        // only its first member (which is why it is not sent then).
        let member = |task| Launch {
            slots: 2,
            ..launch(task, 0)
        };
        let mut q = Queue::default();
        q.waiting.extend([member(1), member(2)]);
        assert_eq!(started(&mut q), Some(((1, 0), vec![])));
        assert_eq!(started(&mut q), Some(((2, 0), vec![])));
        let mut q = Queue::default();
        q.hold((9, 0), 1, Vec::new());
        q.waiting.extend([member(1), member(2)]);
        assert_eq!(started(&mut q), Some(((1, 0), vec![])));
        assert_eq!(started(&mut q), None, "the second member would wait");
    }
}
