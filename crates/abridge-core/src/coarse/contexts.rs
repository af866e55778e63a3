//! Context accounting: each context's units and size, the tokens left for the contexts, and
//! dropping whole contexts. Every coarse stage and every method counts contexts this way.

use std::ops::Range;

use crate::budget::Target;
use crate::prompt::Prompt;
use crate::select::{Plan, Role};
use crate::TokenCounter;

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

/// Each context's size in target-LLM tokens.
pub(crate) fn context_sizes(prompt: &Prompt, counter: &dyn TokenCounter) -> Vec<usize> {
    prompt
        .contexts
        .iter()
        .map(|c| counter.count(&prompt.text[c.clone()]))
        .collect()
}

/// The tokens of the kept contexts.
pub(crate) fn kept_tokens(sizes: &[usize], kept: &[bool]) -> usize {
    sizes
        .iter()
        .zip(kept)
        .filter(|(_, kept)| **kept)
        .map(|(size, _)| size)
        .sum()
}

/// Marks every unit of the contexts not `kept` [`Role::Exclude`].
pub(crate) fn drop_contexts(plan: &mut Plan, context_units: &[Range<usize>], kept: &[bool]) {
    for (units, kept) in context_units.iter().zip(kept) {
        if !kept {
            plan.roles[units.clone()].fill(Role::Exclude);
        }
    }
}
