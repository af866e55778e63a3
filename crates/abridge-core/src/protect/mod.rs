//! Protected spans: text that compression must never drop or cut.
//!
//! A unit whose body overlaps a protected span is kept whole, so a protected span always appears
//! verbatim in the output. Spans are trimmed of surrounding whitespace: whitespace is not a thing
//! to protect (line breaks survive rendering anyway, see [`crate::render`]).

pub mod code;
pub mod entities;
pub mod markup;

use std::ops::Range;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::segment::{Segmenter, Words};
use crate::{Error, Result};

/// What to protect besides `<abridge keep>` regions, with LLMLingua's option names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtectOptions {
    /// Strings kept wherever they occur (LLMLingua's `force_tokens`).
    pub force_tokens: Vec<String>,
    /// Keep every word that contains a digit (LLMLingua's `force_reserve_digit`).
    pub force_reserve_digit: bool,
    /// Regular expressions (Rust `regex` syntax) whose matches are kept.
    pub patterns: Vec<String>,
    /// Keep fenced code blocks and inline code spans.
    pub protect_code: bool,
    /// Keep dates, numbers with their units and capitalised names whole: each is one unit, kept
    /// or dropped as a piece ([`entities`]); not protected.
    pub entities: bool,
}

impl ProtectOptions {
    /// The protected byte ranges of `text`, sorted, merged and trimmed of whitespace.
    pub fn protected_ranges(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let mut ranges = self.force_token_ranges(text)?;
        for pattern in &self.patterns {
            let regex = Regex::new(pattern).map_err(|e| {
                Error::InvalidInput(format!("invalid protect pattern `{pattern}`: {e}"))
            })?;
            ranges.extend(regex.find_iter(text).map(|m| m.range()));
        }
        if self.force_reserve_digit {
            ranges.extend(
                Words
                    .segment(text)
                    .into_iter()
                    .filter(|word| text[word.clone()].chars().any(char::is_numeric)),
            );
        }
        if self.protect_code {
            ranges.extend(code::code_ranges(text));
        }
        Ok(normalize(text, ranges))
    }

    /// Where the force tokens occur in `text`, sorted, merged and trimmed of whitespace.
    pub fn force_token_ranges(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let mut ranges = Vec::new();
        for (i, token) in self.force_tokens.iter().enumerate() {
            if token.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "force token {} is empty: remove it",
                    i + 1
                )));
            }
            // Whitespace-only tokens (LLMLingua-2 users pass "\n") trim to nothing below: line
            // breaks survive rendering anyway.
            ranges.extend(
                text.match_indices(token.as_str())
                    .map(|(at, s)| at..at + s.len()),
            );
        }
        Ok(normalize(text, ranges))
    }
}

/// Trims each range of whitespace, drops empty ones, sorts and merges overlapping ones.
pub(crate) fn normalize(text: &str, ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    let mut trimmed: Vec<Range<usize>> = ranges
        .into_iter()
        .filter_map(|r| {
            let piece = &text[r.clone()];
            let start = r.start + (piece.len() - piece.trim_start().len());
            let end = r.start + piece.trim_end().len();
            (start < end).then_some(start..end)
        })
        .collect();
    trimmed.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(trimmed.len());
    for r in trimmed {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Whether `range` overlaps any of the sorted, disjoint `ranges`.
pub(crate) fn overlaps_any(ranges: &[Range<usize>], range: &Range<usize>) -> bool {
    let first_ending_after = ranges.partition_point(|r| r.end <= range.start);
    ranges
        .get(first_ending_after)
        .is_some_and(|r| r.start < range.end && range.start < range.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protected<'t>(options: &ProtectOptions, text: &'t str) -> Vec<&'t str> {
        options
            .protected_ranges(text)
            .unwrap()
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn force_tokens_patterns_and_digit_words() {
        let options = ProtectOptions {
            force_tokens: vec!["New York".into()],
            force_reserve_digit: true,
            patterns: vec![r"[A-Z]{3}-\d+".into(), r"\s+".into()],
            ..Default::default()
        };
        assert_eq!(
            protected(
                &options,
                "Flights to New York cost $1,200 on ABC-42 (gate 7b)."
            ),
            vec!["New York", "$1,200", "ABC-42", "7b)."]
        );
    }

    #[test]
    fn overlapping_ranges_merge() {
        let options = ProtectOptions {
            force_tokens: vec!["big red".into(), "red dog".into()],
            ..Default::default()
        };
        assert_eq!(protected(&options, "a big red dog"), vec!["big red dog"]);
    }

    #[test]
    fn whitespace_force_tokens_are_accepted_and_protect_nothing() {
        let options = ProtectOptions {
            force_tokens: vec!["\n".into(), "?".into()],
            ..Default::default()
        };
        assert_eq!(protected(&options, "Why\nnot? ok"), vec!["?"]);
    }

    #[test]
    fn empty_force_token_and_bad_regex_are_invalid_input() {
        let empty = ProtectOptions {
            force_tokens: vec!["".into()],
            ..Default::default()
        };
        assert!(matches!(
            empty.protected_ranges("x"),
            Err(Error::InvalidInput(m)) if m.contains("force token 1")
        ));
        let bad = ProtectOptions {
            patterns: vec!["(".into()],
            ..Default::default()
        };
        assert!(matches!(
            bad.protected_ranges("x"),
            Err(Error::InvalidInput(m)) if m.contains("invalid protect pattern `(`")
        ));
    }

    #[test]
    fn overlap_lookup() {
        let ranges = vec![2..4, 8..9];
        assert!(overlaps_any(&ranges, &(3..5)));
        assert!(overlaps_any(&ranges, &(0..9)));
        assert!(!overlaps_any(&ranges, &(4..8)));
        assert!(!overlaps_any(&ranges, &(9..12)));
        assert!(!overlaps_any(&ranges, &(3..3)));
    }
}
