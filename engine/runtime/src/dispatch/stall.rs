//! When a run is stalled (nothing runs or is ready, tasks unfinished):
//! told once per stall, again only after work resumed.

/// Tells a stall once: when the loop is idle with tasks unfinished, until
/// something is in flight again.
#[derive(Debug, Default)]
pub(super) struct StallWatch {
    announced: bool,
}

impl StallWatch {
    /// The unfinished tasks to announce, if this is a new stall.
    pub(super) fn check(&mut self, idle: bool, busy: bool, unfinished: u64) -> Option<u64> {
        if busy {
            self.announced = false;
        }
        if !idle || unfinished == 0 || self.announced {
            return None;
        }
        self.announced = true;
        Some(unfinished)
    }
}

#[cfg(test)]
mod tests {
    use super::StallWatch;

    #[test]
    fn a_stall_is_told_once_and_again_after_work_resumed() {
        let mut w = StallWatch::default();
        assert_eq!(w.check(false, true, 5), None, "busy: no stall");
        assert_eq!(
            w.check(true, false, 0),
            None,
            "nothing unfinished: the run ends"
        );
        assert_eq!(w.check(true, false, 5), Some(5));
        assert_eq!(w.check(true, false, 5), None, "the same stall, told once");
        assert_eq!(w.check(false, false, 5), None, "a timer or a preparation");
        assert_eq!(w.check(true, false, 5), None, "still the same stall");
        assert_eq!(w.check(false, true, 4), None, "a task runs again");
        assert_eq!(w.check(true, false, 3), Some(3), "a new stall");
    }
}
