//! The baselines every report includes, and the prompt layout they share with abridge.
//!
//! A prompt is LLMLingua's layout, the instruction, contexts and question joined by blank lines
//! (what `abridge_core::compress` assembles with markup off). Baselines drop whole words of the
//! contexts, keep the instruction and question verbatim, and render with abridge-core's renderer,
//! so they differ from the methods only in *which* words they keep:
//! - `head`: the first words of the contexts (plain truncation);
//! - `tail`: the last words;
//! - `random`: words drawn uniformly at random (seeded per case).
//!
//! Each keeps the most words whose rendered prompt fits the target, `rate` × the original prompt's
//! tokens, counted like the methods' budget (cl100k).

use std::ops::Range;

use abridge_core::render::render;
use abridge_core::segment::{body, Segmenter, Words};
use abridge_core::TokenCounter;
pub use abridge_core::PART_SEPARATOR;

use crate::rng::Rng;
use crate::suites::Case;

/// A case's whole prompt and the byte range of its contexts in it (empty parts are left out, as
/// abridge-core does; a case without contexts is the closed-book prompt).
pub fn assemble(case: &Case) -> (String, Range<usize>) {
    let mut text = String::new();
    let mut push = |part: &str| {
        if !text.is_empty() {
            text.push_str(PART_SEPARATOR);
        }
        let start = text.len();
        text.push_str(part);
        start..text.len()
    };
    if !case.instruction.trim().is_empty() {
        push(&case.instruction);
    }
    let region = (!case.contexts.is_empty()).then(|| push(&case.contexts.join(PART_SEPARATOR)));
    if !case.question.trim().is_empty() {
        push(&case.question);
    }
    let end = text.len();
    (text, region.unwrap_or(end..end))
}

/// The compressed contexts alone: the kept units whose body lies in `region`.
pub fn context_text(
    source: &str,
    units: &[Range<usize>],
    kept: &[bool],
    region: &Range<usize>,
) -> String {
    let (units, kept): (Vec<Range<usize>>, Vec<bool>) = units
        .iter()
        .zip(kept)
        .filter(|(unit, _)| region.contains(&body(source, unit).start))
        .map(|(unit, &k)| (unit.clone(), k))
        .unzip();
    render(source, &units, &kept).trim().to_string()
}

/// The target in target-LLM tokens for a rate, as abridge-core computes it.
pub fn target_tokens(rate: f64, origin_tokens: usize) -> usize {
    ((rate * origin_tokens as f64).round() as usize).max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    Head,
    Tail,
    Random,
}

/// What a compression produced, in the terms the metrics need.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub prompt: String,
    /// The compressed contexts alone (the instruction and question are never dropped, so the
    /// metrics look only here).
    pub context: String,
    pub origin_tokens: usize,
    pub compressed_tokens: usize,
    pub target_tokens: usize,
    /// The instruction and question alone exceed the target.
    pub protected_over_budget: bool,
    /// `rewrite`: whether its faithfulness guard repaired the generation.
    pub repaired: Option<bool>,
}

impl Baseline {
    pub fn compress(self, case: &Case, rate: f64, seed: u64, counter: &dyn TokenCounter) -> Output {
        let (source, region) = assemble(case);
        let units = Words.segment(&source);
        let droppable: Vec<usize> = (0..units.len())
            .filter(|&i| region.contains(&body(&source, &units[i]).start))
            .collect();
        let order: Vec<usize> = match self {
            Self::Head => droppable,
            Self::Tail => droppable.into_iter().rev().collect(),
            Self::Random => {
                let mut order = droppable;
                Rng::new(seed, &case.id).shuffle(&mut order);
                order
            }
        };
        let origin_tokens = counter.count(&source);
        let target = target_tokens(rate, origin_tokens);
        let kept_with = |k: usize| {
            let mut kept: Vec<bool> = (0..units.len())
                .map(|i| !region.contains(&body(&source, &units[i]).start))
                .collect();
            for &i in &order[..k] {
                kept[i] = true;
            }
            kept
        };
        let tokens_with = |k: usize| counter.count(&render(&source, &units, &kept_with(k)));
        // The most words that fit (token counts grow with words, up to BPE merges at the seams).
        let (mut fits, mut fails) = (0, order.len() + 1);
        while fails - fits > 1 {
            let mid = (fits + fails) / 2;
            if tokens_with(mid) <= target {
                fits = mid;
            } else {
                fails = mid;
            }
        }
        let kept = kept_with(fits);
        let prompt = render(&source, &units, &kept);
        let compressed_tokens = counter.count(&prompt);
        Output {
            context: context_text(&source, &units, &kept, &region),
            protected_over_budget: tokens_with(0) > target,
            prompt,
            origin_tokens,
            compressed_tokens,
            target_tokens: target,
            repaired: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::Reference;
    use abridge_core::testing::WordCounter;

    fn case() -> Case {
        Case {
            id: "c".into(),
            group: None,
            instruction: "Read this.".into(),
            contexts: vec![
                "one two three four five".into(),
                "six seven eight nine ten".into(),
            ],
            question: "Which?".into(),
            reference: Reference::Numbers,
        }
    }

    #[test]
    fn the_layout_is_abridge_cores() {
        let (text, region) = assemble(&case());
        assert_eq!(
            text,
            "Read this.\n\none two three four five\n\nsix seven eight nine ten\n\nWhich?"
        );
        assert_eq!(
            &text[region],
            "one two three four five\n\nsix seven eight nine ten"
        );
    }

    #[test]
    fn truncations_keep_the_ends_within_the_budget() {
        // 13 words; rate 0.6 -> 8 words: the 3 verbatim ones and 5 of the contexts.
        let head = Baseline::Head.compress(&case(), 0.6, 0, &WordCounter);
        assert_eq!(head.context, "one two three four five");
        assert_eq!(
            head.prompt,
            "Read this.\n\none two three four five\n\nWhich?"
        );
        assert_eq!(
            (
                head.origin_tokens,
                head.target_tokens,
                head.compressed_tokens
            ),
            (13, 8, 8)
        );
        let tail = Baseline::Tail.compress(&case(), 0.6, 0, &WordCounter);
        assert_eq!(tail.context, "six seven eight nine ten");
        assert!(!tail.protected_over_budget);
    }

    #[test]
    fn random_drop_is_seeded_and_meets_the_budget() {
        let a = Baseline::Random.compress(&case(), 0.6, 1, &WordCounter);
        assert_eq!(a, Baseline::Random.compress(&case(), 0.6, 1, &WordCounter));
        assert_eq!(a.compressed_tokens, 8);
        assert_eq!(a.context.split_whitespace().count(), 5);
        let others: Vec<String> = (2..10)
            .map(|seed| {
                Baseline::Random
                    .compress(&case(), 0.6, seed, &WordCounter)
                    .context
            })
            .collect();
        assert!(others.iter().any(|c| *c != a.context), "the seed matters");
    }

    #[test]
    fn a_budget_below_the_verbatim_parts_keeps_only_them() {
        let out = Baseline::Head.compress(&case(), 0.1, 0, &WordCounter);
        assert_eq!(out.context, "");
        assert!(out.protected_over_budget);
        assert_eq!(out.prompt, "Read this.\n\nWhich?");
    }
}
