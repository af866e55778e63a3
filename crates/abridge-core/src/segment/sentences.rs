//! Sentences: runs of words ended by sentence punctuation or a line break.
//!
//! A sentence ends after a word ending in `.`, `!` or `?` (closing quotes and brackets may follow)
//! when the next word does not start in lower case, unless the word is an abbreviation (`Dr.`,
//! `e.g.`, `U.S.`, a single-letter initial). Decimals (`3.14`) never end one since no whitespace
//! follows the dot. CJK terminators (`。！？`) end a sentence with no space after them. Every line
//! break also ends a sentence: prompts are full of lists, headings and chat turns, and a wrongly
//! split hard-wrapped line costs less than a list item glued to the next.

use std::ops::Range;

use super::{group_words, Segmenter, Words};

#[derive(Debug, Default, Clone, Copy)]
pub struct Sentences;

impl Segmenter for Sentences {
    fn segment(&self, text: &str) -> Vec<Range<usize>> {
        let words = Words.segment(text);
        let starts = sentence_starts(text, &words);
        group_words(text, &words, |i| starts[i])
    }
}

/// Abbreviations (lower case, without their final dot) after which a dot does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "cf", "al", "fig", "figs", "eq",
    "no", "nos", "vol", "pp", "ch", "sec", "approx", "dept", "inc", "ltd", "co", "corp", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "gen", "gov",
    "rep", "sen", "rev", "est", "ca",
];

const CLOSERS: &[char] = &['"', '\'', '”', '’', ')', ']', '}', '»'];

/// For each word, whether a sentence starts at it.
pub(crate) fn sentence_starts(text: &str, words: &[Range<usize>]) -> Vec<bool> {
    let mut starts = Vec::with_capacity(words.len());
    let mut previous_body: Option<&str> = None;
    for word in words {
        let piece = &text[word.clone()];
        let body = piece.trim_start();
        let starts_here = match previous_body {
            None => true,
            Some(previous) => {
                piece[..piece.len() - body.len()].contains('\n') || ends_sentence(previous, body)
            }
        };
        starts.push(starts_here);
        previous_body = Some(body);
    }
    starts
}

/// Whether a sentence ends after the word `body` when `next` follows it.
fn ends_sentence(body: &str, next: &str) -> bool {
    let core = body.trim_end_matches(CLOSERS);
    if core.ends_with(['。', '！', '？']) {
        return true;
    }
    if !core.ends_with(['.', '!', '?']) || next.starts_with(char::is_lowercase) {
        return false;
    }
    !(core.ends_with('.') && is_abbreviation(core))
}

/// `core` ends with a dot; is the word before it an abbreviation or an initial?
fn is_abbreviation(core: &str) -> bool {
    let stem = core
        .trim_end_matches('.')
        .trim_start_matches(|c: char| !c.is_alphanumeric());
    if stem.is_empty() || !stem.chars().all(|c| c.is_alphabetic() || c == '.') {
        return false;
    }
    // "e.g", "i.e", "U.S", "a.m": letters separated by dots.
    let dotted = stem.contains('.') && stem.split('.').all(|part| part.chars().count() <= 2);
    let initial = stem.chars().count() == 1 && stem.starts_with(char::is_uppercase);
    dotted || initial || ABBREVIATIONS.contains(&stem.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::test_util::pieces;

    fn sentences(text: &str) -> Vec<&str> {
        pieces(text, &Sentences.segment(text))
    }

    #[test]
    fn splits_after_terminal_punctuation() {
        assert_eq!(
            sentences("It rained. Did it? Yes! \"Quite so.\" Done"),
            vec!["It rained.", " Did it?", " Yes!", " \"Quite so.\"", " Done"]
        );
    }

    #[test]
    fn abbreviations_initials_and_decimals_do_not_end_sentences() {
        assert_eq!(
            sentences("Dr. Smith paid 3.14 dollars, e.g. for tea. J. R. R. Tolkien wrote it. The U.S. Army came."),
            vec![
                "Dr. Smith paid 3.14 dollars, e.g. for tea.",
                " J. R. R. Tolkien wrote it.",
                " The U.S. Army came."
            ]
        );
    }

    #[test]
    fn lower_case_continuation_is_the_same_sentence() {
        assert_eq!(sentences("See p. five of it."), vec!["See p. five of it."]);
    }

    #[test]
    fn line_breaks_end_sentences() {
        assert_eq!(
            sentences("Title\n- item one\n\nNext para "),
            vec!["Title", "\n- item one", "\n\nNext para", " "]
        );
    }

    #[test]
    fn cjk_terminators_end_sentences_without_spaces() {
        assert_eq!(
            sentences("今天下雨。明天呢？好！"),
            vec!["今天下雨。", "明天呢？", "好！"]
        );
    }

    #[test]
    fn empty_and_single_word() {
        assert!(sentences("").is_empty());
        assert_eq!(sentences("word"), vec!["word"]);
    }
}
