//! `recover`: restore text in an LLM's response that compression mangled (LongLLMLingua's
//! "subsequence recovery").
//!
//! An LLM that read a compressed prompt often quotes it, dropped words and all ("Candace has
//! obvious crush Griselda Blanco"). Since compression only drops units, what it quotes is a
//! subsequence of the original, and the original span can be found again.
//!
//! Our rule, on whitespace-separated words compared by their *key* (the word without leading and
//! trailing punctuation, case kept; a word that is all punctuation is its own key):
//! 1. Walk the response. At each word, take the longest run of response words that occurs
//!    contiguously in the compressed prompt. A word not in the compressed prompt, or a run of one
//!    word, is left as it is (there is nothing to expand).
//! 2. Find the run in the original: for each occurrence of its first word, match the following
//!    words greedily to their next occurrence at most [`MAX_GAP`] words further on (a word with no
//!    such occurrence is skipped). The candidate matching the most words wins, then the shortest
//!    span, then the earliest. At least two words must match.
//! 3. Replace the run by the original text from the first to the last matched word, keeping the
//!    response's own punctuation before the run and after it.
//!
//! The reference does the same on the small model's tokens (`response.split(" ")`, substring
//! tests on the compressed string, gaps of up to 10 tokens). Words make it model-free, keep the
//! response's whitespace, and match how abridge compresses (whole words by default). With token
//! units a half-dropped word only matches where the response quotes its surviving part whole.

use std::collections::HashMap;
use std::ops::Range;

/// How many positions apart consecutive matched words may be in the original (the reference's
/// limit, in words instead of tokens).
pub const MAX_GAP: usize = 10;

/// A word of a text, by the byte range of its key.
struct Word {
    key: Range<usize>,
}

fn words(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push(word(text, s..i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    words
}

fn word(text: &str, span: Range<usize>) -> Word {
    let piece = &text[span.clone()];
    let trimmed_start = piece.trim_start_matches(|c: char| !c.is_alphanumeric());
    let core = trimmed_start.trim_end_matches(|c: char| !c.is_alphanumeric());
    let key = if core.is_empty() {
        span
    } else {
        let start = span.start + piece.len() - trimmed_start.len();
        start..start + core.len()
    };
    Word { key }
}

/// Restores the spans of `response` that quote `compressed` with words missing from `original`
/// (see the module documentation for the rule).
pub fn recover(original: &str, compressed: &str, response: &str) -> String {
    let original_words = words(original);
    let compressed_words = words(compressed);
    let response_words = words(response);
    let key = |text: &str, word: &Word| text[word.key.clone()].to_string();
    let original_keys: Vec<String> = original_words.iter().map(|w| key(original, w)).collect();
    let compressed_keys: Vec<String> = compressed_words
        .iter()
        .map(|w| key(compressed, w))
        .collect();
    let response_keys: Vec<String> = response_words.iter().map(|w| key(response, w)).collect();
    let positions = |keys: &[String]| {
        let mut map: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            map.entry(k.clone()).or_default().push(i);
        }
        map
    };
    let in_original = positions(&original_keys);
    let in_compressed = positions(&compressed_keys);

    let mut out = String::with_capacity(response.len());
    let mut copied_to = 0;
    let mut l = 0;
    while l < response_words.len() {
        let run = longest_run(&response_keys[l..], &compressed_keys, &in_compressed);
        if run < 2 {
            l += 1;
            continue;
        }
        if let Some((first, last)) = find_in_original(&response_keys[l..l + run], &in_original) {
            let (head, tail) = (&response_words[l], &response_words[l + run - 1]);
            out.push_str(&response[copied_to..head.key.start]);
            out.push_str(&original[original_words[first].key.start..original_words[last].key.end]);
            copied_to = tail.key.end;
        }
        l += run;
    }
    out.push_str(&response[copied_to..]);
    out
}

/// The length of the longest prefix of `keys` that occurs contiguously in `compressed`.
fn longest_run(
    keys: &[String],
    compressed: &[String],
    positions: &HashMap<String, Vec<usize>>,
) -> usize {
    let Some(starts) = keys.first().and_then(|k| positions.get(k)) else {
        return 0;
    };
    starts
        .iter()
        .map(|&start| {
            keys.iter()
                .zip(&compressed[start..])
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The original word range (first, last) that best matches `run` (see the module documentation).
fn find_in_original(
    run: &[String],
    positions: &HashMap<String, Vec<usize>>,
) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut best_matched = 1;
    for &start in positions.get(&run[0])? {
        let mut at = start;
        let mut matched = 1;
        for key in &run[1..] {
            let Some(occurrences) = positions.get(key) else {
                continue;
            };
            let next = occurrences.partition_point(|&p| p <= at);
            match occurrences.get(next) {
                Some(&p) if p - at <= MAX_GAP => {
                    matched += 1;
                    at = p;
                }
                _ => {}
            }
        }
        let shorter = best.is_none_or(|(s, e)| at - start < e - s);
        if matched > best_matched || (matched == best_matched && best.is_some() && shorter) {
            best = Some((start, at));
            best_matched = matched;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "Her best friend is Stacy Hirano; Candace also has an obvious crush on \
        Griselda Blanco, but for a long time she was oblivious to the fact he liked her back.";
    const COMPRESSED: &str =
        "best friend Stacy Hirano; Candace has obvious crush Griselda Blanco, long time oblivious";

    #[test]
    fn quoted_compressed_spans_are_expanded_to_the_original() {
        let response = "I think Candace has obvious crush Griselda Blanco. Not sure.";
        assert_eq!(
            recover(ORIGINAL, COMPRESSED, response),
            "I think Candace also has an obvious crush on Griselda Blanco. Not sure."
        );
        // The response's whitespace and words outside quotes are its own.
        assert_eq!(
            recover(ORIGINAL, COMPRESSED, "Answer:\n  best friend Stacy Hirano!"),
            "Answer:\n  best friend is Stacy Hirano!"
        );
    }

    #[test]
    fn unquoted_single_and_already_whole_words_are_left_alone() {
        assert_eq!(recover(ORIGINAL, COMPRESSED, "Blanco"), "Blanco");
        assert_eq!(
            recover(ORIGINAL, COMPRESSED, "nothing here matches"),
            "nothing here matches"
        );
        assert_eq!(
            recover(ORIGINAL, COMPRESSED, "Stacy Hirano; Candace"),
            "Stacy Hirano; Candace"
        );
        assert_eq!(recover("", "", "a b"), "a b");
        assert_eq!(recover(ORIGINAL, COMPRESSED, ""), "");
        assert_eq!(recover(ORIGINAL, ORIGINAL, ORIGINAL), ORIGINAL);
    }

    #[test]
    fn words_too_far_apart_in_the_original_are_not_joined() {
        let original = format!("alpha {} omega", "filler ".repeat(MAX_GAP));
        // "alpha" and "omega" are 11 positions apart: no match, the quote stays as it is.
        assert_eq!(
            recover(&original, "alpha omega", "alpha omega"),
            "alpha omega"
        );
        let near = format!("alpha {} omega", "filler ".repeat(MAX_GAP - 1));
        assert_eq!(recover(&near, "alpha omega", "alpha omega"), near);
    }

    #[test]
    fn the_shortest_best_matching_occurrence_wins() {
        let original = "red fox ran far away. Later the red quick fox ran home.";
        assert_eq!(
            recover(original, "red fox ran", "red fox ran"),
            "red fox ran"
        );
        assert_eq!(
            recover(original, "red quick fox home.", "quick fox home"),
            "quick fox ran home"
        );
    }
}
