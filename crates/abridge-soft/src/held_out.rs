//! How a compressor adapter does on held-out windows, with the measures of
//! docs/SOFT_PROMPTS_II.md: greedy regeneration (token accuracy, exact match), teacher-forced
//! regeneration cross-entropy, and the continuation's perplexity given the memory, nothing, the
//! text's last k tokens (truncation at the memory's token budget) or the full text.

use serde::Serialize;

use crate::adapter::Adapter;
use crate::differentiable::Differentiable;
use crate::error::Result;
use crate::loss::{head_loss, Targets};
use crate::objective::{Compressor, Window};

#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    pub windows: usize,
    /// Text tokens per window (L) and memory tokens (k): the compression ratio is L / k.
    pub text_tokens: usize,
    pub k: usize,
    pub continuation_tokens: usize,
    /// Greedy regeneration of L tokens from the memory: the fraction of positions right, and of
    /// windows regenerated exactly.
    pub regeneration_token_accuracy: f64,
    pub regeneration_exact_match: f64,
    /// Teacher-forced regeneration cross-entropy (nats per token).
    pub regeneration_nll: f64,
    /// ... from the memory of another window (the next one): the text predicted from itself
    /// and the adapter, without its content.
    pub regeneration_nll_other_memory: f64,
    /// Continuation perplexity given the memory (and `[LM]`).
    pub continuation_ppl_memory: f64,
    /// ... given the memory of another window (the next one): what the adapter gains without
    /// the text's content (a learned prefix, the domain).
    pub continuation_ppl_other_memory: f64,
    /// ... given only the document-start token.
    pub continuation_ppl_none: f64,
    /// ... given the text's last k tokens.
    pub continuation_ppl_last_k: f64,
    /// ... given the whole text.
    pub continuation_ppl_full: f64,
}

/// Evaluates `adapter` on `windows` (all of one text and one continuation length).
/// `document_start` is read before the continuation when there is no context;
/// `progress` is called after each window.
pub fn evaluate(
    diff: &Differentiable,
    adapter: &Adapter,
    windows: &[Window],
    document_start: u32,
    progress: &mut dyn FnMut(usize),
) -> Result<HeldOut> {
    let compressor = Compressor { diff, adapter };
    let (mut right, mut exact, mut regeneration, mut memory) = (0usize, 0usize, 0f64, 0f64);
    let (mut other_regeneration, mut other_memory) = (0f64, 0f64);
    let mut plain = [0f64; 3];
    let (mut text_tokens, mut continuation_tokens) = (0, 0);
    for (i, window) in windows.iter().enumerate() {
        let (text, cont) = (window.text, window.continuation);
        let regenerated = compressor.regenerate(text, text.len())?;
        let matching = regenerated.iter().zip(text).filter(|(a, b)| a == b).count();
        right += matching;
        exact += usize::from(matching == text.len());
        let loss = compressor.loss(*window, 1.0, None)?;
        regeneration += loss.regeneration * text.len() as f64;
        memory += loss.continuation * cont.len() as f64;
        let other = windows[(i + 1) % windows.len()].text;
        let (_, other) = compressor.encode(other)?;
        other_regeneration += compressor.memory_nll(&other, true, text)? * text.len() as f64;
        other_memory += compressor.memory_nll(&other, false, cont)? * cont.len() as f64;
        let k = adapter.k.min(text.len());
        let contexts = [&[document_start][..], &text[text.len() - k..], text];
        for (sum, context) in plain.iter_mut().zip(contexts) {
            *sum += continuation_nll(diff, context, cont)?;
        }
        text_tokens += text.len();
        continuation_tokens += cont.len();
        progress(i + 1);
    }
    let n = windows.len().max(1);
    let ppl = |sum: f64| (sum / continuation_tokens.max(1) as f64).exp();
    Ok(HeldOut {
        windows: windows.len(),
        text_tokens: text_tokens / n,
        k: adapter.k,
        continuation_tokens: continuation_tokens / n,
        regeneration_token_accuracy: right as f64 / text_tokens.max(1) as f64,
        regeneration_exact_match: exact as f64 / n as f64,
        regeneration_nll: regeneration / text_tokens.max(1) as f64,
        regeneration_nll_other_memory: other_regeneration / text_tokens.max(1) as f64,
        continuation_ppl_memory: ppl(memory),
        continuation_ppl_other_memory: ppl(other_memory),
        continuation_ppl_none: ppl(plain[0]),
        continuation_ppl_last_k: ppl(plain[1]),
        continuation_ppl_full: ppl(plain[2]),
    })
}

/// Summed NLL of `cont` after `context` under the frozen model.
fn continuation_nll(diff: &Differentiable, context: &[u32], cont: &[u32]) -> Result<f64> {
    let mut ids = context.to_vec();
    ids.extend_from_slice(&cont[..cont.len() - 1]);
    let trace = diff.forward(diff.embed(&ids)?)?;
    let targets = Targets::Tokens(cont.to_vec());
    Ok(head_loss(diff.model, &trace.hidden, context.len() - 1, &targets, 1.0).sum)
}
