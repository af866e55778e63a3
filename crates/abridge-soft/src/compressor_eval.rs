//! Measuring a trained compressor on held-out texts the way `scripts/soft/train_icae.py`
//! evaluates (docs/SOFT_PROMPTS_II.md): each window is `L` text tokens then `continuation`
//! tokens.
//!
//! - Continuation perplexity of the next tokens given nothing (the document-start token), the
//!   text's last k tokens, the full text (all plain-model baselines, no document-start token
//!   before the text as in the trainer), the memory (+ `[LM]`), and a *mismatched* memory: text
//!   i's continuation scored after the memory of the next text from another document (windows
//!   are usually grouped by source, so that is the same kind of text, other content). The
//!   mismatched control tells how much of the memory's gain is the text's content and how much a
//!   learned prefix that suits the domain.
//! - Regeneration: greedy decoding of exactly L tokens after the memory (+ `[AE]`), compared
//!   position by position with the text; and the teacher-forced NLL of the text there.

use abridge_models::LanguageModel;
use serde::Serialize;

use crate::compressed::{CompressedPrompt, Task};
use crate::compressor::Compressor;
use crate::error::{Error, Result};
use crate::prefix;
use crate::soft_prompt::ModelId;

/// How windows are cut and what is measured.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Text tokens compressed (L).
    pub length: usize,
    /// Continuation tokens scored after them.
    pub continuation: usize,
    /// Run greedy regeneration (the slow part).
    pub regenerate: bool,
}

/// One held-out text window and the document it comes from.
#[derive(Debug, Clone)]
pub struct Window {
    /// Windows of one document (e.g. turns of one conversation) are never each other's
    /// mismatched memory: they may share their topic.
    pub document: String,
    pub ids: Vec<u32>,
}

/// For each window, the next one (cyclically) from another document, or `None` when all
/// windows are from one document.
fn partners(windows: &[Window]) -> Option<Vec<usize>> {
    let n = windows.len();
    (0..n)
        .map(|i| {
            (1..n)
                .map(|step| (i + step) % n)
                .find(|&j| windows[j].document != windows[i].document)
        })
        .collect()
}

/// A text window split into the compressed part and what follows it.
fn split(window: &[u32], setting: Setting) -> Result<(&[u32], &[u32])> {
    let Setting {
        length,
        continuation,
        ..
    } = setting;
    if length == 0 || continuation == 0 || window.len() < length + continuation {
        return Err(Error::InvalidInput(format!(
            "a window of {} tokens cannot hold {length} text and {continuation} continuation \
             tokens",
            window.len()
        )));
    }
    Ok((&window[..length], &window[length..length + continuation]))
}

/// Mean NLL (nats/token) of `continuation` after `context` under the plain model.
fn plain_nll(lm: &LanguageModel, context: &[u32], continuation: &[u32]) -> Result<f64> {
    let mut cache = lm.model.new_cache();
    lm.model.forward(&mut cache, context)?;
    Ok(mean_nll(&prefix::log_likelihoods_after(
        lm,
        cache,
        None,
        continuation,
    )?))
}

fn mean_nll(log_probs: &[f32]) -> f64 {
    -log_probs.iter().map(|&v| f64::from(v)).sum::<f64>() / log_probs.len() as f64
}

/// Perplexity over texts: exp of the mean of per-text mean NLLs (every text has as many
/// continuation tokens, so this is the per-token mean too).
fn perplexity(nlls: &[f64]) -> f64 {
    (nlls.iter().sum::<f64>() / nlls.len() as f64).exp()
}

/// Continuation perplexities of the plain model.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Baselines {
    /// After the document-start token only.
    pub none: f64,
    /// After the text's last k tokens (the memory's token budget).
    pub truncated: f64,
    /// After the whole text.
    pub full: f64,
}

/// The plain model's continuation perplexities on `windows`, truncation to the last `k` tokens.
/// `progress` is called after each window.
pub fn baselines(
    lm: &LanguageModel,
    windows: &[Window],
    setting: Setting,
    k: usize,
    progress: &mut dyn FnMut(),
) -> Result<Baselines> {
    let start = [lm.tokenizer.document_start()];
    let (mut none, mut truncated, mut full) = (vec![], vec![], vec![]);
    for window in windows {
        let (text, cont) = split(&window.ids, setting)?;
        none.push(plain_nll(lm, &start, cont)?);
        truncated.push(plain_nll(lm, &text[text.len().saturating_sub(k)..], cont)?);
        full.push(plain_nll(lm, text, cont)?);
        progress();
    }
    Ok(Baselines {
        none: perplexity(&none),
        truncated: perplexity(&truncated),
        full: perplexity(&full),
    })
}

/// How well one compressor's memory stands for the text.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CompressorScores {
    /// Continuation perplexity after the text's own memory (+ `[LM]`).
    pub memory: f64,
    /// After another document's memory (the next window from another document).
    pub mismatched: f64,
    /// Teacher-forced NLL of the text after the memory (+ `[AE]`), nats/token.
    pub regeneration_nll: f64,
    /// Greedy regeneration of L tokens: the fraction of positions right, and of texts exactly
    /// right (`None` when regeneration was skipped).
    pub token_accuracy: Option<f64>,
    pub exact_match: Option<f64>,
}

/// Scores `compressor` on `windows` (from at least two documents: the mismatched control pairs
/// them). `progress` is called after each window's memory and after each window's scores.
pub fn score(
    lm: &LanguageModel,
    model: &ModelId,
    compressor: &Compressor,
    windows: &[Window],
    setting: Setting,
    progress: &mut dyn FnMut(),
) -> Result<CompressorScores> {
    let partners = partners(windows).ok_or_else(|| {
        Error::InvalidInput(
            "the mismatched-memory control needs texts from at least two documents".into(),
        )
    })?;
    let memories = windows
        .iter()
        .map(|window| {
            let memory = compressor.compress(lm, model, split(&window.ids, setting)?.0);
            progress();
            memory
        })
        .collect::<Result<Vec<CompressedPrompt>>>()?;
    let lora = compressor.decoder_lora();
    let continuation_nll = |memory: &CompressedPrompt, cont: &[u32]| -> Result<f64> {
        let cache = memory.decoder_cache(lm, Task::Continue, lora)?;
        Ok(mean_nll(&prefix::log_likelihoods_after(
            lm, cache, lora, cont,
        )?))
    };
    let (mut own, mut other, mut regeneration, mut accuracy, mut exact) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (i, (window, memory)) in windows.iter().zip(&memories).enumerate() {
        let (text, cont) = split(&window.ids, setting)?;
        own.push(continuation_nll(memory, cont)?);
        other.push(continuation_nll(&memories[partners[i]], cont)?);
        let cache = memory.decoder_cache(lm, Task::Regenerate, lora)?;
        if setting.regenerate {
            let mut greedy_cache = cache.clone();
            let generated = abridge_models::generate::greedy_until(
                lm,
                &mut greedy_cache,
                lora,
                text.len(),
                &[],
                &mut |_| {},
            )?;
            let right = generated.iter().zip(text).filter(|(a, b)| a == b).count();
            accuracy.push(right as f64 / text.len() as f64);
            exact.push(f64::from(u8::from(generated == text)));
        }
        regeneration.push(mean_nll(&prefix::log_likelihoods_after(
            lm, cache, lora, text,
        )?));
        progress();
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    Ok(CompressorScores {
        memory: perplexity(&own),
        mismatched: perplexity(&other),
        regeneration_nll: mean(&regeneration),
        token_accuracy: setting.regenerate.then(|| mean(&accuracy)),
        exact_match: setting.regenerate.then(|| mean(&exact)),
    })
}

/// One compressor against the plain model on the same windows.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Comparison {
    pub method: &'static str,
    /// Memory positions (and the truncation baseline's tokens).
    pub k: usize,
    pub baselines: Baselines,
    pub scores: CompressorScores,
}

impl Comparison {
    /// The share of the gap between no context and the full text that the memory closes (1: as
    /// good as the text, 0: as good as nothing).
    pub fn gap_closed(&self) -> f64 {
        self.gap_closed_by(self.scores.memory)
    }

    /// [`Self::gap_closed`] by another document's memory: what a learned, content-free prefix
    /// alone achieves.
    pub fn gap_closed_mismatched(&self) -> f64 {
        self.gap_closed_by(self.scores.mismatched)
    }

    fn gap_closed_by(&self, perplexity: f64) -> f64 {
        let Baselines { none, full, .. } = self.baselines;
        (none - perplexity) / (none - full)
    }
}

/// Each compressor scored on `windows` next to the plain model's baselines, which run once per
/// distinct k (the truncation baseline keeps k tokens). `progress` is called after each window of
/// each baseline run and as [`score`] calls it.
pub fn compare(
    lm: &LanguageModel,
    model: &ModelId,
    compressors: &[&Compressor],
    windows: &[Window],
    setting: Setting,
    progress: &mut dyn FnMut(),
) -> Result<Vec<Comparison>> {
    let mut ks: Vec<usize> = compressors.iter().map(|c| c.adapter.k).collect();
    ks.sort_unstable();
    ks.dedup();
    let baselines = ks
        .iter()
        .map(|&k| baselines(lm, windows, setting, k, progress))
        .collect::<Result<Vec<_>>>()?;
    compressors
        .iter()
        .map(|compressor| {
            let k = compressor.adapter.k;
            let at = ks.partition_point(|&other| other < k);
            Ok(Comparison {
                method: compressor.method().name(),
                k,
                baselines: baselines[at],
                scores: score(lm, model, compressor, windows, setting, progress)?,
            })
        })
        .collect()
}

/// Progress calls [`compare`] makes: one per window of each baseline run, two per window of each
/// compressor.
pub fn compare_steps(compressors: &[&Compressor], windows: usize) -> usize {
    let mut ks: Vec<usize> = compressors.iter().map(|c| c.adapter.k).collect();
    ks.sort_unstable();
    ks.dedup();
    (ks.len() + 2 * compressors.len()) * windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(document: &str) -> Window {
        Window {
            document: document.into(),
            ids: vec![],
        }
    }

    #[test]
    fn partners_skip_windows_of_the_same_document() {
        let windows = ["a", "a", "b", "c", "c"].map(window);
        assert_eq!(partners(&windows), Some(vec![2, 2, 3, 0, 0]));
        assert_eq!(partners(&["a", "a"].map(window)), None);
    }
}
