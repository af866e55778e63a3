//! A trained compressor's weights (ICAE, 500xCompressor, GIST): LoRA on every block's query and
//! value projections, the k memory-token embeddings, and the `[AE]` / `[LM]` indicator
//! embeddings. The file is safetensors with the tensor names of `scripts/soft/train_icae.py`
//! (documented in docs/SOFT_PROMPTS_II.md), so GPU-trained and CPU-trained adapters are one
//! format.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use abridge_models::llama::Config;
use abridge_models::lora::{LowRank, QvLora};
use abridge_models::matrix::Matrix;
use abridge_models::safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::soft_prompt::ModelId;

/// `__metadata__["format"]` of compressor adapters.
pub const FORMAT: &str = "abridge-soft-compressor/1";

/// How the memory reaches the frozen decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// ICAE: the encoder's final hidden states at the memory positions become input embeddings.
    Icae,
    /// 500xCompressor: the encoder's keys and values at the memory positions, in every layer,
    /// become the decoder's KV-cache prefix.
    KvPrefix,
    /// GIST: like [`Self::KvPrefix`], but the decoder is the adapted model itself.
    Gist,
}

impl Method {
    /// The name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Icae => "icae",
            Self::KvPrefix => "500x",
            Self::Gist => "gist",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Icae, Self::KvPrefix, Self::Gist]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The trainable weights of one compressor, f32, in PEFT's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterWeights {
    /// Per layer: `[q_a (r × hidden), q_b (q_width × r), v_a (r × hidden), v_b (kv_width × r)]`.
    pub lora: Vec<[Vec<f32>; 4]>,
    /// `k × hidden`.
    pub memory: Vec<f32>,
    pub ae_token: Vec<f32>,
    pub lm_token: Vec<f32>,
}

/// A compressor adapter as stored: method, shapes, weights, and how it was trained.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    pub method: Method,
    /// Memory tokens.
    pub k: usize,
    pub rank: usize,
    /// The LoRA scale α / r.
    pub lora_scale: f32,
    pub hidden: usize,
    /// sha256 of the GGUF it was trained on.
    pub base_sha256: String,
    pub weights: AdapterWeights,
    /// Everything else in the file's metadata (training record: steps, losses, lr, ...).
    pub record: BTreeMap<String, String>,
}

/// The names of one layer's four LoRA factors, in [`AdapterWeights::lora`]'s order.
fn lora_names(layer: usize) -> [String; 4] {
    [
        "attn_q.lora_a",
        "attn_q.lora_b",
        "attn_v.lora_a",
        "attn_v.lora_b",
    ]
    .map(|name| format!("blk.{layer}.{name}"))
}

/// Metadata keys [`Adapter`] holds as fields.
const FIELDS: [&str; 6] = ["format", "method", "k", "rank", "lora_scale", "base_sha256"];

impl Adapter {
    /// The shapes of one layer's LoRA factors for `config`, in [`AdapterWeights::lora`]'s order.
    pub fn lora_shapes(config: &Config, rank: usize) -> [[usize; 2]; 4] {
        let (q_width, kv_width) = (
            config.heads * config.head_dim,
            config.kv_heads * config.head_dim,
        );
        [
            [rank, config.hidden],
            [q_width, rank],
            [rank, config.hidden],
            [kv_width, rank],
        ]
    }

    /// Reads an adapter and checks every tensor's shape against `config`.
    pub fn load(path: &Path, config: &Config) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidAdapter {
            path: path.to_path_buf(),
            reason,
        };
        let file = SafeTensors::open(path).map_err(|e| match e {
            abridge_models::Error::ModelNotFound { .. } => Error::AdapterNotFound {
                path: path.to_path_buf(),
            },
            other => invalid(other.to_string()),
        })?;
        let meta = file.metadata();
        let meta = crate::file::Metadata {
            map: meta,
            invalid: &invalid,
        };
        meta.check_format(FORMAT)?;
        let method_name = meta.text("method")?;
        let method = Method::parse(&method_name)
            .ok_or_else(|| invalid(format!("unknown method `{method_name}`")))?;
        let (k, rank) = (meta.number("k")?, meta.number("rank")?);
        let lora_scale: f32 = meta
            .text("lora_scale")?
            .parse()
            .map_err(|_| invalid("its metadata `lora_scale` is not a number".into()))?;
        if k == 0 || rank == 0 || !lora_scale.is_finite() {
            return Err(invalid(format!(
                "k = {k}, rank = {rank}, lora_scale = {lora_scale}"
            )));
        }
        let read =
            |name: &str, shape: &[usize]| crate::file::read_finite(&file, name, shape, invalid);
        let shapes = Self::lora_shapes(config, rank);
        let lora = (0..config.layers)
            .map(|layer| {
                let names = lora_names(layer);
                let mut factors = [vec![], vec![], vec![], vec![]];
                for ((factor, name), shape) in factors.iter_mut().zip(&names).zip(&shapes) {
                    *factor = read(name, shape)?;
                }
                Ok(factors)
            })
            .collect::<Result<Vec<_>>>()?;
        let d = config.hidden;
        Ok(Self {
            method,
            k,
            rank,
            lora_scale,
            hidden: d,
            base_sha256: meta.text("base_sha256")?,
            weights: AdapterWeights {
                lora,
                memory: read("memory_embeddings", &[k, d])?,
                ae_token: read("ae_token", &[d])?,
                lm_token: read("lm_token", &[d])?,
            },
            record: meta
                .map
                .iter()
                .filter(|(key, _)| !FIELDS.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        })
    }

    pub fn save(&self, path: &Path, config: &Config) -> Result<()> {
        let mut metadata = self.record.clone();
        for (key, value) in [
            ("format", FORMAT.to_string()),
            ("method", self.method.name().to_string()),
            ("k", self.k.to_string()),
            ("rank", self.rank.to_string()),
            ("lora_scale", self.lora_scale.to_string()),
            ("base_sha256", self.base_sha256.clone()),
        ] {
            metadata.insert(key.to_string(), value);
        }
        let shapes = Self::lora_shapes(config, self.rank);
        let names: Vec<[String; 4]> = (0..self.weights.lora.len()).map(lora_names).collect();
        let w = &self.weights;
        let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
            ("memory_embeddings", vec![self.k, self.hidden], &w.memory),
            ("ae_token", vec![self.hidden], &w.ae_token),
            ("lm_token", vec![self.hidden], &w.lm_token),
        ];
        for (layer_names, factors) in names.iter().zip(&w.lora) {
            for ((name, shape), factor) in layer_names.iter().zip(&shapes).zip(factors) {
                tensors.push((name, shape.to_vec(), factor));
            }
        }
        crate::file::write(path, &metadata, &tensors)
    }

    /// Refuses a base model other than the one the adapter was trained on.
    pub fn check_model(&self, path: &Path, model: &ModelId) -> Result<()> {
        if self.base_sha256 == model.sha256 {
            return Ok(());
        }
        Err(Error::AdapterModelMismatch {
            path: path.to_path_buf(),
            trained_sha256: self.base_sha256.clone(),
            model: model.file.clone(),
            model_sha256: model.sha256.clone(),
        })
    }

    /// The LoRA factors as runtime matrices, one [`QvLora`] per layer.
    pub fn qv_lora(&self, config: &Config) -> Vec<QvLora> {
        let shapes = Self::lora_shapes(config, self.rank);
        let matrix = |values: &[f32], [rows, cols]: [usize; 2]| {
            Matrix::from_f32(rows, cols, values.to_vec())
        };
        self.weights
            .lora
            .iter()
            .map(|[qa, qb, va, vb]| QvLora {
                q: LowRank::new(
                    matrix(qa, shapes[0]),
                    matrix(qb, shapes[1]),
                    self.lora_scale,
                ),
                v: LowRank::new(
                    matrix(va, shapes[2]),
                    matrix(vb, shapes[3]),
                    self.lora_scale,
                ),
            })
            .collect()
    }
}
