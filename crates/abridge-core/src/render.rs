//! Rendering: kept units back to text, and the label map.
//!
//! Whitespace rule: a kept unit is written with its own leading whitespace, except after dropped
//! units, where the separator is the one with the most line breaks among the dropped units'
//! leading whitespace and the kept unit's own (ties go to the kept unit's own unless it has none).
//! So a dropped word takes its space with it, but a line or paragraph break before a dropped word
//! survives: `"a b\n\nc d"` without `b c` is `"a\n\nd"`. Text before the first kept unit renders
//! as the text's own leading whitespace (usually none); the whitespace-only tail of the text is
//! kept whenever anything is.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::segment::leading_whitespace_len;

/// One unit of the prompt and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabeledSpan {
    /// Byte range in [`crate::Compressed::source`]; the spans partition it.
    pub span: Range<usize>,
    pub kept: bool,
    /// Kept whatever the budget: protected (instruction, question, force tokens, digits,
    /// patterns, code, `<abridge keep>`), or the text's whitespace tail.
    pub protected: bool,
    /// Mean surprisal per model token in nats, where the unit was scored; for LLMLingua-2 the
    /// keep-probability (combined with the question's relevance when there is one).
    pub score: Option<f32>,
}

/// The text of the kept units, with separators chosen by the module's whitespace rule.
pub fn render(text: &str, units: &[Range<usize>], kept: &[bool]) -> String {
    debug_assert_eq!(units.len(), kept.len());
    let mut out = String::with_capacity(text.len());
    let mut started = false;
    let mut dropped_gap: Option<&str> = None;
    for (unit, &keep) in units.iter().zip(kept) {
        let piece = &text[unit.clone()];
        let (whitespace, body) = piece.split_at(leading_whitespace_len(piece));
        if body.is_empty() {
            // The text's whitespace tail: end the output as the text ends.
            if started {
                out.push_str(stronger(dropped_gap, whitespace));
            }
            continue;
        }
        if !keep {
            dropped_gap =
                Some(dropped_gap.map_or(whitespace, |gap| stronger(Some(gap), whitespace)));
            continue;
        }
        let separator = if started {
            stronger(dropped_gap, whitespace)
        } else {
            units.first().map_or("", |first| {
                let first = &text[first.clone()];
                &first[..leading_whitespace_len(first)]
            })
        };
        out.push_str(separator);
        out.push_str(body);
        started = true;
        dropped_gap = None;
    }
    out
}

/// Of a dropped gap and a unit's own whitespace, the one with more line breaks; on a tie `own`,
/// unless it is empty, so words that whitespace separated stay separated (`"a 中b"` without `中`
/// is `"a b"`, not `"ab"`).
fn stronger<'a>(gap: Option<&'a str>, own: &'a str) -> &'a str {
    let breaks = |s: &str| s.matches('\n').count();
    match gap {
        Some(gap) if breaks(gap) > breaks(own) || own.is_empty() => gap,
        _ => own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Segmenter, Words};

    /// Renders `text` split into words, keeping the words whose body is in `keep`.
    fn keep_words(text: &str, keep: &[&str]) -> String {
        let units = Words.segment(text);
        let kept: Vec<bool> = units
            .iter()
            .map(|u| keep.contains(&text[u.clone()].trim_start()))
            .collect();
        render(text, &units, &kept)
    }

    #[test]
    fn dropped_words_take_their_space_with_them() {
        assert_eq!(keep_words("the cat sat down", &["cat", "down"]), "cat down");
        assert_eq!(keep_words("  indented start", &["start"]), "  start");
    }

    #[test]
    fn line_and_paragraph_breaks_survive_dropped_words() {
        assert_eq!(keep_words("a b\n\nc d", &["a", "d"]), "a\n\nd");
        assert_eq!(keep_words("a b\nc d", &["a", "c", "d"]), "a\nc d");
        assert_eq!(keep_words("a\n  b c", &["a", "c"]), "a\n  c");
        assert_eq!(keep_words("x\n\ny\nz", &["x", "z"]), "x\n\nz");
    }

    #[test]
    fn the_whitespace_tail_follows_kept_text_only() {
        assert_eq!(keep_words("a b\n", &["a"]), "a\n");
        assert_eq!(keep_words("a b\n", &[]), "");
    }

    #[test]
    fn cjk_words_join_without_spaces_but_spaced_words_stay_apart() {
        assert_eq!(keep_words("我爱你。", &["我", "你。"]), "我你。");
        assert_eq!(keep_words("a 中b", &["a", "b"]), "a b");
    }

    #[test]
    fn keeping_everything_restores_the_text() {
        let text = "\n  Mixed 文本, emoji 👋🏽\n\n\tand tabs  ";
        let units = Words.segment(text);
        assert_eq!(render(text, &units, &vec![true; units.len()]), text);
    }
}
