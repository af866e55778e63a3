//! int8 weights times int8 or int16 activations, summed exactly in i32: the `--weights int8`
//! and `int8-a16` matmuls.
//!
//! Both operands are quantised per block of [`BLOCK`] values along the inner dimension: the
//! weights once at load, the activations on every call. A weight block is affine, `w ≈ d·q + m`
//! with `q` in -128..=127: a GGUF block with 16 levels (Q4_0/Q4_1 and the Q4_K sub-blocks, whose
//! grids embed in 255 steps) comes back exactly, any other to within a 510th of its range. An
//! activation block is symmetric, `x ≈ s·p`: a scale per block (as in llama.cpp's q8 dot
//! products) keeps one outlier channel from coarsening its whole row. Then
//! `Σ w·x = s·(d·Σ q·p + m·Σ p)`: the products of a block are summed exactly in i32.
//!
//! With AVX-512 VNNI one `vpdpbusd` multiplies 64 unsigned activation bytes by 64 signed weight
//! bytes (four times the products of an f32 FMA): int8 activations are therefore stored offset
//! by +128 as u8, and each (column, block) sum starts at -128·Σq to cancel the offset. int16
//! activations (`vpdpwssd`, 32 products per instruction) are signed and need no offset; they
//! trade half that speed for rounding errors 256 times smaller. Without VNNI a portable body
//! computes the same integers.

use rayon::prelude::*;

use super::vector::portable_only;
use super::SendPtr;

/// Values per quantisation block along the inner dimension: ggml's block (so its grids come back
/// exactly). Every hidden and intermediate width of SmolLM2 and Qwen2.5 is a multiple of it;
/// other widths are padded with zeros.
pub const BLOCK: usize = 32;
/// Output columns per packed weight panel: one 512-bit register of i32 sums.
const PANEL: usize = 16;
/// Activation rows per microkernel call: 6 rows × 2 panels keep 24 sums in registers.
const TILE_ROWS: usize = 6;
/// Activation rows that stay in L2 while a task's weight panels pass over them.
const ROW_BLOCK: usize = 16 * TILE_ROWS;
/// The int8 activations' offset into u8.
const OFFSET: i32 = 128;

/// How finely the activations are quantised on each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activations {
    /// ±127 per block: the fastest.
    Int8,
    /// ±32767 per block: scores within about 0.015 nats of f32 on SmolLM2.
    Int16,
}

impl Activations {
    /// Inner-dimension values per 32-bit lane of the VNNI instruction, so per packed group.
    const fn group(self) -> usize {
        match self {
            Self::Int8 => 4,
            Self::Int16 => 2,
        }
    }

    const fn bytes(self) -> usize {
        4 / self.group()
    }
}

/// A `rows × cols` weight matrix quantised to int8 per row and block, packed for the kernel.
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    blocks: usize,
    panels: usize,
    activations: Activations,
    /// `[panel][block][group][column][value]`: the bytes one VNNI instruction reads are
    /// contiguous (a group is 4 values for int8 activations, 2 for int16).
    packed: Vec<i8>,
    /// `[panel][block][column]`: the block's step `d`.
    scales: Vec<f32>,
    /// `[panel][block][column]`: the block's offset `m`.
    mins: Vec<f32>,
    /// `[panel][block][column]`: where a block's i32 sum starts: −128 · Σq, which cancels int8
    /// activations' u8 offset (0 for int16 activations).
    offsets: Vec<i32>,
}

impl Int8Matrix {
    /// Quantises a row-major `rows × cols` matrix, to be multiplied by `activations`.
    pub fn quantize(rows: usize, cols: usize, values: &[f32], activations: Activations) -> Self {
        assert_eq!(values.len(), rows * cols);
        let blocks = cols.div_ceil(BLOCK);
        let panels = rows.div_ceil(PANEL);
        let group_len = activations.group();
        let mut packed = vec![0i8; panels * blocks * BLOCK * PANEL];
        let mut scales = vec![0f32; panels * blocks * PANEL];
        let mut mins = vec![0f32; panels * blocks * PANEL];
        let mut offsets = vec![0i32; panels * blocks * PANEL];
        packed
            .par_chunks_mut(blocks * BLOCK * PANEL)
            .zip(scales.par_chunks_mut(blocks * PANEL))
            .zip(mins.par_chunks_mut(blocks * PANEL))
            .zip(offsets.par_chunks_mut(blocks * PANEL))
            .enumerate()
            .for_each(|(panel, (((packed, scales), mins), offsets))| {
                for column in 0..PANEL.min(rows - panel * PANEL) {
                    let row = &values[(panel * PANEL + column) * cols..][..cols];
                    for (block, chunk) in row.chunks(BLOCK).enumerate() {
                        let (low, high) = chunk.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| {
                            (if v < l { v } else { l }, if v > h { v } else { h })
                        });
                        let step = (high - low) / 255.0;
                        let inverse = if step > 0.0 { 1.0 / step } else { 0.0 };
                        let mut sum = 0;
                        for (i, &v) in chunk.iter().enumerate() {
                            let q = ((v - low) * inverse).round_ties_even().clamp(0.0, 255.0)
                                as i32
                                - OFFSET;
                            sum += q;
                            let group = (block * BLOCK + i) / group_len;
                            packed[(group * PANEL + column) * group_len + i % group_len] = q as i8;
                        }
                        let at = block * PANEL + column;
                        scales[at] = step;
                        mins[at] = low + OFFSET as f32 * step;
                        if activations == Activations::Int8 {
                            offsets[at] = -OFFSET * sum;
                        }
                    }
                }
            });
        Self {
            rows,
            cols,
            blocks,
            panels,
            activations,
            packed,
            scales,
            mins,
            offsets,
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.packed.len() + 4 * (self.scales.len() + self.mins.len() + self.offsets.len())
    }

    /// Writes row `r`, dequantised, into `out` (`cols` long).
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let (panel, column) = (r / PANEL, r % PANEL);
        let group_len = self.activations.group();
        let packed = &self.packed[panel * self.blocks * BLOCK * PANEL..];
        for (i, o) in out[..self.cols].iter_mut().enumerate() {
            let q = packed[(i / group_len * PANEL + column) * group_len + i % group_len];
            let at = (panel * self.blocks + i / BLOCK) * PANEL + column;
            *o = q as f32 * self.scales[at] + self.mins[at];
        }
    }

    /// `out[m, rows] = x[m, cols] · Wᵀ`, with `x` quantised per row and block first.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32], threads: usize) {
        assert_eq!(x.len(), m * self.cols);
        assert_eq!(out.len(), m * self.rows);
        if m == 0 || self.rows == 0 {
            return;
        }
        let vnni = has_vnni();
        let activations = QuantizedRows::new(x, m, self.cols, self.blocks, self.activations, vnni);
        let pairs = self.panels.div_ceil(2);
        let row_blocks = m.div_ceil(ROW_BLOCK);
        // Enough tasks to balance the threads; each a block of rows × a run of panel pairs.
        let column_chunks = (4 * threads).div_ceil(row_blocks).clamp(1, pairs);
        let pairs_per_chunk = pairs.div_ceil(column_chunks);
        let out = SendPtr(out.as_mut_ptr());
        let run = |task: usize| {
            let (row_block, chunk) = (task / column_chunks, task % column_chunks);
            let rows = row_block * ROW_BLOCK..(m.min((row_block + 1) * ROW_BLOCK));
            let first_pair = chunk * pairs_per_chunk;
            for pair in first_pair..pairs.min(first_pair + pairs_per_chunk) {
                let panels = 2.min(self.panels - 2 * pair);
                for first_row in rows.clone().step_by(TILE_ROWS) {
                    let tile = Tile {
                        first_row,
                        rows: TILE_ROWS.min(rows.end - first_row),
                        first_panel: 2 * pair,
                        panels,
                    };
                    // SAFETY: tasks write disjoint (rows, panels) tiles of `out`, which has
                    // m × self.rows elements (asserted above).
                    unsafe { self.tile(&activations, tile, out.get(), vnni) };
                }
            }
        };
        let tasks = row_blocks * column_chunks;
        if threads > 1 && m * self.rows * self.cols >= 1 << 18 {
            (0..tasks).into_par_iter().for_each(run);
        } else {
            (0..tasks).for_each(run);
        }
    }

    /// # Safety
    /// `out` must hold the `m × self.rows` result the tile is part of.
    unsafe fn tile(&self, a: &QuantizedRows, tile: Tile, out: *mut f32, vnni: bool) {
        #[cfg(target_arch = "x86_64")]
        if vnni {
            macro_rules! dispatch {
                ($wide:literal; $($r:literal),*) => {
                    match (tile.rows, tile.panels) {
                        $(
                            ($r, 1) => vnni::tile::<$r, 1, $wide>(self, a, tile, out),
                            ($r, 2) => vnni::tile::<$r, 2, $wide>(self, a, tile, out),
                        )*
                        _ => unreachable!("tiles have 1..=6 rows and 1..=2 panels"),
                    }
                };
            }
            return match self.activations {
                Activations::Int8 => dispatch!(false; 1, 2, 3, 4, 5, 6),
                Activations::Int16 => dispatch!(true; 1, 2, 3, 4, 5, 6),
            };
        }
        let _ = vnni;
        self.tile_portable(a, tile, out)
    }

    /// The kernel's arithmetic without SIMD: the same i32 block sums.
    unsafe fn tile_portable(&self, a: &QuantizedRows, tile: Tile, out: *mut f32) {
        let group_len = self.activations.group();
        let value = |bytes: &[u8], k: usize| match self.activations {
            Activations::Int8 => bytes[k] as i32,
            Activations::Int16 => i16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]) as i32,
        };
        for row in tile.first_row..tile.first_row + tile.rows {
            let activations = &a.values[row * a.stride..][..a.stride];
            let row_scales = &a.scales[row * self.blocks..][..self.blocks];
            let row_sums = &a.sums[row * self.blocks..][..self.blocks];
            let last_column = self.rows.min((tile.first_panel + tile.panels) * PANEL);
            for column in tile.first_panel * PANEL..last_column {
                let (panel, lane) = (column / PANEL, column % PANEL);
                let panel_start = panel * self.blocks;
                let packed = &self.packed[panel_start * BLOCK * PANEL..];
                let mut sum = 0f32;
                for (block, (&row_scale, &row_sum)) in row_scales.iter().zip(row_sums).enumerate() {
                    let at = (panel_start + block) * PANEL + lane;
                    let mut dot = self.offsets[at];
                    for k in block * BLOCK..(block + 1) * BLOCK {
                        let w = packed[(k / group_len * PANEL + lane) * group_len + k % group_len];
                        dot += w as i32 * value(activations, k);
                    }
                    sum += dot as f32 * (self.scales[at] * row_scale) + self.mins[at] * row_sum;
                }
                *out.add(row * self.rows + column) = sum;
            }
        }
    }
}

/// Rows `first_row..first_row + rows` of the activations against panels
/// `first_panel..first_panel + panels` of the weights.
#[derive(Clone, Copy)]
struct Tile {
    first_row: usize,
    rows: usize,
    first_panel: usize,
    panels: usize,
}

/// Activations quantised per row and block: `[row][block·BLOCK]` values, int8 ones offset into
/// u8, int16 ones little-endian (the padding is zero either way).
struct QuantizedRows {
    values: Vec<u8>,
    /// `[row][block]`: the block's scale `s`.
    scales: Vec<f32>,
    /// `[row][block]`: `s · Σp`, what the weight block's offset `m` multiplies.
    sums: Vec<f32>,
    /// Bytes per row.
    stride: usize,
}

impl QuantizedRows {
    fn new(x: &[f32], m: usize, cols: usize, blocks: usize, kind: Activations, vnni: bool) -> Self {
        let width = kind.bytes();
        let stride = blocks * BLOCK * width;
        let zero = match kind {
            Activations::Int8 => OFFSET as u8,
            Activations::Int16 => 0,
        };
        let mut values = vec![zero; m * stride];
        let mut scales = vec![0f32; m * blocks];
        let mut sums = vec![0f32; m * blocks];
        values
            .par_chunks_mut(stride)
            .zip(scales.par_chunks_mut(blocks))
            .zip(sums.par_chunks_mut(blocks))
            .zip(x.par_chunks(cols))
            .with_min_len(16)
            .for_each(|(((values, scales), sums), x)| {
                let blocks = values.chunks_mut(BLOCK * width).zip(scales).zip(sums);
                for (((values, scale), sum), x) in blocks.zip(x.chunks(BLOCK)) {
                    #[cfg(target_arch = "x86_64")]
                    if vnni && x.len() == BLOCK {
                        // SAFETY: the CPU has the features; both sides hold a whole block.
                        (*scale, *sum) = unsafe {
                            match kind {
                                Activations::Int8 => vnni::quantize_block::<false>(x, values),
                                Activations::Int16 => vnni::quantize_block::<true>(x, values),
                            }
                        };
                        continue;
                    }
                    let largest = x
                        .iter()
                        .fold(0f32, |m, &v| if v.abs() > m { v.abs() } else { m });
                    let limit = match kind {
                        Activations::Int8 => 127.0,
                        Activations::Int16 => 32767.0,
                    };
                    let inverse = if largest > 0.0 { limit / largest } else { 0.0 };
                    let mut total = 0;
                    for (i, &v) in x.iter().enumerate() {
                        let p = (v * inverse).round_ties_even() as i32;
                        total += p;
                        match kind {
                            Activations::Int8 => values[i] = (p + OFFSET) as u8,
                            Activations::Int16 => {
                                values[2 * i..2 * i + 2].copy_from_slice(&(p as i16).to_le_bytes())
                            }
                        }
                    }
                    *scale = largest / limit;
                    *sum = *scale * total as f32;
                }
            });
        Self {
            values,
            scales,
            sums,
            stride,
        }
    }
}

/// Whether the VNNI kernel can run (and is not switched off by `force_portable`).
fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    if !portable_only() {
        return std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni");
    }
    false
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{Int8Matrix, QuantizedRows, Tile, BLOCK, OFFSET, PANEL};

    /// Quantises one block of activations like the portable body (`cvtps` rounds to nearest
    /// even, as `round_ties_even` does) to int16 (`WIDE`) or offset int8; returns its scale and
    /// scale · Σp.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn quantize_block<const WIDE: bool>(x: &[f32], out: &mut [u8]) -> (f32, f32) {
        let limit = if WIDE { 32767.0 } else { 127.0 };
        let mut v = [_mm512_setzero_ps(); BLOCK / 16];
        let mut largest = _mm512_setzero_ps();
        for (i, v) in v.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(x.as_ptr().add(16 * i));
            largest = _mm512_max_ps(largest, _mm512_abs_ps(*v));
        }
        let largest = _mm512_reduce_max_ps(largest);
        let inverse = _mm512_set1_ps(if largest > 0.0 { limit / largest } else { 0.0 });
        let mut total = _mm512_setzero_si512();
        for (i, v) in v.iter().enumerate() {
            let p = _mm512_cvtps_epi32(_mm512_mul_ps(*v, inverse));
            total = _mm512_add_epi32(total, p);
            if WIDE {
                let out = out.as_mut_ptr().add(32 * i) as *mut __m256i;
                _mm256_storeu_si256(out, _mm512_cvtepi32_epi16(p));
            } else {
                let q = _mm512_add_epi32(p, _mm512_set1_epi32(OFFSET));
                let out = out.as_mut_ptr().add(16 * i) as *mut __m128i;
                _mm_storeu_si128(out, _mm512_cvtepi32_epi8(q));
            }
        }
        let scale = largest / limit;
        (scale, scale * _mm512_reduce_add_epi32(total) as f32)
    }

    /// `R` activation rows × `P` weight panels, all blocks; the sums stay in registers. `WIDE`:
    /// int16 activations (`vpdpwssd` on weights widened from int8), else offset int8 ones
    /// (`vpdpbusd`).
    ///
    /// # Safety
    /// The CPU has AVX-512 VNNI; `out` holds the `m × w.rows` result.
    // Rows and panels index several register arrays at once; iterators would hide that.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile<const R: usize, const P: usize, const WIDE: bool>(
        w: &Int8Matrix,
        a: &QuantizedRows,
        tile: Tile,
        out: *mut f32,
    ) {
        let (group_len, width) = if WIDE { (2, 2) } else { (4, 1) };
        let blocks = w.blocks;
        let mut sums = [[_mm512_setzero_ps(); P]; R];
        let mut activation_rows = [std::ptr::null::<u8>(); R];
        for (r, row) in activation_rows.iter_mut().enumerate() {
            *row = a.values.as_ptr().add((tile.first_row + r) * a.stride);
        }
        for block in 0..blocks {
            let mut dots = [[_mm512_setzero_si512(); P]; R];
            let mut panels = [std::ptr::null::<i8>(); P];
            for p in 0..P {
                let at = ((tile.first_panel + p) * blocks + block) * PANEL;
                let offset = _mm512_loadu_si512(w.offsets.as_ptr().add(at) as *const _);
                for dot in dots.iter_mut() {
                    dot[p] = offset;
                }
                panels[p] = w.packed.as_ptr().add(at * BLOCK);
            }
            for group in 0..BLOCK / group_len {
                let mut weights = [_mm512_setzero_si512(); P];
                for p in 0..P {
                    let at = panels[p].add(group * PANEL * group_len);
                    weights[p] = if WIDE {
                        _mm512_cvtepi8_epi16(_mm256_loadu_si256(at as *const __m256i))
                    } else {
                        _mm512_loadu_si512(at as *const _)
                    };
                }
                for r in 0..R {
                    let at = activation_rows[r].add((block * BLOCK + group * group_len) * width);
                    let activations = _mm512_set1_epi32((at as *const i32).read_unaligned());
                    for p in 0..P {
                        dots[r][p] = if WIDE {
                            _mm512_dpwssd_epi32(dots[r][p], activations, weights[p])
                        } else {
                            _mm512_dpbusd_epi32(dots[r][p], activations, weights[p])
                        };
                    }
                }
            }
            for p in 0..P {
                let at = ((tile.first_panel + p) * blocks + block) * PANEL;
                let steps = _mm512_loadu_ps(w.scales.as_ptr().add(at));
                let mins = _mm512_loadu_ps(w.mins.as_ptr().add(at));
                for r in 0..R {
                    let at = (tile.first_row + r) * blocks + block;
                    let scale = _mm512_mul_ps(steps, _mm512_set1_ps(*a.scales.get_unchecked(at)));
                    let sum = &mut sums[r][p];
                    *sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[r][p]), scale, *sum);
                    *sum = _mm512_fmadd_ps(mins, _mm512_set1_ps(*a.sums.get_unchecked(at)), *sum);
                }
            }
        }
        for p in 0..P {
            let first_column = (tile.first_panel + p) * PANEL;
            let valid = PANEL.min(w.rows - first_column);
            let mask: __mmask16 = if valid == PANEL { !0 } else { (1 << valid) - 1 };
            for r in 0..R {
                let row = out.add((tile.first_row + r) * w.rows + first_column);
                _mm512_mask_storeu_ps(row, mask, sums[r][p]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::force_portable;
    use crate::kernels::tests::{naive_linear, pseudo_random};

    fn forward(w: &Int8Matrix, x: &[f32], m: usize, threads: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; m * w.rows];
        w.forward(x, m, &mut out, threads);
        out
    }

    #[test]
    fn a_one_hot_row_reads_back_the_dequantised_weights_exactly() {
        let (rows, cols) = (37, 130);
        let values = pseudo_random(rows * cols, 1);
        for kind in [Activations::Int8, Activations::Int16] {
            let w = Int8Matrix::quantize(rows, cols, &values, kind);
            let mut row = vec![0f32; cols];
            for c in [0, 63, 64, 129] {
                let mut x = vec![0f32; cols];
                x[c] = 2.5;
                let out = forward(&w, &x, 1, 1);
                for (r, &o) in out.iter().enumerate() {
                    w.row(r, &mut row);
                    let expected = row[c] * 2.5;
                    assert!(
                        (o - expected).abs() <= 1e-6,
                        "row {r} column {c}: {o} {expected}"
                    );
                    // Within half a step (a 255th of the block's range, at most 2) of the original.
                    assert!((row[c] - values[r * cols + c]).abs() <= 1.0 / 255.0 + 1e-6);
                }
            }
        }
    }

    #[test]
    fn forward_is_close_to_f32_on_odd_shapes_with_and_without_simd() {
        for (rows, cols, m, threads) in [
            (1, 1, 1, 1),
            (17, 64, 7, 1),
            (50, 200, 13, 2),
            (33, 576, 100, 2),
        ] {
            let values = pseudo_random(rows * cols, 2);
            let x = pseudo_random(m * cols, 3);
            for (kind, tolerance) in [(Activations::Int8, 0.02), (Activations::Int16, 0.004)] {
                let w = Int8Matrix::quantize(rows, cols, &values, kind);
                let exact = naive_linear(&x, &values, m, rows);
                let simd = forward(&w, &x, m, threads);
                force_portable(true);
                let portable = forward(&w, &x, m, threads);
                force_portable(false);
                // Each product errs by at most about (|x| + |w|) / 254 with |x|, |w| ≤ 1.
                let bound = cols as f32 * 2.0 / 254.0;
                for ((s, p), e) in simd.iter().zip(&portable).zip(&exact) {
                    assert!(
                        (s - p).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{rows}x{cols}x{m}: {s} {p}"
                    );
                    assert!((s - e).abs() <= bound, "{rows}x{cols}x{m}: {s} {e}");
                }
                let error: f32 = simd
                    .iter()
                    .zip(&exact)
                    .map(|(s, e)| (s - e).abs())
                    .sum::<f32>()
                    / exact.iter().map(|e| e.abs()).sum::<f32>();
                assert!(
                    error < tolerance,
                    "{kind:?} {rows}x{cols}x{m}: relative error {error}"
                );
            }
        }
    }
}
