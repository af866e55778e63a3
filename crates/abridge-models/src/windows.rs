//! Cutting a text's tokens into windows an encoder can read (512 positions for BERT and
//! XLM-R, special tokens included).

use std::ops::Range;

use abridge_core::ModelToken;

use crate::encoder_tokenizer::EncoderTokenizer;
use crate::error::Result;

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

/// Per-token outputs of each text: its tokens are cut into [`overlapping`] windows of `capacity`
/// text tokens, all windows of all texts (each framed by the special tokens) go to `read` as one
/// batch, which returns `width` values for every position, and each token takes its row from the
/// window that owns it.
pub fn per_token(
    tokenizer: &EncoderTokenizer,
    capacity: usize,
    texts: &[&str],
    width: usize,
    read: impl FnOnce(&[&[u32]]) -> Result<Vec<Vec<f32>>>,
) -> Result<Vec<TokenRows>> {
    let mut tokenized = Vec::with_capacity(texts.len());
    let mut sequences = Vec::new();
    // For each window: its text and the tokens it answers for.
    let mut placements = Vec::new();
    for (t, text) in texts.iter().enumerate() {
        let tokens = tokenizer.encode(text)?;
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        for window in overlapping(ids.len(), capacity) {
            sequences.push(tokenizer.with_special_tokens(&ids[window.tokens.clone()]));
            placements.push((t, window));
        }
        tokenized.push(tokens);
    }
    let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let window_rows = read(&refs)?;
    let mut out: Vec<TokenRows> = tokenized
        .into_iter()
        .map(|tokens| {
            let rows = vec![0f32; tokens.len() * width];
            (tokens, rows)
        })
        .collect();
    let skip = tokenizer.prefix_len();
    for ((t, window), rows) in placements.iter().zip(window_rows) {
        let from = (skip + window.owned.start - window.tokens.start) * width;
        let to = from + window.owned.len() * width;
        out[*t].1[window.owned.start * width..window.owned.end * width]
            .copy_from_slice(&rows[from..to]);
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
    fn disjoint_windows_are_balanced() {
        // (`Range { .. }`: a one-element array of `a..b` reads like a typo to clippy.)
        assert_eq!(disjoint(0, 4), [Range { start: 0, end: 0 }]);
        assert_eq!(disjoint(4, 4), [Range { start: 0, end: 4 }]);
        assert_eq!(disjoint(5, 4), [0..2, 2..5]);
        assert_eq!(disjoint(1000, 510), [0..500, 500..1000]);
    }
}
