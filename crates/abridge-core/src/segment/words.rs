//! Words: leading whitespace + a run of non-whitespace characters.
//!
//! Punctuation stays with the word it touches (`"Hello,"`, `"(see"`), so dropping a word never
//! leaves a stray comma. In CJK scripts every character is a word of its own, and punctuation after
//! it (`。`, `，`) attaches to it; a Latin run directly after a CJK character starts a new word.

use std::ops::Range;

use super::{is_cjk, Segmenter};

#[derive(Debug, Default, Clone, Copy)]
pub struct Words;

/// Whether `c` starts a new word although no whitespace precedes it: every CJK character does,
/// and so does a letter or digit after a CJK word (`你。Rust`).
fn starts_word(in_cjk_word: bool, c: char) -> bool {
    is_cjk(c) || (in_cjk_word && c.is_alphanumeric())
}

impl Segmenter for Words {
    fn segment(&self, text: &str) -> Vec<Range<usize>> {
        let mut spans = Vec::new();
        let mut unit_start = 0;
        // Whether the current unit has a body yet, and whether that body is a CJK word.
        let mut in_body = false;
        let mut in_cjk_word = false;
        // Where the whitespace after the current unit's body began.
        let mut trailing_whitespace: Option<usize> = None;
        for (i, c) in text.char_indices() {
            if c.is_whitespace() {
                if in_body && trailing_whitespace.is_none() {
                    trailing_whitespace = Some(i);
                }
                continue;
            }
            let cut = match trailing_whitespace {
                Some(ws) => Some(ws),
                None if in_body && starts_word(in_cjk_word, c) => Some(i),
                None => None,
            };
            if let Some(cut) = cut {
                spans.push(unit_start..cut);
                unit_start = cut;
            }
            if cut.is_some() || !in_body {
                in_cjk_word = is_cjk(c);
            }
            in_body = true;
            trailing_whitespace = None;
        }
        match trailing_whitespace {
            Some(ws) => {
                spans.push(unit_start..ws);
                spans.push(ws..text.len());
            }
            None if unit_start < text.len() => spans.push(unit_start..text.len()),
            None => {}
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::test_util::pieces;

    fn words(text: &str) -> Vec<&str> {
        pieces(text, &Words.segment(text))
    }

    #[test]
    fn words_carry_their_leading_whitespace_and_punctuation() {
        assert_eq!(
            words("  Hello, world!\n\n(see below) "),
            vec!["  Hello,", " world!", "\n\n(see", " below)", " "]
        );
    }

    #[test]
    fn cjk_characters_are_words_and_punctuation_attaches_to_them() {
        assert_eq!(
            words("我爱你。Rust很好！"),
            vec!["我", "爱", "你。", "Rust", "很", "好！"]
        );
        assert_eq!(words("日本語 text"), vec!["日", "本", "語", " text"]);
    }

    #[test]
    fn emoji_and_combining_marks_stay_inside_their_word() {
        assert_eq!(words("hi 👋🏽 café"), vec!["hi", " 👋🏽", " café"]);
    }

    #[test]
    fn empty_and_whitespace_only_texts() {
        assert!(words("").is_empty());
        assert_eq!(words(" \n "), vec![" \n "]);
        assert_eq!(words("word"), vec!["word"]);
    }
}
