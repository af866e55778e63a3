//! The forward pass's numeric kernels on plain f32 slices.
//!
//! Each is a free function over row-major buffers so a faster implementation (SIMD, fused,
//! int8) can replace one without touching the model code.

use gemm::Parallelism;
use rayon::prelude::*;

mod int8;
mod vector;

pub use int8::{Activations, Int8Matrix};
pub use vector::{force_portable, silu_mul};

/// A row-major matrix view: element (r, c) is at `r * row_stride + c * col_stride`.
#[derive(Clone, Copy)]
pub struct View {
    pub ptr: *const f32,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]` for strided views (`dst` row-major with `dst_stride`).
///
/// # Safety
/// Every view must address valid memory for the given shape, and `dst` must not alias the inputs.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
    lhs: View,
    rhs: View,
    scale: f32,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let parallelism = if threads > 1 && m * n * k >= 1 << 18 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_stride as isize,
        accumulate,
        lhs.ptr,
        lhs.col_stride,
        lhs.row_stride,
        rhs.ptr,
        rhs.col_stride,
        rhs.row_stride,
        1.0,
        scale,
        false,
        false,
        false,
        parallelism,
    );
}

/// Root-mean-square normalisation of each `weight.len()`-wide row of `x` into `out`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    for (row, out) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean_square = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (mean_square + eps).sqrt();
        for ((o, &v), &w) in out.iter_mut().zip(row).zip(weight) {
            *o = v * inv * w;
        }
    }
}

/// How rotary embeddings pair the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs (2i, 2i+1): GGUF llama files (the converter permuted q/k for it).
    Interleaved,
    /// Pairs (i, i + dim/2): qwen2 and other "NeoX" models.
    HalfSplit,
}

/// Precomputed cos/sin of rotary embeddings for every position of the context.
pub struct Rope {
    style: RopeStyle,
    /// Rotated dimensions per head (may be fewer than the head size).
    dims: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    pub fn new(style: RopeStyle, dims: usize, base: f32, positions: usize) -> Self {
        let half = dims / 2;
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for pos in 0..positions {
            for i in 0..half {
                let freq = (base as f64).powf(-2.0 * i as f64 / dims as f64);
                let angle = pos as f64 * freq;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Self {
            style,
            dims,
            cos,
            sin,
        }
    }

    pub fn positions(&self) -> usize {
        self.cos.len() / (self.dims / 2).max(1)
    }

    /// Rotates every head (`head_dim` wide) of each row of `x`; row `r` is at position `start + r`.
    pub fn apply(&self, x: &mut [f32], row_width: usize, head_dim: usize, start: usize) {
        self.rotate::<false>(x, row_width, head_dim, start);
    }

    /// The inverse (= transposed) rotation of [`Self::apply`]: carries a gradient back through it.
    pub fn apply_inverse(&self, x: &mut [f32], row_width: usize, head_dim: usize, start: usize) {
        self.rotate::<true>(x, row_width, head_dim, start);
    }

    fn rotate<const INVERSE: bool>(
        &self,
        x: &mut [f32],
        row_width: usize,
        head_dim: usize,
        start: usize,
    ) {
        let half = self.dims / 2;
        for (r, row) in x.chunks_exact_mut(row_width).enumerate() {
            let at = (start + r) * half;
            let (cos, sin) = (&self.cos[at..at + half], &self.sin[at..at + half]);
            for head in row.chunks_exact_mut(head_dim) {
                for i in 0..half {
                    let (a, b) = match self.style {
                        RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                        RopeStyle::HalfSplit => (i, i + half),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    let sin = if INVERSE { -sin[i] } else { sin[i] };
                    head[a] = x0 * cos[i] - x1 * sin;
                    head[b] = x0 * sin + x1 * cos[i];
                }
            }
        }
    }
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `ln Σ exp(logits)`, shifted by the maximum so nothing overflows: the one log-partition every
/// model file and loss uses (`-inf` for an empty slice).
pub fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = vector::max(logits);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + vector::sum_exp(logits, max).ln()
}

/// `ln softmax(logits)[target]`, without materialising the probabilities.
pub fn target_log_prob(logits: &[f32], target: usize) -> f32 {
    logits[target] - log_sum_exp(logits)
}

/// Softmax of `row` in place.
pub fn softmax(row: &mut [f32]) {
    causal_softmax(row, row.len());
}

/// Softmax of the first `visible` scores of `row` in place; the rest (future keys) become 0.
pub fn causal_softmax(row: &mut [f32], visible: usize) {
    let (seen, unseen) = row.split_at_mut(visible);
    let max = vector::max(seen);
    let inverse_sum = 1.0 / vector::exp_in_place(seen, max);
    seen.iter_mut().for_each(|s| *s *= inverse_sum);
    unseen.fill(0.0);
}

/// Query rows per attention task.
const ATTENTION_BLOCK: usize = 64;

/// Keys per step of the online softmax: a `ATTENTION_BLOCK × KEY_TILE` tile of scores is 256 KiB,
/// in L2; larger tiles would spill, smaller ones pay gemm's per-call cost more often.
const KEY_TILE: usize = 1024;

/// Shapes of one causal attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// New query rows.
    pub queries: usize,
    /// Cached positions before the first query.
    pub past: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

thread_local! {
    /// Each worker's attention-score tile, reused: allocating it per task cost a fresh,
    /// kernel-zeroed mapping thousands of times per forward pass.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The caller's keys, transposed per KV head (`kv_heads × head_dim × keys`).
    static KEYS_TRANSPOSED: std::cell::RefCell<Vec<f32>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An output buffer that parallel tasks write disjoint parts of.
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Through a method, so closures capture the wrapper rather than its raw pointer field.
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// Causal grouped-query attention of `q` (`queries × heads·head_dim`) over the cached `k`/`v`
/// (`past + queries` rows of `kv_heads·head_dim`), written to `out` (same shape as `q`).
///
/// Heads and blocks of query rows run in parallel; each block only reads the keys it can see.
pub fn causal_attention(q: &[f32], k: &[f32], v: &[f32], shape: AttentionShape, out: &mut [f32]) {
    let AttentionShape {
        queries,
        past,
        heads,
        kv_heads,
        head_dim,
    } = shape;
    let q_stride = heads * head_dim;
    let kv_stride = kv_heads * head_dim;
    assert_eq!(q.len(), queries * q_stride);
    assert_eq!(out.len(), queries * q_stride);
    assert!(k.len() >= (past + queries) * kv_stride && v.len() >= (past + queries) * kv_stride);
    let group = heads / kv_heads;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let blocks = queries.div_ceil(ATTENTION_BLOCK);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let total_keys = past + queries;
    // Padded so the rows of a transposed head are not a power-of-two apart (cache-set conflicts).
    let transposed_stride = total_keys.next_multiple_of(16) + 16;
    KEYS_TRANSPOSED.with_borrow_mut(|keys_transposed| {
        // gemm packs a transposed operand with scalar gathers; every query block would repack the
        // keys that way. Transposing them once here lets each block's packing use vector copies.
        keys_transposed.clear();
        keys_transposed.resize(kv_heads * head_dim * transposed_stride, 0.0);
        keys_transposed
            .par_chunks_exact_mut(head_dim * transposed_stride)
            .enumerate()
            .for_each(|(kv_head, transposed)| {
                for (j, key) in k[..total_keys * kv_stride]
                    .chunks_exact(kv_stride)
                    .enumerate()
                {
                    for (d, &value) in key[kv_head * head_dim..][..head_dim].iter().enumerate() {
                        transposed[d * transposed_stride + j] = value;
                    }
                }
            });
        let keys_transposed = &*keys_transposed;

        (0..heads * blocks).into_par_iter().for_each(|task| {
            let (head, block) = (task / blocks, task % blocks);
            let kv_head = head / group;
            let first = block * ATTENTION_BLOCK;
            let rows = ATTENTION_BLOCK.min(queries - first);
            let keys = past + first + rows;
            let tile_keys = KEY_TILE.min(keys);
            // Online softmax over tiles of keys (flash attention): each row's running max and
            // sum; the output rows are rescaled when the max grows, and divided by the sum at the
            // end. A tile of scores stays in cache where a whole row (up to 8k keys) did not.
            let mut row_max = [f32::NEG_INFINITY; ATTENTION_BLOCK];
            let mut row_sum = [0f32; ATTENTION_BLOCK];
            // SAFETY: each task writes only its own (rows, head) tile of `out`.
            let out_tile = unsafe { out_ptr.get().add(first * q_stride + head * head_dim) };
            SCORES.with_borrow_mut(|scores| {
                scores.clear();
                scores.resize(rows * tile_keys, 0.0);
                for tile_start in (0..keys).step_by(KEY_TILE) {
                    let tile = KEY_TILE.min(keys - tile_start);
                    let scores = &mut scores[..rows * tile];
                    // SAFETY: the views stay inside q and the transposed keys (asserted above).
                    unsafe {
                        matmul(
                            rows,
                            tile,
                            head_dim,
                            scores.as_mut_ptr(),
                            tile,
                            false,
                            View {
                                ptr: q.as_ptr().add(first * q_stride + head * head_dim),
                                row_stride: q_stride as isize,
                                col_stride: 1,
                            },
                            View {
                                ptr: keys_transposed
                                    .as_ptr()
                                    .add(kv_head * head_dim * transposed_stride + tile_start),
                                row_stride: transposed_stride as isize,
                                col_stride: 1,
                            },
                            scale,
                            1,
                        );
                    }
                    for (r, row) in scores.chunks_exact_mut(tile).enumerate() {
                        let visible = (past + first + r + 1).saturating_sub(tile_start).min(tile);
                        let (seen, unseen) = row.split_at_mut(visible);
                        unseen.fill(0.0);
                        if seen.is_empty() {
                            continue;
                        }
                        let max = vector::max(seen).max(row_max[r]);
                        let rescale = (row_max[r] - max).exp();
                        row_sum[r] = row_sum[r] * rescale + vector::exp_in_place(seen, max);
                        row_max[r] = max;
                        if tile_start > 0 && rescale != 1.0 {
                            // SAFETY: row r of this task's output tile.
                            let out_row = unsafe {
                                std::slice::from_raw_parts_mut(out_tile.add(r * q_stride), head_dim)
                            };
                            out_row.iter_mut().for_each(|o| *o *= rescale);
                        }
                    }
                    // SAFETY: V's rows tile_start..tile_start+tile exist (asserted above); the
                    // destination is this task's output tile.
                    unsafe {
                        matmul(
                            rows,
                            head_dim,
                            tile,
                            out_tile,
                            q_stride,
                            tile_start > 0,
                            View {
                                ptr: scores.as_ptr(),
                                row_stride: tile as isize,
                                col_stride: 1,
                            },
                            View {
                                ptr: v.as_ptr().add(tile_start * kv_stride + kv_head * head_dim),
                                row_stride: kv_stride as isize,
                                col_stride: 1,
                            },
                            1.0,
                            1,
                        );
                    }
                }
            });
            for (r, sum) in row_sum[..rows].iter().enumerate() {
                // SAFETY: row r of this task's output tile.
                let out_row =
                    unsafe { std::slice::from_raw_parts_mut(out_tile.add(r * q_stride), head_dim) };
                out_row.iter_mut().for_each(|o| *o /= sum);
            }
        });
    });
}

/// Adds to `mass` (`keys × kv_heads`, keys of the whole cache) the attention probabilities that
/// the query rows `rows` of `q` (as in [`causal_attention`]) give each key, summed over the rows
/// and over the query heads that share a KV head.
///
/// Only the KV-cache policies call it, after [`causal_attention`] has made the output: the fused
/// kernel keeps no probabilities, so they are recomputed here for the rows a policy asks about.
pub fn attention_mass(
    q: &[f32],
    k: &[f32],
    shape: AttentionShape,
    rows: std::ops::Range<usize>,
    mass: &mut [f32],
) {
    let AttentionShape {
        queries,
        past,
        heads,
        kv_heads,
        head_dim,
    } = shape;
    let (q_stride, kv_stride) = (heads * head_dim, kv_heads * head_dim);
    assert!(rows.end <= queries && q.len() == queries * q_stride);
    let keys = past + rows.end;
    assert!(k.len() >= keys * kv_stride && mass.len() >= keys * kv_heads);
    let group = heads / kv_heads;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let per_head: Vec<Vec<f32>> = (0..heads)
        .into_par_iter()
        .map(|head| {
            let kv_head = head / group;
            let mut sums = vec![0f32; keys];
            let mut scores = Vec::new();
            for first in rows.clone().step_by(ATTENTION_BLOCK) {
                let block = ATTENTION_BLOCK.min(rows.end - first);
                let visible = past + first + block;
                scores.clear();
                scores.resize(block * visible, 0.0);
                // SAFETY: the views stay inside q and the keys visible to the block (asserted).
                unsafe {
                    matmul(
                        block,
                        visible,
                        head_dim,
                        scores.as_mut_ptr(),
                        visible,
                        false,
                        View {
                            ptr: q.as_ptr().add(first * q_stride + head * head_dim),
                            row_stride: q_stride as isize,
                            col_stride: 1,
                        },
                        View {
                            ptr: k.as_ptr().add(kv_head * head_dim),
                            row_stride: 1,
                            col_stride: kv_stride as isize,
                        },
                        scale,
                        1,
                    );
                }
                for (r, row) in scores.chunks_exact_mut(visible).enumerate() {
                    causal_softmax(row, past + first + r + 1);
                    add_assign(&mut sums[..visible], row);
                }
            }
            sums
        })
        .collect();
    for (head, sums) in per_head.iter().enumerate() {
        let kv_head = head / group;
        for (key, p) in sums.iter().enumerate() {
            mass[key * kv_heads + kv_head] += p;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `x[m, cols] · Wᵀ` for a row-major `rows × cols` W, one dot product at a time.
    pub(crate) fn naive_linear(x: &[f32], values: &[f32], m: usize, rows: usize) -> Vec<f32> {
        let cols = values.len() / rows;
        (0..m * rows)
            .map(|i| {
                let (t, r) = (i / rows, i % rows);
                (0..cols)
                    .map(|c| x[t * cols + c] * values[r * cols + c])
                    .sum()
            })
            .collect()
    }

    /// The textbook definition, one query at a time.
    fn naive_attention(q: &[f32], k: &[f32], v: &[f32], s: AttentionShape) -> Vec<f32> {
        let (qs, kvs) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
        let mut out = vec![0f32; q.len()];
        for i in 0..s.queries {
            for h in 0..s.heads {
                let g = h / (s.heads / s.kv_heads);
                let qi = &q[i * qs + h * s.head_dim..][..s.head_dim];
                let keys = s.past + i + 1;
                let scores: Vec<f32> = (0..keys)
                    .map(|j| {
                        let kj = &k[j * kvs + g * s.head_dim..][..s.head_dim];
                        qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>()
                            / (s.head_dim as f32).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exp.iter().sum();
                for (j, e) in exp.iter().enumerate() {
                    for c in 0..s.head_dim {
                        out[i * qs + h * s.head_dim + c] +=
                            e / sum * v[j * kvs + g * s.head_dim + c];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn blocked_attention_matches_the_definition_on_odd_shapes() {
        for (queries, past) in [
            (1, 0),
            (5, 3),
            (ATTENTION_BLOCK + 7, 0),
            (2 * ATTENTION_BLOCK + 1, 11),
            // Several key tiles: a long past, and queries that cross tile boundaries.
            (ATTENTION_BLOCK + 5, 2 * KEY_TILE + 30),
            (KEY_TILE + 70, KEY_TILE - 3),
        ] {
            let shape = AttentionShape {
                queries,
                past,
                heads: 6,
                kv_heads: 2,
                head_dim: 8,
            };
            let q = pseudo_random(queries * 48, 1);
            let k = pseudo_random((past + queries) * 16, 2);
            let v = pseudo_random((past + queries) * 16, 3);
            let mut out = vec![0f32; q.len()];
            causal_attention(&q, &k, &v, shape, &mut out);
            let expected = naive_attention(&q, &k, &v, shape);
            let max_diff = out
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max_diff < 1e-5, "{queries}+{past}: {max_diff}");
        }
    }

    #[test]
    fn attention_mass_sums_the_definitions_probabilities_per_kv_head() {
        for (queries, past, rows) in [(5, 0, 0..5), (9, 4, 6..9), (ATTENTION_BLOCK + 9, 3, 2..70)] {
            let shape = AttentionShape {
                queries,
                past,
                heads: 6,
                kv_heads: 2,
                head_dim: 8,
            };
            let keys = past + queries;
            let q = pseudo_random(queries * 48, 8);
            let k = pseudo_random(keys * 16, 9);
            let mut mass = vec![1f32; keys * 2];
            attention_mass(&q, &k, shape, rows.clone(), &mut mass);
            let mut expected = vec![1f32; keys * 2];
            for i in rows.clone() {
                for h in 0..6 {
                    let g = h / 3;
                    let qi = &q[i * 48 + h * 8..][..8];
                    let scores: Vec<f32> = (0..past + i + 1)
                        .map(|j| {
                            let kj = &k[j * 16 + g * 8..][..8];
                            qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() / 8f32.sqrt()
                        })
                        .collect();
                    let total: f32 = scores.iter().map(|s| s.exp()).sum();
                    for (j, s) in scores.iter().enumerate() {
                        expected[j * 2 + g] += s.exp() / total;
                    }
                }
            }
            let max_diff = mass
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max_diff < 1e-4, "{queries}+{past}: {max_diff}");
            // Keys after the last row asked about get nothing.
            assert!(mass[(past + rows.end) * 2..].iter().all(|&m| m == 1.0));
        }
    }

    #[test]
    fn matmul_matches_the_definition_on_odd_shapes_and_strides() {
        for (m, n, k, threads) in [
            (1, 1, 1, 1),
            (3, 17, 5, 1),
            (67, 33, 129, 2),
            (130, 7, 64, 2),
        ] {
            let a = pseudo_random(m * k, 4);
            let b = pseudo_random(k * n, 5);
            // b read transposed (n × k storage), the result accumulated onto ones.
            let mut out = vec![1f32; m * n];
            unsafe {
                matmul(
                    m,
                    n,
                    k,
                    out.as_mut_ptr(),
                    n,
                    true,
                    View {
                        ptr: a.as_ptr(),
                        row_stride: k as isize,
                        col_stride: 1,
                    },
                    View {
                        ptr: b.as_ptr(),
                        row_stride: 1,
                        col_stride: k as isize,
                    },
                    0.5,
                    threads,
                );
            }
            for i in 0..m {
                for j in 0..n {
                    let dot: f32 = (0..k).map(|c| a[i * k + c] * b[j * k + c]).sum();
                    let expected = 1.0 + 0.5 * dot;
                    assert!((out[i * n + j] - expected).abs() < 1e-4, "{m}x{n}x{k}");
                }
            }
        }
    }

    #[test]
    fn rms_norm_scales_each_row_to_unit_root_mean_square() {
        let (rows, d) = (3, 37);
        let x = pseudo_random(rows * d, 6);
        let weight = pseudo_random(d, 7);
        let mut out = vec![0f32; rows * d];
        rms_norm(&x, &weight, 1e-5, &mut out);
        for r in 0..rows {
            let row = &x[r * d..][..d];
            let rms = (row.iter().map(|v| v * v).sum::<f32>() / d as f32 + 1e-5).sqrt();
            for c in 0..d {
                assert!((out[r * d + c] - row[c] / rms * weight[c]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn target_log_prob_is_a_log_softmax_entry() {
        let logits = [1.0f32, 2.0, 3.0];
        let z: f32 = logits.iter().map(|v| v.exp()).sum();
        assert!((target_log_prob(&logits, 1) - (2f32.exp() / z).ln()).abs() < 1e-6);
    }

    #[test]
    fn rope_styles_rotate_different_pairs() {
        let rope = Rope::new(RopeStyle::Interleaved, 4, 10000.0, 4);
        let mut x = vec![1.0, 0.0, 1.0, 0.0];
        rope.apply(&mut x, 4, 4, 1);
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[1] - 1f32.sin()).abs() < 1e-6);
        let rope = Rope::new(RopeStyle::HalfSplit, 4, 10000.0, 4);
        let mut x = vec![1.0, 1.0, 0.0, 0.0];
        rope.apply(&mut x, 4, 4, 1);
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[2] - 1f32.sin()).abs() < 1e-6);
        rope.apply_inverse(&mut x, 4, 4, 1);
        assert!(x
            .iter()
            .zip([1.0, 1.0, 0.0, 0.0])
            .all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
