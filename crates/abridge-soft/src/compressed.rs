//! A text compressed by a trained compressor ([`crate::compressor`]), and its `.safetensors`
//! file, beside the fitted soft prompt's ([`crate::soft_prompt`]).
//!
//! **Positions.** The memory is read where the adapter's decoder was trained to read it, which
//! is not where a fitted soft prompt goes:
//!
//! - ICAE's k slots are input vectors at positions 0..k with nothing before them (no
//!   document-start token, [`Lead::Nothing`]); the `[AE]` / `[LM]` indicator follows at k.
//! - 500xCompressor's and GIST's memory is a k-position KV-cache prefix: every layer's keys
//!   (rotated at their encoder positions L..L+k, kept as they are) and values. The decoder's
//!   first position, the indicator, is k.
//!
//! The file holds the indicators too, so ICAE and 500x memories decode without the adapter.
//! GIST decodes with the adapted model, so it needs the adapter file it was made with (checked by
//! sha256).

use std::collections::BTreeMap;
use std::path::Path;

use abridge_models::llama::KvCache;
use abridge_models::lora::QvLora;
use abridge_models::safetensors::SafeTensors;
use abridge_models::LanguageModel;

use crate::adapter::Method;
use crate::error::{Error, Result};
use crate::prefix::{self, Lead};
use crate::soft_prompt::ModelId;

/// `__metadata__["format"]` of compressed-prompt files.
pub const FORMAT: &str = "abridge-compressed-prompt/1";

/// A compressed text's memory, in the form its decoder reads.
#[derive(Clone)]
pub enum Memory {
    /// ICAE: k input vectors (`k × hidden`), read from position 0 with nothing before them.
    Slots(Vec<f32>),
    /// 500xCompressor, GIST: the decoder's KV-cache prefix of k positions.
    KvPrefix(KvCache),
}

/// What the decoder is asked to do after the memory: the indicator embedding it reads first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `[AE]`: reproduce the compressed text.
    Regenerate,
    /// `[LM]`: continue after it.
    Continue,
}

/// A text compressed to k memory positions for one model.
#[derive(Clone)]
pub struct CompressedPrompt {
    pub method: Method,
    /// Memory positions.
    pub k: usize,
    pub memory: Memory,
    /// The `[AE]` and `[LM]` indicator embeddings of the adapter.
    pub ae_token: Vec<f32>,
    pub lm_token: Vec<f32>,
    pub model: ModelId,
    /// sha256 of the adapter file that compressed it.
    pub adapter_sha256: String,
    /// Tokens of the text it stands for.
    pub text_tokens: usize,
}

/// One line for the file's metadata on where the memory is read.
fn positions_note(method: Method) -> &'static str {
    match method {
        Method::Icae => "input vectors at positions 0..k, no document-start token; indicator at k",
        Method::KvPrefix | Method::Gist => {
            "KV-cache prefix of k positions (keys rotated at encoder positions L..L+k); indicator at k"
        }
    }
}

impl CompressedPrompt {
    fn indicator(&self, task: Task) -> &[f32] {
        match task {
            Task::Regenerate => &self.ae_token,
            Task::Continue => &self.lm_token,
        }
    }

    /// The decoder's cache after the memory and `task`'s indicator; `lora` is what
    /// [`Self::decoder_lora`] returned. Generation and scoring continue from it.
    pub fn decoder_cache(
        &self,
        lm: &LanguageModel,
        task: Task,
        lora: Option<&[QvLora]>,
    ) -> Result<KvCache> {
        let indicator = self.indicator(task);
        match &self.memory {
            Memory::Slots(slots) => {
                let vectors = [slots.as_slice(), indicator].concat();
                prefix::embeddings_cache(lm, Lead::Nothing, &vectors)
            }
            Memory::KvPrefix(prefix) => {
                let mut cache = prefix.clone();
                lm.model
                    .forward_embeddings_with_lora(&mut cache, indicator, lora)?;
                Ok(cache)
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let metadata: BTreeMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("method", self.method.name().to_string()),
            ("model_file", self.model.file.clone()),
            ("model_sha256", self.model.sha256.clone()),
            ("k", self.k.to_string()),
            ("text_tokens", self.text_tokens.to_string()),
            ("adapter_sha256", self.adapter_sha256.clone()),
            ("positions", positions_note(self.method).to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        let d = self.ae_token.len();
        let mut tensors: Vec<(String, Vec<usize>, &[f32])> = vec![
            ("ae_token".into(), vec![d], &self.ae_token),
            ("lm_token".into(), vec![d], &self.lm_token),
        ];
        match &self.memory {
            Memory::Slots(slots) => tensors.push(("slots".into(), vec![self.k, d], slots)),
            Memory::KvPrefix(cache) => {
                tensors.push(("hidden".into(), vec![self.k, d], cache.hidden()));
                for layer in 0..cache.layers() {
                    let (keys, values) = (cache.keys(layer), cache.values(layer));
                    let width = keys.len() / self.k;
                    tensors.push((format!("blk.{layer}.key"), vec![self.k, width], keys));
                    tensors.push((format!("blk.{layer}.value"), vec![self.k, width], values));
                }
            }
        }
        let named: Vec<(&str, Vec<usize>, &[f32])> = tensors
            .iter()
            .map(|(name, shape, values)| (name.as_str(), shape.clone(), *values))
            .collect();
        crate::file::write(path, &metadata, &named)
    }

    /// Reads a compressed prompt for `lm`, refusing one made for another model (`model` is
    /// `lm`'s file identity).
    pub fn load(path: &Path, lm: &LanguageModel, model: &ModelId) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = open(path)?;
        let meta = file.metadata();
        let meta = crate::file::Metadata {
            map: meta,
            invalid: &invalid,
        };
        meta.check_format(FORMAT)?;
        let made_for = ModelId {
            file: meta.text("model_file")?,
            sha256: meta.text("model_sha256")?,
        };
        if made_for.sha256 != model.sha256 {
            return Err(Error::CompressedModelMismatch {
                path: path.to_path_buf(),
                made_for: made_for.file,
                made_for_sha256: made_for.sha256,
                model: model.file.clone(),
                model_sha256: model.sha256.clone(),
            });
        }
        let method_name = meta.text("method")?;
        let method = Method::parse(&method_name)
            .ok_or_else(|| invalid(format!("unknown method `{method_name}`")))?;
        let k = meta.number("k")?;
        if k == 0 {
            return Err(invalid("k = 0".into()));
        }
        let config = &lm.model.config;
        let d = config.hidden;
        let read =
            |name: &str, shape: &[usize]| crate::file::read_finite(&file, name, shape, invalid);
        let memory = match method {
            Method::Icae => Memory::Slots(read("slots", &[k, d])?),
            Method::KvPrefix | Method::Gist => {
                let width = config.kv_heads * config.head_dim;
                let per_layer = |part: &str| {
                    (0..config.layers)
                        .map(|layer| read(&format!("blk.{layer}.{part}"), &[k, width]))
                        .collect::<Result<Vec<_>>>()
                };
                let cache = lm.model.cache_from_rows(
                    per_layer("key")?,
                    per_layer("value")?,
                    read("hidden", &[k, d])?,
                )?;
                Memory::KvPrefix(cache)
            }
        };
        Ok(Self {
            method,
            k,
            memory,
            ae_token: read("ae_token", &[d])?,
            lm_token: read("lm_token", &[d])?,
            model: made_for,
            adapter_sha256: meta.text("adapter_sha256")?,
            text_tokens: meta.number("text_tokens")?,
        })
    }
}

fn open(path: &Path) -> Result<SafeTensors> {
    SafeTensors::open(path).map_err(|e| match e {
        abridge_models::Error::ModelNotFound { .. } => Error::NotFound {
            path: path.to_path_buf(),
        },
        other => Error::InvalidFile {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// Whether the file at `path` is a compressed prompt (as opposed to, e.g., a fitted soft
/// prompt): its metadata's `format`.
pub fn is_compressed(path: &Path) -> Result<bool> {
    Ok(open(path)?.metadata().get("format").map(String::as_str) == Some(FORMAT))
}
