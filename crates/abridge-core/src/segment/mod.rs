//! Segmentation: text → units, each a byte range into the original text.
//!
//! Every segmenter returns ranges that partition the text: each unit is its *leading whitespace*
//! followed by its *body* (the non-whitespace part, which may contain inner whitespace for
//! phrases and sentences). Only the text's whitespace-only tail, if any, is a unit without a body.
//! Concatenating the units restores the text byte for byte, so rendering never invents text.

pub mod phrases;
pub mod sentences;
pub mod split;
pub mod tokens;
pub mod words;

use std::ops::Range;

use serde::{Deserialize, Serialize};

pub use phrases::Phrases;
pub use sentences::Sentences;
pub use split::split_oversized;
pub use tokens::units_from_tokens;
pub use words::Words;

/// Splits text into units (see the module documentation for the contract).
pub trait Segmenter {
    fn segment(&self, text: &str) -> Vec<Range<usize>>;
}

/// The size of the pieces a compressor keeps or drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Scoring-model tokens: finest, but may cut a word in two (never a character).
    Token,
    /// Whole words (a CJK character is a word): the default for token-level methods.
    Word,
    /// Noun-phrase-like groups of words (see [`Phrases`]).
    Phrase,
    Sentence,
}

impl Unit {
    pub const ALL: [Unit; 4] = [Self::Token, Self::Word, Self::Phrase, Self::Sentence];

    /// The name [`FromStr`](std::str::FromStr) reads back.
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Word => "word",
            Self::Phrase => "phrase",
            Self::Sentence => "sentence",
        }
    }
}

impl std::str::FromStr for Unit {
    type Err = crate::Error;

    /// Accepts Selective Context's `reduce_level` names too (`sent`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "token" => Ok(Self::Token),
            "word" => Ok(Self::Word),
            "phrase" => Ok(Self::Phrase),
            "sentence" | "sent" => Ok(Self::Sentence),
            _ => Err(crate::Error::InvalidInput(format!(
                "unknown unit `{s}`: use token, word, phrase or sentence"
            ))),
        }
    }
}

/// Length in bytes of the whitespace that starts `s`.
pub fn leading_whitespace_len(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

/// The part of `span` after its leading whitespace.
pub fn body(text: &str, span: &Range<usize>) -> Range<usize> {
    span.start + leading_whitespace_len(&text[span.clone()])..span.end
}

/// Han ideographs and Japanese kana: scripts written without spaces, so each character is a word.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // Hiragana, Katakana
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B–F, compatibility supplement
}

/// Joins consecutive words into larger units, starting a new unit at every word for which
/// `starts_unit` holds. A body-less word (the text's whitespace tail) stays a unit of its own.
pub(crate) fn group_words(
    text: &str,
    words: &[Range<usize>],
    mut starts_unit: impl FnMut(usize) -> bool,
) -> Vec<Range<usize>> {
    let mut units: Vec<Range<usize>> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let has_body = !text[word.clone()].trim_start().is_empty();
        match units.last_mut() {
            Some(unit) if has_body && !starts_unit(i) => unit.end = word.end,
            _ => units.push(word.clone()),
        }
    }
    units
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::ops::Range;

    /// The units as strings, for readable assertions; also checks that they partition the text.
    pub fn pieces<'t>(text: &'t str, spans: &[Range<usize>]) -> Vec<&'t str> {
        let joined: String = spans.iter().map(|s| &text[s.clone()]).collect();
        assert_eq!(joined, text, "units must partition the text");
        spans.iter().map(|s| &text[s.clone()]).collect()
    }
}
