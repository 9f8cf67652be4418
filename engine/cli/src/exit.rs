//! Exit codes: an API, documented in the README and tested.

/// Everything worked.
pub(crate) const SUCCESS: u8 = 0;
/// The workflow ran and a task failed.
pub(crate) const TASK_FAILED: u8 = 1;
/// Invalid workflow, site file or arguments.
pub(crate) const INVALID: u8 = 2;
/// Could not reach the daemon, scheduler or store.
pub(crate) const UNREACHABLE: u8 = 3;
/// Interrupted (SIGINT/SIGTERM).
pub(crate) const INTERRUPTED: u8 = 130;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_documented_table() {
        assert_eq!(
            [SUCCESS, TASK_FAILED, INVALID, UNREACHABLE, INTERRUPTED],
            [0, 1, 2, 3, 130]
        );
    }
}
