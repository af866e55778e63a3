//! Means with 95% percentile-bootstrap intervals.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// A mean and its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// The mean of `values` with the 2.5th and 97.5th percentiles of the means of `resamples`
/// resamples drawn with replacement (seeded). `values` must not be empty.
pub fn bootstrap(values: &[f64], resamples: usize, rng: &mut Rng) -> Estimate {
    assert!(!values.is_empty(), "bootstrap of no values");
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if resamples == 0 {
        return Estimate {
            mean,
            low: mean,
            high: mean,
        };
    }
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * resamples as f64) as usize).min(resamples - 1)];
    Estimate {
        mean,
        low: at(0.025),
        high: at(0.975),
    }
}

/// `Σ numerator / Σ denominator` with a 95% bootstrap interval of paired resamples (the same
/// cases for both sums). The slices must be equally long and not empty.
pub fn bootstrap_ratio(
    numerator: &[f64],
    denominator: &[f64],
    resamples: usize,
    rng: &mut Rng,
) -> Estimate {
    assert!(!numerator.is_empty() && numerator.len() == denominator.len());
    let n = numerator.len();
    let ratio = |indices: &mut dyn Iterator<Item = usize>| {
        let (a, b) = indices.fold((0.0, 0.0), |(a, b), i| {
            (a + numerator[i], b + denominator[i])
        });
        a / b
    };
    let mean = ratio(&mut (0..n));
    if resamples == 0 {
        return Estimate {
            mean,
            low: mean,
            high: mean,
        };
    }
    let mut ratios: Vec<f64> = (0..resamples)
        .map(|_| ratio(&mut (0..n).map(|_| rng.below(n))))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((q * resamples as f64) as usize).min(resamples - 1)];
    Estimate {
        mean,
        low: at(0.025),
        high: at(0.975),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_of_sums_is_paired() {
        // The numerator is always half the denominator, so every resample gives 0.5.
        let den = [1.0, 4.0, 2.0, 8.0];
        let num: Vec<f64> = den.iter().map(|d| d / 2.0).collect();
        let e = bootstrap_ratio(&num, &den, 500, &mut Rng::new(1, "r"));
        assert_eq!((e.mean, e.low, e.high), (0.5, 0.5, 0.5));
        let e = bootstrap_ratio(&[1.0, 0.0], &[1.0, 1.0], 500, &mut Rng::new(1, "r"));
        assert_eq!(e.mean, 0.5);
        assert!(e.low == 0.0 && e.high == 1.0, "{e:?}");
    }

    #[test]
    fn constant_values_have_a_zero_width_interval() {
        let e = bootstrap(&[0.5; 20], 200, &mut Rng::new(0, "b"));
        assert_eq!((e.mean, e.low, e.high), (0.5, 0.5, 0.5));
    }

    #[test]
    fn the_interval_of_a_proportion_matches_the_normal_approximation() {
        // 50 of 100: the standard error is 0.05, so the interval is about ±0.098.
        let values: Vec<f64> = (0..100).map(|i| f64::from(i % 2 == 0)).collect();
        let e = bootstrap(&values, 2000, &mut Rng::new(3, "b"));
        assert_eq!(e.mean, 0.5);
        assert!(
            (e.low - 0.402).abs() < 0.03 && (e.high - 0.598).abs() < 0.03,
            "{e:?}"
        );
    }
}
