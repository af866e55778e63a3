//! Vectorised elementwise kernels: exp-based softmax pieces and SwiGLU.
//!
//! libm's `expf` is a scalar call (~20 cycles); attention at 8k tokens, the LM head's 49k-entry
//! rows and SwiGLU call it billions of times. Each kernel here has one portable body written
//! over fixed-width lane arrays, which LLVM turns into AVX-512 or AVX2 code when the body is
//! inlined into a function compiled for those features; the widest the CPU supports is picked at
//! run time, so the binary still runs (on the portable body) anywhere.

use std::sync::atomic::{AtomicBool, Ordering};

/// Lanes per step: one AVX-512 register of f32.
const LANES: usize = 16;

static PORTABLE_ONLY: AtomicBool = AtomicBool::new(false);

/// Makes every kernel here run its portable body, as on a CPU without AVX2: for benchmarks that
/// measure the SIMD variants' gain in one run, and for tests of the fallback.
pub fn force_portable(portable: bool) {
    PORTABLE_ONLY.store(portable, Ordering::Relaxed);
}

pub(super) fn portable_only() -> bool {
    PORTABLE_ONLY.load(Ordering::Relaxed)
}

/// `exp(x)` to about 2 ulp for x in [-87, 88] (beyond: clamped, so 0 or a huge finite value),
/// as `2^n · e^r` with `|r| ≤ ln2/2` and a degree-6 Taylor polynomial (error < 2e-7 relative).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so `n · LN2_HI` is exact for the n that occur.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n is in [-126, 127] after the clamp, so the biased exponent is a valid normal float's.
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn max_body(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

#[inline(always)]
fn sum_exp_body(xs: &[f32], shift: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += exp(x - shift);
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|&x| exp(x - shift)).sum::<f32>()
}

#[inline(always)]
fn exp_in_place_body(xs: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *x = exp(*x - shift);
            *lane += *x;
        }
    }
    let mut rest = 0.0;
    for x in chunks.into_remainder() {
        *x = exp(*x - shift);
        rest += *x;
    }
    lanes.iter().sum::<f32>() + rest
}

#[inline(always)]
fn silu_mul_body(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// Defines each public kernel once: it runs the widest compiled variant of its body.
macro_rules! kernels {
    ($(
        $(#[$doc:meta])*
        pub fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:ident;
    )*) => {
        #[cfg(target_arch = "x86_64")]
        mod avx512 {
            $(
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? { super::$body($($arg),*) }
            )*
        }

        #[cfg(target_arch = "x86_64")]
        mod avx2 {
            $(
                #[target_feature(enable = "avx2,fma")]
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? { super::$body($($arg),*) }
            )*
        }

        $(
            $(#[$doc])*
            pub fn $name($($arg: $ty),*) $(-> $ret)? {
                #[cfg(target_arch = "x86_64")]
                if !PORTABLE_ONLY.load(Ordering::Relaxed) {
                    if std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512vl")
                    {
                        // SAFETY: the CPU has the features this variant was compiled for.
                        return unsafe { avx512::$name($($arg),*) };
                    }
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: as above.
                        return unsafe { avx2::$name($($arg),*) };
                    }
                }
                $body($($arg),*)
            }
        )*
    };
}

kernels! {
    /// The largest element (`-inf` for an empty slice). Inputs must not be NaN.
    pub fn max(xs: &[f32]) -> f32 = max_body;

    /// `Σ exp(x - shift)`.
    pub fn sum_exp(xs: &[f32], shift: f32) -> f32 = sum_exp_body;

    /// Replaces each `x` by `exp(x - shift)` and returns their sum.
    pub fn exp_in_place(xs: &mut [f32], shift: f32) -> f32 = exp_in_place_body;

    /// `gate = silu(gate) * up`, elementwise (SwiGLU).
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) = silu_mul_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_across_the_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let relative = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(relative);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn every_variant_agrees_with_the_scalar_definition_on_odd_lengths() {
        for len in [0, 1, 15, 16, 17, 100, 1023] {
            let xs: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let expected_max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max(&xs), expected_max);
            let expected_sum: f64 = xs.iter().map(|&x| ((x - 1.5) as f64).exp()).sum();
            let sum = sum_exp(&xs, 1.5) as f64;
            assert!(
                (sum - expected_sum).abs() <= 1e-5 * expected_sum.max(1.0),
                "{len}"
            );
            let mut ys = xs.clone();
            let in_place = exp_in_place(&mut ys, 1.5) as f64;
            assert!((in_place - expected_sum).abs() <= 1e-5 * expected_sum.max(1.0));
            for (y, x) in ys.iter().zip(&xs) {
                assert!((y - (x - 1.5).exp()).abs() <= 1e-6 * (x - 1.5).exp().max(1.0));
            }
            let mut gate = xs.clone();
            silu_mul(&mut gate, &xs);
            for (g, &x) in gate.iter().zip(&xs) {
                let expected = x / (1.0 + (-x).exp()) * x;
                assert!((g - expected).abs() <= 1e-5 * expected.abs().max(1.0));
            }
            // The portable body is what a CPU without AVX2 runs.
            assert_eq!(max_body(&xs), expected_max);
        }
    }
}
