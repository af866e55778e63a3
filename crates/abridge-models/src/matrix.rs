//! Weight matrices: dequantised to f32 at load, kept in their GGUF encoding and dequantised a
//! tile at a time (low memory), or requantised to int8 for the integer kernel.

use crate::kernels::{matmul, Activations, Int8Matrix, View};
use crate::quant::GgmlType;

/// Output rows dequantised per tile when the weights stay quantised.
const QUANTIZED_TILE_ROWS: usize = 256;

enum Storage {
    /// Stored transposed (`cols × rows` row-major): gemm packs a transposed row-major weight
    /// with scalar gathers, which cost 10% of a forward pass; this layout packs with vector copies.
    F32Transposed(Vec<f32>),
    Quantized {
        dtype: GgmlType,
        bytes: Vec<u8>,
    },
    Int8(Int8Matrix),
}

/// A `rows × cols` row-major weight matrix; a linear layer computes `x · Wᵀ`.
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    storage: Storage,
}

impl Matrix {
    pub fn from_f32(rows: usize, cols: usize, values: Vec<f32>) -> Self {
        assert_eq!(values.len(), rows * cols);
        Self {
            rows,
            cols,
            storage: Storage::F32Transposed(transpose(&values, rows, cols)),
        }
    }

    /// Quantises row-major values to int8 per row and block, for products with `activations`
    /// (see [`Int8Matrix`]).
    pub fn int8(rows: usize, cols: usize, values: &[f32], activations: Activations) -> Self {
        Self {
            rows,
            cols,
            storage: Storage::Int8(Int8Matrix::quantize(rows, cols, values, activations)),
        }
    }

    /// Wraps encoded rows; `cols` must be a whole number of `dtype` blocks.
    pub fn quantized(rows: usize, cols: usize, dtype: GgmlType, bytes: Vec<u8>) -> Self {
        assert_eq!(dtype.byte_size(cols).map(|b| b * rows), Some(bytes.len()));
        Self {
            rows,
            cols,
            storage: Storage::Quantized { dtype, bytes },
        }
    }

    /// Bytes the weights occupy in memory.
    pub fn memory_bytes(&self) -> usize {
        match &self.storage {
            Storage::F32Transposed(v) => v.len() * 4,
            Storage::Quantized { bytes, .. } => bytes.len(),
            Storage::Int8(w) => w.memory_bytes(),
        }
    }

    /// Writes row `r` as f32 into `out` (`cols` long).
    pub fn row(&self, r: usize, out: &mut [f32]) {
        match &self.storage {
            Storage::F32Transposed(v) => {
                for (o, &w) in out.iter_mut().zip(v[r..].iter().step_by(self.rows)) {
                    *o = w;
                }
            }
            Storage::Quantized { dtype, bytes } => {
                let row_bytes = bytes.len() / self.rows;
                dtype.dequantize(&bytes[r * row_bytes..(r + 1) * row_bytes], out);
            }
            Storage::Int8(w) => w.row(r, out),
        }
    }

    /// `out[m, rows] = x[m, cols] · Wᵀ`.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32], threads: usize) {
        assert_eq!(x.len(), m * self.cols);
        assert_eq!(out.len(), m * self.rows);
        let lhs = View {
            ptr: x.as_ptr(),
            row_stride: self.cols as isize,
            col_stride: 1,
        };
        match &self.storage {
            // SAFETY: shapes asserted above; Wᵀ is stored, cols × rows.
            Storage::F32Transposed(w) => unsafe {
                matmul(
                    m,
                    self.rows,
                    self.cols,
                    out.as_mut_ptr(),
                    self.rows,
                    false,
                    lhs,
                    View {
                        ptr: w.as_ptr(),
                        row_stride: self.rows as isize,
                        col_stride: 1,
                    },
                    1.0,
                    threads,
                );
            },
            Storage::Quantized { .. } => self.for_each_tile(|first, rows, tile| {
                // SAFETY: the tile holds `rows` dequantised rows; `out` columns
                // first..first+rows exist in every one of its m rows.
                unsafe {
                    matmul(
                        m,
                        rows,
                        self.cols,
                        out.as_mut_ptr().add(first),
                        self.rows,
                        false,
                        lhs,
                        transposed(tile.as_ptr(), self.cols),
                        1.0,
                        threads,
                    );
                }
            }),
            Storage::Int8(w) => w.forward(x, m, out, threads),
        }
    }

    /// `dx[m, cols] = dy[m, rows] · W`: the gradient of [`Self::forward`] with respect to its
    /// input (the weights themselves stay frozen).
    pub fn backward(&self, dy: &[f32], m: usize, dx: &mut [f32], threads: usize) {
        assert_eq!(dy.len(), m * self.rows);
        assert_eq!(dx.len(), m * self.cols);
        let rows_view = |ptr: *const f32, cols: usize| View {
            ptr,
            row_stride: cols as isize,
            col_stride: 1,
        };
        match &self.storage {
            // SAFETY: shapes asserted above; the stored Wᵀ (cols × rows) is read transposed.
            Storage::F32Transposed(w) => unsafe {
                matmul(
                    m,
                    self.cols,
                    self.rows,
                    dx.as_mut_ptr(),
                    self.cols,
                    false,
                    rows_view(dy.as_ptr(), self.rows),
                    transposed(w.as_ptr(), self.rows),
                    1.0,
                    threads,
                );
            },
            Storage::Quantized { .. } | Storage::Int8(_) => {
                self.for_each_tile(|first, rows, tile| {
                    // SAFETY: dy columns first..first+rows exist in each of its m rows; the
                    // tile holds those rows of W. Tiles after the first accumulate.
                    unsafe {
                        matmul(
                            m,
                            self.cols,
                            rows,
                            dx.as_mut_ptr(),
                            self.cols,
                            first > 0,
                            rows_view(dy.as_ptr().add(first), self.rows),
                            rows_view(tile.as_ptr(), self.cols),
                            1.0,
                            threads,
                        );
                    }
                })
            }
        }
    }

    /// Calls `f(first, rows, tile)` with each run of up to [`QUANTIZED_TILE_ROWS`] rows,
    /// dequantised into `tile`.
    fn for_each_tile(&self, mut f: impl FnMut(usize, usize, &[f32])) {
        let mut tile = vec![0f32; QUANTIZED_TILE_ROWS.min(self.rows) * self.cols];
        for first in (0..self.rows).step_by(QUANTIZED_TILE_ROWS) {
            let rows = QUANTIZED_TILE_ROWS.min(self.rows - first);
            for r in 0..rows {
                self.row(first + r, &mut tile[r * self.cols..(r + 1) * self.cols]);
            }
            f(first, rows, &tile[..rows * self.cols]);
        }
    }
}

/// The transpose of a row-major `rows × cols` matrix, in square tiles so both sides stay in cache.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0f32; values.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}

/// Views a row-major `n × k` matrix as its `k × n` transpose.
fn transposed(ptr: *const f32, k: usize) -> View {
    View {
        ptr,
        row_stride: 1,
        col_stride: k as isize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn quantized_forward_equals_dequantised_forward() {
        // 300 rows of Q8_0 crosses a tile boundary.
        let (rows, cols, m) = (300, 64, 3);
        let mut bytes = Vec::new();
        for r in 0..rows * cols / 32 {
            bytes.extend_from_slice(&f16::from_f32(0.01 * (r % 7) as f32).to_bits().to_le_bytes());
            bytes.extend((0..32).map(|i| ((i * 37 + r * 11) % 255) as u8));
        }
        let quantized = Matrix::quantized(rows, cols, GgmlType::Q8_0, bytes.clone());
        let mut values = vec![0f32; rows * cols];
        GgmlType::Q8_0.dequantize(&bytes, &mut values);
        let dense = Matrix::from_f32(rows, cols, values.clone());
        let x: Vec<f32> = (0..m * cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let (mut a, mut b) = (vec![0f32; m * rows], vec![0f32; m * rows]);
        quantized.forward(&x, m, &mut a, 1);
        dense.forward(&x, m, &mut b, 1);
        let naive = crate::kernels::tests::naive_linear(&x, &values, m, rows);
        for ((a, b), n) in a.iter().zip(&b).zip(&naive) {
            assert!((a - b).abs() < 1e-4 && (a - n).abs() < 1e-3, "{a} {b} {n}");
        }
    }

    #[test]
    fn backward_multiplies_by_the_untransposed_weights() {
        let (rows, cols, m) = (300, 64, 3);
        let values: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut bytes = Vec::new();
        for block in values.chunks(32) {
            bytes.extend_from_slice(&f16::from_f32(1.0 / 127.0).to_bits().to_le_bytes());
            bytes.extend(block.iter().map(|v| (v * 127.0).round() as i8 as u8));
        }
        let mut dequantised = vec![0f32; rows * cols];
        GgmlType::Q8_0.dequantize(&bytes, &mut dequantised);
        let dy: Vec<f32> = (0..m * rows).map(|i| (i as f32 * 0.37).sin()).collect();
        let naive: Vec<f32> = (0..m * cols)
            .map(|i| {
                let (t, c) = (i / cols, i % cols);
                (0..rows)
                    .map(|r| dy[t * rows + r] * dequantised[r * cols + c])
                    .sum()
            })
            .collect();
        for matrix in [
            Matrix::from_f32(rows, cols, dequantised.clone()),
            Matrix::quantized(rows, cols, GgmlType::Q8_0, bytes),
        ] {
            let mut dx = vec![0f32; m * cols];
            matrix.backward(&dy, m, &mut dx, 1);
            for (a, n) in dx.iter().zip(&naive) {
                assert!((a - n).abs() < 1e-3, "{a} {n}");
            }
        }
    }
}
