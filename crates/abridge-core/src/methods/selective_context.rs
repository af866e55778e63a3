//! Selective Context (Li et al., EMNLP 2023): drop the units that carry the least self-information.
//!
//! Self-information is the surprisal `-ln p(token | preceding text)` under the causal scorer,
//! aggregated to units (tokens, words, phrases or sentences) as the mean per model token (see
//! `score.rs`); selection then keeps the most informative units that fit the budget.
//! `reduce_ratio` is [`crate::Budget::from_reduce_ratio`], `reduce_level` is [`crate::Unit`].
//!
//! Where we differ from the reference (see docs/ALGORITHMS.md): the text is scored as one stream
//! (windows with carried-over context past the model's length) instead of sentence by sentence, so
//! the first tokens of each sentence are not penalised for lacking context; whitespace is kept; the
//! budget is counted in target-LLM tokens on the rendered text, not as a fraction of units.

use crate::score::{aggregate, score_stream, Meter};
use crate::{ModelToken, Result, TokenScorer};
use std::ops::Range;

/// The mean surprisal of each unit, from one scoring pass over the prompt's `tokens`.
pub(crate) fn unit_scores(
    units: &[Range<usize>],
    tokens: &[ModelToken],
    scorer: &dyn TokenScorer,
    meter: &mut Meter,
) -> Result<Vec<Option<f32>>> {
    meter.set_total(tokens.len());
    let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
    let surprisals = score_stream(scorer, &ids, meter)?;
    let spans: Vec<Range<usize>> = tokens.iter().map(|t| t.span.clone()).collect();
    Ok(aggregate(units, &spans, &surprisals))
}
