//! Low-rank adapters (LoRA, Hu et al. 2021) on a frozen projection: `y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ`.
//!
//! The adapter stays a side path instead of being merged into `W`: our weights are often
//! quantised, and merging would need requantisation (a loss the adapter was not trained with).

use crate::matrix::Matrix;

/// `s · B · A`, with `A` `rank × input` and `B` `output × rank` (row-major, PEFT's layout).
pub struct LowRank {
    pub a: Matrix,
    pub b: Matrix,
    pub scale: f32,
}

impl LowRank {
    /// Wraps PEFT-layout factors; panics when their shapes disagree (callers check file shapes).
    pub fn new(a: Matrix, b: Matrix, scale: f32) -> Self {
        assert_eq!(a.rows, b.cols, "LoRA rank of A and B differ");
        Self { a, b, scale }
    }

    pub fn rank(&self) -> usize {
        self.a.rows
    }

    /// `out[m, output] += s · (x[m, input] · Aᵀ) · Bᵀ`.
    pub fn add_forward(&self, x: &[f32], m: usize, out: &mut [f32], threads: usize) {
        let mut low = vec![0f32; m * self.rank()];
        self.a.forward(x, m, &mut low, threads);
        low.iter_mut().for_each(|v| *v *= self.scale);
        let mut delta = vec![0f32; out.len()];
        self.b.forward(&low, m, &mut delta, threads);
        crate::kernels::add_assign(out, &delta);
    }
}

/// The adapters of one transformer block on its query and value projections (the targets of
/// ICAE and 500xCompressor).
pub struct QvLora {
    pub q: LowRank,
    pub v: LowRank,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_scaled_product_of_factors() {
        // A = [[1, 2]] (rank 1, input 2), B = [[3], [-1]] (output 2): B·A = [[3, 6], [-1, -2]].
        let lora = LowRank::new(
            Matrix::from_f32(1, 2, vec![1.0, 2.0]),
            Matrix::from_f32(2, 1, vec![3.0, -1.0]),
            2.0,
        );
        let mut out = vec![10.0, 20.0];
        lora.add_forward(&[1.0, 1.0], 1, &mut out, 1);
        assert_eq!(out, vec![10.0 + 2.0 * 9.0, 20.0 - 2.0 * 3.0]);
    }
}
