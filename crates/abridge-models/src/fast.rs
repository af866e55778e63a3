//! abridge-fast: a token classifier distilled from an LM-based compressor.
//!
//! The first [`Head::layers`] layers of all-MiniLM-L6-v2 (frozen, from `abridge models fetch`)
//! give each token a hidden state; a small MLP head (standardisation, one ReLU layer, a sigmoid)
//! turns it into a keep-probability. The head is trained by `abridge distill train` on the
//! teacher's labels (`abridge_eval::distill`) and shipped in the repository
//! (`assets/fast-head.json`, compiled in), so the classifier needs no download beyond MiniLM.

use std::path::Path;

use abridge_core::{BoxError, Interrupt, TokenClassifier, Uninterrupted};
use serde::{Deserialize, Serialize};

use crate::embedder::{SentenceEncoder, MINILM_DIR};
use crate::error::{Error, Result};
use crate::fetch;
use crate::token_classifier::KeepProbabilities;
use crate::windows::{self, TokenRows};

/// The trained head, as `abridge distill train` wrote it.
const SHIPPED_HEAD: &str = include_str!("../assets/fast-head.json");

/// The classifier head: `p = σ(w2 · relu(W1 · ((x − mean) ⊙ scale) + b1) + b2)` over the hidden
/// state `x` after encoder layer `layers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Encoder layers read (MiniLM has 6; fewer is faster).
    pub layers: usize,
    /// Hidden size of the encoder (384 for MiniLM).
    pub input: usize,
    /// Units of the head's hidden layer.
    pub hidden: usize,
    /// Per-feature mean and inverse standard deviation of the training features.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// `hidden × input`, row-major.
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Vec<f32>,
    pub b2: f32,
    /// How it was trained (labels, seed, steps, loss curve), for the record.
    #[serde(default)]
    pub training: serde_json::Value,
}

impl Head {
    /// The head shipped with abridge.
    pub fn shipped() -> Result<Self> {
        Self::from_json(
            SHIPPED_HEAD,
            Path::new("abridge-models/assets/fast-head.json"),
        )
    }

    /// Parses and checks a head written by [`Head::to_json`]; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let head: Self = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let (d, h) = (head.input, head.hidden);
        let sizes = [
            (head.mean.len(), d),
            (head.scale.len(), d),
            (head.w1.len(), h * d),
            (head.b1.len(), h),
            (head.w2.len(), h),
        ];
        if sizes.iter().any(|(got, want)| got != want) || head.layers == 0 {
            return Err(invalid(format!(
                "inconsistent shapes for input {d}, hidden {h}, layers {}",
                head.layers
            )));
        }
        Ok(head)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a head serializes")
    }

    /// The keep-logit of one hidden state (`input` values).
    pub fn logit(&self, x: &[f32]) -> f32 {
        let z: Vec<f32> = x
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((v, m), s)| (v - m) * s)
            .collect();
        self.logit_standardized(&z)
    }

    /// The keep-logit of a hidden state already standardised by `mean` and `scale`.
    pub fn logit_standardized(&self, z: &[f32]) -> f32 {
        let mut out = self.b2;
        for ((row, b), w) in self.w1.chunks_exact(self.input).zip(&self.b1).zip(&self.w2) {
            let a: f32 = row.iter().zip(z).map(|(w, z)| w * z).sum::<f32>() + b;
            out += w * a.max(0.0);
        }
        out
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// MiniLM's first layers and a [`Head`]: a [`TokenClassifier`] for LLMLingua-2's algorithm.
pub struct FastClassifier {
    pub minilm: SentenceEncoder,
    pub head: Head,
}

impl FastClassifier {
    /// MiniLM from `dir` with `head`, which must match its hidden size and depth.
    pub fn load(dir: &Path, head: Head) -> Result<Self> {
        let minilm = SentenceEncoder::load(dir)?;
        if head.input != minilm.dimensions() || head.layers > minilm.encoder.layers() {
            return Err(Error::Unsupported(format!(
                "the abridge-fast head reads layer {} of a {}-wide encoder; {} has {} layers of width {}",
                head.layers,
                head.input,
                dir.display(),
                minilm.encoder.layers(),
                minilm.dimensions()
            )));
        }
        Ok(Self { minilm, head })
    }

    /// all-MiniLM-L6-v2 as installed by `abridge models fetch`, with the shipped head.
    pub fn load_default() -> Result<Self> {
        Self::load(&fetch::models_dir().join(MINILM_DIR), Head::shipped()?)
    }

    /// Text tokens read in one window.
    pub fn window_tokens(&self) -> usize {
        self.minilm.encoder.max_tokens() - self.minilm.tokenizer.special_tokens()
    }

    /// Each text's tokens and their hidden states after the head's layer (the head's input).
    pub fn hidden_states(&self, texts: &[&str]) -> Result<Vec<TokenRows>> {
        hidden_states(&self.minilm, self.head.layers, texts)
    }

    /// Each text's tokens with their byte ranges and keep-probabilities; `interrupt` is asked
    /// before each forward pass. The head reads each window's hidden states as they come, so
    /// only one pass's states are held however long the text.
    pub fn keep_probabilities_of(
        &self,
        texts: &[&str],
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<KeepProbabilities>> {
        let d = self.head.input;
        let rows = read_windows(&self.minilm, texts, 1, interrupt, |sequences| {
            let states = self
                .minilm
                .encoder
                .forward_depth(sequences, self.head.layers)?;
            Ok(states
                .iter()
                .map(|window| {
                    window
                        .chunks_exact(d)
                        .map(|x| sigmoid(self.head.logit(x)))
                        .collect()
                })
                .collect())
        })?;
        Ok(rows
            .into_iter()
            .map(|(tokens, probabilities)| {
                tokens
                    .into_iter()
                    .zip(probabilities)
                    .map(|(token, p)| (token.span, p))
                    .collect()
            })
            .collect())
    }
}

impl TokenClassifier for FastClassifier {
    fn keep_probabilities_until(
        &self,
        text: &str,
        interrupt: &dyn Interrupt,
    ) -> Result<KeepProbabilities, BoxError> {
        Ok(self
            .keep_probabilities_of(&[text], interrupt)?
            .pop()
            .unwrap_or_default())
    }

    fn window_tokens(&self) -> usize {
        FastClassifier::window_tokens(self)
    }
}

/// Each text's tokens and their hidden states after encoder layer `layers`, read in overlapping
/// windows.
pub fn hidden_states(
    minilm: &SentenceEncoder,
    layers: usize,
    texts: &[&str],
) -> Result<Vec<TokenRows>> {
    read_windows(
        minilm,
        texts,
        minilm.encoder.hidden_size(),
        &Uninterrupted,
        |sequences| minilm.encoder.forward_depth(sequences, layers),
    )
}

/// [`windows::per_token`] over MiniLM's windows: `read` gives `width` values per position.
fn read_windows(
    minilm: &SentenceEncoder,
    texts: &[&str],
    width: usize,
    interrupt: &dyn Interrupt,
    read: impl FnMut(&[&[u32]]) -> Result<Vec<Vec<f32>>>,
) -> Result<Vec<TokenRows>> {
    windows::per_token(
        &minilm.tokenizer,
        minilm.encoder.max_tokens() - minilm.tokenizer.special_tokens(),
        texts,
        width,
        interrupt,
        read,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_head_parses_and_reads_minilm() {
        let head = Head::shipped().unwrap();
        assert_eq!(head.input, 384);
        assert!(head.layers <= 6);
    }

    #[test]
    fn a_head_with_wrong_shapes_is_rejected() {
        let mut head = Head::shipped().unwrap();
        head.w2.pop();
        let error = Head::from_json(&head.to_json(), Path::new("h.json")).unwrap_err();
        assert!(error.to_string().contains("inconsistent shapes"), "{error}");
    }
}
