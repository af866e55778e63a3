//! Running a trained compressor (ICAE, 500xCompressor, GIST) on the runtime: the encoder is the
//! base model with the adapter's LoRA on every block's query and value projections, reading the
//! text's token embeddings then the k memory embeddings at positions 0..L+k, causal, with no
//! document-start token (as `scripts/soft/train_icae.py` trained it). What the decoder gets:
//!
//! - ICAE: the final hidden states (after the output norm) at the k memory positions, as input
//!   vectors for the plain model;
//! - 500xCompressor: every layer's keys and values at the memory positions, as the plain
//!   model's KV-cache prefix;
//! - GIST: the same prefix, read by the adapted model (LoRA on) instead of the plain one. This is
//!   GIST's attention mask (later tokens see the gist tokens but not the prompt) computed in two
//!   passes: the gist tokens' keys and values do not depend on anything after them.

use std::path::Path;

use abridge_models::lora::QvLora;
use abridge_models::safetensors::SafeTensors;
use abridge_models::LanguageModel;

use crate::adapter::{Adapter, Method};
use crate::compressed::{CompressedPrompt, Memory};
use crate::error::{Error, Result};
use crate::soft_prompt::ModelId;

/// Longest text compressed at once. The shipped adapters were trained on 64–128 tokens; far
/// beyond that the memory is not trained to hold the text, so longer texts are refused rather
/// than compressed badly.
pub const MAX_TEXT_TOKENS: usize = 512;

/// An adapter ready to run, with its LoRA factors as runtime matrices.
pub struct Compressor {
    pub adapter: Adapter,
    /// sha256 of the adapter file (recorded in what it compresses).
    pub sha256: String,
    lora: Vec<QvLora>,
}

impl Compressor {
    /// Reads the adapter at `path` for `lm`, refusing one trained on another model (`model` is
    /// `lm`'s file identity).
    pub fn open(path: &Path, lm: &LanguageModel, model: &ModelId) -> Result<Self> {
        // Another model's adapter usually has other shapes too: say which model it is for
        // rather than which tensor does not fit.
        if let Ok(file) = SafeTensors::open(path) {
            if let Some(trained) = file.metadata().get("base_sha256") {
                if *trained != model.sha256 {
                    return Err(Error::AdapterModelMismatch {
                        path: path.to_path_buf(),
                        trained_sha256: trained.clone(),
                        model: model.file.clone(),
                        model_sha256: model.sha256.clone(),
                    });
                }
            }
        }
        let adapter = Adapter::load(path, &lm.model.config)?;
        adapter.check_model(path, model)?;
        let sha256 = abridge_models::fetch::sha256_file(path)?;
        Ok(Self::new(adapter, sha256, lm))
    }

    /// Wraps an adapter already in memory; `sha256` identifies it in what it compresses.
    pub fn new(adapter: Adapter, sha256: String, lm: &LanguageModel) -> Self {
        let lora = adapter.qv_lora(&lm.model.config);
        Self {
            adapter,
            sha256,
            lora,
        }
    }

    pub fn method(&self) -> Method {
        self.adapter.method
    }

    /// The encoder's adapters.
    pub fn lora(&self) -> &[QvLora] {
        &self.lora
    }

    /// The decoder's adapters: GIST decodes with the adapted model, ICAE and 500x with the plain
    /// one.
    pub fn decoder_lora(&self) -> Option<&[QvLora]> {
        (self.method() == Method::Gist).then_some(self.lora.as_slice())
    }

    /// Compresses the token ids `text` (of `lm`, whose file identity is `model`) to k memory
    /// positions.
    pub fn compress(
        &self,
        lm: &LanguageModel,
        model: &ModelId,
        text: &[u32],
    ) -> Result<CompressedPrompt> {
        if text.is_empty() {
            return Err(Error::InvalidInput(
                "the text is empty: there is nothing to compress".into(),
            ));
        }
        if text.len() > MAX_TEXT_TOKENS {
            return Err(Error::InvalidInput(format!(
                "the text has {} tokens; a compressor takes at most {MAX_TEXT_TOKENS} (the \
                 shipped adapters were trained on 64-128): split it and compress each part",
                text.len()
            )));
        }
        let (k, d) = (self.adapter.k, lm.model.config.hidden);
        let lora = Some(self.lora.as_slice());
        let mut cache = lm.model.new_cache();
        lm.model.forward_with_lora(&mut cache, text, lora)?;
        lm.model
            .forward_embeddings_with_lora(&mut cache, &self.adapter.weights.memory, lora)?;
        let memory_rows = text.len()..text.len() + k;
        let memory = match self.method() {
            Method::Icae => Memory::Slots(cache.hidden()[memory_rows.start * d..].to_vec()),
            Method::KvPrefix | Method::Gist => Memory::KvPrefix(cache.select(memory_rows)),
        };
        Ok(CompressedPrompt {
            method: self.method(),
            k,
            memory,
            ae_token: self.adapter.weights.ae_token.clone(),
            lm_token: self.adapter.weights.lm_token.clone(),
            model: model.clone(),
            adapter_sha256: self.sha256.clone(),
            text_tokens: text.len(),
        })
    }
}

// Beside the compressor that makes the memory, so that the memory's own module need not know it.
impl CompressedPrompt {
    /// The adapters the decoder runs with: GIST's own (from `compressor`, which must be the
    /// adapter that made this memory), none for ICAE and 500x.
    pub fn decoder_lora<'a>(
        &self,
        compressor: Option<&'a Compressor>,
    ) -> Result<Option<&'a [QvLora]>> {
        if self.method != Method::Gist {
            return Ok(None);
        }
        match compressor {
            Some(c) if c.sha256 == self.adapter_sha256 && c.adapter.method == Method::Gist => {
                Ok(c.decoder_lora())
            }
            _ => Err(Error::InvalidInput(format!(
                "a GIST memory is read by the adapted model: pass the adapter it was compressed \
                 with (sha256 {}) with --adapter",
                self.adapter_sha256
            ))),
        }
    }
}
