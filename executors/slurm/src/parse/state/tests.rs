//! Tests of Slurm state parsing and its mapping to attempt statuses.

use super::*;
use AttemptStatus::{Cancelled, Error, Exited, Queued, Running, Signalled};
use SlurmState as S;

/// Every state with its long name and compact code, as squeue(1) lists them.
const TABLE: [(SlurmState, &str, &str); 24] = [
    (S::Pending, "PENDING", "PD"),
    (S::Configuring, "CONFIGURING", "CF"),
    (S::Running, "RUNNING", "R"),
    (S::Completing, "COMPLETING", "CG"),
    (S::Completed, "COMPLETED", "CD"),
    (S::Failed, "FAILED", "F"),
    (S::Cancelled, "CANCELLED", "CA"),
    (S::Timeout, "TIMEOUT", "TO"),
    (S::NodeFail, "NODE_FAIL", "NF"),
    (S::Preempted, "PREEMPTED", "PR"),
    (S::OutOfMemory, "OUT_OF_MEMORY", "OOM"),
    (S::BootFail, "BOOT_FAIL", "BF"),
    (S::Deadline, "DEADLINE", "DL"),
    (S::Suspended, "SUSPENDED", "S"),
    (S::Requeued, "REQUEUED", "RQ"),
    (S::RequeueHold, "REQUEUE_HOLD", "RH"),
    (S::RequeueFed, "REQUEUE_FED", "RF"),
    (S::Resizing, "RESIZING", "RS"),
    (S::Revoked, "REVOKED", "RV"),
    (S::Signaling, "SIGNALING", "SI"),
    (S::SpecialExit, "SPECIAL_EXIT", "SE"),
    (S::StageOut, "STAGE_OUT", "SO"),
    (S::Stopped, "STOPPED", "ST"),
    (S::ResvDelHold, "RESV_DEL_HOLD", "RD"),
];

#[test]
fn every_state_parses_from_its_long_name_and_its_code() {
    assert_eq!(TABLE.len(), SlurmState::KNOWN.len());
    for (state, long, code) in TABLE {
        assert_eq!(SlurmState::parse(long), state, "{long}");
        assert_eq!(SlurmState::parse(code), state, "{code}");
        assert_eq!(state.name(), long);
        assert_eq!(state.code(), Some(code));
        assert_eq!(state.to_string(), long);
        assert!(
            SlurmState::KNOWN.contains(&state),
            "{long} missing from KNOWN"
        );
    }
}

#[test]
fn names_and_codes_are_distinct() {
    let mut words: Vec<&str> = TABLE.iter().flat_map(|(_, l, c)| [*l, *c]).collect();
    words.sort_unstable();
    let before = words.len();
    words.dedup();
    assert_eq!(words.len(), before);
}

#[test]
fn only_the_first_word_counts_and_the_rest_is_other() {
    // sacct -X -n -P -o JobID,State,ExitCode: `448|CANCELLED by 0|0:0`.
    assert_eq!(SlurmState::parse("CANCELLED by 0"), S::Cancelled);
    assert_eq!(SlurmState::parse("  RUNNING \n"), S::Running);
    for raw in ["CANCELLED+", "running", "PEND", "", "WEIRD_NEW_STATE"] {
        let state = SlurmState::parse(raw);
        assert_eq!(state, S::Other(raw.to_owned()));
        assert_eq!(state.name(), raw);
        assert_eq!(state.code(), None);
    }
    assert_eq!(
        SlurmState::parse(" SOMETHING else "),
        S::Other("SOMETHING else".to_owned())
    );
}

#[test]
fn compact_codes_from_the_default_squeue_table() {
    // `squeue` as printed in OBSERVED.md; ST is the fifth column.
    let observed =
        "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)
                 2     batch  verify2     root PD       0:00      1 (Priority)
                 1     debug  verify1     root PD       0:00      1 (None)
";
    let states: Vec<SlurmState> = observed
        .lines()
        .skip(1)
        .map(|l| SlurmState::parse(l.split_whitespace().nth(4).unwrap()))
        .collect();
    assert_eq!(states, [S::Pending, S::Pending]);
    // `squeue --me -h -t all -O 'JobID:|,StateCompact:|,State:|,Reason:|,Name:'`
    let line = "417|CA|CANCELLED|None|tocancel";
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(SlurmState::parse(fields[1]), S::Cancelled);
    assert_eq!(SlurmState::parse(fields[2]), S::Cancelled);
}

fn error(message: &str) -> AttemptStatus {
    Error(message.to_owned())
}

#[test]
fn every_state_maps_to_an_attempt_status() {
    let expected = [
        (S::Pending, Queued),
        (S::Configuring, Queued),
        (S::Running, Running),
        (S::Completing, Running),
        (S::Completed, Exited(0)),
        (S::Failed, Exited(3)),
        (S::Cancelled, Cancelled),
        (S::Timeout, error("timed out (Slurm TIMEOUT)")),
        (S::NodeFail, error("node failure (Slurm NODE_FAIL)")),
        (S::Preempted, error("preempted (Slurm PREEMPTED)")),
        (S::OutOfMemory, error("out of memory (Slurm OUT_OF_MEMORY)")),
        (S::BootFail, error("node boot failure (Slurm BOOT_FAIL)")),
        (S::Deadline, error("missed its deadline (Slurm DEADLINE)")),
        (S::Suspended, Running),
        (S::Requeued, Queued),
        (S::RequeueHold, Queued),
        (S::RequeueFed, Queued),
        (S::Resizing, Running),
        (
            S::Revoked,
            error("revoked by its federation (Slurm REVOKED)"),
        ),
        (S::Signaling, Running),
        (S::SpecialExit, Queued),
        (S::StageOut, Running),
        (S::Stopped, Running),
        (S::ResvDelHold, Queued),
    ];
    assert_eq!(expected.len(), SlurmState::KNOWN.len());
    for (state, status) in expected {
        let exit = if state == S::Failed { (3, 0) } else { (0, 0) };
        assert_eq!(attempt_status(&state, Some(exit)), status, "{state}");
        if let Error(message) = &status {
            assert!(message.contains(state.name()), "{message}");
            assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
        }
    }
    assert_eq!(
        attempt_status(&S::Other("WEIRD".to_owned()), None),
        error("unknown Slurm state WEIRD")
    );
    assert_eq!(
        attempt_status(&S::Other("CANCELLED+".to_owned()), Some((0, 0))),
        error("unknown Slurm state CANCELLED+")
    );
}

#[test]
fn states_that_do_not_depend_on_the_exit_code_ignore_it() {
    for state in SlurmState::KNOWN {
        if matches!(state, S::Completed | S::Failed) {
            continue;
        }
        let without = attempt_status(&state, None);
        for exit in [(0, 0), (1, 0), (143, 0), (0, 9), (0, 15)] {
            assert_eq!(
                attempt_status(&state, Some(exit)),
                without,
                "{state} {exit:?}"
            );
        }
    }
}

#[test]
fn completed_takes_the_exit_code() {
    assert_eq!(attempt_status(&S::Completed, Some((0, 0))), Exited(0));
    assert_eq!(attempt_status(&S::Completed, None), Exited(0));
    assert_eq!(attempt_status(&S::Completed, Some((2, 0))), Exited(2));
}

#[test]
fn failed_is_an_exit_a_signal_or_an_error() {
    assert_eq!(attempt_status(&S::Failed, Some((7, 0))), Exited(7));
    assert_eq!(attempt_status(&S::Failed, Some((143, 0))), Exited(143));
    assert_eq!(
        attempt_status(&S::Failed, Some((0, 9))),
        Signalled("killed by SIGKILL (Slurm FAILED)".to_owned())
    );
    assert_eq!(
        attempt_status(&S::Failed, Some((0, 11))),
        Signalled("killed by SIGSEGV (Slurm FAILED)".to_owned())
    );
    assert_eq!(
        attempt_status(&S::Failed, Some((0, 1))),
        Signalled("killed by SIGHUP (Slurm FAILED)".to_owned())
    );
    assert_eq!(
        attempt_status(&S::Failed, Some((0, 31))),
        Signalled("killed by SIGSYS (Slurm FAILED)".to_owned())
    );
    assert_eq!(
        attempt_status(&S::Failed, Some((0, 53))),
        error("failed with exit code 0:53 (Slurm FAILED)")
    );
    assert_eq!(
        attempt_status(&S::Failed, Some((0, 0))),
        error("failed with exit code 0:0 (Slurm FAILED)")
    );
    assert_eq!(
        attempt_status(&S::Failed, None),
        error("failed without an exit code (Slurm FAILED)")
    );
}

#[test]
fn signal_names() {
    assert_eq!(signal_name(0), None);
    assert_eq!(signal_name(-1), None);
    assert_eq!(signal_name(i32::MIN), None);
    assert_eq!(signal_name(9), Some("SIGKILL"));
    assert_eq!(signal_name(15), Some("SIGTERM"));
    assert_eq!(signal_name(32), None);
}

/// The end states table of OBSERVED.md: (JobState, ExitCode) as scontrol
/// and `sacct -X` printed them, and what the attempt became.
#[test]
fn observed_end_states() {
    let cases = [
        // exit 0
        ("COMPLETED", "0:0", Exited(0)),
        // exit 3
        ("FAILED", "3:0", Exited(3)),
        // kill -9 $$ (scontrol)
        (
            "FAILED",
            "0:9",
            Signalled("killed by SIGKILL (Slurm FAILED)".to_owned()),
        ),
        // scancel while running: scontrol, then sacct
        ("CANCELLED", "143:0", Cancelled),
        ("CANCELLED by 0", "0:0", Cancelled),
        // scancel a held job
        ("CANCELLED", "0:0", Cancelled),
        // --time=1: COMPLETING for KillWait, then TIMEOUT (scontrol, sacct)
        ("COMPLETING", "0:0", Running),
        ("TIMEOUT", "0:15", error("timed out (Slurm TIMEOUT)")),
        ("TIMEOUT", "0:9", error("timed out (Slurm TIMEOUT)")),
        ("TIMEOUT", "0:0", error("timed out (Slurm TIMEOUT)")),
        // --output in a directory that does not exist
        (
            "FAILED",
            "0:53",
            error("failed with exit code 0:53 (Slurm FAILED)"),
        ),
        // array task 7 exits 7
        ("FAILED", "7:0", Exited(7)),
        // a failing srun step does not fail the job
        ("COMPLETED", "0:0", Exited(0)),
        // pending jobs, dependencies
        ("PENDING", "0:0", Queued),
        ("RUNNING", "0:0", Running),
    ];
    for (state, exit, expected) in cases {
        let exit = crate::parse::exit_code(exit);
        assert_eq!(
            attempt_status(&SlurmState::parse(state), exit),
            expected,
            "{state} {exit:?}"
        );
    }
}
