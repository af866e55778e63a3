//! A differentiable f32 forward pass of abridge-models' llama / qwen2 model over input vectors,
//! and its hand-written backward pass to those vectors and to LoRA factors on the query and value
//! projections (every base weight stays frozen).
//!
//! The forward pass is the runtime's own ([`CausalLm::forward`]) restated over a whole sequence,
//! keeping what the backward pass needs: each layer's input, the rotated queries and keys, the
//! values, the attention probabilities, the residual stream between attention and MLP, the MLP's
//! gate and up projections, and the LoRA paths' low-rank activations. Input row `i` sits at
//! rotary position `start + i` ([`Pass::start`]); soft vectors are read after the document-start
//! token (positions 1..=k, see [`crate::prefix`]).
//!
//! A [`Pass`] can also carry a LoRA on q and v (`q += s·B_q(A_q h)`, `v += s·B_v(A_v h)` on the
//! RMS-normed input h, before rope: the trained compressors' encoder) and a key/value prefix that
//! every row attends to (the 500x / GIST decoder). The backward pass then also returns the
//! gradients of every LoRA factor and of the prefix, and accepts gradients arriving at the pass's
//! own keys and values (the encoder side of a KV prefix).
//!
//! Every matrix product, forward and backward, goes through [`kernels::matmul`] (weights are
//! read in place, transposed or not, through strided views).

use abridge_models::kernels::{self, matmul, AttentionShape, View};
use abridge_models::llama::{CausalLm, Config};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// LoRA factors on every layer's query and value projections, in [`crate::adapter`]'s layout:
/// per layer `[q_a (rank × hidden), q_b (q_width × rank), v_a (rank × hidden), v_b (kv_width ×
/// rank)]`.
#[derive(Clone, Copy)]
pub struct Lora<'a> {
    pub factors: &'a [[Vec<f32>; 4]],
    pub rank: usize,
    /// α / r.
    pub scale: f32,
}

/// Per-layer keys (after the rotary embedding) and values of `len` positions, `len × kv_width`
/// each: a decoder's KV prefix, or the gradient with respect to one.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValues {
    pub keys: Vec<Vec<f32>>,
    pub values: Vec<Vec<f32>>,
    pub len: usize,
}

impl KeyValues {
    pub fn zeros(layers: usize, len: usize, kv_width: usize) -> Self {
        Self {
            keys: vec![vec![0.0; len * kv_width]; layers],
            values: vec![vec![0.0; len * kv_width]; layers],
            len,
        }
    }

    pub fn add_assign(&mut self, other: &Self) {
        assert_eq!(self.len, other.len);
        for (a, b) in self.keys.iter_mut().zip(&other.keys) {
            kernels::add_assign(a, b);
        }
        for (a, b) in self.values.iter_mut().zip(&other.values) {
            kernels::add_assign(a, b);
        }
    }
}

/// What a forward pass reads besides its input rows.
#[derive(Clone, Copy, Default)]
pub struct Pass<'a> {
    pub lora: Option<Lora<'a>>,
    /// Keys and values every row attends to before the rows themselves.
    pub prefix: Option<&'a KeyValues>,
    /// The rotary position of the first input row.
    pub start: usize,
}

impl Pass<'_> {
    fn prefix_len(&self) -> usize {
        self.prefix.map_or(0, |p| p.len)
    }
}

/// What the forward pass keeps of one layer for the backward pass.
struct LayerTrace {
    /// The residual stream entering the layer.
    input: Vec<f32>,
    /// Queries after the rotary embedding.
    q: Vec<f32>,
    /// Keys (after the rotary embedding) and values, the prefix's first.
    k: Vec<f32>,
    v: Vec<f32>,
    /// Attention probabilities, `heads × rows × (prefix + rows)` (zero for future keys).
    probs: Vec<f32>,
    /// The residual stream between attention and MLP.
    mid: Vec<f32>,
    /// The MLP's gate and up projections, before the SwiGLU.
    gate: Vec<f32>,
    up: Vec<f32>,
    /// LoRA's `A·h` for q and v (`rows × rank`; empty without LoRA).
    q_low: Vec<f32>,
    v_low: Vec<f32>,
}

/// A forward pass over `rows` input vectors, with what its backward pass needs.
pub struct Trace {
    pub rows: usize,
    prefix: usize,
    layers: Vec<LayerTrace>,
    /// The residual stream after the last layer (the output norm's input).
    last: Vec<f32>,
    /// Final hidden states (after the output norm), `rows × hidden`: the LM head's input.
    pub hidden: Vec<f32>,
}

impl Trace {
    /// Every layer's keys and values of the last `len` rows (a KV prefix for a decoder).
    pub fn last_key_values(&self, len: usize) -> KeyValues {
        assert!(len <= self.rows);
        let kv_width = self
            .layers
            .first()
            .map_or(0, |l| l.k.len() / (self.prefix + self.rows));
        let from = (self.prefix + self.rows - len) * kv_width;
        KeyValues {
            keys: self.layers.iter().map(|l| l.k[from..].to_vec()).collect(),
            values: self.layers.iter().map(|l| l.v[from..].to_vec()).collect(),
            len,
        }
    }
}

/// The backward pass's results.
pub struct Gradients {
    /// With respect to the input rows, `rows × hidden`.
    pub inputs: Vec<f32>,
    /// With respect to every LoRA factor, in [`Lora::factors`]' layout (empty without LoRA).
    pub lora: Vec<[Vec<f32>; 4]>,
    /// With respect to the prefix's keys and values (`None` without a prefix).
    pub prefix: Option<KeyValues>,
}

/// The differentiable view of a loaded model.
pub struct Differentiable<'m> {
    pub model: &'m CausalLm,
}

impl<'m> Differentiable<'m> {
    pub fn new(model: &'m CausalLm) -> Self {
        Self { model }
    }

    fn config(&self) -> &Config {
        &self.model.config
    }

    /// The token embeddings of `ids`, `ids.len() × hidden`.
    pub fn embed(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let (d, vocab) = (self.config().hidden, self.config().vocab);
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {vocab} tokens"
            )));
        }
        let mut x = vec![0f32; ids.len() * d];
        for (row, &id) in x.chunks_exact_mut(d).zip(ids) {
            self.model.embedding().row(id as usize, row);
        }
        Ok(x)
    }

    /// Runs the frozen model over input rows `x` (`rows × hidden`, row `i` at position `i`).
    pub fn forward(&self, x: Vec<f32>) -> Result<Trace> {
        self.forward_with(x, &Pass::default())
    }

    /// The gradient with respect to the input rows of a [`Self::forward`] pass, given the
    /// gradient `d_hidden` with respect to the final hidden states ([`Trace::hidden`]).
    pub fn backward(&self, trace: &Trace, d_hidden: &[f32]) -> Vec<f32> {
        self.backward_with(trace, &Pass::default(), d_hidden, None)
            .inputs
    }

    /// Runs the model over input rows `x` (`rows × hidden`) as `pass` says.
    pub fn forward_with(&self, mut x: Vec<f32>, pass: &Pass) -> Result<Trace> {
        let c = self.config();
        let d = c.hidden;
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(Error::InvalidInput(format!(
                "the input must be one or more rows of {d} values"
            )));
        }
        let rows = x.len() / d;
        if pass.start + rows > self.model.rope().positions() {
            return Err(Error::InvalidInput(format!(
                "{} positions exceed the model's context of {} tokens",
                pass.start + rows,
                self.model.rope().positions()
            )));
        }
        if let Some(lora) = &pass.lora {
            assert_eq!(lora.factors.len(), c.layers, "one LoRA per layer");
        }
        let threads = rayon::current_num_threads();
        let (q_width, kv_width) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let shape = self.shape(rows, pass.prefix_len());
        let mut normed = vec![0f32; rows * d];
        let mut attention = vec![0f32; rows * q_width];
        let mut projected = vec![0f32; rows * d];
        let mut activation = vec![0f32; rows * c.ffn];
        let mut layers = Vec::with_capacity(c.layers);
        for (i, layer) in self.model.layers().iter().enumerate() {
            let input = x.clone();
            kernels::rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut normed);
            let mut q = vec![0f32; rows * q_width];
            let mut k = vec![0f32; rows * kv_width];
            let mut v = vec![0f32; rows * kv_width];
            layer.q.forward(&normed, rows, &mut q, threads);
            layer.k.forward(&normed, rows, &mut k, threads);
            layer.v.forward(&normed, rows, &mut v, threads);
            let (q_low, v_low) = match &pass.lora {
                Some(lora) => {
                    let [qa, qb, va, vb] = &lora.factors[i];
                    (
                        lora_forward(&normed, rows, qa, qb, lora, &mut q),
                        lora_forward(&normed, rows, va, vb, lora, &mut v),
                    )
                }
                None => (Vec::new(), Vec::new()),
            };
            self.model
                .rope()
                .apply(&mut q, q_width, c.head_dim, pass.start);
            self.model
                .rope()
                .apply(&mut k, kv_width, c.head_dim, pass.start);
            let (k, v) = match pass.prefix {
                Some(prefix) => (
                    [&prefix.keys[i][..], &k].concat(),
                    [&prefix.values[i][..], &v].concat(),
                ),
                None => (k, v),
            };
            let probs = attention_forward(&q, &k, &v, shape, &mut attention);
            layer
                .output
                .forward(&attention, rows, &mut projected, threads);
            kernels::add_assign(&mut x, &projected);
            let mid = x.clone();

            kernels::rms_norm(&x, &layer.ffn_norm, c.rms_eps, &mut normed);
            let mut gate = vec![0f32; rows * c.ffn];
            let mut up = vec![0f32; rows * c.ffn];
            layer.gate.forward(&normed, rows, &mut gate, threads);
            layer.up.forward(&normed, rows, &mut up, threads);
            activation.copy_from_slice(&gate);
            kernels::silu_mul(&mut activation, &up);
            layer
                .down
                .forward(&activation, rows, &mut projected, threads);
            kernels::add_assign(&mut x, &projected);
            layers.push(LayerTrace {
                input,
                q,
                k,
                v,
                probs,
                mid,
                gate,
                up,
                q_low,
                v_low,
            });
        }
        let mut hidden = vec![0f32; rows * d];
        kernels::rms_norm(&x, self.model.output_norm(), c.rms_eps, &mut hidden);
        Ok(Trace {
            rows,
            prefix: pass.prefix_len(),
            layers,
            last: x,
            hidden,
        })
    }

    /// Gradients of a [`Self::forward_with`] pass (made with the same `pass`), given the
    /// gradient `d_hidden` with respect to the final hidden states and, optionally, gradients
    /// `d_own` with respect to every layer's keys (after rope) and values of the pass's last
    /// `d_own.len` rows.
    pub fn backward_with(
        &self,
        trace: &Trace,
        pass: &Pass,
        d_hidden: &[f32],
        d_own: Option<&KeyValues>,
    ) -> Gradients {
        let c = self.config();
        let (rows, d) = (trace.rows, c.hidden);
        assert_eq!(d_hidden.len(), rows * d);
        assert_eq!(
            trace.prefix,
            pass.prefix_len(),
            "backward with the forward's pass"
        );
        let prefix = trace.prefix;
        let threads = rayon::current_num_threads();
        let (q_width, kv_width) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let shape = self.shape(rows, prefix);
        let mut dx = vec![0f32; rows * d];
        rms_norm_backward(
            &trace.last,
            self.model.output_norm(),
            c.rms_eps,
            d_hidden,
            &mut dx,
        );
        let mut d_normed = vec![0f32; rows * d];
        let mut d_part = vec![0f32; rows * d];
        let mut normed = vec![0f32; rows * d];
        let mut d_activation = vec![0f32; rows * c.ffn];
        let mut d_attention = vec![0f32; rows * q_width];
        let mut d_lora = Vec::new();
        let mut d_prefix = pass
            .prefix
            .map(|_| KeyValues::zeros(c.layers, prefix, kv_width));
        for (i, (layer, t)) in self
            .model
            .layers()
            .iter()
            .zip(&trace.layers)
            .enumerate()
            .rev()
        {
            // MLP: x_out = mid + down(silu(gate) * up), gate/up = W · rms_norm(mid).
            layer.down.backward(&dx, rows, &mut d_activation, threads);
            let mut d_gate = vec![0f32; rows * c.ffn];
            let mut d_up = vec![0f32; rows * c.ffn];
            for i in 0..rows * c.ffn {
                let (g, u, da) = (t.gate[i], t.up[i], d_activation[i]);
                let sigmoid = 1.0 / (1.0 + (-g).exp());
                d_up[i] = da * g * sigmoid;
                d_gate[i] = da * u * sigmoid * (1.0 + g * (1.0 - sigmoid));
            }
            layer.gate.backward(&d_gate, rows, &mut d_normed, threads);
            layer.up.backward(&d_up, rows, &mut d_part, threads);
            kernels::add_assign(&mut d_normed, &d_part);
            rms_norm_backward(&t.mid, &layer.ffn_norm, c.rms_eps, &d_normed, &mut dx);

            // Attention: mid = input + output(attention(rope(q), rope(k), v)).
            layer.output.backward(&dx, rows, &mut d_attention, threads);
            let (mut dq, dk_all, dv_all) = attention_backward(t, &d_attention, shape);
            let (dk_prefix, dk) = dk_all.split_at(prefix * kv_width);
            let (dv_prefix, dv) = dv_all.split_at(prefix * kv_width);
            let (mut dk, mut dv) = (dk.to_vec(), dv.to_vec());
            if let Some(d_prefix) = &mut d_prefix {
                d_prefix.keys[i].copy_from_slice(dk_prefix);
                d_prefix.values[i].copy_from_slice(dv_prefix);
            }
            if let Some(own) = d_own {
                let from = (rows - own.len) * kv_width;
                kernels::add_assign(&mut dk[from..], &own.keys[i]);
                kernels::add_assign(&mut dv[from..], &own.values[i]);
            }
            self.model
                .rope()
                .apply_inverse(&mut dq, q_width, c.head_dim, pass.start);
            self.model
                .rope()
                .apply_inverse(&mut dk, kv_width, c.head_dim, pass.start);
            layer.q.weight.backward(&dq, rows, &mut d_normed, threads);
            layer.k.weight.backward(&dk, rows, &mut d_part, threads);
            kernels::add_assign(&mut d_normed, &d_part);
            layer.v.weight.backward(&dv, rows, &mut d_part, threads);
            kernels::add_assign(&mut d_normed, &d_part);
            if let Some(lora) = &pass.lora {
                kernels::rms_norm(&t.input, &layer.attn_norm, c.rms_eps, &mut normed);
                let [qa, qb, va, vb] = &lora.factors[i];
                let (d_qa, d_qb) =
                    lora_backward(&normed, &t.q_low, &dq, qa, qb, lora, &mut d_normed);
                let (d_va, d_vb) =
                    lora_backward(&normed, &t.v_low, &dv, va, vb, lora, &mut d_normed);
                d_lora.push([d_qa, d_qb, d_va, d_vb]);
            }
            rms_norm_backward(&t.input, &layer.attn_norm, c.rms_eps, &d_normed, &mut dx);
        }
        d_lora.reverse();
        Gradients {
            inputs: dx,
            lora: d_lora,
            prefix: d_prefix,
        }
    }

    fn shape(&self, rows: usize, past: usize) -> AttentionShape {
        let c = self.config();
        AttentionShape {
            queries: rows,
            past,
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.head_dim,
        }
    }
}

/// `out += s · (h·Aᵀ)·Bᵀ` for `rows` rows of `h`; returns `h·Aᵀ` (`rows × rank`) for the
/// backward pass.
fn lora_forward(
    h: &[f32],
    rows: usize,
    a: &[f32],
    b: &[f32],
    lora: &Lora,
    out: &mut [f32],
) -> Vec<f32> {
    let (r, d) = (lora.rank, a.len() / lora.rank);
    let width = b.len() / r;
    let mut low = vec![0f32; rows * r];
    // SAFETY: h is rows × d, A r × d, B width × r, low rows × r and out rows × width.
    unsafe {
        matmul(
            rows,
            r,
            d,
            low.as_mut_ptr(),
            r,
            false,
            strided(h.as_ptr(), d, 1),
            strided(a.as_ptr(), 1, d),
            1.0,
            1,
        );
        matmul(
            rows,
            width,
            r,
            out.as_mut_ptr(),
            width,
            true,
            strided(low.as_ptr(), r, 1),
            strided(b.as_ptr(), 1, r),
            lora.scale,
            1,
        );
    }
    low
}

/// The backward pass of [`lora_forward`] given `d_out` (`rows × width`): returns the gradients
/// of A and B, and adds the gradient with respect to `h` to `d_h`.
fn lora_backward(
    h: &[f32],
    low: &[f32],
    d_out: &[f32],
    a: &[f32],
    b: &[f32],
    lora: &Lora,
    d_h: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let (r, d) = (lora.rank, a.len() / lora.rank);
    let width = b.len() / r;
    let rows = h.len() / d;
    let (mut d_a, mut d_b, mut d_low) = (
        vec![0f32; r * d],
        vec![0f32; width * r],
        vec![0f32; rows * r],
    );
    // SAFETY: shapes as in lora_forward; d_out is rows × width.
    unsafe {
        // dB = s · d_outᵀ · low; d_low = s · d_out · B; dA = d_lowᵀ · h; d_h += d_low · A.
        matmul(
            width,
            r,
            rows,
            d_b.as_mut_ptr(),
            r,
            false,
            strided(d_out.as_ptr(), 1, width),
            strided(low.as_ptr(), r, 1),
            lora.scale,
            1,
        );
        matmul(
            rows,
            r,
            width,
            d_low.as_mut_ptr(),
            r,
            false,
            strided(d_out.as_ptr(), width, 1),
            strided(b.as_ptr(), r, 1),
            lora.scale,
            1,
        );
        matmul(
            r,
            d,
            rows,
            d_a.as_mut_ptr(),
            d,
            false,
            strided(d_low.as_ptr(), 1, r),
            strided(h.as_ptr(), d, 1),
            1.0,
            1,
        );
        matmul(
            rows,
            d,
            r,
            d_h.as_mut_ptr(),
            d,
            true,
            strided(d_low.as_ptr(), r, 1),
            strided(a.as_ptr(), d, 1),
            1.0,
            1,
        );
    }
    (d_a, d_b)
}

/// `dx += ∂ rms_norm(x)·w / ∂x applied to dy`, row by row: with `r = 1/√(mean(x²)+ε)` and
/// `g = w ∘ dy`, `dx = r·g − x·r³·(g·x)/d`.
fn rms_norm_backward(x: &[f32], weight: &[f32], eps: f32, dy: &[f32], dx: &mut [f32]) {
    let d = weight.len();
    for ((x, dy), dx) in x
        .chunks_exact(d)
        .zip(dy.chunks_exact(d))
        .zip(dx.chunks_exact_mut(d))
    {
        let mean_square = x.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let r = 1.0 / (mean_square + eps).sqrt();
        let dot: f32 = x
            .iter()
            .zip(dy)
            .zip(weight)
            .map(|((x, dy), w)| x * dy * w)
            .sum();
        let coefficient = r * r * r * dot / d as f32;
        for (((dx, &x), &dy), &w) in dx.iter_mut().zip(x).zip(dy).zip(weight) {
            *dx += r * w * dy - x * coefficient;
        }
    }
}

fn strided(ptr: *const f32, row_stride: usize, col_stride: usize) -> View {
    View {
        ptr,
        row_stride: row_stride as isize,
        col_stride: col_stride as isize,
    }
}

/// Causal attention of `rows` queries over `past` prefix keys and then their own (no cache),
/// writing `out` and returning the probabilities (`heads × rows × (past + rows)`). Same result
/// as [`kernels::causal_attention`], whose blocked layout keeps no probabilities.
fn attention_forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttentionShape,
    out: &mut [f32],
) -> Vec<f32> {
    let (rows, heads, hd) = (shape.queries, shape.heads, shape.head_dim);
    let keys = shape.past + rows;
    let (q_stride, kv_stride) = (heads * hd, shape.kv_heads * hd);
    let group = heads / shape.kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut probs = vec![0f32; heads * rows * keys];
    let mut per_head = vec![0f32; heads * rows * hd];
    probs
        .par_chunks_mut(rows * keys)
        .zip(per_head.par_chunks_mut(rows * hd))
        .enumerate()
        .for_each(|(head, (p, o))| {
            let kv = (head / group) * hd;
            // SAFETY: every view stays inside q, k, v, p and o for these shapes.
            unsafe {
                matmul(
                    rows,
                    keys,
                    hd,
                    p.as_mut_ptr(),
                    keys,
                    false,
                    strided(q.as_ptr().add(head * hd), q_stride, 1),
                    strided(k.as_ptr().add(kv), 1, kv_stride),
                    scale,
                    1,
                );
            }
            for (r, row) in p.chunks_exact_mut(keys).enumerate() {
                kernels::causal_softmax(row, shape.past + r + 1);
            }
            unsafe {
                matmul(
                    rows,
                    hd,
                    keys,
                    o.as_mut_ptr(),
                    hd,
                    false,
                    strided(p.as_ptr(), keys, 1),
                    strided(v.as_ptr().add(kv), kv_stride, 1),
                    1.0,
                    1,
                );
            }
        });
    for (head, o) in per_head.chunks_exact(rows * hd).enumerate() {
        for (r, o_row) in o.chunks_exact(hd).enumerate() {
            out[r * q_stride + head * hd..][..hd].copy_from_slice(o_row);
        }
    }
    probs
}

/// Gradients of the attention output `d_out` (`rows × heads·head_dim`) with respect to the
/// rotated queries (`rows` rows), and the rotated keys and values (`past + rows` rows, the
/// prefix's first). Per head h reading kv head g:
/// `dP = dO·Vᵀ`, `dS = P ∘ (dP − rowsum(dP ∘ P))`, `dQ = dS·K·s`, `dK += dSᵀ·Q·s`, `dV += Pᵀ·dO`.
fn attention_backward(
    t: &LayerTrace,
    d_out: &[f32],
    shape: AttentionShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (rows, heads, hd) = (shape.queries, shape.heads, shape.head_dim);
    let keys = shape.past + rows;
    let (q_stride, kv_stride) = (heads * hd, shape.kv_heads * hd);
    let group = heads / shape.kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    // Per head: dQ (rows × hd), dK and dV (keys × hd); heads sharing a kv head are summed
    // afterwards.
    let per_head: Vec<[Vec<f32>; 3]> = (0..heads)
        .into_par_iter()
        .map(|head| {
            let kv = (head / group) * hd;
            let p = &t.probs[head * rows * keys..][..rows * keys];
            let d_o = strided(d_out[head * hd..].as_ptr(), q_stride, 1);
            let mut ds = vec![0f32; rows * keys];
            let (mut dq, mut dk, mut dv) = (
                vec![0f32; rows * hd],
                vec![0f32; keys * hd],
                vec![0f32; keys * hd],
            );
            // SAFETY: every view stays inside the trace's buffers, d_out and the new buffers.
            unsafe {
                matmul(
                    rows,
                    keys,
                    hd,
                    ds.as_mut_ptr(),
                    keys,
                    false,
                    d_o,
                    strided(t.v.as_ptr().add(kv), 1, kv_stride),
                    1.0,
                    1,
                );
                matmul(
                    keys,
                    hd,
                    rows,
                    dv.as_mut_ptr(),
                    hd,
                    false,
                    strided(p.as_ptr(), 1, keys),
                    d_o,
                    1.0,
                    1,
                );
            }
            for (dp_row, p_row) in ds.chunks_exact_mut(keys).zip(p.chunks_exact(keys)) {
                let dot: f32 = dp_row.iter().zip(p_row).map(|(a, b)| a * b).sum();
                for (g, &p) in dp_row.iter_mut().zip(p_row) {
                    *g = p * (*g - dot);
                }
            }
            unsafe {
                matmul(
                    rows,
                    hd,
                    keys,
                    dq.as_mut_ptr(),
                    hd,
                    false,
                    strided(ds.as_ptr(), keys, 1),
                    strided(t.k.as_ptr().add(kv), kv_stride, 1),
                    scale,
                    1,
                );
                matmul(
                    keys,
                    hd,
                    rows,
                    dk.as_mut_ptr(),
                    hd,
                    false,
                    strided(ds.as_ptr(), 1, keys),
                    strided(t.q.as_ptr().add(head * hd), q_stride, 1),
                    scale,
                    1,
                );
            }
            [dq, dk, dv]
        })
        .collect();
    let mut dq = vec![0f32; rows * q_stride];
    let mut dk = vec![0f32; keys * kv_stride];
    let mut dv = vec![0f32; keys * kv_stride];
    for (head, [hq, hk, hv]) in per_head.iter().enumerate() {
        let kv = (head / group) * hd;
        for (r, row) in hq.chunks_exact(hd).enumerate() {
            dq[r * q_stride + head * hd..][..hd].copy_from_slice(row);
        }
        for (r, (rk, rv)) in hk.chunks_exact(hd).zip(hv.chunks_exact(hd)).enumerate() {
            kernels::add_assign(&mut dk[r * kv_stride + kv..][..hd], rk);
            kernels::add_assign(&mut dv[r * kv_stride + kv..][..hd], rv);
        }
    }
    (dq, dk, dv)
}
