//! Text for a terminal: every value twinflow shows that came from a
//! workflow, a run or a task (task names with their parameter values, run
//! ids, paths, failure reasons, log tails, error messages) goes through
//! [`shown`], which escapes control characters, so that no value can move
//! the cursor, recolour or retitle the terminal, or forge a line of
//! twinflow's own; and counts get their noun right ([`count`]).
//!
//! What is escaped: C0 (U+0000..U+001F, ESC and newline included), DEL
//! (U+007F) and C1 (U+0080..U+009F), as `\n`, `\r`, `\t`, `\x1b` (C0 and
//! DEL) or `\u{9b}` (C1). JSON output needs none of this (serde escapes
//! C0 in strings), and `twinflow logs` copies a task's own output as it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with its control characters escaped (newlines too: a value is
/// shown on one line).
pub(crate) fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A message of several lines (an error that carries a rendered
/// diagnostic), each line [`shown`]; the line breaks stay.
pub(crate) fn lines(text: &str) -> String {
    text.split('\n').map(shown).collect::<Vec<_>>().join("\n")
}

/// `n` and `noun`, plural unless `n` is 1: "1 task", "2 tasks", "0 tasks".
pub(crate) fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(shown("grow[climate=ssp1]@2030"), "grow[climate=ssp1]@2030");
        assert!(matches!(shown("plain"), Cow::Borrowed(_)));
        assert_eq!(shown("a\x1b[31mred\nfake"), "a\\x1b[31mred\\nfake");
        assert_eq!(shown("\t\r\x07\x7f"), "\\t\\r\\x07\\x7f");
        assert_eq!(shown("c1:\u{9b}2J"), "c1:\\u{9b}2J");
        assert_eq!(shown("été → ok"), "été → ok");
        assert_eq!(lines("one\x1b]0;t\x07\ntwo"), "one\\x1b]0;t\\x07\ntwo");
    }

    #[test]
    fn counts_take_the_singular_for_one() {
        assert_eq!(count(1u32, "task"), "1 task");
        assert_eq!(count(0u32, "task"), "0 tasks");
        assert_eq!(count(2u64, "step"), "2 steps");
    }
}
