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

#[cfg(test)]
mod tests {
    use super::*;

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
