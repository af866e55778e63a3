//! The fine stage: LLMLingua's iterative token-level compression, shared by LLMLingua and
//! LongLLMLingua.
//!
//! The kept contexts are read as one [`Stream`] of model tokens, in windows of about
//! `iterative_size` tokens cut at unit boundaries. Each window is scored conditioned on the
//! *already compressed* text before it (the session is truncated back to the compressed prefix
//! and extended with what was kept of the previous window, then with the window), optionally
//! after a condition (LongLLMLingua's question) and by contrast with a reading without it. Each
//! window keeps its best units up to its [`Quota`]; selection (`select.rs`) then prefers the
//! units the windows kept.

use std::ops::Range;

use crate::methods::Decision;
use crate::score::{aggregate, unit_of_token, Meter, RollingSession};
use crate::select::{compare_scores, Plan, Role};
use crate::{Result, TokenScorer};

/// Scores and window decisions of the fine stage, for selection.
pub(crate) struct Scored {
    pub scores: Vec<Option<f32>>,
    /// The units the windows kept.
    pub window_kept: Vec<bool>,
}

impl Scored {
    /// Selection by score, the windows' choices first.
    pub(crate) fn decision(self) -> Decision {
        Decision::Select {
            scores: self.scores,
            preferred: Some(self.window_kept),
        }
    }
}

/// The kept contexts' model tokens as one stream, each token mapped to its unit.
#[derive(Default)]
pub(crate) struct Stream {
    pub ids: Vec<u32>,
    pub spans: Vec<Range<usize>>,
    pub unit_of: Vec<usize>,
}

impl Stream {
    /// Appends the tokens of `units` (which includes the separator before the context, so the
    /// model reads the contexts joined as they appear in the prompt).
    pub fn push(
        &mut self,
        text: &str,
        all_units: &[Range<usize>],
        units: Range<usize>,
        scorer: &dyn TokenScorer,
        meter: &mut Meter,
    ) -> Result<()> {
        let segment = all_units[units.start].start..all_units[units.end - 1].end;
        for token in meter.tokenize(scorer, &text[segment.clone()])? {
            let span = segment.start + token.span.start..segment.start + token.span.end;
            self.unit_of
                .push(units.start + unit_of_token(&all_units[units.clone()], &span));
            self.ids.push(token.id);
            self.spans.push(span);
        }
        Ok(())
    }

    /// Token ranges of about `size` tokens, cut only between units.
    fn windows(&self, size: usize) -> Vec<Range<usize>> {
        let mut windows = Vec::new();
        let mut start = 0;
        for i in 1..=self.ids.len() {
            let at_unit_boundary = i == self.ids.len() || self.unit_of[i] != self.unit_of[i - 1];
            if at_unit_boundary && (i - start >= size || i == self.ids.len()) {
                windows.push(start..i);
                start = i;
            }
        }
        windows
    }
}

/// How a window decides what to keep.
#[derive(Debug, Clone)]
pub(crate) enum Quota {
    /// Keep, of each unit's tokens, the share given per unit (units sharing a share compete
    /// together; protected ones count toward it); marked regions keep their own rate.
    Ratio(Vec<f64>),
    /// Keep units scoring at least this.
    Threshold(f32),
}

/// How the fine stage reads the stream and decides.
pub(crate) struct Fine<'a> {
    /// Model tokens per window.
    pub iterative_size: usize,
    pub quota: Quota,
    /// Tokens read before the stream and kept through it (LongLLMLingua's question): every
    /// token is scored conditioned on them.
    pub condition: &'a [u32],
    /// Score each token by how much the condition lowers its surprisal (surprisal without it
    /// minus surprisal with it: LongLLMLingua's contrastive perplexity).
    pub compare: bool,
}

pub(crate) fn iterate(
    plan: &Plan,
    stream: &Stream,
    fine: &Fine,
    scorer: &dyn TokenScorer,
    meter: &mut Meter,
) -> Result<Scored> {
    let mut scores = vec![None; plan.units.len()];
    let mut window_kept = vec![false; plan.units.len()];
    let mut token_surprisal = vec![0.0f32; stream.ids.len()];
    let mut session = RollingSession::with_prefix(scorer, fine.condition, meter)?;
    // The same reading without the condition, for the contrastive score.
    let mut plain = match fine.compare {
        true => Some(RollingSession::new(scorer, meter)?),
        false => None,
    };
    // Kept tokens of the previous window, not yet read back into the sessions.
    let mut pending: Vec<u32> = Vec::new();
    for window in stream.windows(fine.iterative_size) {
        let compressed_prefix = session.len();
        let plain_prefix = plain.as_ref().map_or(0, RollingSession::len);
        let mut input = std::mem::take(&mut pending);
        let pending_len = input.len();
        input.extend_from_slice(&stream.ids[window.clone()]);
        let surprisals = session.extend(&input, meter)?;
        token_surprisal[window.clone()].copy_from_slice(&surprisals[pending_len..]);
        if let Some(plain) = plain.as_mut() {
            let without = plain.extend(&input, meter)?;
            for (score, without) in token_surprisal[window.clone()]
                .iter_mut()
                .zip(&without[pending_len..])
            {
                *score = without - *score;
            }
        }
        meter.advance(window.len());

        let units = stream.unit_of[window.start]..stream.unit_of[window.end - 1] + 1;
        let unit_scores = aggregate(
            &plan.units[units.clone()],
            &stream.spans[window.clone()],
            &token_surprisal[window.clone()],
        );
        scores[units.clone()].copy_from_slice(&unit_scores);
        decide_window(
            plan,
            stream,
            window.clone(),
            units,
            &scores,
            &fine.quota,
            &mut window_kept,
        );

        let keeps_token = |t: usize| {
            let unit = stream.unit_of[t];
            plan.roles[unit] == Role::Keep || window_kept[unit]
        };
        if !window.clone().all(keeps_token) {
            session.truncate(compressed_prefix + pending_len, meter)?;
            if let Some(plain) = plain.as_mut() {
                plain.truncate(plain_prefix + pending_len, meter)?;
            }
            pending = window
                .filter(|&t| keeps_token(t))
                .map(|t| stream.ids[t])
                .collect();
        }
    }
    Ok(Scored {
        scores,
        window_kept,
    })
}

/// Marks the units of one window that it keeps.
fn decide_window(
    plan: &Plan,
    stream: &Stream,
    window: Range<usize>,
    units: Range<usize>,
    scores: &[Option<f32>],
    quota: &Quota,
    window_kept: &mut [bool],
) {
    let mut unit_tokens = vec![0usize; units.len()];
    for t in window {
        unit_tokens[stream.unit_of[t] - units.start] += 1;
    }
    let tokens = |u: usize| unit_tokens[u - units.start];
    for (g, group) in plan.groups.iter().enumerate() {
        let members: Vec<usize> = units
            .clone()
            .filter(|&u| plan.roles[u] == Role::Group(g))
            .collect();
        if members.is_empty() {
            continue;
        }
        let ratios = match (quota, group.rate) {
            (Quota::Threshold(threshold), None) => {
                for u in members {
                    window_kept[u] = scores[u].is_some_and(|s| s >= *threshold);
                }
                continue;
            }
            (_, Some(rate)) => {
                keep_share(&members, rate, 0, &tokens, scores, window_kept);
                continue;
            }
            (Quota::Ratio(ratios), None) => ratios,
        };
        // Units with the same share compete together (one share in LLMLingua; one per document
        // under LongLLMLingua's dynamic ratio), and their quota covers the window's protected
        // tokens with that share too.
        let mut shares: Vec<(f64, Vec<usize>)> = Vec::new();
        for u in members {
            match shares.iter_mut().find(|(r, _)| *r == ratios[u]) {
                Some((_, part)) => part.push(u),
                None => shares.push((ratios[u], vec![u])),
            }
        }
        for (ratio, part) in shares {
            let protected: usize = units
                .clone()
                .filter(|&u| plan.roles[u] == Role::Keep && ratios[u] == ratio)
                .map(&tokens)
                .sum();
            keep_share(&part, ratio, protected, &tokens, scores, window_kept);
        }
    }
}

/// Keeps `members` in order of decreasing score until `ratio` of their tokens (plus `protected`
/// tokens, already kept) is reached.
fn keep_share(
    members: &[usize],
    ratio: f64,
    protected: usize,
    tokens: &dyn Fn(usize) -> usize,
    scores: &[Option<f32>],
    window_kept: &mut [bool],
) {
    let available: usize = members.iter().map(|&u| tokens(u)).sum::<usize>() + protected;
    let quota = (ratio * available as f64).round() as usize;
    let mut kept_tokens = protected;
    let mut members = members.to_vec();
    members.sort_by(|&a, &b| compare_scores(scores[b], scores[a]).then(a.cmp(&b)));
    for u in members {
        if kept_tokens >= quota {
            break;
        }
        window_kept[u] = true;
        kept_tokens += tokens(u);
    }
}
