//! The sentence-level filter: within the kept documents, keep the most relevant sentences up to a
//! budget (LLMLingua's `control_sentence_budget`).
//!
//! Sentences are ranked by the document ranker (for `longllmlingua`: how well each sentence
//! predicts the question), then taken in rank order until the budget is crossed (the crossing one
//! included). `keep_first_sentence` / `keep_last_sentence` (the first / last k sentences of *each*
//! document) and `keep_sentence_number` (each document's k best-ranked sentences) are always kept
//! and pay for themselves. The reference flattens all documents' sentences before taking the
//! first/last k, and gives kept sentences a bonus that, in its ascending (conditional) sort,
//! pushes them *down*; we do what the option names say.

use serde::{Deserialize, Serialize};

use super::context_filter::take_within_budget;

/// Which sentences are always kept, with LLMLingua's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeepSentences {
    /// The first k sentences of each document.
    pub keep_first_sentence: usize,
    /// The last k sentences of each document.
    pub keep_last_sentence: usize,
    /// Each document's k best-ranked sentences.
    pub keep_sentence_number: usize,
}

/// Which sentences to keep. `document_of[s]` is sentence s's document (sentences in text order),
/// `ranked` the sentences best first, `sizes` their sizes in tokens.
pub fn select_sentences(
    document_of: &[usize],
    ranked: &[usize],
    sizes: &[usize],
    keep: KeepSentences,
    budget: f64,
) -> Vec<bool> {
    let n = document_of.len();
    if n <= 1 {
        return vec![true; n];
    }
    let mut forced = vec![false; n];
    let mut position = 0;
    while position < n {
        let document = document_of[position];
        let end = position + document_of[position..].partition_point(|&d| d == document);
        let count = end - position;
        forced[position..position + keep.keep_first_sentence.min(count)].fill(true);
        forced[end - keep.keep_last_sentence.min(count)..end].fill(true);
        for &s in ranked
            .iter()
            .filter(|&&s| document_of[s] == document)
            .take(keep.keep_sentence_number)
        {
            forced[s] = true;
        }
        position = end;
    }
    take_within_budget(ranked, &forced, sizes, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ranked_sentences_within_the_budget() {
        // Two documents of three sentences, 10 tokens each; budget 15.
        let document_of = [0, 0, 0, 1, 1, 1];
        let ranked = [4, 1, 5, 0, 2, 3];
        let none = KeepSentences::default();
        assert_eq!(
            select_sentences(&document_of, &ranked, &[10; 6], none, 15.0),
            [false, true, false, false, true, false]
        );
    }

    #[test]
    fn first_last_and_best_sentences_of_each_document_are_always_kept() {
        let document_of = [0, 0, 0, 1, 1, 1];
        let ranked = [4, 1, 5, 0, 2, 3];
        let first = KeepSentences {
            keep_first_sentence: 1,
            ..Default::default()
        };
        // Sentences 0 and 3 forced (20 > 15), nothing else.
        assert_eq!(
            select_sentences(&document_of, &ranked, &[10; 6], first, 15.0),
            [true, false, false, true, false, false]
        );
        let last = KeepSentences {
            keep_last_sentence: 1,
            ..Default::default()
        };
        assert_eq!(
            select_sentences(&document_of, &ranked, &[10; 6], last, 0.0),
            [false, false, true, false, false, true]
        );
        let best = KeepSentences {
            keep_sentence_number: 1,
            ..Default::default()
        };
        assert_eq!(
            select_sentences(&document_of, &ranked, &[10; 6], best, 0.0),
            [false, true, false, false, true, false]
        );
        // More than a document has is all of it.
        let many = KeepSentences {
            keep_first_sentence: 9,
            ..Default::default()
        };
        assert!(select_sentences(&document_of, &ranked, &[10; 6], many, 0.0)
            .iter()
            .all(|&k| k));
    }

    #[test]
    fn a_single_sentence_is_kept() {
        assert_eq!(
            select_sentences(&[0], &[0], &[50], KeepSentences::default(), 1.0),
            [true]
        );
    }
}
