//! LLMLingua (Jiang et al., EMNLP 2023): a budget controller, then iterative token-level
//! compression.
//!
//! 1. *Budget controller* (coarse): with several contexts (demonstrations), each is scored on its
//!    own and they are taken in order of decreasing perplexity (the more surprising, the more
//!    informative) until the context budget, `context_budget` applied to the tokens left for
//!    contexts, is spent; the context that crosses it is included. Contexts listed in
//!    `force_context_ids` or holding `<abridge keep>` regions are always taken. The others are
//!    dropped whole, protected spans included.
//! 2. *Iterative compression* (fine): the kept contexts are read as one stream, in windows of about
//!    `iterative_size` model tokens cut at unit boundaries. Each window is scored conditioned on the
//!    *already compressed* text before it: the session is truncated back to the compressed prefix
//!    and extended with what was kept of the previous window, then with the window. Within a
//!    window, units are kept in order of decreasing surprisal until the window's share of the
//!    budget is met (threshold budgets keep the units at or above the threshold).
//! 3. *Global adjustment*: the windows' decisions only approximate the target (they count model
//!    tokens, and a window's last unit overshoots), so the final selection ranks the units the
//!    windows kept first, each part by score, and keeps the prefix of that ranking whose rendered
//!    text meets the target in the target LLM's tokens (see `select.rs`).
//!
//! The instruction and the question are kept verbatim. Differences from the reference
//! implementation's quirks are listed in docs/ALGORITHMS.md.

use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::budget::Target;
use crate::coarse::context_filter::take_within_budget;
use crate::prompt::Prompt;
use crate::score::{aggregate, score_stream, unit_of_token, Meter, RollingSession};
use crate::select::{compare_scores, Plan, Role};
use crate::{Error, Result, TokenCounter, TokenScorer};

/// LLMLingua's options, with its names and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmlinguaOptions {
    /// Model tokens per window of the iterative compression.
    pub iterative_size: usize,
    /// How the coarse filter's budget follows from the tokens left for contexts.
    pub context_budget: ContextBudget,
    /// Run the coarse filter (it only runs with several contexts and a token budget).
    pub use_context_level_filter: bool,
    /// Contexts (0-based) the coarse filter always keeps.
    pub force_context_ids: Vec<usize>,
    /// Compress inside the contexts the coarse filter keeps; `false` keeps them whole, so only
    /// whole contexts are dropped (LLMLingua's `use_token_level_filter=False`).
    pub use_token_level_filter: bool,
}

impl Default for LlmlinguaOptions {
    fn default() -> Self {
        Self {
            iterative_size: 200,
            context_budget: ContextBudget::Add(100.0),
            use_context_level_filter: true,
            force_context_ids: Vec::new(),
            use_token_level_filter: true,
        }
    }
}

impl LlmlinguaOptions {
    pub(crate) fn validate(&self, contexts: usize) -> Result<()> {
        validate_windows_and_context_ids(self.iterative_size, &self.force_context_ids, contexts)
    }
}

/// The checks LLMLingua and LongLLMLingua options share.
pub(crate) fn validate_windows_and_context_ids(
    iterative_size: usize,
    force_context_ids: &[usize],
    contexts: usize,
) -> Result<()> {
    if iterative_size == 0 {
        return Err(Error::InvalidInput(
            "iterative_size must be at least 1 (LLMLingua's default is 200)".into(),
        ));
    }
    if let Some(&id) = force_context_ids.iter().find(|&&id| id >= contexts) {
        return Err(Error::InvalidInput(format!(
            "force_context_ids: there is no context {id}; ids are 0-based and there are {contexts} contexts"
        )));
    }
    Ok(())
}

/// LLMLingua's `context_budget` (`"+100"`, `"*1.5"`), parsed instead of `eval`ed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextBudget {
    /// Tokens added to the context target.
    Add(f64),
    /// Factor applied to the context target (the paper's granular control coefficient k).
    Multiply(f64),
}

impl ContextBudget {
    pub(crate) fn apply(self, target: f64) -> f64 {
        match self {
            Self::Add(tokens) => target + tokens,
            Self::Multiply(factor) => target * factor,
        }
    }
}

impl FromStr for ContextBudget {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || {
            Error::InvalidInput(format!(
                "context_budget `{s}` must be `+N` or `*K` with non-negative numbers, e.g. `+100` or `*1.5`"
            ))
        };
        let s = s.trim();
        let number = |n: &str| {
            n.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
        };
        if let Some(n) = s.strip_prefix('+') {
            number(n).map(Self::Add).ok_or_else(invalid)
        } else if let Some(n) = s.strip_prefix('*') {
            number(n).map(Self::Multiply).ok_or_else(invalid)
        } else {
            Err(invalid())
        }
    }
}

/// Scores and window decisions of the fine stage, for selection.
pub(crate) struct Scored {
    pub scores: Vec<Option<f32>>,
    /// The units the windows kept.
    pub window_kept: Vec<bool>,
}

impl Scored {
    /// No fine stage ran (`use_token_level_filter = false`): nothing scored, nothing dropped.
    pub(crate) fn unscored(plan: &Plan) -> Self {
        Self {
            scores: vec![None; plan.units.len()],
            window_kept: vec![true; plan.units.len()],
        }
    }
}

/// Runs the coarse filter (marking dropped contexts' units [`Role::Exclude`] in `plan`) and the
/// iterative fine pass.
pub(crate) fn score(
    prompt: &Prompt,
    plan: &mut Plan,
    options: &LlmlinguaOptions,
    target: Target,
    scorer: &dyn TokenScorer,
    counter: &dyn TokenCounter,
    meter: &mut Meter,
) -> Result<Scored> {
    let text = prompt.text.as_str();
    let context_units = context_units(prompt, &plan.units);
    let context_target = context_target(prompt, target, counter);

    let context_sizes: Vec<usize> = prompt
        .contexts
        .iter()
        .map(|c| counter.count(&text[c.clone()]))
        .collect();

    let coarse = options.use_context_level_filter && prompt.contexts.len() > 1;
    let kept_contexts = match context_target.filter(|_| coarse) {
        Some(context_target) => {
            let budget = options.context_budget.apply(context_target as f64);
            let kept = coarse_filter(prompt, &context_sizes, options, budget, scorer, meter)?;
            for (context, units) in context_units.iter().enumerate() {
                if !kept[context] {
                    plan.roles[units.clone()].fill(Role::Exclude);
                }
            }
            kept
        }
        None => vec![true; prompt.contexts.len()],
    };

    if !options.use_token_level_filter {
        return Ok(Scored::unscored(plan));
    }
    let mut stream = Stream::default();
    for (context, units) in context_units.iter().enumerate() {
        if kept_contexts[context] && !units.is_empty() {
            stream.push(text, &plan.units, units.clone(), scorer, meter)?;
        }
    }
    meter.set_total(meter.done() + stream.ids.len());

    let kept_context_tokens: usize = context_sizes
        .iter()
        .zip(&kept_contexts)
        .filter(|(_, kept)| **kept)
        .map(|(size, _)| size)
        .sum();
    let quota = match target {
        Target::Threshold(threshold) => Quota::Threshold(threshold),
        Target::Tokens(_) => Quota::Ratio(vec![
            (context_target.unwrap_or_default() as f64
                / kept_context_tokens.max(1) as f64)
                .min(1.0);
            plan.units.len()
        ]),
    };
    let fine = Fine {
        iterative_size: options.iterative_size,
        quota,
        condition: &[],
        compare: false,
    };
    iterate(plan, &stream, &fine, scorer, meter)
}

/// Target-LLM tokens left for the contexts once the instruction and question are paid for (none
/// for a threshold budget).
pub(crate) fn context_target(
    prompt: &Prompt,
    target: Target,
    counter: &dyn TokenCounter,
) -> Option<usize> {
    match target {
        Target::Tokens(tokens) => {
            let text = prompt.text.as_str();
            let (first, last) = (
                &prompt.contexts[0],
                &prompt.contexts[prompt.contexts.len() - 1],
            );
            let verbatim = counter.count(&text[..first.start]) + counter.count(&text[last.end..]);
            Some(tokens.saturating_sub(verbatim))
        }
        Target::Threshold(_) => None,
    }
}

/// Which contexts the budget controller keeps; `context_sizes` are in target-LLM tokens.
fn coarse_filter(
    prompt: &Prompt,
    context_sizes: &[usize],
    options: &LlmlinguaOptions,
    budget: f64,
    scorer: &dyn TokenScorer,
    meter: &mut Meter,
) -> Result<Vec<bool>> {
    let mut context_tokens = Vec::with_capacity(prompt.contexts.len());
    for context in &prompt.contexts {
        context_tokens.push(meter.tokenize(scorer, &prompt.text[context.clone()])?);
    }
    let total: usize = context_tokens.iter().map(Vec::len).sum();
    // The fine stage reads about as much again; refined once the filter has run.
    meter.set_total(2 * total);
    // Mean surprisal: the log of the perplexity, which ranks the same.
    let mut mean_surprisal = Vec::with_capacity(context_tokens.len());
    for tokens in &context_tokens {
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        let surprisals = score_stream(scorer, &ids, meter)?;
        mean_surprisal.push(
            surprisals.iter().map(|&s| f64::from(s)).sum::<f64>() / surprisals.len().max(1) as f64,
        );
    }
    let mut ranked: Vec<usize> = (0..prompt.contexts.len()).collect();
    ranked.sort_by(|&a, &b| {
        mean_surprisal[b]
            .total_cmp(&mean_surprisal[a])
            .then(a.cmp(&b))
    });

    let forced = forced_contexts(prompt, &options.force_context_ids);
    Ok(take_within_budget(&ranked, &forced, context_sizes, budget))
}

/// Contexts a coarse filter must keep: those listed, and those holding `<abridge keep>` regions.
pub(crate) fn forced_contexts(prompt: &Prompt, force_context_ids: &[usize]) -> Vec<bool> {
    (0..prompt.contexts.len())
        .map(|c| force_context_ids.contains(&c) || prompt.context_has_keep[c])
        .collect()
}

/// Each context's units: the range of `units` from the one holding the context's first byte
/// (whose leading whitespace is the separator before the context) to its last.
pub(crate) fn context_units(prompt: &Prompt, units: &[Range<usize>]) -> Vec<Range<usize>> {
    prompt
        .contexts
        .iter()
        .map(|c| {
            units.partition_point(|u| u.end <= c.start)..units.partition_point(|u| u.end <= c.end)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_budget_parses_llmlingua_strings() {
        assert_eq!(
            "+100".parse::<ContextBudget>().unwrap(),
            ContextBudget::Add(100.0)
        );
        assert_eq!(
            " *1.5".parse::<ContextBudget>().unwrap(),
            ContextBudget::Multiply(1.5)
        );
        for bad in ["100", "-5", "*x", "+-3", "/2"] {
            assert!(
                matches!(bad.parse::<ContextBudget>(), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn options_are_validated() {
        let zero = LlmlinguaOptions {
            iterative_size: 0,
            ..Default::default()
        };
        assert!(
            matches!(zero.validate(1), Err(Error::InvalidInput(m)) if m.contains("iterative_size"))
        );
        let missing = LlmlinguaOptions {
            force_context_ids: vec![2],
            ..Default::default()
        };
        assert!(
            matches!(missing.validate(2), Err(Error::InvalidInput(m)) if m.contains("no context 2"))
        );
    }
}
