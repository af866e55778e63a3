//! Greedy decoding on the KV-cache path: each step reads the last position's logits, takes the
//! most likely token and feeds it back, so a continuation of n tokens costs n one-token forwards
//! after the prompt.

use crate::kv_policy::{self, KvPolicy};
use crate::llama::KvCache;
use crate::lora::QvLora;
use crate::{LanguageModel, Result};

/// Special tokens that end a generation, when the vocabulary has them (`<|endoftext|>` ends a
/// document, `<|im_end|>` a ChatML turn: SmolLM2 and Qwen2 have both).
pub const STOP_TOKENS: [&str; 2] = ["<|endoftext|>", "<|im_end|>"];

/// Index and value of the largest entry (the first of ties).
pub fn argmax(values: &[f32]) -> (usize, f32) {
    values
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
}

/// The ids of [`STOP_TOKENS`] in this model's vocabulary.
pub fn stop_ids(lm: &LanguageModel) -> Vec<u32> {
    STOP_TOKENS
        .iter()
        .filter_map(|s| match lm.tokenizer.encode(s).ok()?.as_slice() {
            [one] => Some(one.id),
            _ => None,
        })
        .collect()
}

/// Greedy continuation of what `cache` holds (which must not be empty), read by the model with
/// the adapters `lora` (none for the plain model): at most `max_tokens` tokens, ending early at a
/// stop token (not included) or the model's context; `on_token` sees the logits each kept token
/// was chosen from.
pub fn greedy(
    lm: &LanguageModel,
    cache: &mut KvCache,
    lora: Option<&[QvLora]>,
    max_tokens: usize,
    on_token: &mut dyn FnMut(&[f32]),
) -> Result<Vec<u32>> {
    greedy_until(lm, cache, lora, max_tokens, &stop_ids(lm), on_token)
}

/// [`greedy`] that ends early only at the tokens `stops` (none: exactly `max_tokens` tokens
/// while the context lasts, as a regeneration of a known length).
pub fn greedy_until(
    lm: &LanguageModel,
    cache: &mut KvCache,
    lora: Option<&[QvLora]>,
    max_tokens: usize,
    stops: &[u32],
    on_token: &mut dyn FnMut(&[f32]),
) -> Result<Vec<u32>> {
    greedy_steps(lm, cache, lora, max_tokens, stops, &mut |logits, _| {
        on_token(logits);
        Ok(())
    })
}

/// [`greedy_until`] whose `on_token` also sees the tokens generated so far (the new one
/// included) and may stop the generation by returning an error (a caller's cancellation, as
/// [`crate::Error::Interrupted`]), which is returned.
pub fn greedy_steps(
    lm: &LanguageModel,
    cache: &mut KvCache,
    lora: Option<&[QvLora]>,
    max_tokens: usize,
    stops: &[u32],
    on_token: &mut dyn FnMut(&[f32], usize) -> Result<()>,
) -> Result<Vec<u32>> {
    let mut generated = Vec::new();
    while generated.len() < max_tokens && cache.positions_read() < lm.model.config.context {
        let logits = lm.model.next_token_logits(cache, cache.len() - 1);
        let next = argmax(&logits).0 as u32;
        if stops.contains(&next) {
            break;
        }
        on_token(&logits, generated.len() + 1)?;
        generated.push(next);
        lm.model.forward_with_lora(cache, &[next], lora)?;
    }
    Ok(generated)
}

/// Greedy continuation of `prompt` read under a KV-cache policy: the cache holds at most the
/// policy's budget of the prompt's positions, and the answer's tokens are added after them.
pub fn generate_with_policy(
    lm: &LanguageModel,
    prompt: &[u32],
    max_tokens: usize,
    policy: &KvPolicy,
) -> Result<Vec<u32>> {
    let mut read = kv_policy::read(&lm.model, prompt, policy)?;
    greedy(lm, &mut read.cache, None, max_tokens, &mut |_| {})
}

/// Surprisal (nats) of each of `continuation`'s tokens after `prompt` is read under a KV-cache
/// policy: the teacher-forced counterpart of [`generate_with_policy`]. `prompt` starts with the
/// document-start token, as a scoring session's does.
pub fn surprisal_with_policy(
    lm: &LanguageModel,
    prompt: &[u32],
    continuation: &[u32],
    policy: &KvPolicy,
) -> Result<Vec<f32>> {
    let mut read = kv_policy::read(&lm.model, prompt, policy)?;
    // Every policy keeps the latest position, whose hidden state predicts the first token.
    let from = read.cache.len() - 1;
    lm.model.forward(&mut read.cache, continuation)?;
    Ok(lm
        .model
        .next_token_log_probs(&read.cache, from, continuation)
        .into_iter()
        .map(|lp| -lp)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), (1, 3.0));
        assert_eq!(argmax(&[f32::NEG_INFINITY, -2.0]), (1, -2.0));
    }
}
