//! Where the kept documents go in the compressed prompt (LLMLingua's `reorder_context`).
//!
//! LLMs use information at the start and end of a long context best and lose what sits in the
//! middle (Liu et al., "Lost in the middle"); LongLLMLingua therefore puts the most relevant
//! documents first (`sort`) or at both ends (`two_stage`).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reorder {
    /// The documents' own order.
    #[default]
    Original,
    /// Most relevant first.
    Sort,
    /// Most relevant at both ends: ranks 1, 3, 5, ... from the start, then ..., 6, 4, 2 towards
    /// the end.
    TwoStage,
}

impl Reorder {
    /// Arranges documents given best first (`ranked`).
    pub fn apply(self, ranked: &[usize]) -> Vec<usize> {
        match self {
            Self::Original => {
                let mut order = ranked.to_vec();
                order.sort_unstable();
                order
            }
            Self::Sort => ranked.to_vec(),
            Self::TwoStage => ranked
                .iter()
                .step_by(2)
                .chain(ranked.iter().skip(1).step_by(2).rev())
                .copied()
                .collect(),
        }
    }
}

impl FromStr for Reorder {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "original" => Ok(Self::Original),
            "sort" => Ok(Self::Sort),
            "two_stage" | "two-stage" => Ok(Self::TwoStage),
            _ => Err(Error::InvalidInput(format!(
                "unknown reorder `{s}`: use original, sort or two_stage"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrangements() {
        let ranked = [4, 1, 3, 0, 2];
        assert_eq!(Reorder::Original.apply(&ranked), [0, 1, 2, 3, 4]);
        assert_eq!(Reorder::Sort.apply(&ranked), ranked);
        // Ranks 1, 3, 5 (4, 3, 2) then 4, 2 (0, 1): the best two are at the two ends.
        assert_eq!(Reorder::TwoStage.apply(&ranked), [4, 3, 2, 0, 1]);
        assert_eq!(Reorder::TwoStage.apply(&[7]), [7]);
        assert!(Reorder::TwoStage.apply(&[]).is_empty());
        assert_eq!("two_stage".parse::<Reorder>().unwrap(), Reorder::TwoStage);
        assert!("shuffle".parse::<Reorder>().is_err());
    }
}
