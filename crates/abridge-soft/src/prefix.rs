//! Using a soft prompt: the runtime reads the document-start token, the k vectors, then the text
//! into one KV cache, so generation and scoring run on the fast inference path.
//!
//! **Positions.** The document-start token (`<|endoftext|>` for SmolLM2, as every abridge
//! session starts) sits at position 0, the soft vectors at positions 1..=k, the text from k + 1.
//! Position 0 is where these models park attention they do not need (an "attention sink"): a
//! soft vector placed there carried almost nothing. On SmolLM2-135M one vector for 8 tokens
//! reached exact regeneration in 72 steps after the document-start token, and got worse than
//! its start (7.0 nats/token after 100 steps) at position 0.

pub(crate) use abridge_models::generate::greedy;
use abridge_models::llama::KvCache;
use abridge_models::LanguageModel;

use crate::error::{Error, Result};
use crate::soft_prompt::SoftPrompt;

/// A cache holding the document-start token, the soft prompt's vectors (positions 1..=k), then
/// `ids`.
pub fn prefixed_cache(lm: &LanguageModel, soft: &SoftPrompt, ids: &[u32]) -> Result<KvCache> {
    if soft.hidden != lm.model.config.hidden {
        return Err(Error::InvalidInput(format!(
            "the soft prompt has {}-wide vectors, the model {}",
            soft.hidden, lm.model.config.hidden
        )));
    }
    let mut cache = lm.model.new_cache();
    lm.model
        .forward(&mut cache, &[lm.tokenizer.document_start()])?;
    lm.model.forward_embeddings(&mut cache, &soft.vectors)?;
    lm.model.forward(&mut cache, ids)?;
    Ok(cache)
}

/// Greedy continuation of `[soft prompt; prompt ids]`: at most `max_tokens` tokens, ending early
/// at an end-of-text token (not included).
pub fn generate(
    lm: &LanguageModel,
    soft: &SoftPrompt,
    prompt: &[u32],
    max_tokens: usize,
) -> Result<Vec<u32>> {
    let mut cache = prefixed_cache(lm, soft, prompt)?;
    Ok(greedy(lm, &mut cache, max_tokens, &mut |_| {})?)
}

/// `ln p(ids[i] | soft prompt, ids[..i])` for every token of `ids`.
pub fn log_likelihoods(lm: &LanguageModel, soft: &SoftPrompt, ids: &[u32]) -> Result<Vec<f32>> {
    let mut cache = prefixed_cache(lm, soft, &[])?;
    let read = cache.len();
    lm.model.forward(&mut cache, ids)?;
    Ok(lm.model.next_token_log_probs(&cache, read - 1, ids))
}
