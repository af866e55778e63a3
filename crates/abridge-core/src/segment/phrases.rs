//! Phrases: our stand-in for Selective Context's spaCy noun chunks.
//!
//! Selective Context merges each noun chunk into one unit and leaves every other token alone. With
//! no part-of-speech tagger available, we approximate noun-phrase-like groups from surface cues,
//! within one sentence:
//! - a *function word* (preposition, conjunction, pronoun, auxiliary, `to`, `not`, ...) is a unit
//!   of its own, so it can be dropped on its own;
//! - a *determiner* (`the`, `a`, `this`, `my`, ...) starts a new phrase and joins the content words
//!   after it: "the old red barn" is one unit;
//! - other consecutive words join into one phrase, which ends after a word with trailing
//!   punctuation (`barn,`) and holds at most [`MAX_PHRASE_WORDS`] words (long runs of content
//!   words, and CJK text where every character is a word, would otherwise become one unit).
//!
//! The word lists are English; other languages get punctuation-bounded groups of at most
//! [`MAX_PHRASE_WORDS`] words.

use std::ops::Range;

use super::sentences::sentence_starts;
use super::{group_words, Segmenter, Words};

/// Noun phrases longer than this are rare; capping keeps units small enough to select finely.
pub const MAX_PHRASE_WORDS: usize = 4;

#[derive(Debug, Default, Clone, Copy)]
pub struct Phrases;

const DETERMINERS: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our",
    "their", "some", "any", "each", "every", "no", "all", "both", "either", "neither", "another",
    "such", "what", "which", "whose",
];

const FUNCTION_WORDS: &[&str] = &[
    // prepositions
    "of",
    "in",
    "on",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "out",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "than",
    "via",
    "per",
    "without",
    "within",
    "upon",
    "among",
    // conjunctions and subordinators
    "and",
    "or",
    "but",
    "nor",
    "so",
    "yet",
    "if",
    "because",
    "as",
    "until",
    "while",
    "although",
    "though",
    "since",
    "unless",
    "whether",
    "when",
    "where",
    "why",
    "how",
    "who",
    "whom",
    // pronouns
    "i",
    "me",
    "we",
    "us",
    "you",
    "he",
    "him",
    "she",
    "it",
    "they",
    "them",
    "myself",
    "itself",
    "themselves",
    "there",
    "here",
    // auxiliaries and negation
    "is",
    "am",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "do",
    "does",
    "did",
    "will",
    "would",
    "shall",
    "should",
    "can",
    "could",
    "may",
    "might",
    "must",
    "not",
    "also",
    "just",
    "very",
    "too",
];

/// The word lower-cased without surrounding punctuation, as looked up in the word lists.
fn bare(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

impl Segmenter for Phrases {
    fn segment(&self, text: &str) -> Vec<Range<usize>> {
        let words = Words.segment(text);
        let sentence_start = sentence_starts(text, &words);
        let mut starts = Vec::with_capacity(words.len());
        let mut phrase_words = 0;
        let mut previous_closes = true;
        for (i, word) in words.iter().enumerate() {
            let body = text[word.clone()].trim_start();
            let bare = bare(body);
            let is_function = FUNCTION_WORDS.contains(&bare.as_str());
            let is_determiner = DETERMINERS.contains(&bare.as_str());
            let start = sentence_start[i]
                || previous_closes
                || is_function
                || is_determiner
                || phrase_words == MAX_PHRASE_WORDS;
            phrase_words = if start { 1 } else { phrase_words + 1 };
            let ends_in_punctuation = body.ends_with(|c: char| !c.is_alphanumeric());
            previous_closes = is_function || ends_in_punctuation;
            starts.push(start);
        }
        group_words(text, &words, |i| starts[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::test_util::pieces;

    fn phrases(text: &str) -> Vec<&str> {
        pieces(text, &Phrases.segment(text))
    }

    #[test]
    fn groups_determiners_with_content_words_and_isolates_function_words() {
        assert_eq!(
            phrases("The old red barn stood in the quiet valley, and it fell."),
            vec![
                "The old red barn",
                " stood",
                " in",
                " the quiet valley,",
                " and",
                " it",
                " fell."
            ]
        );
    }

    #[test]
    fn long_runs_are_capped_and_sentences_and_lines_bound_phrases() {
        assert_eq!(
            phrases("Alpha beta gamma delta epsilon. Zeta eta\ntheta"),
            vec![
                "Alpha beta gamma delta",
                " epsilon.",
                " Zeta eta",
                "\ntheta"
            ]
        );
    }

    #[test]
    fn cjk_runs_are_grouped_up_to_the_cap_and_split_at_punctuation() {
        assert_eq!(
            phrases("自然语言处理很有趣，对吧"),
            vec!["自然语言", "处理很有", "趣，", "对吧"]
        );
    }
}
