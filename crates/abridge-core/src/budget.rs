//! Budgets: how much of the prompt to keep.

use serde::{Deserialize, Serialize};

use crate::error::{Fix, OptionError};
use crate::Result;

/// How much to keep, counted in the target LLM's tokens (the [`crate::TokenCounter`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Kept/original token ratio, in (0, 1] (LLMLingua's `rate`; Selective Context's
    /// `reduce_ratio` is `1 - rate`).
    Rate(f64),
    /// Tokens of the whole compressed prompt, instruction and question included (LLMLingua's
    /// `target_token`, but counted in the target LLM's tokenizer).
    TargetTokens(usize),
    /// Keep every unit whose score (mean surprisal per model token, in nats; for LLMLingua-2 a
    /// keep-probability in [0, 1]) is at least this.
    Threshold(f32),
}

impl Default for Budget {
    /// LLMLingua's default, `rate=0.5`.
    fn default() -> Self {
        Self::Rate(0.5)
    }
}

/// What selection aims for once the budget is applied to a prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    Tokens(usize),
    Threshold(f32),
}

impl Budget {
    /// The budget from command-line style options, at most one of which may be given; none gives
    /// the default. A negative `target_tokens` is rejected here, since [`Budget::TargetTokens`]
    /// cannot hold one.
    pub fn from_options(
        rate: Option<f64>,
        target_tokens: Option<i64>,
        threshold: Option<f32>,
    ) -> Result<Self> {
        let budget = match (rate, target_tokens, threshold) {
            (None, None, None) => Self::default(),
            (Some(rate), None, None) => Self::Rate(rate),
            (None, Some(target), None) => {
                Self::TargetTokens(usize::try_from(target).map_err(|_| {
                    OptionError::new(
                        "target_token",
                        format!("must be positive, got {target}"),
                        Fix::Example("300".into()),
                    )
                })?)
            }
            (None, None, Some(threshold)) => Self::Threshold(threshold),
            _ => {
                let field = if rate.is_some() {
                    "rate"
                } else {
                    "target_token"
                };
                return Err(OptionError::new(
                    field,
                    "cannot be combined with another budget: give only one of rate, target_token and threshold",
                    Fix::None,
                )
                .into());
            }
        };
        budget.validate()?;
        Ok(budget)
    }

    /// Selective Context's `reduce_ratio` (the fraction to remove), as a budget.
    pub fn from_reduce_ratio(reduce_ratio: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&reduce_ratio) {
            return Err(OptionError::new(
                "reduce_ratio",
                format!("must be in [0, 1) (the fraction removed), got {reduce_ratio}"),
                Fix::Example("0.35".into()),
            )
            .into());
        }
        Ok(Self::Rate(1.0 - reduce_ratio))
    }

    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Rate(rate) if !(rate > 0.0 && rate <= 1.0) => Err(OptionError::new(
                "rate",
                format!("must be in (0, 1] (kept/original tokens), got {rate}"),
                Fix::Example("0.5".into()),
            )
            .into()),
            Self::TargetTokens(0) => Err(OptionError::new(
                "target_token",
                "must be at least 1",
                Fix::Example("300".into()),
            )
            .into()),
            Self::Threshold(threshold) if !threshold.is_finite() => Err(OptionError::new(
                "threshold",
                format!("must be a finite number of nats, got {threshold}"),
                Fix::None,
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// The target for a prompt of `origin_tokens` target-LLM tokens.
    pub(crate) fn target(&self, origin_tokens: usize) -> Target {
        match *self {
            // A positive rate keeps something: at least one token.
            Self::Rate(rate) => {
                Target::Tokens(((rate * origin_tokens as f64).round() as usize).max(1))
            }
            Self::TargetTokens(tokens) => Target::Tokens(tokens),
            Self::Threshold(threshold) => Target::Threshold(threshold),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<Budget>) -> String {
        match result {
            Err(crate::Error::InvalidOption(error)) => error.to_string(),
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    #[test]
    fn options_give_one_validated_budget() {
        assert_eq!(
            Budget::from_options(None, None, None).unwrap(),
            Budget::Rate(0.5)
        );
        assert_eq!(
            Budget::from_options(Some(1.0), None, None).unwrap(),
            Budget::Rate(1.0)
        );
        assert_eq!(
            Budget::from_options(None, Some(300), None).unwrap(),
            Budget::TargetTokens(300)
        );
        assert!(message(Budget::from_options(Some(0.5), Some(3), None))
            .contains("give only one of rate"));
        assert!(message(Budget::from_options(None, Some(-5), None))
            .contains("target_token must be positive, got -5"));
        assert!(message(Budget::from_options(None, Some(0), None)).contains("at least 1"));
        for rate in [0.0, -0.1, 1.01, f64::NAN] {
            assert!(message(Budget::from_options(Some(rate), None, None)).contains("(0, 1]"));
        }
        assert!(message(Budget::from_options(None, None, Some(f32::INFINITY))).contains("finite"));
    }

    #[test]
    fn reduce_ratio_is_the_complement_of_rate() {
        assert_eq!(Budget::from_reduce_ratio(0.35).unwrap(), Budget::Rate(0.65));
        assert!(message(Budget::from_reduce_ratio(1.0)).contains("[0, 1)"));
    }

    #[test]
    fn rate_targets_round_to_the_nearest_token_but_keep_one() {
        assert_eq!(Budget::Rate(0.5).target(7), Target::Tokens(4));
        assert_eq!(Budget::Rate(0.33).target(300), Target::Tokens(99));
        assert_eq!(Budget::Rate(0.1).target(2), Target::Tokens(1));
        assert_eq!(Budget::TargetTokens(10).target(3), Target::Tokens(10));
    }
}
