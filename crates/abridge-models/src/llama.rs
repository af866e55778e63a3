//! Llama-family causal LMs from GGUF (`llama`, which covers SmolLM2 and Mistral, and `qwen2`),
//! returning what compression needs: every position's hidden state, a KV cache that can be
//! extended and rolled back, and log-probabilities of chosen next tokens.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::kernels::{self, Activations, AttentionShape, Rope, RopeStyle};
use crate::lora::QvLora;
use crate::matrix::Matrix;
use crate::quant::GgmlType;

/// Tokens per forward chunk: bounds activation memory for long inputs.
const FORWARD_CHUNK: usize = 512;
/// Rows of the LM head computed at once: bounds the `rows × vocab` logits buffer.
const LOGITS_TILE: usize = 64;

/// Sees, for each layer (its index), the chunk's rotated queries and the layer's cached keys
/// (the chunk's included), with the attention's shape.
pub(crate) type AttentionObserver<'a> = dyn FnMut(usize, &[f32], &[f32], AttentionShape) + 'a;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub architecture: Architecture,
    pub layers: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_dims: usize,
    pub rope_base: f32,
    pub rms_eps: f32,
    pub context: usize,
    pub vocab: usize,
}

impl Config {
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let arch_name = gguf.require_str("general.architecture")?;
        let architecture = match arch_name {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            other => {
                return Err(Error::Unsupported(format!(
                    "{} has architecture `{other}`; abridge runs `llama` (SmolLM2, Llama, Mistral) and `qwen2` GGUF files",
                    gguf.path.display()
                )))
            }
        };
        let key = |name: &str| format!("{arch_name}.{name}");
        let int = |name: &str| -> Result<usize> { Ok(gguf.require_u64(&key(name))? as usize) };
        let optional_int = |name: &str| {
            gguf.get(&key(name))
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
        };
        let hidden = int("embedding_length")?;
        let heads = int("attention.head_count")?;
        let head_dim = optional_int("attention.key_length").unwrap_or(hidden / heads.max(1));
        let vocab = gguf
            .tensors
            .get("token_embd.weight")
            .and_then(|t| t.dims.get(1).copied())
            .ok_or_else(|| Error::InvalidGguf {
                path: gguf.path.clone(),
                reason: "the tensor token_embd.weight is missing".into(),
            })?;
        let config = Self {
            architecture,
            layers: int("block_count")?,
            hidden,
            ffn: int("feed_forward_length")?,
            heads,
            kv_heads: optional_int("attention.head_count_kv").unwrap_or(heads),
            head_dim,
            rope_dims: optional_int("rope.dimension_count").unwrap_or(head_dim),
            rope_base: gguf
                .get(&key("rope.freq_base"))
                .and_then(|v| v.as_f64())
                .unwrap_or(10_000.0) as f32,
            rms_eps: gguf
                .require(&key("attention.layer_norm_rms_epsilon"))?
                .as_f64()
                .ok_or_else(|| gguf.wrong_type(&key("attention.layer_norm_rms_epsilon")))?
                as f32,
            context: int("context_length")?,
            vocab,
        };
        if config.heads == 0
            || config.kv_heads == 0
            || !config.heads.is_multiple_of(config.kv_heads)
            || config.rope_dims > config.head_dim
            || !config.rope_dims.is_multiple_of(2)
        {
            return Err(Error::InvalidGguf {
                path: gguf.path.clone(),
                reason: format!("inconsistent attention shape in the metadata: {config:?}"),
            });
        }
        Ok(config)
    }

    fn rope_style(&self) -> RopeStyle {
        match self.architecture {
            Architecture::Llama => RopeStyle::Interleaved,
            Architecture::Qwen2 => RopeStyle::HalfSplit,
        }
    }
}

/// How the weight matrices are held in memory and multiplied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WeightFormat {
    /// Dequantised to f32 at load: exact, the fastest f32 path, 4 bytes per weight.
    #[default]
    F32,
    /// Kept in the file's GGUF encoding (about 4x less memory for Q4 files), dequantised a tile
    /// at a time during each matmul. Scores are identical to `F32`; long chunks run a little
    /// slower.
    Gguf,
    /// Requantised to int8 per row and block of 32, activations quantised on the fly to int8 or
    /// int16, integer products (AVX-512 VNNI where present): about 1.4 bytes per weight,
    /// approximate scores. The token embeddings stay in the GGUF encoding, so inputs are exact.
    Int8(Activations),
}

impl WeightFormat {
    /// The formats a user picks by name (`Gguf` is the separate low-memory switch).
    pub const NAMES: [&str; 3] = ["f32", "int8", "int8-a16"];
}

impl std::str::FromStr for WeightFormat {
    type Err = String;

    /// `f32`, `int8` (int8 activations) or `int8-a16` (int16 activations).
    fn from_str(name: &str) -> std::result::Result<Self, String> {
        match name {
            "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8(Activations::Int8)),
            "int8-a16" => Ok(Self::Int8(Activations::Int16)),
            _ => Err(format!(
                "unknown weight format {name:?}: use one of {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// How a model is loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    pub weights: WeightFormat,
    /// Read at most this many positions per cache, below the model's own context: long inputs
    /// are then scored in more, shorter windows (faster attention, less context).
    pub context_limit: Option<usize>,
    /// Skip comparing the file with the sha256 recorded when it was fetched
    /// ([`crate::fetch::verify`]); a corrupted file then scores garbage without a word.
    pub skip_verify: bool,
}

/// A projection `x · Wᵀ (+ b)`.
pub struct Linear {
    pub weight: Matrix,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32], threads: usize) {
        self.weight.forward(x, m, out, threads);
        if let Some(bias) = &self.bias {
            for row in out.chunks_exact_mut(bias.len()) {
                kernels::add_assign(row, bias);
            }
        }
    }
}

/// One transformer block's weights (read by abridge-soft's differentiable pass).
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub output: Matrix,
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
}

/// A loaded llama-family model.
pub struct CausalLm {
    pub config: Config,
    embedding: Arc<Matrix>,
    lm_head: Arc<Matrix>,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    rope: Rope,
}

/// What a model has read: per-layer keys and values, and the final hidden state (after the
/// output norm) of every position, from which next-token log-probabilities are computed.
///
/// A cache read under a KV-cache policy ([`crate::kv_policy`]) holds fewer rows than the
/// positions it read: `evicted` of them were dropped. Its rows keep the keys of their original
/// positions (rotated there), and the next token read is rotated at `len + evicted`, so the model
/// sees the same distances as without eviction; the hidden rows are those of the last `len`
/// positions read.
#[derive(Clone, Default)]
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    hidden: Vec<f32>,
    len: usize,
    evicted: usize,
}

impl KvCache {
    /// Positions held (rows of keys and values per layer).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Positions read: those held and those a policy evicted. The next token read is at this
    /// position.
    pub fn positions_read(&self) -> usize {
        self.len + self.evicted
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the first `len` positions.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let positions = self.len;
        for buffer in self
            .keys
            .iter_mut()
            .chain(self.values.iter_mut())
            .chain([&mut self.hidden])
        {
            let width = buffer.len() / positions;
            buffer.truncate(len * width);
        }
        self.len = len;
    }

    /// A cache of the positions `positions` of this one, with their keys, values and hidden
    /// rows as they are. Keys keep the rotation of their original positions, so a model reading
    /// after the new cache sees them as computed there (500xCompressor's and GIST's memory: the
    /// encoder's memory positions become a decoder's whole prefix).
    pub fn select(&self, positions: Range<usize>) -> KvCache {
        assert!(positions.start <= positions.end && positions.end <= self.len);
        let rows = |buffer: &Vec<f32>| {
            let width = buffer.len() / self.len;
            buffer[positions.start * width..positions.end * width].to_vec()
        };
        KvCache {
            keys: self.keys.iter().map(rows).collect(),
            values: self.values.iter().map(rows).collect(),
            hidden: rows(&self.hidden),
            len: positions.len(),
            evicted: 0,
        }
    }

    /// Keeps, of layer `l`'s rows, `kept[l][j * kv_heads + h]` as row j of KV head h: each head
    /// may keep other rows, but every head and layer keeps as many, `kept[l].len() / kv_heads`.
    /// The hidden rows of the last positions read are kept, as many.
    pub(crate) fn retain_rows(&mut self, kept: &[Vec<usize>], kv_heads: usize) {
        let rows = kept[0].len() / kv_heads;
        assert!(rows <= self.len && kept.iter().all(|k| k.len() == rows * kv_heads));
        let width = self.keys[0].len() / self.len;
        let head_dim = width / kv_heads;
        let gather = |buffer: &[f32], kept: &[usize]| {
            let mut out = Vec::with_capacity(rows * width);
            for (slot, &row) in kept.iter().enumerate() {
                let head = slot % kv_heads;
                out.extend_from_slice(&buffer[row * width + head * head_dim..][..head_dim]);
            }
            out
        };
        for (layer, kept) in kept.iter().enumerate() {
            self.keys[layer] = gather(&self.keys[layer], kept);
            self.values[layer] = gather(&self.values[layer], kept);
        }
        let d = self.hidden.len() / self.len;
        self.hidden.drain(..(self.len - rows) * d);
        self.evicted += self.len - rows;
        self.len = rows;
    }

    /// Transformer blocks it holds keys and values for.
    pub fn layers(&self) -> usize {
        self.keys.len()
    }

    /// Layer `layer`'s keys (after rotary embedding), one `kv_heads × head_dim` row per position.
    pub fn keys(&self, layer: usize) -> &[f32] {
        &self.keys[layer]
    }

    /// Layer `layer`'s values, one `kv_heads × head_dim` row per position.
    pub fn values(&self, layer: usize) -> &[f32] {
        &self.values[layer]
    }

    /// The final hidden state (after the output norm) of every position, `hidden` wide rows.
    pub fn hidden(&self) -> &[f32] {
        &self.hidden
    }
}

impl CausalLm {
    pub fn load(gguf: &GgufFile, options: LoadOptions) -> Result<Self> {
        let mut config = Config::from_gguf(gguf)?;
        if let Some(limit) = options.context_limit {
            config.context = config.context.min(limit.max(2));
        }
        let loader = Loader { gguf, options };
        let embedding = Arc::new(loader.embedding(config.vocab, config.hidden)?);
        let lm_head = if gguf.tensors.contains_key("output.weight") {
            Arc::new(loader.matrix("output.weight", config.vocab, config.hidden)?)
        } else if matches!(options.weights, WeightFormat::Int8(_)) {
            // Tied: the head is int8, the embeddings it shares stay exact.
            Arc::new(loader.matrix("token_embd.weight", config.vocab, config.hidden)?)
        } else {
            Arc::clone(&embedding)
        };
        let (q_width, kv_width) = (
            config.heads * config.head_dim,
            config.kv_heads * config.head_dim,
        );
        let layers = (0..config.layers)
            .map(|i| {
                let name = |part: &str| format!("blk.{i}.{part}");
                let linear = |part: &str, rows: usize| -> Result<Linear> {
                    let bias_name = name(&format!("{part}.bias"));
                    Ok(Linear {
                        weight: loader.matrix(
                            &name(&format!("{part}.weight")),
                            rows,
                            config.hidden,
                        )?,
                        bias: if gguf.tensors.contains_key(&bias_name) {
                            Some(loader.vector(&bias_name, rows)?)
                        } else {
                            None
                        },
                    })
                };
                Ok(Layer {
                    attn_norm: loader.vector(&name("attn_norm.weight"), config.hidden)?,
                    q: linear("attn_q", q_width)?,
                    k: linear("attn_k", kv_width)?,
                    v: linear("attn_v", kv_width)?,
                    output: loader.matrix(&name("attn_output.weight"), config.hidden, q_width)?,
                    ffn_norm: loader.vector(&name("ffn_norm.weight"), config.hidden)?,
                    gate: loader.matrix(&name("ffn_gate.weight"), config.ffn, config.hidden)?,
                    up: loader.matrix(&name("ffn_up.weight"), config.ffn, config.hidden)?,
                    down: loader.matrix(&name("ffn_down.weight"), config.hidden, config.ffn)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output_norm = loader.vector("output_norm.weight", config.hidden)?;
        let rope = Rope::new(
            config.rope_style(),
            config.rope_dims,
            config.rope_base,
            config.context,
        );
        Ok(Self {
            config,
            embedding,
            lm_head,
            layers,
            output_norm,
            rope,
        })
    }

    /// Bytes held by the weights.
    pub fn memory_bytes(&self) -> usize {
        let mut total = self.embedding.memory_bytes();
        if !Arc::ptr_eq(&self.embedding, &self.lm_head) {
            total += self.lm_head.memory_bytes();
        }
        for l in &self.layers {
            total += [
                &l.q.weight,
                &l.k.weight,
                &l.v.weight,
                &l.output,
                &l.gate,
                &l.up,
                &l.down,
            ]
            .iter()
            .map(|m| m.memory_bytes())
            .sum::<usize>();
        }
        total
    }

    pub fn embedding(&self) -> &Matrix {
        &self.embedding
    }

    pub fn lm_head(&self) -> &Matrix {
        &self.lm_head
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn output_norm(&self) -> &[f32] {
        &self.output_norm
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            keys: vec![Vec::new(); self.config.layers],
            values: vec![Vec::new(); self.config.layers],
            hidden: Vec::new(),
            len: 0,
            evicted: 0,
        }
    }

    /// A cache made of saved rows (what [`KvCache::keys`], [`KvCache::values`] and
    /// [`KvCache::hidden`] returned), checked against this model's shapes.
    pub fn cache_from_rows(
        &self,
        keys: Vec<Vec<f32>>,
        values: Vec<Vec<f32>>,
        hidden: Vec<f32>,
    ) -> Result<KvCache> {
        let c = &self.config;
        let len = hidden.len() / c.hidden;
        let kv_rows = len * c.kv_heads * c.head_dim;
        let fits = |layers: &[Vec<f32>]| {
            layers.len() == c.layers && layers.iter().all(|rows| rows.len() == kv_rows)
        };
        if !hidden.len().is_multiple_of(c.hidden) || !fits(&keys) || !fits(&values) {
            return Err(Error::InvalidInput(format!(
                "a KV cache for this model needs {} layers of keys and values with {} values per \
                 position, and {}-wide hidden rows",
                c.layers,
                c.kv_heads * c.head_dim,
                c.hidden
            )));
        }
        if len > c.context {
            return Err(Error::InvalidInput(format!(
                "a KV cache of {len} positions exceeds the model's context of {}",
                c.context
            )));
        }
        Ok(KvCache {
            keys,
            values,
            hidden,
            len,
            evicted: 0,
        })
    }

    /// Reads `ids` after what `cache` holds.
    pub fn forward(&self, cache: &mut KvCache, ids: &[u32]) -> Result<()> {
        self.forward_with_lora(cache, ids, None)
    }

    /// [`Self::forward`] with low-rank adapters on every block's query and value projections
    /// (`lora[i]` for block i), or without when `lora` is `None`.
    pub fn forward_with_lora(
        &self,
        cache: &mut KvCache,
        ids: &[u32],
        lora: Option<&[QvLora]>,
    ) -> Result<()> {
        self.check_lora(lora)?;
        self.read_ids(cache, ids, lora, None)
    }

    /// [`Self::forward`] that shows `observe` each layer's queries and the keys they attended to,
    /// right after the attention: the KV-cache policies take attention probabilities from them.
    pub(crate) fn forward_observed(
        &self,
        cache: &mut KvCache,
        ids: &[u32],
        observe: &mut AttentionObserver<'_>,
    ) -> Result<()> {
        self.read_ids(cache, ids, None, Some(observe))
    }

    fn read_ids(
        &self,
        cache: &mut KvCache,
        ids: &[u32],
        lora: Option<&[QvLora]>,
        mut observe: Option<&mut AttentionObserver<'_>>,
    ) -> Result<()> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.config.vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                self.config.vocab
            )));
        }
        if cache.positions_read() + ids.len() > self.config.context {
            return Err(Error::InvalidInput(format!(
                "{} tokens exceed the model's context of {} tokens; score long inputs in windows",
                cache.positions_read() + ids.len(),
                self.config.context
            )));
        }
        for chunk in ids.chunks(FORWARD_CHUNK) {
            let mut x = vec![0f32; chunk.len() * self.config.hidden];
            for (row, &id) in x.chunks_exact_mut(self.config.hidden).zip(chunk) {
                self.embedding.row(id as usize, row);
            }
            self.forward_chunk(cache, x, lora, observe.as_deref_mut());
        }
        Ok(())
    }

    /// Reads input vectors (`hidden` wide rows, e.g. a soft prompt) after what `cache` holds, as
    /// if they were the embeddings of tokens.
    pub fn forward_embeddings(&self, cache: &mut KvCache, embeddings: &[f32]) -> Result<()> {
        self.forward_embeddings_with_lora(cache, embeddings, None)
    }

    /// [`Self::forward_embeddings`] with optional query/value adapters, as in
    /// [`Self::forward_with_lora`].
    pub fn forward_embeddings_with_lora(
        &self,
        cache: &mut KvCache,
        embeddings: &[f32],
        lora: Option<&[QvLora]>,
    ) -> Result<()> {
        self.check_lora(lora)?;
        let d = self.config.hidden;
        if !embeddings.len().is_multiple_of(d) || embeddings.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "input embeddings must be finite rows of {d} values"
            )));
        }
        let rows = embeddings.len() / d;
        if cache.positions_read() + rows > self.config.context {
            return Err(Error::InvalidInput(format!(
                "{} positions exceed the model's context of {} tokens",
                cache.positions_read() + rows,
                self.config.context
            )));
        }
        for chunk in embeddings.chunks(FORWARD_CHUNK * d) {
            self.forward_chunk(cache, chunk.to_vec(), lora, None);
        }
        Ok(())
    }

    /// Refuses adapters whose count or shapes do not fit this model (their factors are applied
    /// unchecked in the layers).
    fn check_lora(&self, lora: Option<&[QvLora]>) -> Result<()> {
        let Some(lora) = lora else {
            return Ok(());
        };
        let c = &self.config;
        let fits = |low: &crate::lora::LowRank, output: usize| {
            low.a.cols == c.hidden && low.b.rows == output
        };
        if lora.len() != c.layers
            || !lora
                .iter()
                .all(|l| fits(&l.q, c.heads * c.head_dim) && fits(&l.v, c.kv_heads * c.head_dim))
        {
            return Err(Error::InvalidInput(format!(
                "the adapters do not fit this model: it needs {} blocks of query ({} wide) and \
                 value ({} wide) adapters on {}-wide inputs",
                c.layers,
                c.heads * c.head_dim,
                c.kv_heads * c.head_dim,
                c.hidden
            )));
        }
        Ok(())
    }

    /// Runs the layers over input rows `x` (embeddings) at the positions after `cache`, adding
    /// `lora`'s deltas to the query and value projections (before rotary embedding), and showing
    /// each layer's attention inputs to `observe` (the plain forward passes none).
    fn forward_chunk(
        &self,
        cache: &mut KvCache,
        mut x: Vec<f32>,
        lora: Option<&[QvLora]>,
        mut observe: Option<&mut AttentionObserver<'_>>,
    ) {
        let c = &self.config;
        let threads = rayon::current_num_threads();
        let (t, d, past) = (x.len() / c.hidden, c.hidden, cache.len);
        // Rotated at the positions read, which exceed the rows held once a policy evicted some.
        let first_position = cache.positions_read();
        let (q_width, kv_width) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let mut normed = vec![0f32; t * d];
        let mut q = vec![0f32; t * q_width];
        let mut k = vec![0f32; t * kv_width];
        let mut v = vec![0f32; t * kv_width];
        let mut attention = vec![0f32; t * q_width];
        let mut projected = vec![0f32; t * d];
        let mut gate = vec![0f32; t * c.ffn];
        let mut up = vec![0f32; t * c.ffn];
        for (i, layer) in self.layers.iter().enumerate() {
            kernels::rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut normed);
            layer.q.forward(&normed, t, &mut q, threads);
            layer.k.forward(&normed, t, &mut k, threads);
            layer.v.forward(&normed, t, &mut v, threads);
            if let Some(adapters) = lora {
                adapters[i].q.add_forward(&normed, t, &mut q, threads);
                adapters[i].v.add_forward(&normed, t, &mut v, threads);
            }
            self.rope.apply(&mut q, q_width, c.head_dim, first_position);
            self.rope
                .apply(&mut k, kv_width, c.head_dim, first_position);
            cache.keys[i].extend_from_slice(&k);
            cache.values[i].extend_from_slice(&v);
            let shape = AttentionShape {
                queries: t,
                past,
                heads: c.heads,
                kv_heads: c.kv_heads,
                head_dim: c.head_dim,
            };
            kernels::causal_attention(&q, &cache.keys[i], &cache.values[i], shape, &mut attention);
            if let Some(observe) = observe.as_deref_mut() {
                observe(i, &q, &cache.keys[i], shape);
            }
            layer.output.forward(&attention, t, &mut projected, threads);
            kernels::add_assign(&mut x, &projected);

            kernels::rms_norm(&x, &layer.ffn_norm, c.rms_eps, &mut normed);
            layer.gate.forward(&normed, t, &mut gate, threads);
            layer.up.forward(&normed, t, &mut up, threads);
            kernels::silu_mul(&mut gate, &up);
            layer.down.forward(&gate, t, &mut projected, threads);
            kernels::add_assign(&mut x, &projected);
        }
        kernels::rms_norm(&x, &self.output_norm, c.rms_eps, &mut normed);
        cache.hidden.extend_from_slice(&normed);
        cache.len += t;
    }

    /// The next-token logits (`vocab` long) at `position` of `cache`.
    pub fn next_token_logits(&self, cache: &KvCache, position: usize) -> Vec<f32> {
        let d = self.config.hidden;
        assert!(position < cache.len);
        let mut logits = vec![0f32; self.config.vocab];
        let hidden = &cache.hidden[position * d..(position + 1) * d];
        self.lm_head
            .forward(hidden, 1, &mut logits, rayon::current_num_threads());
        logits
    }

    /// `ln p(targets[i] | positions ..= from + i)`: the log-probability the model gave, at
    /// position `from + i` of `cache`, to `targets[i]` being the next token.
    pub fn next_token_log_probs(&self, cache: &KvCache, from: usize, targets: &[u32]) -> Vec<f32> {
        let d = self.config.hidden;
        let vocab = self.config.vocab;
        assert!(from + targets.len() <= cache.len);
        let threads = rayon::current_num_threads();
        let mut log_probs = Vec::with_capacity(targets.len());
        let mut logits = vec![0f32; LOGITS_TILE.min(targets.len()) * vocab];
        for (tile, tile_targets) in targets.chunks(LOGITS_TILE).enumerate() {
            let rows = tile_targets.len();
            let first = from + tile * LOGITS_TILE;
            let hidden = &cache.hidden[first * d..(first + rows) * d];
            let logits = &mut logits[..rows * vocab];
            self.lm_head.forward(hidden, rows, logits, threads);
            let tile_log_probs: Vec<f32> = logits
                .par_chunks_exact(vocab)
                .zip(tile_targets)
                .map(|(row, &target)| kernels::target_log_prob(row, target as usize))
                .collect();
            log_probs.extend(tile_log_probs);
        }
        log_probs
    }
}

struct Loader<'a> {
    gguf: &'a GgufFile,
    options: LoadOptions,
}

impl Loader<'_> {
    fn tensor(&self, name: &str, expected: &[usize]) -> Result<&crate::gguf::TensorInfo> {
        let info = self
            .gguf
            .tensors
            .get(name)
            .ok_or_else(|| Error::InvalidGguf {
                path: self.gguf.path.clone(),
                reason: format!("the tensor {name} is missing"),
            })?;
        if info.dims != expected {
            return Err(Error::InvalidGguf {
                path: self.gguf.path.clone(),
                reason: format!(
                    "tensor {name} has shape {:?}, expected {expected:?}",
                    info.dims
                ),
            });
        }
        Ok(info)
    }

    fn dequantized(&self, info: &crate::gguf::TensorInfo) -> Vec<f32> {
        let mut values = vec![0f32; info.element_count()];
        info.dtype
            .dequantize(self.gguf.tensor_data(info), &mut values);
        values
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        Ok(self.dequantized(self.tensor(name, &[len])?))
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        self.matrix_as(name, rows, cols, self.options.weights)
    }

    /// The token embeddings: only rows are read from them, so int8 buys no speed there and they
    /// stay exact (in the GGUF encoding: the same rows in less memory).
    fn embedding(&self, vocab: usize, hidden: usize) -> Result<Matrix> {
        let format = match self.options.weights {
            WeightFormat::Int8(_) => WeightFormat::Gguf,
            format => format,
        };
        self.matrix_as("token_embd.weight", vocab, hidden, format)
    }

    fn matrix_as(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        format: WeightFormat,
    ) -> Result<Matrix> {
        let info = self.tensor(name, &[cols, rows])?;
        let is_float = matches!(info.dtype, GgmlType::F32);
        Ok(match format {
            WeightFormat::Gguf if !is_float => {
                Matrix::quantized(rows, cols, info.dtype, self.gguf.tensor_data(info).to_vec())
            }
            WeightFormat::Int8(activations) => {
                Matrix::int8(rows, cols, &self.dequantized(info), activations)
            }
            _ => Matrix::from_f32(rows, cols, self.dequantized(info)),
        })
    }
}
