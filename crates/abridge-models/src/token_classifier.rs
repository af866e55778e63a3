//! A `*ForTokenClassification` checkpoint (BERT or XLM-RoBERTa, e.g. the LLMLingua-2 models)
//! as a [`TokenClassifier`]: per-token label logits, and the keep-probability of label 1.

use std::ops::Range;
use std::path::{Path, PathBuf};

use abridge_core::{BoxError, Interrupt, ModelToken, TokenClassifier};

use crate::bert::{Checkpoint, Encoder, TokenClassificationHead};
use crate::encoder_tokenizer::EncoderTokenizer;
use crate::error::{Error, Result};
use crate::{kernels, windows};

/// The label meaning "keep this token" in LLMLingua-2's checkpoints (`num_labels = 2`, trained
/// with 1 = the word survived GPT-4's compression).
pub const KEEP_LABEL: usize = 1;

/// Each token's byte range in its text and keep-probability.
pub type KeepProbabilities = Vec<(Range<usize>, f32)>;

/// The tokens of one text and each one's label logits.
#[derive(Debug, Clone)]
pub struct TokenLogits {
    /// Text tokens (no special tokens), with byte ranges in the text.
    pub tokens: Vec<ModelToken>,
    /// `tokens.len() × num_labels`, row-major.
    pub logits: Vec<f32>,
}

pub struct TokenClassificationModel {
    pub dir: PathBuf,
    pub encoder: Encoder,
    pub head: TokenClassificationHead,
    pub tokenizer: EncoderTokenizer,
}

impl TokenClassificationModel {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir, |path| Error::ClassifierNotFound { path })?;
        if checkpoint.config.max_tokens() <= checkpoint.tokenizer.special_tokens() {
            return Err(Error::Unsupported(format!(
                "{} has no room for text between its special tokens",
                dir.display()
            )));
        }
        let head =
            TokenClassificationHead::load(&checkpoint.weights, checkpoint.config.hidden_size)?;
        if head.num_labels() <= KEEP_LABEL {
            return Err(Error::Unsupported(format!(
                "{} has {} label(s); a keep/drop classifier needs at least 2",
                dir.display(),
                head.num_labels()
            )));
        }
        Ok(Self {
            encoder: Encoder::load(checkpoint.config, &checkpoint.weights)?,
            head,
            tokenizer: checkpoint.tokenizer,
            dir: dir.to_path_buf(),
        })
    }

    pub fn num_labels(&self) -> usize {
        self.head.num_labels()
    }

    /// Text tokens the classifier can read in one window (positions less special tokens).
    pub fn window_tokens(&self) -> usize {
        self.encoder.max_tokens() - self.tokenizer.special_tokens()
    }

    /// Logits of every position of complete model inputs (special tokens included, each at
    /// most [`Encoder::max_tokens`] long), for callers that frame sequences themselves.
    pub fn logits_for_ids(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let hidden = self.encoder.forward(sequences)?;
        let h = self.encoder.hidden_size();
        Ok(hidden
            .iter()
            .map(|states| self.head.logits(states, states.len() / h))
            .collect())
    }

    /// Tokenizes and classifies each text. A text longer than one window is read in overlapping
    /// windows ([`windows::overlapping`]), in batches of one forward pass, `interrupt` asked
    /// before each.
    pub fn token_logits(
        &self,
        texts: &[&str],
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<TokenLogits>> {
        let rows = windows::per_token(
            &self.tokenizer,
            self.window_tokens(),
            texts,
            self.num_labels(),
            interrupt,
            |sequences| self.logits_for_ids(sequences),
        )?;
        Ok(rows
            .into_iter()
            .map(|(tokens, logits)| TokenLogits { tokens, logits })
            .collect())
    }

    /// Keep-probabilities (softmax over the labels, then [`KEEP_LABEL`]) of each text's tokens.
    pub fn keep_probabilities_of(
        &self,
        texts: &[&str],
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<KeepProbabilities>> {
        let labels = self.num_labels();
        Ok(self
            .token_logits(texts, interrupt)?
            .into_iter()
            .map(|text| {
                text.tokens
                    .into_iter()
                    .zip(text.logits.chunks_exact(labels))
                    .map(|(token, logits)| (token.span, keep_probability(logits)))
                    .collect()
            })
            .collect())
    }
}

/// `softmax(logits)[KEEP_LABEL]` of one token's logits (0 if there is no such label).
pub fn keep_probability(logits: &[f32]) -> f32 {
    logits
        .get(KEEP_LABEL)
        .map_or(0.0, |&keep| (keep - kernels::log_sum_exp(logits)).exp())
}

impl TokenClassifier for TokenClassificationModel {
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
        TokenClassificationModel::window_tokens(self)
    }
}
