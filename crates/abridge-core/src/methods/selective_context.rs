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

use super::{Decision, Scoring, Stage, Stages};
use crate::score::{aggregate, score_stream};
use crate::select::Plan;
use crate::{CompressRequest, Result};
use std::ops::Range;

/// Selective Context's stages: one scoring pass, then the global selection.
pub(crate) struct SelectiveContext;

impl Stages for SelectiveContext {
    fn validate(&self, _: &CompressRequest) -> Result<()> {
        Ok(())
    }

    fn reads_prompt_tokens(&self) -> bool {
        true
    }

    /// The mean surprisal of each unit, from one scoring pass over the prompt's tokens.
    fn score(&self, stage: &mut Stage, input: &Scoring, plan: &mut Plan) -> Result<Decision> {
        let tokens = input.prompt_tokens;
        stage.meter.set_total(tokens.len());
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        let surprisals = score_stream(stage.scorer(), &ids, stage.meter)?;
        let spans: Vec<Range<usize>> = tokens.iter().map(|t| t.span.clone()).collect();
        Ok(Decision::Select {
            scores: aggregate(&plan.units, &spans, &surprisals),
            preferred: None,
        })
    }
}
