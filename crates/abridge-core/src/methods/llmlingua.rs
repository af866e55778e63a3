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

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Decision, Scoring, Stage, Stages};
use crate::budget::Target;
use crate::coarse::context_filter::take_within_budget;
use crate::coarse::contexts::{
    context_sizes, context_target, context_units, drop_contexts, forced_contexts, kept_tokens,
};
use crate::error::{Fix, OptionError};
use crate::fine::{iterate, Fine, Quota, Stream};
use crate::prompt::Prompt;
use crate::score::{score_stream, Meter};
use crate::select::Plan;
use crate::{CompressRequest, Error, Result, TokenScorer};

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

/// The checks LLMLingua and LongLLMLingua options share.
pub(crate) fn validate_windows_and_context_ids(
    iterative_size: usize,
    force_context_ids: &[usize],
    contexts: usize,
) -> Result<()> {
    if iterative_size == 0 {
        return Err(OptionError::new(
            "iterative_size",
            "must be at least 1",
            Fix::Example("200".into()),
        )
        .into());
    }
    validate_context_ids(force_context_ids, contexts)
}

/// `force_context_ids` name contexts that exist.
pub(crate) fn validate_context_ids(force_context_ids: &[usize], contexts: usize) -> Result<()> {
    match force_context_ids.iter().find(|&&id| id >= contexts) {
        Some(&id) => Err(OptionError::new(
            "force_context_ids",
            format!("names context {id}, and there is no such context: ids are 0-based and there are {contexts} contexts"),
            Fix::None,
        )
        .into()),
        None => Ok(()),
    }
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

impl Stages for LlmlinguaOptions {
    fn validate(&self, request: &CompressRequest) -> Result<()> {
        validate_windows_and_context_ids(
            self.iterative_size,
            &self.force_context_ids,
            request.contexts.len(),
        )
    }

    /// Runs the coarse filter (dropping whole contexts from `plan`) and the iterative fine pass.
    fn score(&self, stage: &mut Stage, input: &Scoring, plan: &mut Plan) -> Result<Decision> {
        let prompt = input.prompt;
        let scorer = stage.scorer();
        let text = prompt.text.as_str();
        let context_units = context_units(prompt, &plan.units);
        let context_target = context_target(prompt, stage.target, stage.counter);
        let context_sizes = context_sizes(prompt, stage.counter);

        let coarse = self.use_context_level_filter && prompt.contexts.len() > 1;
        let kept_contexts = match context_target.filter(|_| coarse) {
            Some(context_target) => {
                let budget = self.context_budget.apply(context_target as f64);
                let kept =
                    coarse_filter(prompt, &context_sizes, self, budget, scorer, stage.meter)?;
                drop_contexts(plan, &context_units, &kept);
                kept
            }
            None => vec![true; prompt.contexts.len()],
        };

        if !self.use_token_level_filter {
            return Ok(Decision::coarse_only(plan));
        }
        let mut stream = Stream::default();
        for (context, units) in context_units.iter().enumerate() {
            if kept_contexts[context] && !units.is_empty() {
                stream.push(text, &plan.units, units.clone(), scorer, stage.meter)?;
            }
        }
        stage.meter.set_total(stage.meter.done() + stream.ids.len());

        let kept_context_tokens = kept_tokens(&context_sizes, &kept_contexts);
        let quota = match stage.target {
            Target::Threshold(threshold) => Quota::Threshold(threshold),
            Target::Tokens(_) => Quota::Ratio(vec![
                (context_target.unwrap_or_default() as f64
                    / kept_context_tokens.max(1) as f64)
                    .min(1.0);
                plan.units.len()
            ]),
        };
        let fine = Fine {
            iterative_size: self.iterative_size,
            quota,
            condition: &[],
            compare: false,
        };
        Ok(iterate(plan, &stream, &fine, scorer, stage.meter)?.decision())
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

    fn request(contexts: usize, options: LlmlinguaOptions) -> CompressRequest {
        CompressRequest::new(
            crate::Method::Llmlingua(options),
            vec!["text".to_string(); contexts],
        )
    }

    #[test]
    fn options_are_validated() {
        let zero = LlmlinguaOptions {
            iterative_size: 0,
            ..Default::default()
        };
        assert!(
            matches!(zero.validate(&request(1, zero.clone())), Err(Error::InvalidOption(e)) if e.field == "iterative_size")
        );
        let missing = LlmlinguaOptions {
            force_context_ids: vec![2],
            ..Default::default()
        };
        assert!(
            matches!(missing.validate(&request(2, missing.clone())), Err(Error::InvalidOption(e)) if e.to_string().contains("context 2"))
        );
    }
}
