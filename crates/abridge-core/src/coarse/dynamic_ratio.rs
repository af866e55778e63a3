//! LongLLMLingua's dynamic compression ratio: better-ranked documents keep more of their tokens.
//!
//! For N kept documents the k-th best (k = 0..N−1) gets the offset `δ_k = δ·(N−1−2k)/(N−1)`:
//! +δ for the best, −δ for the worst, linear in between (0 for a single document). The token
//! stage then keeps `clamp(τ + δ_k, 0, 1)` of the document, τ being the global keep ratio.

/// The keep-ratio offset of each rank position, best first.
pub fn offsets(documents: usize, delta: f64) -> Vec<f64> {
    if documents < 2 {
        return vec![0.0; documents];
    }
    let last = (documents - 1) as f64;
    (0..documents)
        .map(|k| delta * (last - 2.0 * k as f64) / last)
        .collect()
}

/// The keep ratio of a document at rank offset `offset` around the global ratio `tau`.
pub fn ratio(tau: f64, offset: f64) -> f64 {
    (tau + offset).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_linear_from_plus_to_minus_delta() {
        assert_eq!(offsets(3, 0.3), [0.3, 0.0, -0.3]);
        let four = offsets(4, 0.3);
        let expected = [0.3, 0.1, -0.1, -0.3];
        assert!(
            four.iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-12),
            "{four:?}"
        );
        assert_eq!(offsets(1, 0.3), [0.0]);
        assert!(offsets(0, 0.3).is_empty());
        assert_eq!(offsets(2, 0.0), [0.0, 0.0]);
    }

    #[test]
    fn ratios_are_clamped() {
        assert_eq!(ratio(0.9, 0.3), 1.0);
        assert_eq!(ratio(0.2, -0.3), 0.0);
        assert_eq!(ratio(0.5, 0.1), 0.6);
    }
}
