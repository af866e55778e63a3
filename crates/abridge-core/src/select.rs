//! Selection: which units to keep so that the *rendered* text meets the budget.
//!
//! Units are ranked (a method supplies scores, and optionally a set of units it prefers), and the
//! selector keeps the best-ranked prefix whose rendered text, counted by the target LLM's
//! [`TokenCounter`], comes closest to the target (ties go to the shorter text). Counting the
//! rendered text, not summing per-unit estimates, is what makes the achieved size match the target:
//! token counts are not additive across word boundaries. The prefix length is found by bisection,
//! so a selection renders and counts the text about `log2(units)` times.
//!
//! Protected units are always kept and count against the budget; when they alone exceed it they
//! are still kept (and the result says so). Regions marked `<abridge rate=r>` are selected first,
//! each to `r` of its own size; the unmarked text then fills what the overall target leaves.

use std::cmp::Ordering;
use std::ops::Range;

use crate::budget::Target;
use crate::protect::overlaps_any;
use crate::render::render;
use crate::segment::body;
use crate::TokenCounter;

/// How selection treats a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Always kept: protected, or the text's whitespace tail.
    Keep,
    /// Never kept: removed by a coarse stage (LLMLingua's demonstration filter).
    Exclude,
    /// Competes for the budget of [`Plan::groups`]`[g]`.
    Group(usize),
}

/// Units that compete for one budget.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    /// `None` for the unmarked text (which gets the overall target), `Some(r)` for a
    /// `<abridge rate=r>` region.
    pub rate: Option<f64>,
    /// The unit indices the group's members lie in (for a region, the units overlapping it).
    pub units: Range<usize>,
}

/// The units of a prompt and the role of each in selection.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub units: Vec<Range<usize>>,
    pub roles: Vec<Role>,
    /// Group 0 is the unmarked text; group `i > 0` is `rated[i - 1]` of [`Plan::new`].
    pub groups: Vec<Group>,
}

impl Plan {
    /// `protected` and `rated` hold sorted, disjoint byte ranges. A unit whose body overlaps a
    /// protected range is kept; otherwise it joins the first rated region its body overlaps.
    pub fn new(
        text: &str,
        units: Vec<Range<usize>>,
        protected: &[Range<usize>],
        rated: &[(Range<usize>, f64)],
    ) -> Self {
        let mut groups = vec![Group {
            rate: None,
            units: 0..units.len(),
        }];
        groups.extend(rated.iter().map(|(span, rate)| {
            let first = units.partition_point(|u| u.end <= span.start);
            let last = units.partition_point(|u| u.start < span.end);
            Group {
                rate: Some(*rate),
                units: first..last.max(first),
            }
        }));
        let roles = units
            .iter()
            .map(|unit| {
                let body = body(text, unit);
                if body.is_empty() || overlaps_any(protected, &body) {
                    return Role::Keep;
                }
                let region = rated.partition_point(|(span, _)| span.end <= body.start);
                match rated.get(region) {
                    Some((span, _)) if span.start < body.end => Role::Group(region + 1),
                    _ => Role::Group(0),
                }
            })
            .collect();
        Self {
            units,
            roles,
            groups,
        }
    }

    /// Every unit no coarse stage removed.
    pub fn not_excluded(&self) -> Vec<bool> {
        self.roles
            .iter()
            .map(|role| *role != Role::Exclude)
            .collect()
    }

    /// Only the units that must be kept.
    pub fn kept_by_role(&self) -> Vec<bool> {
        self.roles.iter().map(|role| *role == Role::Keep).collect()
    }

    /// The members of group `g`, best first: `preferred` units before the others, then by score
    /// (unscored last), then by position, so equal scores resolve deterministically.
    pub fn ranked(
        &self,
        g: usize,
        scores: &[Option<f32>],
        preferred: Option<&[bool]>,
    ) -> Vec<usize> {
        let mut members: Vec<usize> = self.groups[g]
            .units
            .clone()
            .filter(|&i| self.roles[i] == Role::Group(g))
            .collect();
        let is_preferred = |i: usize| preferred.is_some_and(|p| p[i]);
        members.sort_by(|&a, &b| {
            is_preferred(b)
                .cmp(&is_preferred(a))
                .then_with(|| compare_scores(scores[b], scores[a]))
                .then(a.cmp(&b))
        });
        members
    }
}

/// Orders scores with unscored units lowest.
pub(crate) fn compare_scores(a: Option<f32>, b: Option<f32>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

/// Chooses the kept units: protected ones, each rated region to its rate, and the unmarked text to
/// `target` (see the module documentation).
pub(crate) fn select(
    text: &str,
    plan: &Plan,
    scores: &[Option<f32>],
    preferred: Option<&[bool]>,
    target: Target,
    counter: &dyn TokenCounter,
) -> Vec<bool> {
    let mut kept = plan.kept_by_role();
    for (g, group) in plan.groups.iter().enumerate().skip(1) {
        let span = group.units.clone();
        let Some(rate) = group.rate.filter(|_| !span.is_empty()) else {
            continue;
        };
        let order = plan.ranked(g, scores, preferred);
        let region_text = &text[plan.units[span.start].start..plan.units[span.end - 1].end];
        let region_target = (rate * counter.count(region_text) as f64).round() as usize;
        closest_prefix(&mut kept, &order, region_target, |kept| {
            counter.count(&render(
                text,
                &plan.units[span.clone()],
                &kept[span.clone()],
            ))
        });
    }
    let order = plan.ranked(0, scores, preferred);
    match target {
        Target::Tokens(target) => closest_prefix(&mut kept, &order, target, |kept| {
            counter.count(&render(text, &plan.units, kept))
        }),
        Target::Threshold(threshold) => {
            for &i in &order {
                kept[i] = scores[i].is_some_and(|s| s >= threshold);
            }
        }
    }
    kept
}

/// Drops the lowest-ranked kept units of the unmarked text until the rendered text is within
/// `target` (protected units stay, and so does what rated regions kept). For methods that
/// promise never to end over a token target (LLMLingua-2 and `fast`), after the closest
/// selection may have rounded up.
pub(crate) fn within_target(
    text: &str,
    plan: &Plan,
    scores: &[Option<f32>],
    kept: &mut [bool],
    target: usize,
    counter: &dyn TokenCounter,
) {
    let measure = |kept: &[bool]| counter.count(&render(text, &plan.units, kept));
    if measure(kept) <= target {
        return;
    }
    let order: Vec<usize> = plan
        .ranked(0, scores, None)
        .into_iter()
        .filter(|&i| kept[i])
        .collect();
    let keep_prefix = |kept: &mut [bool], k: usize| {
        for (rank, &i) in order.iter().enumerate() {
            kept[i] = rank < k;
        }
        measure(kept)
    };
    // The whole order is over the target, so only shorter prefixes are tried.
    let longest = longest_fitting(order.len().saturating_sub(1), |k| {
        keep_prefix(kept, k) <= target
    });
    keep_prefix(kept, longest);
}

/// The largest `k` in `0..=n` for which `fits(k)` holds, found by bisection: `fits` must hold up
/// to some `k` and fail beyond it (a measure that grows with `k`, within a target). 0 when no `k`
/// fits (`fits(0)` is not asked).
pub(crate) fn longest_fitting(n: usize, mut fits: impl FnMut(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Why a result misses its token target in a way a user must hear about, if it does: the
/// protected text alone is over it, or nothing at all could be kept from a non-empty text.
/// (Selection rounding to the nearest unit is not a miss.)
pub(crate) fn unreachable_reason(
    source: &str,
    compressed: &str,
    target: Target,
    protected_tokens: usize,
) -> Option<String> {
    let Target::Tokens(target) = target else {
        return None;
    };
    if protected_tokens > target {
        return Some(format!(
            "the protected text alone (instruction, question, force tokens, kept markup) is {protected_tokens} tokens, over the target of {target}; it was kept whole: protect less or raise the budget"
        ));
    }
    if compressed.trim().is_empty() && !source.trim().is_empty() {
        return Some(format!(
            "no piece of the text fits the target of {target} tokens (not even one character), so nothing was kept: raise the rate or the target"
        ));
    }
    None
}

/// Keeps the prefix of `order` whose `measure` is closest to `target` (ties: the shorter prefix),
/// assuming `measure` grows with the prefix, which holds up to rendering noise.
fn closest_prefix(
    kept: &mut [bool],
    order: &[usize],
    target: usize,
    mut measure: impl FnMut(&[bool]) -> usize,
) {
    let mut measure_prefix = |kept: &mut [bool], k: usize| {
        for (rank, &i) in order.iter().enumerate() {
            kept[i] = rank < k;
        }
        measure(kept)
    };
    let n = order.len();
    if measure_prefix(kept, n) <= target {
        return;
    }
    let at_zero = measure_prefix(kept, 0);
    if at_zero >= target {
        return;
    }
    // Invariant: measure(lo) < target < measure(hi).
    let (mut lo, mut hi, mut at_lo, mut at_hi) = (0, n, at_zero, usize::MAX);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let at_mid = measure_prefix(kept, mid);
        if at_mid >= target {
            (hi, at_hi) = (mid, at_mid);
        } else {
            (lo, at_lo) = (mid, at_mid);
        }
    }
    if at_hi == usize::MAX {
        at_hi = measure_prefix(kept, hi);
    }
    let best = if at_hi - target < target - at_lo {
        hi
    } else {
        lo
    };
    measure_prefix(kept, best);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Segmenter, Words};
    use crate::testing::WordCounter;

    fn plan(text: &str, protected: &[Range<usize>], rated: &[(Range<usize>, f64)]) -> Plan {
        Plan::new(text, Words.segment(text), protected, rated)
    }

    fn kept_text(text: &str, plan: &Plan, kept: &[bool]) -> String {
        render(text, &plan.units, kept)
    }

    #[test]
    fn keeps_the_highest_scores_up_to_the_target() {
        let text = "a b c d e f";
        let plan = plan(text, &[], &[]);
        let scores: Vec<_> = [1.0, 6.0, 2.0, 5.0, 3.0, 4.0].map(Some).to_vec();
        let kept = select(text, &plan, &scores, None, Target::Tokens(3), &WordCounter);
        assert_eq!(kept_text(text, &plan, &kept), "b d f");
    }

    #[test]
    fn ties_resolve_by_position_and_preferred_units_come_first() {
        let text = "a b c d";
        let plan = plan(text, &[], &[]);
        let scores = vec![Some(1.0); 4];
        let kept = select(text, &plan, &scores, None, Target::Tokens(2), &WordCounter);
        assert_eq!(kept_text(text, &plan, &kept), "a b");
        let preferred = [false, false, true, true];
        let kept = select(
            text,
            &plan,
            &scores,
            Some(&preferred),
            Target::Tokens(2),
            &WordCounter,
        );
        assert_eq!(kept_text(text, &plan, &kept), "c d");
    }

    #[test]
    fn protected_units_count_against_the_budget_and_survive_when_over_it() {
        let text = "keep1 x keep2 y z";
        let plan = plan(text, &[0..5, 8..13], &[]);
        let scores: Vec<_> = [0.0, 5.0, 0.0, 9.0, 1.0].map(Some).to_vec();
        let kept = select(text, &plan, &scores, None, Target::Tokens(3), &WordCounter);
        assert_eq!(kept_text(text, &plan, &kept), "keep1 keep2 y");
        let kept = select(text, &plan, &scores, None, Target::Tokens(1), &WordCounter);
        assert_eq!(kept_text(text, &plan, &kept), "keep1 keep2");
    }

    #[test]
    fn rated_regions_meet_their_own_rate_and_the_rest_fills_the_target() {
        // Region "r1 r2 r3 r4" at rate 0.5 keeps its two best words; the rest fills up to 5.
        let text = "a b r1 r2 r3 r4 c d";
        let plan = plan(text, &[], &[(4..15, 0.5)]);
        let scores: Vec<_> = [3.0, 1.0, 1.0, 9.0, 8.0, 2.0, 4.0, 0.5].map(Some).to_vec();
        let kept = select(text, &plan, &scores, None, Target::Tokens(5), &WordCounter);
        assert_eq!(kept_text(text, &plan, &kept), "a b r2 r3 c");
    }

    #[test]
    fn threshold_keeps_scores_at_or_above_it() {
        let text = "a b c";
        let plan = plan(text, &[], &[]);
        let scores = vec![Some(2.0), Some(1.0), None];
        let kept = select(
            text,
            &plan,
            &scores,
            None,
            Target::Threshold(2.0),
            &WordCounter,
        );
        assert_eq!(kept, vec![true, false, false]);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one protected range
    fn within_target_drops_the_lowest_scores_until_the_text_fits() {
        let text = "keep a b c d";
        let plan = plan(text, &[0..4], &[]);
        let scores: Vec<_> = [0.0, 4.0, 1.0, 3.0, 2.0].map(Some).to_vec();
        let mut kept = vec![true; 5];
        within_target(text, &plan, &scores, &mut kept, 3, &WordCounter);
        assert_eq!(kept_text(text, &plan, &kept), "keep a c");
        // Protected text over the target stays, alone.
        within_target(text, &plan, &scores, &mut kept, 0, &WordCounter);
        assert_eq!(kept_text(text, &plan, &kept), "keep");
    }

    #[test]
    fn misses_of_the_target_are_explained() {
        let tokens = Target::Tokens(3);
        assert_eq!(unreachable_reason("a b", "a", tokens, 0), None);
        assert!(unreachable_reason("a b", "", tokens, 0)
            .unwrap()
            .contains("nothing was kept"));
        assert!(unreachable_reason("a b", "a b", tokens, 4)
            .unwrap()
            .contains("protected text alone"));
        assert_eq!(unreachable_reason("  ", "", tokens, 0), None);
        assert_eq!(unreachable_reason("a", "", Target::Threshold(1.0), 0), None);
    }

    #[test]
    fn longest_fitting_finds_the_last_k_that_fits() {
        for n in 0..6 {
            for last in 0..=n {
                assert_eq!(longest_fitting(n, |k| k <= last), last, "{n} {last}");
            }
        }
        assert_eq!(longest_fitting(4, |_| false), 0);
    }

    #[test]
    fn closest_prefix_picks_the_nearer_side() {
        // Costs 4, 4, 4: a target of 5 is nearer 4 than 8, a target of 7 nearer 8.
        let costs = [4, 4, 4];
        let order = [0, 1, 2];
        let measure = |kept: &[bool]| {
            kept.iter()
                .zip(costs)
                .filter(|(k, _)| **k)
                .map(|(_, c)| c)
                .sum()
        };
        let mut kept = vec![false; 3];
        closest_prefix(&mut kept, &order, 5, measure);
        assert_eq!(kept, vec![true, false, false]);
        closest_prefix(&mut kept, &order, 7, measure);
        assert_eq!(kept, vec![true, true, false]);
        closest_prefix(&mut kept, &order, 6, measure);
        assert_eq!(
            kept,
            vec![true, false, false],
            "ties go to the shorter text"
        );
    }
}
