//! Which processes a task left behind, for the tests that check every one
//! dies with it.
#![expect(clippy::expect_used, reason = "test support")]

/// Live (not zombie) `sleep` processes whose command line holds `word`
/// (not the task shells, whose scripts hold it too), as `PID: CMDLINE`.
pub(crate) fn sleeps_with(word: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with("sleep ") && cmdline.contains(word) && !stat.contains(") Z") {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}
