//! `${{ }}` templates after name resolution: literal text and references to
//! values of a task's context. The compiler builds them (checking every name);
//! [`crate::Plan::task_env`] renders them per task.

/// A value a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref {
    /// `params.X`, by index into [`crate::Plan::params`].
    Param(u32),
    /// A `for_each` key of the step, by slot.
    Key(u32),
    /// `inputs.X`, by slot.
    Input(u32),
    /// `outputs.X`, by slot.
    Output(u32),
    /// `cycle.point`.
    CyclePoint,
    /// `cycle.year`.
    CycleYear,
    /// `cycle.month`.
    CycleMonth,
    /// `cycle.day`.
    CycleDay,
    /// `workflow.dir`.
    WorkflowDir,
    /// `workflow.name`.
    WorkflowName,
    /// `run.id`.
    RunId,
    /// `task.name`.
    TaskName,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text kept as written.
    Lit(String),
    /// A substituted value.
    Ref(Ref),
}

/// A resolved template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// Its pieces, in order.
    pub pieces: Vec<Piece>,
}

impl Template {
    /// The text, when the template has no references.
    pub fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

/// Quotes a word for POSIX `sh`: unchanged when it has only safe characters,
/// otherwise in single quotes (a `'` becomes `'\''`). Empty becomes `''`.
pub fn shell_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    push_shell_quoted(&mut out, word);
    out
}

/// [`shell_quote`], appending to `out`.
pub fn push_shell_quoted(out: &mut String, word: &str) {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if safe {
        out.push_str(word);
        return;
    }
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// Quotes each word and joins them with spaces (a list becomes several words).
pub fn shell_words<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, w) in words.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_shell_quoted(&mut out, w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_safe_words_and_neutralises_the_rest() {
        assert_eq!(shell_quote("ssp126"), "ssp126");
        assert_eq!(shell_quote("inputs/a/0.csv"), "inputs/a/0.csv");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_words(["a", "b c"]), "a 'b c'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        let nasty = [
            "plain",
            "a b",
            "it's",
            "$(echo pwned)",
            "`x`",
            "*",
            "\"q\"",
            "new\nline",
            "",
        ];
        let script = format!("printf '%s\\n' {}", shell_words(nasty));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run /bin/sh");
        let expected: String = nasty.iter().map(|w| format!("{w}\n")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }
}
