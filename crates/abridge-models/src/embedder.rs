//! Sentence embeddings from a BERT-family encoder, as sentence-transformers computes them for
//! all-MiniLM-L6-v2: the mean of the last hidden states over the text's tokens (its `[CLS]`
//! and `[SEP]` included, padding excluded), scaled to unit length.

use std::path::{Path, PathBuf};

use abridge_core::{BoxError, Embedder, Interrupt};
use serde::Deserialize;

use crate::bert::{Checkpoint, Encoder, FORWARD_TOKENS};
use crate::encoder_tokenizer::EncoderTokenizer;
use crate::error::{Error, Result};
use crate::{fetch, windows};

/// Folder of all-MiniLM-L6-v2 under [`fetch::models_dir`].
pub const MINILM_DIR: &str = "all-MiniLM-L6-v2";

/// sentence-transformers' `1_Pooling/config.json`; only mean pooling is supported.
#[derive(Debug, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// A sentence embedder: one unit-length vector per text.
///
/// A text longer than the encoder's window (510 word pieces for MiniLM) is cut into equal
/// disjoint windows, each framed by `[CLS] … [SEP]`, and the mean runs over the hidden states
/// of all windows together, so the whole text counts. (sentence-transformers instead truncates
/// all-MiniLM-L6-v2's input at 256 word pieces; up to that length both agree.)
pub struct SentenceEncoder {
    pub dir: PathBuf,
    pub encoder: Encoder,
    pub tokenizer: EncoderTokenizer,
}

impl SentenceEncoder {
    /// Loads `config.json`, `model.safetensors`, `tokenizer.json` and (if present)
    /// `1_Pooling/config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let checkpoint = Checkpoint::open(dir, |path| Error::ModelNotFound { path })?;
        let pooling_path = dir.join("1_Pooling").join("config.json");
        if pooling_path.is_file() {
            check_pooling(&pooling_path)?;
        }
        if checkpoint.config.max_tokens() <= checkpoint.tokenizer.special_tokens() {
            return Err(Error::Unsupported(format!(
                "{} has no room for text between its special tokens",
                dir.display()
            )));
        }
        Ok(Self {
            encoder: Encoder::load(checkpoint.config, &checkpoint.weights)?,
            tokenizer: checkpoint.tokenizer,
            dir: dir.to_path_buf(),
        })
    }

    /// all-MiniLM-L6-v2 as installed by `abridge models fetch`.
    pub fn load_default() -> Result<Self> {
        Self::load(&fetch::models_dir().join(MINILM_DIR))
    }

    pub fn dimensions(&self) -> usize {
        self.encoder.hidden_size()
    }

    /// Embeds every text. The windows of all texts go through the encoder in batches of one
    /// forward pass, `interrupt` asked before each, and each batch is pooled as it comes, so
    /// memory stays bounded by a batch however many texts there are.
    pub fn embed_texts(&self, texts: &[&str], interrupt: &dyn Interrupt) -> Result<Vec<Vec<f32>>> {
        let capacity = self.encoder.max_tokens() - self.tokenizer.special_tokens();
        let mut sequences = Vec::new();
        let mut owner = Vec::new();
        for (t, text) in texts.iter().enumerate() {
            let ids: Vec<u32> = self.tokenizer.encode(text)?.iter().map(|t| t.id).collect();
            for window in windows::disjoint(ids.len(), capacity) {
                sequences.push(self.tokenizer.with_special_tokens(&ids[window]));
                owner.push(t);
            }
        }
        let h = self.dimensions();
        let mut sums = vec![vec![0f64; h]; texts.len()];
        let mut counts = vec![0usize; texts.len()];
        let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
        for batch in windows::batches(&lengths, FORWARD_TOKENS) {
            interrupt.check().map_err(Error::Interrupted)?;
            let refs: Vec<&[u32]> = sequences[batch.clone()].iter().map(Vec::as_slice).collect();
            let hidden = self.encoder.forward(&refs)?;
            for (states, &t) in hidden.iter().zip(&owner[batch]) {
                for row in states.chunks_exact(h) {
                    for (s, &v) in sums[t].iter_mut().zip(row) {
                        *s += f64::from(v);
                    }
                    counts[t] += 1;
                }
            }
        }
        Ok(sums
            .into_iter()
            .zip(counts)
            .map(|(sum, count)| {
                let mean: Vec<f64> = sum.iter().map(|s| s / count.max(1) as f64).collect();
                // torch.nn.functional.normalize's floor, so a zero vector stays finite.
                let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                mean.iter().map(|v| (v / norm) as f32).collect()
            })
            .collect())
    }
}

fn check_pooling(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let pooling: PoolingConfig =
        serde_json::from_str(&text).map_err(|e| Error::InvalidModelFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mean_only = pooling.pooling_mode_mean_tokens
        && !pooling.pooling_mode_cls_token
        && !pooling.pooling_mode_max_tokens
        && !pooling.pooling_mode_mean_sqrt_len_tokens;
    if mean_only {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{} asks for a pooling other than the mean of the tokens, which abridge does not implement",
            path.display()
        )))
    }
}

impl Embedder for SentenceEncoder {
    fn embed_until(
        &self,
        texts: &[&str],
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(self.embed_texts(texts, interrupt)?)
    }
}
