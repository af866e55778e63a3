//! Cutting a text's tokens into windows an encoder can read (512 positions for BERT and
//! XLM-R, special tokens included).

use std::ops::Range;

use abridge_core::{Interrupt, ModelToken};

use crate::bert::FORWARD_TOKENS;
use crate::encoder_tokenizer::EncoderTokenizer;
use crate::error::{Error, Result};

/// One text's tokens (no special tokens) and a row of per-token outputs for each,
/// `tokens.len() × width`, row-major.
pub type TokenRows = (Vec<ModelToken>, Vec<f32>);

/// One window of a long token sequence and the tokens whose results are taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Tokens the encoder reads together.
    pub tokens: Range<usize>,
    /// The part of `tokens` this window answers for; the `owned` ranges of all windows tile
    /// `0..n` in order.
    pub owned: Range<usize>,
}

/// Overlapping windows of at most `capacity` tokens over `n` tokens, for per-token outputs.
///
/// Consecutive windows overlap by a quarter of the capacity, and each token in an overlap takes
/// its result from the window where it is farther from the cut (the overlap is split at its
/// middle). So every token sees at least an eighth of the capacity of context on each side,
/// except at the text's own ends; that costs about a third more compute than disjoint windows.
/// The last window ends at `n` and is full, so it may overlap its predecessor by more.
/// Returns no window for `n == 0`; `capacity` must be positive.
pub fn overlapping(n: usize, capacity: usize) -> Vec<Window> {
    assert!(capacity > 0, "a window must hold at least one token");
    if n <= capacity {
        return if n == 0 {
            Vec::new()
        } else {
            vec![Window {
                tokens: 0..n,
                owned: 0..n,
            }]
        };
    }
    let stride = capacity - capacity / 4;
    let mut starts: Vec<usize> = (0..)
        .map(|i| i * stride)
        .take_while(|&start| start + capacity < n)
        .collect();
    starts.push(n - capacity);
    let mut windows: Vec<Window> = Vec::with_capacity(starts.len());
    for start in starts {
        let tokens = start..start + capacity;
        let owned_start = match windows.last_mut() {
            Some(previous) => {
                let cut = (start + previous.tokens.end) / 2;
                previous.owned.end = cut;
                cut
            }
            None => 0,
        };
        windows.push(Window {
            owned: owned_start..tokens.end,
            tokens,
        });
    }
    windows
}

/// Disjoint windows of at most `capacity` tokens, as equal in size as possible, covering `n`
/// tokens; for pooled outputs, where every token must count once. `n == 0` gives one empty
/// window (an empty text still has an embedding); `capacity` must be positive.
pub fn disjoint(n: usize, capacity: usize) -> Vec<Range<usize>> {
    assert!(capacity > 0, "a window must hold at least one token");
    let count = n.div_ceil(capacity).max(1);
    (0..count)
        .map(|i| i * n / count..(i + 1) * n / count)
        .collect()
}

/// Consecutive runs of items whose lengths add up to at most `limit` (an item longer than the
/// limit runs alone): the sequences one forward pass reads together.
pub fn batches(lengths: &[usize], limit: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut first = 0;
    while first < lengths.len() {
        let mut end = first + 1;
        let mut total = lengths[first];
        while end < lengths.len() && total + lengths[end] <= limit {
            total += lengths[end];
            end += 1;
        }
        out.push(first..end);
        first = end;
    }
    out
}

/// Per-token outputs of each text: its tokens are cut into [`overlapping`] windows of `capacity`
/// text tokens, and the windows of all texts (each framed by the special tokens) go to `read` in
/// [`batches`] of one forward pass, `interrupt` asked before each. `read` returns `width` values
/// for every position of each window, and each token takes its row from the window that owns it.
/// Only one batch's outputs are alive at a time, so a `read` that reduces its hidden states
/// (a classifier head) keeps memory bounded by the batch rather than by the text.
pub fn per_token(
    tokenizer: &EncoderTokenizer,
    capacity: usize,
    texts: &[&str],
    width: usize,
    interrupt: &dyn Interrupt,
    mut read: impl FnMut(&[&[u32]]) -> Result<Vec<Vec<f32>>>,
) -> Result<Vec<TokenRows>> {
    let mut out: Vec<TokenRows> = Vec::with_capacity(texts.len());
    // For each window: its text and the tokens it answers for.
    let mut placements = Vec::new();
    for (t, text) in texts.iter().enumerate() {
        let tokens = tokenizer.encode(text)?;
        placements.extend(
            overlapping(tokens.len(), capacity)
                .into_iter()
                .map(|w| (t, w)),
        );
        let rows = vec![0f32; tokens.len() * width];
        out.push((tokens, rows));
    }
    let lengths: Vec<usize> = placements
        .iter()
        .map(|(_, window)| window.tokens.len() + tokenizer.special_tokens())
        .collect();
    let skip = tokenizer.prefix_len();
    for batch in batches(&lengths, FORWARD_TOKENS) {
        interrupt.check().map_err(Error::Interrupted)?;
        let placed = &placements[batch];
        let sequences: Vec<Vec<u32>> = placed
            .iter()
            .map(|(t, window)| {
                let ids: Vec<u32> = out[*t].0[window.tokens.clone()]
                    .iter()
                    .map(|token| token.id)
                    .collect();
                tokenizer.with_special_tokens(&ids)
            })
            .collect();
        let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
        for ((t, window), rows) in placed.iter().zip(read(&refs)?) {
            let from = (skip + window.owned.start - window.tokens.start) * width;
            let to = from + window.owned.len() * width;
            out[*t].1[window.owned.start * width..window.owned.end * width]
                .copy_from_slice(&rows[from..to]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_windows_tile_the_tokens() {
        assert!(overlapping(0, 8).is_empty());
        assert_eq!(
            overlapping(5, 8),
            [Window {
                tokens: 0..5,
                owned: 0..5
            }]
        );
        for n in 1..200 {
            for capacity in [1, 2, 3, 8, 13, 64] {
                let windows = overlapping(n, capacity);
                let mut next = 0;
                for w in &windows {
                    assert!(w.tokens.len() <= capacity && w.tokens.end <= n);
                    assert_eq!(w.owned.start, next, "n {n} capacity {capacity}");
                    assert!(w.tokens.start <= w.owned.start && w.owned.end <= w.tokens.end);
                    assert!(!w.owned.is_empty());
                    next = w.owned.end;
                }
                assert_eq!(next, n);
            }
        }
        // Capacity 8: windows start every 6 tokens and the overlap is split in the middle.
        assert_eq!(
            overlapping(20, 8),
            [
                Window {
                    tokens: 0..8,
                    owned: 0..7
                },
                Window {
                    tokens: 6..14,
                    owned: 7..13
                },
                Window {
                    tokens: 12..20,
                    owned: 13..20
                },
            ]
        );
    }

    #[test]
    fn batches_fill_up_to_the_limit_in_order() {
        assert!(batches(&[], 10).is_empty());
        assert_eq!(batches(&[4, 6, 1, 12, 3], 10), [0..2, 2..3, 3..4, 4..5]);
        assert_eq!(batches(&[3, 3, 3, 3], 10), [0..3, 3..4]);
    }

    #[test]
    fn disjoint_windows_are_balanced() {
        // (`Range { .. }`: a one-element array of `a..b` reads like a typo to clippy.)
        assert_eq!(disjoint(0, 4), [Range { start: 0, end: 0 }]);
        assert_eq!(disjoint(4, 4), [Range { start: 0, end: 4 }]);
        assert_eq!(disjoint(5, 4), [0..2, 2..5]);
        assert_eq!(disjoint(1000, 510), [0..500, 500..1000]);
    }
}
