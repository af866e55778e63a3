//! Model-free metrics: what of the original the compressed context still holds.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

/// SQuAD-style answer normalisation: lower case, punctuation to spaces, articles dropped, words
/// joined by single spaces, with a space at both ends so that matches are whole words.
/// `scripts/fetch-datasets.py` filters examples with the same rule.
pub fn normalize(text: &str) -> String {
    static PUNCTUATION: OnceLock<Regex> = OnceLock::new();
    let lower = text.to_lowercase();
    let spaced = regex(&PUNCTUATION, r"\p{P}").replace_all(&lower, " ");
    let words: Vec<&str> = spaced
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect();
    format!(" {} ", words.join(" "))
}

/// Whether any answer (alias) occurs in `text` as whole words, after normalisation.
pub fn contains_answer(text: &str, answers: &[String]) -> bool {
    let text = normalize(text);
    answers.iter().any(|answer| {
        let answer = normalize(answer);
        answer.trim() != "" && text.contains(&answer)
    })
}

/// The numbers written in `text` (`1,200`, `3.5`, `42`), thousands separators removed.
pub fn numbers(text: &str) -> Vec<String> {
    static NUMBER: OnceLock<Regex> = OnceLock::new();
    regex(&NUMBER, r"\d+(?:[.,]\d+)*")
        .find_iter(text)
        .map(|m| m.as_str().replace(',', ""))
        .collect()
}

fn counts(items: Vec<String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for item in items {
        *counts.entry(item).or_insert(0) += 1;
    }
    counts
}

/// The fraction of the number occurrences of `original` that `compressed` still has (each
/// number counted at most as often as it occurs in the original); 1 when there are none.
pub fn number_retention(original: &str, compressed: &str) -> f64 {
    let wanted = counts(numbers(original));
    let total: usize = wanted.values().sum();
    if total == 0 {
        return 1.0;
    }
    let have = counts(numbers(compressed));
    let kept: usize = wanted
        .iter()
        .map(|(n, &c)| c.min(have.get(n).copied().unwrap_or(0)))
        .sum();
    kept as f64 / total as f64
}

/// Lower-cased words (runs of letters and digits), as ROUGE tokenises.
pub fn rouge_tokens(text: &str) -> Vec<String> {
    static WORD: OnceLock<Regex> = OnceLock::new();
    regex(&WORD, r"[\p{L}\p{N}]+")
        .find_iter(&text.to_lowercase())
        .map(|m| m.as_str().to_string())
        .collect()
}

/// ROUGE-1 recall: the share of the reference's words (with multiplicity) found in `text`.
pub fn rouge1_recall(reference: &str, text: &str) -> f64 {
    let reference = rouge_tokens(reference);
    if reference.is_empty() {
        return 1.0;
    }
    let total = reference.len();
    let wanted = counts(reference);
    let have = counts(rouge_tokens(text));
    let hits: usize = wanted
        .iter()
        .map(|(w, &c)| c.min(have.get(w).copied().unwrap_or(0)))
        .sum();
    hits as f64 / total as f64
}

/// ROUGE-L recall: the longest common subsequence of words over the reference's length.
pub fn rouge_l_recall(reference: &str, text: &str) -> f64 {
    let reference = rouge_tokens(reference);
    if reference.is_empty() {
        return 1.0;
    }
    let text = rouge_tokens(text);
    // One row of the LCS table per text word, over the (short) reference.
    let mut row = vec![0usize; reference.len() + 1];
    for word in &text {
        let mut diagonal = 0;
        for (j, r) in reference.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if word == r {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    row[reference.len()] as f64 / reference.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_match_whole_normalised_words() {
        let answers = vec!["The Beatles".to_string(), "Fab Four".to_string()];
        assert!(contains_answer(
            "It was (the) BEATLES, of course.",
            &answers
        ));
        assert!(contains_answer("the fab-four played", &answers));
        assert!(!contains_answer("Beatlesque music", &answers));
        assert!(!contains_answer("anything", &[" . ".to_string()]));
        assert_eq!(normalize("Earth ' s  atmosphere!"), " earth s atmosphere ");
    }

    #[test]
    fn numbers_are_counted_with_multiplicity() {
        assert_eq!(numbers("$1,200 and 3.5, then 42."), ["1200", "3.5", "42"]);
        let original = "5 apples and 5 pears cost 12";
        assert_eq!(number_retention(original, original), 1.0);
        assert_eq!(number_retention(original, "5 apples cost 12"), 2.0 / 3.0);
        assert_eq!(number_retention(original, "5 5 5 5 12"), 1.0);
        assert_eq!(number_retention("no numbers", ""), 1.0);
    }

    #[test]
    fn rouge_recalls_match_hand_computed_values() {
        let reference = "the cat sat on the mat";
        assert_eq!(rouge1_recall(reference, "the cat sat on the mat"), 1.0);
        // "the" twice, "cat", "mat": 4 of 6.
        assert!((rouge1_recall(reference, "mat the cat the") - 4.0 / 6.0).abs() < 1e-12);
        // The longest common subsequence is "the cat the" (3 of 6).
        assert!((rouge_l_recall(reference, "mat the cat the") - 3.0 / 6.0).abs() < 1e-12);
        assert_eq!(rouge_l_recall(reference, ""), 0.0);
        assert_eq!(rouge1_recall("", "x"), 1.0);
    }
}
