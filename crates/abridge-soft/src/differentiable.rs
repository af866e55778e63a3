//! A differentiable f32 forward pass of abridge-models' llama / qwen2 model over input vectors,
//! and its hand-written backward pass to those vectors (every weight stays frozen).
//!
//! The forward pass is the runtime's own ([`CausalLm::forward`]) restated over a whole sequence
//! without a KV cache, keeping what the backward pass needs: each layer's input, the rotated
//! queries and keys, the values, the attention probabilities, the residual stream between
//! attention and MLP, and the MLP's gate and up projections. Input row `i` sits at rotary
//! position `i`, exactly as if every row were a token's embedding; soft vectors are read after
//! the document-start token (positions 1..=k, see [`crate::prefix`]).
//!
//! Every matrix product, forward and backward, goes through [`kernels::matmul`] (weights are
//! read in place, transposed or not, through strided views).

use abridge_models::kernels::{self, matmul, AttentionShape, View};
use abridge_models::llama::{CausalLm, Config};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// What the forward pass keeps of one layer for the backward pass.
struct LayerTrace {
    /// The residual stream entering the layer.
    input: Vec<f32>,
    /// Queries and keys after the rotary embedding, and values.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Causal attention probabilities, `heads × rows × rows` (zero above the diagonal).
    probs: Vec<f32>,
    /// The residual stream between attention and MLP.
    mid: Vec<f32>,
    /// The MLP's gate and up projections, before the SwiGLU.
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// A forward pass over `rows` input vectors, with what its backward pass needs.
pub struct Trace {
    pub rows: usize,
    layers: Vec<LayerTrace>,
    /// The residual stream after the last layer (the output norm's input).
    last: Vec<f32>,
    /// Final hidden states (after the output norm), `rows × hidden`: the LM head's input.
    pub hidden: Vec<f32>,
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

    /// Runs the model over input rows `x` (`rows × hidden`, row `i` at position `i`).
    pub fn forward(&self, mut x: Vec<f32>) -> Result<Trace> {
        let c = self.config();
        let d = c.hidden;
        if x.is_empty() || x.len() % d != 0 {
            return Err(Error::InvalidInput(format!(
                "the input must be one or more rows of {d} values"
            )));
        }
        let rows = x.len() / d;
        if rows > self.model.rope().positions() {
            return Err(Error::InvalidInput(format!(
                "{rows} positions exceed the model's context of {} tokens",
                self.model.rope().positions()
            )));
        }
        let threads = rayon::current_num_threads();
        let (q_width, kv_width) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let shape = self.shape(rows);
        let mut normed = vec![0f32; rows * d];
        let mut attention = vec![0f32; rows * q_width];
        let mut projected = vec![0f32; rows * d];
        let mut activation = vec![0f32; rows * c.ffn];
        let mut layers = Vec::with_capacity(c.layers);
        for layer in self.model.layers() {
            let input = x.clone();
            kernels::rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut normed);
            let mut q = vec![0f32; rows * q_width];
            let mut k = vec![0f32; rows * kv_width];
            let mut v = vec![0f32; rows * kv_width];
            layer.q.forward(&normed, rows, &mut q, threads);
            layer.k.forward(&normed, rows, &mut k, threads);
            layer.v.forward(&normed, rows, &mut v, threads);
            self.model.rope().apply(&mut q, q_width, c.head_dim, 0);
            self.model.rope().apply(&mut k, kv_width, c.head_dim, 0);
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
            });
        }
        let mut hidden = vec![0f32; rows * d];
        kernels::rms_norm(&x, self.model.output_norm(), c.rms_eps, &mut hidden);
        Ok(Trace {
            rows,
            layers,
            last: x,
            hidden,
        })
    }

    /// The gradient with respect to the input rows, given the gradient `d_hidden` with respect
    /// to the final hidden states ([`Trace::hidden`]).
    pub fn backward(&self, trace: &Trace, d_hidden: &[f32]) -> Vec<f32> {
        let c = self.config();
        let (rows, d) = (trace.rows, c.hidden);
        assert_eq!(d_hidden.len(), rows * d);
        let threads = rayon::current_num_threads();
        let (q_width, kv_width) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let shape = self.shape(rows);
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
        let mut d_activation = vec![0f32; rows * c.ffn];
        let mut d_attention = vec![0f32; rows * q_width];
        for (layer, t) in self.model.layers().iter().zip(&trace.layers).rev() {
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
            let (mut dq, mut dk, dv) = attention_backward(t, &d_attention, shape);
            self.model
                .rope()
                .apply_inverse(&mut dq, q_width, c.head_dim, 0);
            self.model
                .rope()
                .apply_inverse(&mut dk, kv_width, c.head_dim, 0);
            layer.q.weight.backward(&dq, rows, &mut d_normed, threads);
            layer.k.weight.backward(&dk, rows, &mut d_part, threads);
            kernels::add_assign(&mut d_normed, &d_part);
            layer.v.weight.backward(&dv, rows, &mut d_part, threads);
            kernels::add_assign(&mut d_normed, &d_part);
            rms_norm_backward(&t.input, &layer.attn_norm, c.rms_eps, &d_normed, &mut dx);
        }
        dx
    }

    fn shape(&self, rows: usize) -> AttentionShape {
        let c = self.config();
        AttentionShape {
            queries: rows,
            past: 0,
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.head_dim,
        }
    }
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

/// Causal attention over a whole sequence (no cache), writing `out` and returning the
/// probabilities (`heads × rows × rows`). Same result as [`kernels::causal_attention`], whose
/// blocked layout keeps no probabilities.
fn attention_forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttentionShape,
    out: &mut [f32],
) -> Vec<f32> {
    let (rows, heads, hd) = (shape.queries, shape.heads, shape.head_dim);
    let (q_stride, kv_stride) = (heads * hd, shape.kv_heads * hd);
    let group = heads / shape.kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut probs = vec![0f32; heads * rows * rows];
    let mut per_head = vec![0f32; heads * rows * hd];
    probs
        .par_chunks_mut(rows * rows)
        .zip(per_head.par_chunks_mut(rows * hd))
        .enumerate()
        .for_each(|(head, (p, o))| {
            let kv = (head / group) * hd;
            // SAFETY: every view stays inside q, k, v, p and o for these shapes.
            unsafe {
                matmul(
                    rows,
                    rows,
                    hd,
                    p.as_mut_ptr(),
                    rows,
                    false,
                    strided(q.as_ptr().add(head * hd), q_stride, 1),
                    strided(k.as_ptr().add(kv), 1, kv_stride),
                    scale,
                    1,
                );
            }
            for (r, row) in p.chunks_exact_mut(rows).enumerate() {
                kernels::causal_softmax(row, r + 1);
            }
            unsafe {
                matmul(
                    rows,
                    hd,
                    rows,
                    o.as_mut_ptr(),
                    hd,
                    false,
                    strided(p.as_ptr(), rows, 1),
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
/// rotated queries, rotated keys and values. Per head h reading kv head g:
/// `dP = dO·Vᵀ`, `dS = P ∘ (dP − rowsum(dP ∘ P))`, `dQ = dS·K·s`, `dK += dSᵀ·Q·s`, `dV += Pᵀ·dO`.
fn attention_backward(
    t: &LayerTrace,
    d_out: &[f32],
    shape: AttentionShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (rows, heads, hd) = (shape.queries, shape.heads, shape.head_dim);
    let (q_stride, kv_stride) = (heads * hd, shape.kv_heads * hd);
    let group = heads / shape.kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    // Per head: dQ, dK, dV (each rows × hd); heads sharing a kv head are summed afterwards.
    let per_head: Vec<[Vec<f32>; 3]> = (0..heads)
        .into_par_iter()
        .map(|head| {
            let kv = (head / group) * hd;
            let p = &t.probs[head * rows * rows..][..rows * rows];
            let d_o = strided(d_out[head * hd..].as_ptr(), q_stride, 1);
            let mut ds = vec![0f32; rows * rows];
            let (mut dq, mut dk, mut dv) = (
                vec![0f32; rows * hd],
                vec![0f32; rows * hd],
                vec![0f32; rows * hd],
            );
            // SAFETY: every view stays inside the trace's buffers, d_out and the new buffers.
            unsafe {
                matmul(
                    rows,
                    rows,
                    hd,
                    ds.as_mut_ptr(),
                    rows,
                    false,
                    d_o,
                    strided(t.v.as_ptr().add(kv), 1, kv_stride),
                    1.0,
                    1,
                );
                matmul(
                    rows,
                    hd,
                    rows,
                    dv.as_mut_ptr(),
                    hd,
                    false,
                    strided(p.as_ptr(), 1, rows),
                    d_o,
                    1.0,
                    1,
                );
            }
            for (dp_row, p_row) in ds.chunks_exact_mut(rows).zip(p.chunks_exact(rows)) {
                let dot: f32 = dp_row.iter().zip(p_row).map(|(a, b)| a * b).sum();
                for (g, &p) in dp_row.iter_mut().zip(p_row) {
                    *g = p * (*g - dot);
                }
            }
            unsafe {
                matmul(
                    rows,
                    hd,
                    rows,
                    dq.as_mut_ptr(),
                    hd,
                    false,
                    strided(ds.as_ptr(), rows, 1),
                    strided(t.k.as_ptr().add(kv), kv_stride, 1),
                    scale,
                    1,
                );
                matmul(
                    rows,
                    hd,
                    rows,
                    dk.as_mut_ptr(),
                    hd,
                    false,
                    strided(ds.as_ptr(), 1, rows),
                    strided(t.q.as_ptr().add(head * hd), q_stride, 1),
                    scale,
                    1,
                );
            }
            [dq, dk, dv]
        })
        .collect();
    let mut dq = vec![0f32; rows * q_stride];
    let mut dk = vec![0f32; rows * kv_stride];
    let mut dv = vec![0f32; rows * kv_stride];
    for (head, [hq, hk, hv]) in per_head.iter().enumerate() {
        let kv = (head / group) * hd;
        for r in 0..rows {
            let at = r * hd..(r + 1) * hd;
            dq[r * q_stride + head * hd..][..hd].copy_from_slice(&hq[at.clone()]);
            kernels::add_assign(&mut dk[r * kv_stride + kv..][..hd], &hk[at.clone()]);
            kernels::add_assign(&mut dv[r * kv_stride + kv..][..hd], &hv[at]);
        }
    }
    (dq, dk, dv)
}
