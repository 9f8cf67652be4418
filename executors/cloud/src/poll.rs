//! One status check of every attempt the executor follows: one `sh`
//! script over the SSH connection per round, whatever the number of
//! attempts, and the parsing of what it prints (pure, unit-tested on
//! literal samples).
//!
//! For each control directory the script prints one line, `<i>` being the
//! attempt's position in the round's list:
//! - `E <i> <exit.json on one line>`: over, with its record;
//! - `R <i>`: the runner (whose pid is in `pid`) is alive;
//! - `L <i>`: it has a pid but neither a live process nor a record (lost);
//! - `S <i>`: no pid yet (the launcher has not got that far).
//!
//! The pid is read before the record is looked for, so a runner that ends
//! between the two reads is seen with its record, never as lost. A pid
//! counts as alive only if its command line names the control directory
//! (where `/proc` has it), so a reused pid is not taken for the runner.

use crate::spec::ExitRecord;
use std::fmt::Write as _;
use twinflow_core::shell_quote;

/// What one line said about one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Over, with its record.
    Ended(ExitRecord),
    /// The runner is alive.
    Running,
    /// Neither alive nor over.
    Lost,
    /// Not started yet.
    Starting,
}

const CHECK: &str = r#"check() {
  pid=$(cat "$2/pid" 2>/dev/null || true); alive=0
  if [ -n "$pid" ]; then
    if [ -r "/proc/$pid/cmdline" ]; then
      tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" && alive=1
    elif kill -0 "$pid" 2>/dev/null; then alive=1; fi
  fi
  if [ -f "$2/exit.json" ]; then printf 'E %s ' "$1"; tr -d '\n' < "$2/exit.json"; echo
  elif [ "$alive" = 1 ]; then echo "R $1"
  elif [ -n "$pid" ]; then echo "L $1"
  else echo "S $1"; fi
}
"#;

/// The script that checks `dirs`.
pub(crate) fn script(dirs: &[&str]) -> String {
    let mut s = String::from(CHECK);
    for (i, d) in dirs.iter().enumerate() {
        let _ = writeln!(s, "check {i} {}", shell_quote(d));
    }
    s
}

/// The lines of one round: `(position, what was seen)`. Lines that do not
/// parse are skipped with a warning; their attempts are checked again in
/// the next round.
pub(crate) fn parse(out: &str) -> Vec<(usize, Seen)> {
    let mut seen = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        match parse_line(line) {
            Some(s) => seen.push(s),
            None => tracing::warn!("cloud status check: unexpected line `{line}`"),
        }
    }
    seen
}

fn parse_line(line: &str) -> Option<(usize, Seen)> {
    let mut parts = line.splitn(3, ' ');
    let tag = parts.next()?;
    let i: usize = parts.next()?.trim().parse().ok()?;
    let rest = parts.next().unwrap_or("");
    let seen = match tag {
        "E" => match serde_json::from_str::<ExitRecord>(rest) {
            Ok(r) => Seen::Ended(r),
            // A record cut short cannot be: it is renamed into place whole.
            Err(e) => Seen::Ended(ExitRecord {
                error: Some(format!("unreadable exit record `{rest}`: {e}")),
                ..ExitRecord::default()
            }),
        },
        "R" => Seen::Running,
        "L" => Seen::Lost,
        "S" => Seen::Starting,
        _ => return None,
    };
    Some((i, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_line() {
        let out = "E 0 {\"status\":0}\nR 1\nL 2\nS 3\n\nE 4 {\"error\":\"input a: gone\"}\n";
        assert_eq!(
            parse(out),
            vec![
                (
                    0,
                    Seen::Ended(ExitRecord {
                        status: Some(0),
                        ..ExitRecord::default()
                    })
                ),
                (1, Seen::Running),
                (2, Seen::Lost),
                (3, Seen::Starting),
                (
                    4,
                    Seen::Ended(ExitRecord {
                        error: Some("input a: gone".into()),
                        ..ExitRecord::default()
                    })
                ),
            ]
        );
    }

    #[test]
    fn skips_noise_and_reports_a_broken_record() {
        let seen = parse("motd line\nR x\nE 7 {\"status\"\n");
        let error = match &seen[..] {
            [(7, Seen::Ended(r))] => r.error.clone().unwrap_or_default(),
            other => format!("{other:?}"),
        };
        assert!(error.starts_with("unreadable exit record"), "{error}");
    }

    #[test]
    fn quotes_every_directory() {
        let s = script(&["/a b/1.0.cloud", "/x'y/2.0.cloud"]);
        assert!(
            s.ends_with("check 0 '/a b/1.0.cloud'\ncheck 1 '/x'\\''y/2.0.cloud'\n"),
            "{s}"
        );
    }
}
