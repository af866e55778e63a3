//! BERT-family encoders from Hugging Face checkpoints: BERT (all-MiniLM-L6-v2, multilingual
//! BERT) and XLM-RoBERTa, which is the same network with another position numbering.
//!
//! The forward pass is the post-LayerNorm transformer encoder of `BertModel`: word + position +
//! token-type embeddings and a LayerNorm, then per layer self-attention and a GELU (erf form)
//! feed-forward block, each followed by residual + LayerNorm. Dropout is the identity at
//! inference. The output is the last hidden state of every token; [`TokenClassificationHead`]
//! adds the `*ForTokenClassification` linear layer on top.
//!
//! Position numbering: BERT numbers tokens 0, 1, 2, ...; RoBERTa and XLM-RoBERTa start at
//! `pad_token_id + 1` (= 2), because their position table reserves the rows up to the padding
//! index. So XLM-R's 514 positions hold 512 tokens, like BERT's 512.
//!
//! Sequences of a batch are packed one after another instead of padded: the linear layers see
//! every real token once and attention runs inside each sequence. This computes exactly what a
//! padded batch with an attention mask computes (masked keys get weight `exp(-inf) = 0`)
//! without the padding's work.

use std::ops::Range;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use crate::encoder_tokenizer::EncoderTokenizer;
use crate::error::{Error, Result};
use crate::kernels::{self, add_assign, matmul, View};
use crate::matrix::Matrix;
use crate::safetensors::SafeTensors;
use crate::windows;

/// Tokens per packed forward call: bounds activation memory (`tokens × intermediate_size`
/// floats) however many texts a caller passes at once.
pub const FORWARD_TOKENS: usize = 4096;

/// The suffix every supported checkpoint's word embedding tensor ends with; what precedes it
/// (`bert.`, `roberta.` or nothing for a bare `BertModel`) prefixes every encoder tensor.
const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings.weight";

/// Which position numbering the checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    /// RoBERTa and XLM-RoBERTa: positions start after the padding index.
    Roberta,
}

fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

/// The checkpoint's `config.json`, under its own field names.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub model_type: String,
    #[serde(default)]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<usize>,
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| Error::InvalidModelFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|reason| Error::InvalidModelFile {
                path: path.to_path_buf(),
                reason,
            })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.family()?;
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act `{}` is not supported (only `gelu`)",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                self.position_embedding_type
            ));
        }
        if self.vocab_size == 0 || self.hidden_size == 0 || self.intermediate_size == 0 {
            return Err("vocab_size, hidden_size and intermediate_size must be positive".into());
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.type_vocab_size == 0 || self.max_tokens() == 0 {
            return Err("the model has no token types or no positions".into());
        }
        Ok(())
    }

    pub fn family(&self) -> Result<Family, String> {
        match self.model_type.as_str() {
            "bert" => Ok(Family::Bert),
            "roberta" | "xlm-roberta" => {
                if self.pad_token_id.is_none() {
                    return Err(
                        "a RoBERTa config needs pad_token_id to number positions".to_string()
                    );
                }
                Ok(Family::Roberta)
            }
            other => Err(format!(
                "model_type `{other}` is not supported (bert, roberta, xlm-roberta)"
            )),
        }
    }

    /// Position-table row of a sequence's first token.
    pub fn position_offset(&self) -> usize {
        match self.family() {
            Ok(Family::Roberta) => self.pad_token_id.unwrap_or(0) + 1,
            _ => 0,
        }
    }

    /// The most tokens (special tokens included) one sequence can have.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.position_offset())
    }
}

/// The files of a Hugging Face checkpoint folder.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: Config,
    pub weights: SafeTensors,
    pub tokenizer: EncoderTokenizer,
}

impl Checkpoint {
    /// Opens `config.json`, `model.safetensors` and `tokenizer.json` in `dir`; `missing` makes
    /// the error for an absent folder or file (its message says where such a model comes from).
    pub fn open(dir: &Path, missing: impl Fn(PathBuf) -> Error) -> Result<Self> {
        if !dir.is_dir() {
            return Err(missing(dir.to_path_buf()));
        }
        let file = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(missing(path))
            }
        };
        let config = Config::from_file(&file("config.json")?)?;
        let weights = SafeTensors::open(&file("model.safetensors")?)?;
        let tokenizer_path = file("tokenizer.json")?;
        let tokenizer = EncoderTokenizer::from_file(&tokenizer_path)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::InvalidModelFile {
                path: tokenizer_path,
                reason: format!(
                    "the tokenizer has {} tokens but the model's vocab_size is {}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            weights,
            tokenizer,
        })
    }
}

/// `y = x · Wᵀ + b`.
struct Linear {
    weight: Matrix,
    bias: Vec<f32>,
}

impl Linear {
    fn load(st: &SafeTensors, name: &str, outputs: usize, inputs: usize) -> Result<Self> {
        Ok(Self {
            weight: Matrix::from_f32(
                outputs,
                inputs,
                st.read_f32(&format!("{name}.weight"), &[outputs, inputs])?,
            ),
            bias: st.read_f32(&format!("{name}.bias"), &[outputs])?,
        })
    }

    /// Query, key and value as one `3·hidden × hidden` layer: one matmul instead of three.
    fn load_fused(st: &SafeTensors, names: [String; 3], hidden: usize) -> Result<Self> {
        let mut weight = Vec::with_capacity(3 * hidden * hidden);
        let mut bias = Vec::with_capacity(3 * hidden);
        for name in names {
            weight.extend(st.read_f32(&format!("{name}.weight"), &[hidden, hidden])?);
            bias.extend(st.read_f32(&format!("{name}.bias"), &[hidden])?);
        }
        Ok(Self {
            weight: Matrix::from_f32(3 * hidden, hidden, weight),
            bias,
        })
    }

    fn outputs(&self) -> usize {
        self.weight.rows
    }

    fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], threads: usize) {
        self.weight.forward(x, rows, out, threads);
        for row in out.chunks_exact_mut(self.bias.len()) {
            add_assign(row, &self.bias);
        }
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Checkpoints converted from TensorFlow name the parameters `gamma`/`beta`.
    fn load(st: &SafeTensors, name: &str, width: usize, eps: f32) -> Result<Self> {
        let (w, b) = if st.get(&format!("{name}.gamma")).is_some() {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        Ok(Self {
            weight: st.read_f32(&format!("{name}.{w}"), &[width])?,
            bias: st.read_f32(&format!("{name}.{b}"), &[width])?,
            eps,
        })
    }

    fn apply(&self, x: &mut [f32]) {
        let width = self.weight.len() as f32;
        for row in x.chunks_exact_mut(self.weight.len()) {
            let mean = row.iter().sum::<f32>() / width;
            let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width;
            let inv = 1.0 / (variance + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

struct Layer {
    qkv: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A BERT-family encoder: token ids in, last hidden states out.
pub struct Encoder {
    pub config: Config,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Row 0 of the token-type table: every input is a single segment.
    token_type_embedding: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Encoder {
    /// Loads the encoder's tensors, named as transformers saves them, with or without the
    /// `bert.`/`roberta.` prefix of the task models.
    pub fn load(config: Config, st: &SafeTensors) -> Result<Self> {
        let prefix = encoder_prefix(st)?;
        let h = config.hidden_size;
        let eps = config.layer_norm_eps as f32;
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let token_types = st.read_f32(
            &name("embeddings.token_type_embeddings.weight"),
            &[config.type_vocab_size, h],
        )?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let layer = |suffix: &str| name(&format!("encoder.layer.{i}.{suffix}"));
            layers.push(Layer {
                qkv: Linear::load_fused(
                    st,
                    [
                        layer("attention.self.query"),
                        layer("attention.self.key"),
                        layer("attention.self.value"),
                    ],
                    h,
                )?,
                attention_output: Linear::load(st, &layer("attention.output.dense"), h, h)?,
                attention_norm: LayerNorm::load(st, &layer("attention.output.LayerNorm"), h, eps)?,
                intermediate: Linear::load(
                    st,
                    &layer("intermediate.dense"),
                    config.intermediate_size,
                    h,
                )?,
                output: Linear::load(st, &layer("output.dense"), h, config.intermediate_size)?,
                output_norm: LayerNorm::load(st, &layer("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Self {
            word_embeddings: st.read_f32(&name(WORD_EMBEDDINGS), &[config.vocab_size, h])?,
            position_embeddings: st.read_f32(
                &name("embeddings.position_embeddings.weight"),
                &[config.max_position_embeddings, h],
            )?,
            token_type_embedding: token_types[..h].to_vec(),
            embedding_norm: LayerNorm::load(st, &name("embeddings.LayerNorm"), h, eps)?,
            layers,
            config,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// The most tokens (special tokens included) one sequence can have.
    pub fn max_tokens(&self) -> usize {
        self.config.max_tokens()
    }

    /// Last hidden states of each sequence (`len × hidden_size`, row-major). Each sequence is
    /// complete model input, special tokens included, at most [`Self::max_tokens`] long.
    pub fn forward(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        self.forward_depth(sequences, self.layers.len())
    }

    /// Number of transformer layers.
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// [`Self::forward`] through the first `depth` layers only (at most [`Self::layers`]): the
    /// hidden states after layer `depth`, for readers of a truncated encoder (abridge-fast).
    pub fn forward_depth(&self, sequences: &[&[u32]], depth: usize) -> Result<Vec<Vec<f32>>> {
        if depth > self.layers.len() {
            return Err(Error::InvalidInput(format!(
                "the encoder has {} layers, not {depth}",
                self.layers.len()
            )));
        }
        for sequence in sequences {
            if sequence.len() > self.max_tokens() {
                return Err(Error::InvalidInput(format!(
                    "a sequence of {} tokens is longer than the encoder's {} positions",
                    sequence.len(),
                    self.max_tokens()
                )));
            }
            if let Some(id) = sequence
                .iter()
                .find(|&&id| id as usize >= self.config.vocab_size)
            {
                return Err(Error::InvalidInput(format!(
                    "token id {id} is outside the vocabulary of {} tokens",
                    self.config.vocab_size
                )));
            }
        }
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
        let mut out = Vec::with_capacity(sequences.len());
        for batch in windows::batches(&lengths, FORWARD_TOKENS) {
            out.extend(self.forward_packed(&sequences[batch], depth));
        }
        Ok(out)
    }

    /// The forward pass over sequences laid one after another (ids already checked).
    fn forward_packed(&self, sequences: &[&[u32]], depth: usize) -> Vec<Vec<f32>> {
        let h = self.config.hidden_size;
        let threads = rayon::current_num_threads();
        let mut spans = Vec::with_capacity(sequences.len());
        let mut rows = 0;
        for sequence in sequences {
            spans.push(rows..rows + sequence.len());
            rows += sequence.len();
        }
        let mut x = vec![0f32; rows * h];
        let offset = self.config.position_offset();
        for (sequence, span) in sequences.iter().zip(&spans) {
            for (i, &id) in sequence.iter().enumerate() {
                let row = &mut x[(span.start + i) * h..(span.start + i + 1) * h];
                let word = &self.word_embeddings[id as usize * h..(id as usize + 1) * h];
                let position = &self.position_embeddings[(offset + i) * h..(offset + i + 1) * h];
                for (((v, w), p), t) in row
                    .iter_mut()
                    .zip(word)
                    .zip(position)
                    .zip(&self.token_type_embedding)
                {
                    *v = w + p + t;
                }
            }
        }
        self.embedding_norm.apply(&mut x);

        let mut qkv = vec![0f32; rows * 3 * h];
        let mut context = vec![0f32; rows * h];
        let mut projected = vec![0f32; rows * h];
        let mut intermediate = vec![0f32; rows * self.config.intermediate_size];
        for layer in &self.layers[..depth] {
            layer.qkv.forward(&x, rows, &mut qkv, threads);
            self.attention(&qkv, &spans, &mut context);
            layer
                .attention_output
                .forward(&context, rows, &mut projected, threads);
            add_assign(&mut x, &projected);
            layer.attention_norm.apply(&mut x);

            layer
                .intermediate
                .forward(&x, rows, &mut intermediate, threads);
            gelu(&mut intermediate);
            layer
                .output
                .forward(&intermediate, rows, &mut projected, threads);
            add_assign(&mut x, &projected);
            layer.output_norm.apply(&mut x);
        }
        spans
            .iter()
            .map(|span| x[span.start * h..span.end * h].to_vec())
            .collect()
    }

    /// Bidirectional multi-head attention inside each sequence. `qkv` rows hold query, key and
    /// value (`3·hidden` wide); the heads' outputs are written side by side into `context`.
    fn attention(&self, qkv: &[f32], spans: &[Range<usize>], context: &mut [f32]) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let stride = 3 * h;
        let scale = 1.0 / (d as f32).sqrt();
        let tasks: Vec<(Range<usize>, usize)> = spans
            .iter()
            .filter(|span| !span.is_empty())
            .flat_map(|span| (0..heads).map(move |head| (span.clone(), head)))
            .collect();
        let outputs: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|(span, head)| {
                let n = span.len();
                let q = &qkv[span.start * stride + head * d..];
                let k = &q[h..];
                let v = &q[2 * h..];
                let mut scores = vec![0f32; n * n];
                // SAFETY: q, k and v start inside `qkv` at this sequence's first row; row r of
                // each head is at r·stride + 0..d, and the last row (n-1) lies within the span.
                unsafe {
                    matmul(
                        n,
                        n,
                        d,
                        scores.as_mut_ptr(),
                        n,
                        false,
                        View {
                            ptr: q.as_ptr(),
                            row_stride: stride as isize,
                            col_stride: 1,
                        },
                        View {
                            ptr: k.as_ptr(),
                            row_stride: 1,
                            col_stride: stride as isize,
                        },
                        scale,
                        1,
                    );
                }
                for row in scores.chunks_exact_mut(n) {
                    kernels::softmax(row);
                }
                let mut out = vec![0f32; n * d];
                // SAFETY: as above; `scores` is n × n and `out` n × d.
                unsafe {
                    matmul(
                        n,
                        d,
                        n,
                        out.as_mut_ptr(),
                        d,
                        false,
                        View {
                            ptr: scores.as_ptr(),
                            row_stride: n as isize,
                            col_stride: 1,
                        },
                        View {
                            ptr: v.as_ptr(),
                            row_stride: stride as isize,
                            col_stride: 1,
                        },
                        1.0,
                        1,
                    );
                }
                out
            })
            .collect();
        for ((span, head), out) in tasks.iter().zip(outputs) {
            for (r, values) in out.chunks_exact(d).enumerate() {
                let at = (span.start + r) * h + head * d;
                context[at..at + d].copy_from_slice(values);
            }
        }
    }
}

/// The tensor-name prefix of the encoder (`bert.`, `roberta.`, or empty).
fn encoder_prefix(st: &SafeTensors) -> Result<String> {
    st.names()
        .filter_map(|name| name.strip_suffix(WORD_EMBEDDINGS))
        .min_by_key(|prefix| prefix.len())
        .map(str::to_string)
        .ok_or_else(|| Error::InvalidModelFile {
            path: st.path.clone(),
            reason: format!("no tensor named `{WORD_EMBEDDINGS}` (with or without a prefix): not a BERT-family checkpoint"),
        })
}

/// GELU in its erf form, as BERT's `hidden_act: "gelu"` specifies.
fn gelu(x: &mut [f32]) {
    x.par_chunks_mut(4096).for_each(|chunk| {
        for v in chunk {
            *v *= 0.5 * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    });
}

/// The error function by Abramowitz & Stegun 7.1.26 (absolute error below 5e-7 in f32), the
/// approximation PyTorch's vectorised CPU kernels use too. libm's `erff` is exact to an ulp but
/// about 7x slower, which made GELU a third of an all-MiniLM-L6-v2 forward pass.
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    (1.0 - poly * (-a * a).exp()).copysign(x)
}

/// The `*ForTokenClassification` head: a linear layer from each hidden state to label logits
/// (`classifier.weight`, `classifier.bias`; its dropout is the identity at inference).
pub struct TokenClassificationHead {
    linear: Linear,
}

impl TokenClassificationHead {
    pub fn load(st: &SafeTensors, hidden: usize) -> Result<Self> {
        let labels = st
            .get("classifier.weight")
            .and_then(|info| info.shape.first().copied())
            .ok_or_else(|| Error::InvalidModelFile {
                path: st.path.clone(),
                reason: "no `classifier.weight`: not a *ForTokenClassification checkpoint".into(),
            })?;
        Ok(Self {
            linear: Linear::load(st, "classifier", labels, hidden)?,
        })
    }

    pub fn num_labels(&self) -> usize {
        self.linear.outputs()
    }

    /// Logits (`rows × num_labels`) of `rows` hidden states.
    pub fn logits(&self, hidden_states: &[f32], rows: usize) -> Vec<f32> {
        let mut logits = vec![0f32; rows * self.num_labels()];
        self.linear.forward(hidden_states, rows, &mut logits, 1);
        logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(model_type: &str, pad: Option<usize>) -> Config {
        serde_json::from_value(serde_json::json!({
            "model_type": model_type, "vocab_size": 10, "hidden_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
            "max_position_embeddings": 514, "pad_token_id": pad,
        }))
        .unwrap()
    }

    #[test]
    fn roberta_positions_start_after_the_padding_index() {
        let bert = config("bert", Some(0));
        assert_eq!((bert.position_offset(), bert.max_tokens()), (0, 514));
        let xlmr = config("xlm-roberta", Some(1));
        assert_eq!((xlmr.position_offset(), xlmr.max_tokens()), (2, 512));
        assert!(config("xlm-roberta", None).validate().is_err());
        assert!(config("gpt2", None).validate().is_err());
    }

    #[test]
    fn erf_is_accurate() {
        // erf at these points, to f32 precision.
        let known = [
            (0.0, 0.0),
            (0.1, 0.112_462_92),
            (0.5, 0.520_499_9),
            (-1.0, -0.842_700_8),
            (1.5, 0.966_105_1),
            (2.0, 0.995_322_3),
            (-3.0, -0.999_977_9),
            (5.0, 1.0),
        ];
        for (x, want) in known {
            assert!(
                (erf(x) - want).abs() < 6e-7,
                "erf({x}) = {} not {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn gelu_is_the_erf_form() {
        let mut x = [-3.0f32, -1.0, 0.0, 0.5, 2.0];
        gelu(&mut x);
        // 0.5·x·(1 + erf(x/√2)), evaluated in f64.
        let expected = [-0.0040496, -0.15865525, 0.0, 0.34573123, 1.9544997];
        for (a, b) in x.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }
}
