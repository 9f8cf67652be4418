//! Answers the scripted test clusters share: an `squeue -j LIST` where every
//! job (and eight array elements of each) has completed, and status files
//! that all say 0.

use std::path::PathBuf;

/// `squeue` output for the job list after `-j`: each job and its elements
/// 0..8 COMPLETED.
pub(super) fn squeue_all_completed(args: &[String]) -> String {
    let ids = args
        .iter()
        .skip_while(|a| *a != "-j")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    let mut out = String::new();
    for id in ids.split(',') {
        out.push_str(&format!("{id}|COMPLETED|None\n"));
        for i in 0..8 {
            out.push_str(&format!("{id}_{i}|COMPLETED|None\n"));
        }
    }
    out
}

/// Every `.status` file says exit 0; other files are missing.
pub(super) fn status_files_zero(paths: &[PathBuf]) -> Vec<Option<String>> {
    paths
        .iter()
        .map(|p| {
            p.extension()
                .is_some_and(|e| e == "status")
                .then(|| "0\n".to_owned())
        })
        .collect()
}
