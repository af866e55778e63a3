//! Units too large for the budget, split: a unit whose text alone is over the target can never be
//! kept, so a budget smaller than it would silently drop it whole (a 200 kB line without
//! spaces, one long sentence, a file of NULs). Such a unit is split into sentences, a sentence
//! still too large into words, and a word still too large into characters.

use std::ops::Range;

use super::{Segmenter, Sentences, Words};
use crate::TokenCounter;

/// One way of cutting a piece of text into smaller units.
type Level = dyn Fn(&str) -> Vec<Range<usize>>;

/// `units` with every unit over `max_tokens` (in the target LLM's tokens) split as the module
/// documentation says. The result still partitions the text and keeps the units' contract
/// (leading whitespace, then a body): a character piece has no whitespace of its own.
pub fn split_oversized(
    text: &str,
    units: Vec<Range<usize>>,
    max_tokens: usize,
    counter: &dyn TokenCounter,
) -> Vec<Range<usize>> {
    // A token covers at least one byte, so a unit of at most `max_tokens` bytes fits; only the
    // rest are counted.
    let fits = |unit: &Range<usize>| {
        unit.len() <= max_tokens || counter.count(&text[unit.clone()]) <= max_tokens
    };
    if units.iter().all(fits) {
        return units;
    }
    let levels: [&Level; 3] = [
        &|piece| Sentences.segment(piece),
        &|piece| Words.segment(piece),
        &characters,
    ];
    let mut out = Vec::with_capacity(units.len());
    split(text, units, &levels, &fits, &mut out);
    out
}

fn split(
    text: &str,
    units: Vec<Range<usize>>,
    levels: &[&Level],
    fits: &dyn Fn(&Range<usize>) -> bool,
    out: &mut Vec<Range<usize>>,
) {
    for unit in units {
        let Some((level, finer)) = levels.split_first().filter(|_| !fits(&unit)) else {
            out.push(unit);
            continue;
        };
        let pieces: Vec<Range<usize>> = level(&text[unit.clone()])
            .into_iter()
            .map(|piece| unit.start + piece.start..unit.start + piece.end)
            .collect();
        if pieces.len() <= 1 {
            // This level cannot cut it: try the next.
            split(text, vec![unit], finer, fits, out);
        } else {
            split(text, pieces, finer, fits, out);
        }
    }
}

/// The leading whitespace with the first character, then one unit per character.
fn characters(piece: &str) -> Vec<Range<usize>> {
    let body = super::leading_whitespace_len(piece);
    let mut cuts: Vec<usize> = piece[body..]
        .char_indices()
        .skip(1)
        .map(|(i, _)| body + i)
        .collect();
    cuts.insert(0, 0);
    cuts.push(piece.len());
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

#[cfg(test)]
// A list holding one range (the whole text) is what these tests mean.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use crate::segment::test_util::pieces;
    use crate::testing::WordCounter;

    /// Counts characters that are not whitespace, so a long word is "large".
    struct CharCounter;

    impl TokenCounter for CharCounter {
        fn count(&self, text: &str) -> usize {
            text.chars().filter(|c| !c.is_whitespace()).count()
        }

        fn name(&self) -> &str {
            "chars"
        }
    }

    #[test]
    fn units_that_fit_are_left_alone() {
        let text = "One two. Three four.";
        let units = Sentences.segment(text);
        assert_eq!(split_oversized(text, units.clone(), 2, &WordCounter), units);
    }

    #[test]
    fn too_large_units_split_into_sentences_then_words_then_characters() {
        let text = "One two. Three four five six seven.  abcdefgh";
        let units = vec![0..text.len()];
        let got = split_oversized(text, units, 6, &CharCounter);
        assert_eq!(
            pieces(text, &got),
            [
                "One", " two.", " Three", " four", " five", " six", " seven.", "  a", "b", "c",
                "d", "e", "f", "g", "h"
            ]
        );
    }

    #[test]
    fn a_line_without_spaces_becomes_characters() {
        let text = "x".repeat(50);
        let got = split_oversized(&text, vec![0..50], 10, &CharCounter);
        assert_eq!(got.len(), 50);
        assert!(got.iter().all(|u| u.len() == 1));
    }

    #[test]
    fn multibyte_characters_are_never_cut() {
        let text = "中文中文中文 ñandú";
        let got = split_oversized(text, vec![0..text.len()], 1, &CharCounter);
        let joined: Vec<&str> = pieces(text, &got);
        assert_eq!(
            joined,
            vec!["中", "文", "中", "文", "中", "文", " ñ", "a", "n", "d", "ú"]
        );
    }
}
