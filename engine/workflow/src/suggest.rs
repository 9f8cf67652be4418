//! "Did you mean" suggestions for misspelt names.

/// The closest candidate to `word`, phrased as a hint, if one is close enough.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate most similar to `word`, if similar enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let word_chars = word_lower.chars().count();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        if candidate.starts_with('$') {
            continue;
        }
        let lower = candidate.to_lowercase();
        let score = strsim::jaro_winkler(&word_lower, &lower);
        // Edits are counted only when needed, and not at all when the lengths
        // alone differ by more than allowed (a compile may ask this for
        // every one of many unknown keys).
        let allowed = 2.max(candidate.len() / 4);
        let close = score >= 0.85
            || (word_chars.abs_diff(lower.chars().count()) <= allowed
                && strsim::levenshtein(&word_lower, &lower) <= allowed);
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// The most names a hint lists.
const MAX_LISTED: usize = 20;

/// Names joined with `, `, at most [`MAX_LISTED`] of them and then how many
/// more: a hint about a generated workflow with 100,000 steps stays short.
pub(crate) fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut more = 0usize;
    for (i, name) in names.into_iter().enumerate() {
        if i >= MAX_LISTED {
            more += 1;
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
    }
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut() {
        assert_eq!(list(["a", "b"]), "a, b");
        let many: Vec<String> = (0..25).map(|i| format!("s{i}")).collect();
        let shown = list(many.iter().map(String::as_str));
        assert!(shown.starts_with("s0, s1, "));
        assert!(shown.ends_with("s19 and 5 more"), "{shown}");
    }

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["needs", "outputs", "resources", "for_each", "executor"];
        assert_eq!(closest("need", keys), Some("needs"));
        assert_eq!(closest("output", keys), Some("outputs"));
        assert_eq!(closest("foreach", keys), Some("for_each"));
        assert_eq!(closest("resouces", keys), Some("resources"));
        assert_eq!(closest("zzzzzz", keys), None);
    }
}
