//! KV-cache policies: reading a prompt while keeping at most `budget` cached positions (per
//! layer and KV head), the attention optimisation that prompt compression is compared with.
//!
//! - **StreamingLLM** (Xiao et al., ICLR 2024): the first `sinks` positions (attention sinks) and
//!   the most recent ones.
//! - **H2O** (Zhang et al., NeurIPS 2023): per KV head, the `recent` last positions and the
//!   earlier ones with the most accumulated attention ("heavy hitters").
//! - **SnapKV** (Li et al., NeurIPS 2024): once the prompt is read, per KV head, the last
//!   `window` positions (the observation window: the question, in a prompt that ends with it) and
//!   the earlier ones its queries attend to most, average-pooled over `kernel` neighbours.
//!
//! Where we differ from the reference code (docs/ARCHITECTURE.md has the summary):
//! - Streaming and H2O evict after every `step` tokens read (32), not after every token: each
//!   forward reads a chunk (one gemm rather than 32 matrix-vector products), so while the prompt
//!   is read the cache peaks at `budget + step` positions; once it is read it holds `budget`.
//!   SnapKV reads the whole prompt and evicts once, as in its paper.
//! - Positions: cached keys keep the rotation of their original positions and a new token is
//!   rotated at its original position (H2O's and SnapKV's choice; StreamingLLM's code re-rotates
//!   keys at their slots in the cache). The three policies then differ only in what they keep.
//! - Grouped-query attention: probabilities are summed over the query heads that share a KV head
//!   and positions are chosen per KV head (the reference code repeats the KV heads and chooses per
//!   query head, storing `heads / kv_heads` copies).
//! - H2O sums raw probabilities, as its code does (which favours early positions).
//! - Nothing is evicted while answering: the answer's tokens are added after the prompt's
//!   `budget` positions, as they are after a compressed prompt.
//!
//! Attention probabilities are recomputed by [`kernels::attention_mass`] beside the fused
//! attention, on this path only: the plain forward pass is not slowed.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::kernels;
use crate::llama::{CausalLm, KvCache};

/// StreamingLLM's attention sinks: 4 (1–2 were too few in its paper, 8 no better).
pub const SINKS: usize = 4;
/// SnapKV's observation window (its code's default).
pub const OBSERVATION_WINDOW: usize = 32;
/// SnapKV's pooling kernel (its code's default, average pooling).
pub const POOLING_KERNEL: usize = 5;
/// Tokens read between evictions (StreamingLLM, H2O).
pub const EVICTION_STEP: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Streaming,
    HeavyHitters,
    SnapKv,
}

impl PolicyKind {
    pub const ALL: [Self; 3] = [Self::Streaming, Self::HeavyHitters, Self::SnapKv];

    pub fn name(self) -> &'static str {
        match self {
            Self::Streaming => "streaming",
            Self::HeavyHitters => "h2o",
            Self::SnapKv => "snapkv",
        }
    }
}

impl FromStr for PolicyKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == s.trim())
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown KV-cache policy `{s}`: choose streaming, h2o or snapkv"
                ))
            })
    }
}

/// What a policy keeps beyond its scored positions.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Streaming { sinks: usize },
    HeavyHitters { recent: usize },
    SnapKv { window: usize, kernel: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct KvPolicy {
    pub rule: Rule,
    /// Positions kept per layer and KV head once the prompt is read.
    pub budget: usize,
    /// Tokens read between evictions (StreamingLLM, H2O).
    pub step: usize,
}

impl KvPolicy {
    /// `kind` at `budget` positions with its paper's settings: 4 sinks; H2O's even split between
    /// heavy hitters and recent positions; SnapKV's window of 32 (at most half the budget, so a
    /// small budget still has positions to choose) and pooling kernel 5.
    pub fn new(kind: PolicyKind, budget: usize) -> Self {
        let rule = match kind {
            PolicyKind::Streaming => Rule::Streaming { sinks: SINKS },
            PolicyKind::HeavyHitters => Rule::HeavyHitters { recent: budget / 2 },
            PolicyKind::SnapKv => Rule::SnapKv {
                window: OBSERVATION_WINDOW.min(budget / 2),
                kernel: POOLING_KERNEL,
            },
        };
        Self {
            rule,
            budget,
            step: EVICTION_STEP,
        }
    }

    pub fn kind(&self) -> PolicyKind {
        match self.rule {
            Rule::Streaming { .. } => PolicyKind::Streaming,
            Rule::HeavyHitters { .. } => PolicyKind::HeavyHitters,
            Rule::SnapKv { .. } => PolicyKind::SnapKv,
        }
    }

    fn check(&self) -> Result<()> {
        let (reserved, what) = match self.rule {
            Rule::Streaming { sinks } => (sinks, "attention sinks"),
            Rule::HeavyHitters { recent } => (recent, "recent positions"),
            Rule::SnapKv { window, kernel } => {
                if kernel % 2 == 0 {
                    return Err(Error::InvalidInput(format!(
                        "SnapKV's pooling kernel must be odd (it is centred), not {kernel}"
                    )));
                }
                (window, "observation window")
            }
        };
        if self.budget <= reserved {
            return Err(Error::InvalidInput(format!(
                "a KV budget of {} positions leaves none beyond {}'s {reserved} {what}: raise the \
                 budget",
                self.budget,
                self.kind().name()
            )));
        }
        if self.step == 0 {
            return Err(Error::InvalidInput(
                "a KV policy must read at least one token between evictions".into(),
            ));
        }
        Ok(())
    }
}

/// A prompt read under a policy: the cache (ready for [`crate::generate::greedy`]) and the
/// original position of every row it holds.
pub struct PolicyCache {
    pub cache: KvCache,
    /// The most rows the cache held at once while the prompt was read: the memory the policy
    /// needs, which for SnapKV (it evicts once, at the end) is the whole prompt's.
    pub peak_rows: usize,
    /// Per layer, `rows × kv_heads`: the position row j of KV head h was read at.
    positions: Vec<Vec<usize>>,
    kv_heads: usize,
}

impl PolicyCache {
    /// The positions KV head `kv_head` of layer `layer` holds, in row order (ascending).
    pub fn positions(&self, layer: usize, kv_head: usize) -> Vec<usize> {
        self.positions[layer]
            .iter()
            .skip(kv_head)
            .step_by(self.kv_heads)
            .copied()
            .collect()
    }
}

/// Reads `ids` (not empty) into a fresh cache of `model` under `policy`.
pub fn read(model: &CausalLm, ids: &[u32], policy: &KvPolicy) -> Result<PolicyCache> {
    policy.check()?;
    if ids.is_empty() {
        return Err(Error::InvalidInput(
            "a KV-cache policy needs a prompt of at least one token".into(),
        ));
    }
    let (layers, kv_heads) = (model.config.layers, model.config.kv_heads);
    let mut cache = model.new_cache();
    let mut positions = vec![Vec::new(); layers];
    // Per layer, `rows × kv_heads` attention mass (H2O) or votes (SnapKV); empty for StreamingLLM.
    let mut scores: Vec<Vec<f32>> = vec![Vec::new(); layers];
    let appended = |positions: &mut Vec<Vec<usize>>, from: usize, count: usize| {
        for layer in positions.iter_mut() {
            layer.extend((from..from + count).flat_map(|p| std::iter::repeat_n(p, kv_heads)));
        }
    };
    let budget = policy.budget;
    let mut peak_rows = 0;
    match policy.rule {
        Rule::Streaming { sinks } => {
            for chunk in ids.chunks(policy.step) {
                let from = cache.positions_read();
                model.forward(&mut cache, chunk)?;
                peak_rows = peak_rows.max(cache.len());
                appended(&mut positions, from, chunk.len());
                if cache.len() > budget {
                    let rows = streaming_rows(cache.len(), budget, sinks);
                    evict(&mut cache, &mut positions, &mut scores, kv_heads, |_| {
                        rows.clone()
                    });
                }
            }
        }
        Rule::HeavyHitters { recent } => {
            for chunk in ids.chunks(policy.step) {
                let from = cache.positions_read();
                model.forward_observed(&mut cache, chunk, &mut |layer, q, k, shape| {
                    let mass = &mut scores[layer];
                    mass.resize((shape.past + shape.queries) * kv_heads, 0.0);
                    kernels::attention_mass(q, k, shape, 0..shape.queries, mass);
                })?;
                peak_rows = peak_rows.max(cache.len());
                appended(&mut positions, from, chunk.len());
                if cache.len() > budget {
                    evict(&mut cache, &mut positions, &mut scores, kv_heads, |mass| {
                        heavy_hitter_rows(mass, budget, recent)
                    });
                }
            }
        }
        Rule::SnapKv { window, kernel } => {
            // Nothing is evicted before the end, so rows are positions.
            let window_start = ids.len().saturating_sub(window);
            model.forward_observed(&mut cache, ids, &mut |layer, q, k, shape| {
                let first = window_start.max(shape.past) - shape.past;
                if first < shape.queries {
                    let votes = &mut scores[layer];
                    votes.resize((shape.past + shape.queries) * kv_heads, 0.0);
                    kernels::attention_mass(q, k, shape, first..shape.queries, votes);
                }
            })?;
            peak_rows = cache.len();
            appended(&mut positions, 0, ids.len());
            if cache.len() > budget {
                evict(&mut cache, &mut positions, &mut scores, kv_heads, |votes| {
                    snapkv_rows(votes, budget, window, kernel)
                });
            }
        }
    }
    Ok(PolicyCache {
        cache,
        peak_rows,
        positions,
        kv_heads,
    })
}

/// Keeps, in every layer and KV head, the rows `choose` picks from that head's scores (an empty
/// slice for StreamingLLM), with their positions and scores.
fn evict(
    cache: &mut KvCache,
    positions: &mut [Vec<usize>],
    scores: &mut [Vec<f32>],
    kv_heads: usize,
    choose: impl Fn(&[f32]) -> Vec<usize>,
) {
    let column = |values: &[f32], head: usize| -> Vec<f32> {
        values
            .iter()
            .skip(head)
            .step_by(kv_heads)
            .copied()
            .collect()
    };
    let mut kept = Vec::with_capacity(positions.len());
    for (positions, scores) in positions.iter_mut().zip(scores.iter_mut()) {
        let per_head: Vec<Vec<usize>> = (0..kv_heads)
            .map(|head| choose(&column(scores, head)))
            .collect();
        // Row j of head h is the old row per_head[h][j], at slot j * kv_heads + h.
        let rows: Vec<usize> = (0..per_head[0].len())
            .flat_map(|j| per_head.iter().map(move |head| head[j]))
            .collect();
        let slot = |i: usize| rows[i] * kv_heads + i % kv_heads;
        *positions = (0..rows.len()).map(|i| positions[slot(i)]).collect();
        if !scores.is_empty() {
            *scores = (0..rows.len()).map(|i| scores[slot(i)]).collect();
        }
        kept.push(rows);
    }
    cache.retain_rows(&kept, kv_heads);
}

/// StreamingLLM's rows of `len > budget`: the first `sinks` and the last `budget − sinks`.
pub fn streaming_rows(len: usize, budget: usize, sinks: usize) -> Vec<usize> {
    (0..sinks).chain(len - (budget - sinks)..len).collect()
}

/// H2O's rows of one head (`mass.len() > budget`): the last `recent`, and the `budget − recent`
/// earlier ones with the most accumulated attention.
pub fn heavy_hitter_rows(mass: &[f32], budget: usize, recent: usize) -> Vec<usize> {
    let older = mass.len() - recent;
    let mut rows = top_rows(&mass[..older], budget - recent);
    rows.extend(older..mass.len());
    rows
}

/// SnapKV's rows of one head (`votes.len() > budget`): the last `window` (the observation
/// window), and the `budget − window` earlier ones with the most votes after average pooling.
pub fn snapkv_rows(votes: &[f32], budget: usize, window: usize, kernel: usize) -> Vec<usize> {
    let prefix = votes.len() - window;
    let mut rows = top_rows(&average_pool(&votes[..prefix], kernel), budget - window);
    rows.extend(prefix..votes.len());
    rows
}

/// The mean over an odd `kernel` of neighbours centred on each entry, zeros past the ends
/// (PyTorch's `avg_pool1d(kernel, stride 1, padding kernel / 2)`, as SnapKV calls it): a position
/// next to a strongly attended one is kept with it, so kept spans stay readable.
fn average_pool(values: &[f32], kernel: usize) -> Vec<f32> {
    let half = kernel / 2;
    (0..values.len())
        .map(|i| {
            let span = i.saturating_sub(half)..(i + half + 1).min(values.len());
            values[span].iter().sum::<f32>() / kernel as f32
        })
        .collect()
}

/// The indices of the `count` highest scores (the earlier of equal ones), ascending.
fn top_rows(scores: &[f32], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(count);
    order.sort_unstable();
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_keeps_the_sinks_and_the_most_recent_rows() {
        assert_eq!(streaming_rows(12, 7, 4), vec![0, 1, 2, 3, 9, 10, 11]);
        assert_eq!(streaming_rows(5, 4, 2), vec![0, 1, 3, 4]);
    }

    #[test]
    fn heavy_hitters_are_the_most_attended_older_rows_beside_the_recent_window() {
        // 8 rows, budget 5, recent 2: rows 6 and 7, and the 3 heaviest of rows 0..6 — even
        // where a recent row (7, mass 0) has less mass than an evicted one (row 4).
        let mass = [4.0, 0.5, 3.0, 0.2, 1.0, 2.5, 9.0, 0.0];
        assert_eq!(heavy_hitter_rows(&mass, 5, 2), vec![0, 2, 5, 6, 7]);
        // Ties go to the earlier row.
        assert_eq!(heavy_hitter_rows(&[1.0, 1.0, 1.0, 0.0], 2, 1), vec![0, 3]);
    }

    #[test]
    fn snapkv_keeps_the_window_and_the_pooled_favourites() {
        // Kernel 1 (no pooling): the top 2 of the prefix (rows 1 and 4), then the window.
        let votes = [0.1, 5.0, 0.05, 0.3, 2.0, 0.2, 7.0, 7.0];
        assert_eq!(snapkv_rows(&votes, 4, 2, 1), vec![1, 4, 6, 7]);
        // Kernel 3 means over rows r-1, r, r+1, zero-padded. Row 2 (almost no votes) now beats
        // row 4: it sits beside the strongly attended row 1.
        assert_eq!(snapkv_rows(&votes, 4, 2, 3), vec![1, 2, 6, 7]);
        let pooled = average_pool(&votes[..6], 3);
        let expected = [
            5.1 / 3.0,
            5.15 / 3.0,
            5.35 / 3.0,
            2.35 / 3.0,
            2.5 / 3.0,
            2.2 / 3.0,
        ];
        assert!(pooled
            .iter()
            .zip(expected)
            .all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn budgets_that_leave_nothing_to_choose_are_refused() {
        assert!(KvPolicy::new(PolicyKind::Streaming, 4).check().is_err());
        assert!(KvPolicy::new(PolicyKind::Streaming, 5).check().is_ok());
        assert!(KvPolicy::new(PolicyKind::HeavyHitters, 0).check().is_err());
        assert!(KvPolicy::new(PolicyKind::SnapKv, 1).check().is_ok());
        let mut even = KvPolicy::new(PolicyKind::SnapKv, 100);
        even.rule = Rule::SnapKv {
            window: 32,
            kernel: 4,
        };
        assert!(even.check().unwrap_err().to_string().contains("odd"));
        assert_eq!(
            KvPolicy::new(PolicyKind::SnapKv, 40).rule,
            Rule::SnapKv {
                window: 20,
                kernel: 5
            }
        );
        for kind in PolicyKind::ALL {
            assert_eq!(kind.name().parse::<PolicyKind>().unwrap(), kind);
        }
        assert!("lru".parse::<PolicyKind>().is_err());
    }
}
