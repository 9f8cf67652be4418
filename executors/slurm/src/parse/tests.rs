//! Tests of the sbatch, squeue, sacct and status file parsers on what Slurm
//! 22.05.8 printed (OBSERVED.md).

use super::*;
use SlurmState as S;

/// Keeps the `|`-separated columns `cols` of each line of `text`: turns a
/// verbatim sample of a wider format into the format a parser reads.
fn project(text: &str, cols: &[usize]) -> String {
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let kept: Vec<&str> = cols.iter().map(|&c| fields[c]).collect();
            kept.join("|") + "\n"
        })
        .collect()
}

fn job(id: u32) -> JobRef {
    JobRef::Job(JobId(id))
}

fn task(array: u32, task: u32) -> JobRef {
    JobRef::ArrayTask {
        array: JobId(array),
        task,
    }
}

#[test]
fn sbatch_parsable_prints_the_id() {
    // `sbatch --parsable ... job.sh` and `sbatch --parsable --array=0-9%4 ...`
    assert_eq!(parse_sbatch_parsable("2\n"), Ok(JobId(2)));
    assert_eq!(parse_sbatch_parsable("426\n"), Ok(JobId(426)));
    assert_eq!(parse_sbatch_parsable("426"), Ok(JobId(426)));
    // `id;cluster` when a cluster is named.
    assert_eq!(parse_sbatch_parsable("426;cluster\n"), Ok(JobId(426)));
    assert_eq!(parse_sbatch_parsable("426;cluster\r\n"), Ok(JobId(426)));
    // A site's banner before the id.
    assert_eq!(
        parse_sbatch_parsable("welcome to the cluster\n\n427\n\n"),
        Ok(JobId(427))
    );
    assert_eq!(parse_sbatch_parsable("4294967295\n"), Ok(JobId(u32::MAX)));
}

#[test]
fn anything_else_from_sbatch_is_an_error_naming_the_text() {
    for text in [
        // Without --parsable.
        "Submitted batch job 1\n",
        "",
        "\n",
        "garbage\n",
        "-1\n",
        "+5\n",
        "42x\n",
        "4294967296\n",
        ";cluster\n",
        "426_1\n",
        // A submit error that ended up on stdout.
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n",
    ] {
        let message = parse_sbatch_parsable(text).unwrap_err().to_string();
        assert_eq!(
            message,
            format!("sbatch --parsable printed {text:?}, not a job id")
        );
        assert!(message.starts_with("sbatch"), "{message}");
    }
    let e = parse_sbatch_parsable("garbage\n").unwrap_err();
    assert!(e.message().contains("\"garbage\\n\""), "{e}");
}

#[test]
fn job_refs() {
    assert_eq!(JobRef::parse("426"), Some(job(426)));
    assert_eq!(JobRef::parse("426_7"), Some(task(426, 7)));
    assert_eq!(
        JobRef::parse("426_[4-9%4]"),
        Some(JobRef::ArrayPending {
            array: JobId(426),
            tasks: "4-9%4".to_owned()
        })
    );
    assert_eq!(
        JobRef::parse("12_[1,3,5-7]"),
        Some(JobRef::ArrayPending {
            array: JobId(12),
            tasks: "1,3,5-7".to_owned()
        })
    );
    for bad in [
        "",
        "JobID",
        "445.batch",
        "447.1",
        "426_",
        "_7",
        "426_x",
        "426_[]",
        "426_[4-9",
        "426_[a]",
        "12+0",
        " 426",
        "-1",
        "426_7_1",
    ] {
        assert_eq!(JobRef::parse(bad), None, "{bad:?}");
    }
    for text in ["426", "426_7", "426_[4-9%4]"] {
        assert_eq!(JobRef::parse(text).unwrap().to_string(), text);
    }
}

#[test]
fn squeue_rows() {
    // `squeue --me -h -o "%i|%j|%T|%r|%M|%l|%D|%C|%P|%N"`, verbatim; %i|%T|%r
    // are columns 0, 2 and 3.
    let observed = "2|verify2|PENDING|Priority|0:00|5:00|1|1|batch|
1|verify1|PENDING|None|0:00|5:00|1|2|debug|
";
    let text = project(observed, &[0, 2, 3]);
    assert_eq!(text, "2|PENDING|Priority\n1|PENDING|None\n");
    assert_eq!(
        parse_squeue(&text),
        [
            SqueueRow {
                id: job(2),
                state: S::Pending,
                reason: "Priority".to_owned()
            },
            SqueueRow {
                id: job(1),
                state: S::Pending,
                reason: "None".to_owned()
            },
        ]
    );
}

#[test]
fn squeue_rows_of_array_tasks() {
    // `squeue -r -h -o '%i|%A|%F|%K|%T|%r'`, verbatim; %i|%T|%r are columns
    // 0, 4 and 5.
    let observed = "426_0|427|426|0|RUNNING|None
426_7|434|426|7|FAILED|NonZeroExitCode
426_9|426|426|9|COMPLETED|None
";
    let rows = parse_squeue(&project(observed, &[0, 4, 5]));
    let got: Vec<(JobRef, SlurmState, &str)> = rows
        .iter()
        .map(|r| (r.id.clone(), r.state.clone(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (task(426, 0), S::Running, "None"),
            (task(426, 7), S::Failed, "NonZeroExitCode"),
            (task(426, 9), S::Completed, "None"),
        ]
    );
    // Without -r, pending tasks fold into one line.
    assert_eq!(
        parse_squeue("426_[4-9%4]|PENDING|JobArrayTaskLimit\n"),
        [SqueueRow {
            id: JobRef::ArrayPending {
                array: JobId(426),
                tasks: "4-9%4".to_owned()
            },
            state: S::Pending,
            reason: "JobArrayTaskLimit".to_owned()
        }]
    );
}

#[test]
fn squeue_rows_of_finished_and_waiting_jobs() {
    // `squeue --me -h -t all -O 'JobID:|,StateCompact:|,State:|,Reason:|,Name:'`
    let rows = parse_squeue(&project("417|CA|CANCELLED|None|tocancel", &[0, 2, 3]));
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0].id, &rows[0].state), (&job(417), &S::Cancelled));
    // The compact code works in the state column too.
    let rows = parse_squeue(&project("417|CA|CANCELLED|None|tocancel", &[0, 1, 3]));
    assert_eq!(rows[0].state, S::Cancelled);

    // `squeue -o '%i|%j|%T|%r|%E'`, verbatim.
    let observed = "421|depB|PENDING|Dependency|afterok:420(unfulfilled)
421|depB|COMPLETED|None|(null)
423|depC|PENDING|DependencyNeverSatisfied|afterok:422(failed)
425|depD|CANCELLED|DependencyNeverSatisfied|afterok:424(failed)
";
    let got: Vec<(JobRef, SlurmState, String)> = parse_squeue(&project(observed, &[0, 2, 3]))
        .into_iter()
        .map(|r| (r.id, r.state, r.reason))
        .collect();
    assert_eq!(
        got,
        [
            (job(421), S::Pending, "Dependency".to_owned()),
            (job(421), S::Completed, "None".to_owned()),
            (job(423), S::Pending, "DependencyNeverSatisfied".to_owned()),
            (
                job(425),
                S::Cancelled,
                "DependencyNeverSatisfied".to_owned()
            ),
        ]
    );
}

#[test]
fn squeue_skips_what_does_not_fit() {
    let text = "slurm_load_jobs error: Invalid job id specified
             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)

JOBID|STATE|REASON
12+0|RUNNING|None
2|PENDING
 3 | RUNNING | None \r
";
    assert_eq!(
        parse_squeue(text),
        [SqueueRow {
            id: job(3),
            state: S::Running,
            reason: "None".to_owned()
        }]
    );
    assert_eq!(parse_squeue(""), []);
    // An unknown state is kept, for attempt_status to report.
    assert_eq!(
        parse_squeue("9|NEW_STATE|None\n")[0].state,
        S::Other("NEW_STATE".to_owned())
    );
}

#[test]
fn sacct_rows() {
    // `sacct -X -n -j ... --parsable2 -o JobID,State,ExitCode`, verbatim.
    let observed = "446|FAILED|3:0
448|CANCELLED by 0|0:0
";
    assert_eq!(
        parse_sacct(observed),
        [
            SacctRow {
                id: job(446),
                state: S::Failed,
                exit: Some((3, 0))
            },
            SacctRow {
                id: job(448),
                state: S::Cancelled,
                exit: Some((0, 0))
            },
        ]
    );
    // `sacct -j <unknown id>` prints nothing.
    assert_eq!(parse_sacct(""), []);
}

#[test]
fn sacct_rows_without_steps() {
    // `sacct -j 445,446,447,448,449 --parsable2 -o JobID,JobIDRaw,JobName,
    // State,ExitCode,...`, verbatim, header included; JobID, State and
    // ExitCode are columns 0, 3 and 4.
    let observed = "JobID|JobIDRaw|JobName|State|ExitCode|DerivedExitCode|Submit|Start|End|Elapsed|NodeList|AllocCPUS|ReqMem|MaxRSS|Partition|Reason
445|445|acct-ok|COMPLETED|0:0|0:0|2026-11-24T07:55:46|2026-11-24T07:55:46|2026-11-24T07:55:47|00:00:01|vm|1|100M||debug|None
445.batch|445.batch|batch|COMPLETED|0:0||2026-11-24T07:55:46|2026-11-24T07:55:46|2026-11-24T07:55:47|00:00:01|vm|1||||
446|446|acct-fail|FAILED|3:0|0:0|2026-11-24T07:55:46|2026-11-24T07:55:46|2026-11-24T07:55:46|00:00:00|vm|1|1G||debug|None
447.1|447.1|bash|FAILED|2:0||2026-11-24T07:55:48|2026-11-24T07:55:48|2026-11-24T07:55:48|00:00:00|vm|2||||
447.2|447.2|bash|CANCELLED|0:11||2026-11-24T07:55:48|2026-11-24T07:55:48|2026-11-24T07:55:49|00:00:01|vm|2||||
448|448|acct-cancel|CANCELLED by 0|0:0|0:0|2026-11-24T07:55:46|2026-11-24T07:55:49|2026-11-24T07:55:53|00:00:04|vm|1|1G||debug|None
448.batch|448.batch|batch|FAILED|15:0||2026-11-24T07:55:49|2026-11-24T07:55:49|2026-11-24T07:55:53|00:00:04|vm|1||||
449_1|451|acct-arr|FAILED|1:0|0:0|2026-11-24T07:55:46|2026-11-24T07:55:50|2026-11-24T07:55:50|00:00:00|vm|1|1G||debug|None
449_3|449|acct-arr|FAILED|3:0|0:0|2026-11-24T07:55:46|2026-11-24T07:55:52|2026-11-24T07:55:52|00:00:00|vm|1|1G||debug|None
";
    let got: Vec<String> = parse_sacct(&project(observed, &[0, 3, 4]))
        .into_iter()
        .map(|r| format!("{} {} {:?}", r.id, r.state, r.exit))
        .collect();
    assert_eq!(
        got,
        [
            "445 COMPLETED Some((0, 0))",
            "446 FAILED Some((3, 0))",
            "448 CANCELLED Some((0, 0))",
            "449_1 FAILED Some((1, 0))",
            "449_3 FAILED Some((3, 0))",
        ]
    );
    // The abbreviated TIMEOUT lines (JobID|JobName|State|ExitCode|...).
    let observed = "458|acct-tmo|TIMEOUT|0:0|...|00:01:26|     (Timelimit 00:01:00)
458.batch|batch|CANCELLED|0:15|...
";
    assert_eq!(
        parse_sacct(&project(observed, &[0, 2, 3])),
        [SacctRow {
            id: job(458),
            state: S::Timeout,
            exit: Some((0, 0))
        }]
    );
}

#[test]
fn sacct_tolerates_a_trailing_separator_and_skips_what_does_not_fit() {
    // `-p` (not `-P`) ends each line with `|`.
    assert_eq!(
        parse_sacct("446|FAILED|3:0|\n"),
        [SacctRow {
            id: job(446),
            state: S::Failed,
            exit: Some((3, 0))
        }]
    );
    // An empty or odd exit code is no exit code.
    assert_eq!(parse_sacct("7|PENDING|\n")[0].exit, None);
    assert_eq!(parse_sacct("7|PENDING|x:y\n")[0].exit, None);
    let text = "Slurm accounting storage is disabled
JobID|State|ExitCode
447.1|FAILED|2:0
447.extern|COMPLETED|0:0
12+0|COMPLETED|0:0
8|COMPLETED

";
    assert_eq!(parse_sacct(text), []);
}

#[test]
fn exit_codes() {
    assert_eq!(exit_code("0:0"), Some((0, 0)));
    assert_eq!(exit_code("3:0"), Some((3, 0)));
    assert_eq!(exit_code("0:15"), Some((0, 15)));
    assert_eq!(exit_code("143:0"), Some((143, 0)));
    assert_eq!(exit_code(" 2:0 "), Some((2, 0)));
    for bad in [
        "",
        "3",
        ":",
        "3:",
        ":0",
        "a:b",
        "-1:0",
        "3:0:0",
        "4294967295:0",
    ] {
        assert_eq!(exit_code(bad), None, "{bad:?}");
    }
}

#[test]
fn status_files() {
    assert_eq!(parse_status_file("0\n"), Some(0));
    assert_eq!(parse_status_file("3\n"), Some(3));
    assert_eq!(parse_status_file("3"), Some(3));
    assert_eq!(parse_status_file("143\n"), Some(143));
    assert_eq!(parse_status_file("255\n"), Some(255));
    for bad in ["", "\n", "256\n", "-1\n", "3\n4\n", "x\n", "3 4\n", "+3\n"] {
        assert_eq!(parse_status_file(bad), None, "{bad:?}");
    }
}

#[test]
fn max_array_size_comes_from_scontrol_show_config() {
    let text = "Configuration data as of 2026-11-25T11:40:02\n\
                MailProg                = /bin/mail\n\
                MaxArraySize            = 1001\n\
                MaxDBDMsgs              = 20008\n";
    assert_eq!(parse_max_array_size(text), Some(1001));
    assert_eq!(parse_max_array_size("MaxJobCount = 10000\n"), None);
    assert_eq!(parse_max_array_size("MaxArraySize = lots\n"), None);
}

#[test]
fn accounting_is_on_only_with_slurmdbd() {
    let on = "AccountingStorageHost   = 127.0.0.1\n\
              AccountingStorageType   = accounting_storage/slurmdbd\n";
    assert!(parse_accounting_enabled(on));
    assert!(!parse_accounting_enabled(
        "AccountingStorageType   = accounting_storage/none\n"
    ));
    assert!(!parse_accounting_enabled(""));
}
