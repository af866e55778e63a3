//! Token units: the scoring model's own tokens, made to follow the unit contract.

use std::ops::Range;

use crate::ModelToken;

/// Units at the model's token boundaries, following the [module contract](super): whitespace at
/// the end of a token moves to the next unit (so dropping `"end\n"` keeps the line break),
/// whitespace-only tokens join the next unit, and the pieces of a character that byte-level BPE
/// split (overlapping spans, or empty spans at the character's end) form one unit, so no unit cuts
/// a character.
pub fn units_from_tokens(text: &str, tokens: &[ModelToken]) -> Vec<Range<usize>> {
    let mut cuts = Vec::with_capacity(tokens.len());
    let mut covered_to = 0;
    for token in tokens {
        if token.span.start >= covered_to && token.span.start > 0 {
            cuts.push(token.span.start);
        }
        covered_to = covered_to.max(token.span.end);
    }
    let mut units = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        let piece = &text[start..cut];
        let cut = start + piece.trim_end().len();
        if text[start..cut].trim_start().is_empty() {
            continue;
        }
        units.push(start..cut);
        start = cut;
    }
    if start < text.len() {
        let body_end = start + text[start..].trim_end().len();
        if body_end > start && body_end < text.len() {
            units.push(start..body_end);
            units.push(body_end..text.len());
        } else {
            units.push(start..text.len());
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::test_util::pieces;

    fn tokens(spans: &[Range<usize>]) -> Vec<ModelToken> {
        spans
            .iter()
            .map(|span| ModelToken {
                id: 0,
                span: span.clone(),
            })
            .collect()
    }

    #[test]
    fn trailing_and_whitespace_only_tokens_move_to_the_next_unit() {
        let text = "end.\n\n Next word ";
        // "end" "." "\n\n" " Next" " word" " "
        let spans = tokens(&[0..3, 3..4, 4..6, 6..11, 11..16, 16..17]);
        assert_eq!(
            pieces(text, &units_from_tokens(text, &spans)),
            vec!["end", ".", "\n\n Next", " word", " "]
        );
    }

    #[test]
    fn byte_fallback_pieces_of_one_character_stay_together() {
        let text = "a语b";
        // "语" is three bytes split over two tokens that both carry the character's range.
        let spans = tokens(&[0..1, 1..4, 1..4, 4..5]);
        assert_eq!(
            pieces(text, &units_from_tokens(text, &spans)),
            vec!["a", "语", "b"]
        );
        // The same split reported as the character's range plus an empty span at its end.
        let spans = tokens(&[0..1, 1..4, 4..4, 4..5]);
        assert_eq!(
            pieces(text, &units_from_tokens(text, &spans)),
            vec!["a", "语", "b"]
        );
    }

    #[test]
    fn a_token_ending_in_a_newline_gives_the_newline_away() {
        let text = "hello\nworld";
        let spans = tokens(&[0..6, 6..11]);
        assert_eq!(
            pieces(text, &units_from_tokens(text, &spans)),
            vec!["hello", "\nworld"]
        );
    }
}
