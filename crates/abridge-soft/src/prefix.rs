//! Using a soft prompt: the runtime reads the document-start token, the k vectors, then the text
//! into one KV cache, so generation and scoring run on the fast inference path.
//!
//! **Positions.** The document-start token (`<|endoftext|>` for SmolLM2, as every abridge
//! session starts) sits at position 0, the soft vectors at positions 1..=k, the text from k + 1.
//! Position 0 is where these models park attention they do not need (an "attention sink"): a
//! soft vector placed there carried almost nothing. On SmolLM2-135M one vector for 8 tokens
//! reached exact regeneration in 72 steps after the document-start token, and got worse than
//! its start (7.0 nats/token after 100 steps) at position 0.

use abridge_models::generate::greedy;
use abridge_models::llama::KvCache;
use abridge_models::lora::QvLora;
use abridge_models::LanguageModel;

use crate::error::{Error, Result};
use crate::soft_prompt::SoftPrompt;

/// What the model reads before a prefix of input vectors. The two kinds of vectors were
/// optimised in different places, so each must be read where it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lead {
    /// The document-start token at position 0, the vectors from position 1: fitted soft prompts
    /// (see the module's note on positions).
    DocumentStart,
    /// Nothing: the vectors from position 0. ICAE's slots, whose decoder was trained this way.
    Nothing,
}

/// A cache holding `lead`, then the input vectors `vectors` (`hidden` wide rows).
pub fn embeddings_cache(lm: &LanguageModel, lead: Lead, vectors: &[f32]) -> Result<KvCache> {
    let hidden = lm.model.config.hidden;
    if !vectors.len().is_multiple_of(hidden) {
        return Err(Error::InvalidInput(format!(
            "the prefix vectors are not {hidden} wide, as this model's inputs are"
        )));
    }
    let mut cache = lm.model.new_cache();
    if lead == Lead::DocumentStart {
        lm.model
            .forward(&mut cache, &[lm.tokenizer.document_start()])?;
    }
    lm.model.forward_embeddings(&mut cache, vectors)?;
    Ok(cache)
}

/// A cache holding the document-start token, the soft prompt's vectors (positions 1..=k), then
/// `ids`.
pub fn prefixed_cache(lm: &LanguageModel, soft: &SoftPrompt, ids: &[u32]) -> Result<KvCache> {
    if soft.hidden != lm.model.config.hidden {
        return Err(Error::InvalidInput(format!(
            "the soft prompt has {}-wide vectors, the model {}",
            soft.hidden, lm.model.config.hidden
        )));
    }
    let mut cache = embeddings_cache(lm, Lead::DocumentStart, &soft.vectors)?;
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
    Ok(greedy(lm, &mut cache, None, max_tokens, &mut |_| {})?)
}

/// `ln p(ids[i] | soft prompt, ids[..i])` for every token of `ids`.
pub fn log_likelihoods(lm: &LanguageModel, soft: &SoftPrompt, ids: &[u32]) -> Result<Vec<f32>> {
    let cache = prefixed_cache(lm, soft, &[])?;
    log_likelihoods_after(lm, cache, None, ids)
}

/// `ln p(ids[i] | what cache holds, ids[..i])` for every token of `ids`, read with the adapters
/// `lora` (none for the plain model). `cache` must hold at least one position.
pub fn log_likelihoods_after(
    lm: &LanguageModel,
    mut cache: KvCache,
    lora: Option<&[QvLora]>,
    ids: &[u32],
) -> Result<Vec<f32>> {
    let read = cache.len();
    if read == 0 {
        return Err(Error::InvalidInput(
            "scoring needs a prefix: the first token has nothing to be predicted from".into(),
        ));
    }
    lm.model.forward_with_lora(&mut cache, ids, lora)?;
    Ok(lm.model.next_token_log_probs(&cache, read - 1, ids))
}
