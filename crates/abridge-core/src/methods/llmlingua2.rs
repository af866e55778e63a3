//! LLMLingua-2 (Pan et al., Findings of ACL 2024): a token classifier (XLM-RoBERTa or mBERT
//! fine-tuned on GPT-4 compressions) gives each token a probability of being kept; words are kept
//! by that probability.
//!
//! 1. *Classify*: each context is read by the [`TokenClassifier`] (its runtime cuts long texts into
//!    windows); the instruction and question are kept verbatim and not read.
//! 2. *Words* ([`words`]): whitespace-delimited words, a CJK character being a word of its own,
//!    except that adjacent CJK characters inside one classifier token stay together (`我们` when the
//!    tokenizer has it as one piece), so a CJK sentence is neither glued into one word (as the
//!    reference's `▁`-prefix rule does) nor cut inside the classifier's own pieces. Force-token
//!    matches are cut out of their words (`"end."` with `.` forced is `end` + `.`), as in the
//!    reference, where a force token is a word of its own. A word's probability is the mean of its
//!    tokens' (a token spanning two words counts in each by its share of bytes).
//! 3. *Question* (optional): with a question and `question_weight > 0`, a word's score is
//!    `(1 − w)·p + w·r`, where `r` is its sentence's relevance to the question in [0, 1]: the
//!    cosine of embeddings when an [`Embedder`] is given, else BM25 over the prompt's sentences
//!    divided by the best sentence's score.
//! 4. *Context filter* (optional, several contexts): contexts whose mean word score is below the
//!    `1 − context_level_rate` percentile are dropped whole, except forced ones.
//! 5. *Select*: by default one selection over all contexts keeps the best words whose rendered
//!    text meets the target in target-LLM tokens (`select.rs`); that is the reference's percentile
//!    weighted by each word's token count, taken once over the prompt instead of per 512-token
//!    chunk, and measured on the rendered text so the budget is met. A threshold budget keeps the
//!    words scoring at least it. [`Llmlingua2Options::compat`] instead thresholds each chunk
//!    separately, with the reference's percentile (see [`compat_keep`]).
//! 6. *drop_consecutive*: of force tokens repeated with no other kept word between them, only the
//!    first is kept.
//!
//! Protected spans (force tokens, digits with `force_reserve_digit`, patterns, code, markup) are
//! always kept. Differences from the reference are listed in docs/ALGORITHMS.md.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::llmlingua::validate_context_ids;
use super::{Decision, Scoring, Stage, Stages};
use crate::budget::{Budget, Target};
use crate::coarse::contexts::{
    context_sizes, context_units, drop_contexts, forced_contexts, kept_tokens,
};
use crate::error::{Fix, OptionError};
use crate::prompt::Prompt;
use crate::rank;
use crate::score::{aggregate, Meter};
use crate::segment::sentences::sentence_starts;
use crate::segment::{body, group_words, is_cjk, Segmenter, Words};
use crate::select::{select, within_target, Plan, Role};
use crate::{CompressRequest, Embedder, Error, Result, TokenClassifier, TokenCounter};

/// LLMLingua-2's options, with its names; defaults as `compress_prompt_llmlingua2`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Llmlingua2Options {
    /// Reproduce the reference's selection: a weighted-percentile threshold per classifier
    /// window-sized chunk, and its rate arithmetic (the budget is then not met exactly).
    pub compat: bool,
    /// Of a force token repeated with no other kept word in between, keep only the first.
    pub drop_consecutive: bool,
    /// Drop whole contexts with a low mean word score first (only with several contexts).
    pub use_context_level_filter: bool,
    /// Contexts (0-based) the context filter always keeps.
    pub force_context_ids: Vec<usize>,
    /// Contexts the filter keeps, at most (LLMLingua-2's `target_context`).
    pub target_context: Option<usize>,
    /// Fraction of contexts the filter keeps, in (0, 1].
    pub context_level_rate: Option<f64>,
    /// The filter keeps the fraction `this / the contexts' tokens` of the contexts.
    pub context_level_target_token: Option<usize>,
    /// Weight in [0, 1] of the question's relevance in a word's score; 0 ignores the question.
    pub question_weight: f32,
}

impl Default for Llmlingua2Options {
    fn default() -> Self {
        Self {
            compat: false,
            drop_consecutive: false,
            use_context_level_filter: false,
            force_context_ids: Vec::new(),
            target_context: None,
            context_level_rate: None,
            context_level_target_token: None,
            question_weight: 0.5,
        }
    }
}

impl Llmlingua2Options {
    fn check(&self, contexts: usize, budget: &Budget) -> Result<()> {
        if let Budget::Threshold(threshold) = budget {
            if !(0.0..=1.0).contains(threshold) {
                return Err(OptionError::new(
                    "threshold",
                    format!("is a keep probability in [0, 1] for LLMLingua-2, got {threshold}"),
                    Fix::Example("0.5".into()),
                )
                .into());
            }
        }
        validate_context_ids(&self.force_context_ids, contexts)?;
        if let Some(rate) = self.context_level_rate {
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(OptionError::new(
                    "context_level_rate",
                    format!("must be in (0, 1], got {rate}"),
                    Fix::None,
                )
                .into());
            }
        }
        for (field, value) in [
            ("target_context", self.target_context),
            (
                "context_level_target_token",
                self.context_level_target_token,
            ),
        ] {
            if value == Some(0) {
                return Err(OptionError::new(field, "must be at least 1", Fix::None).into());
            }
        }
        if !(0.0..=1.0).contains(&self.question_weight) {
            return Err(OptionError::new(
                "question_weight",
                format!("must be in [0, 1], got {}", self.question_weight),
                Fix::None,
            )
            .into());
        }
        Ok(())
    }
}

/// A classifier token: its byte range in the prompt and its keep-probability.
pub(crate) type Token = (Range<usize>, f32);

/// Each context's classifier tokens, sorted, with ranges in the prompt's text.
pub(crate) fn classify(
    prompt: &Prompt,
    classifier: &dyn TokenClassifier,
    meter: &mut Meter,
) -> Result<Vec<Vec<Token>>> {
    let mut contexts = Vec::with_capacity(prompt.contexts.len());
    for context in &prompt.contexts {
        let text = &prompt.text[context.clone()];
        let mut tokens = meter.time(|| classifier.keep_probabilities(text))?;
        for (span, p) in &mut tokens {
            let valid = span.start <= span.end
                && text.is_char_boundary(span.start)
                && text.get(..span.end).is_some()
                && p.is_finite();
            if !valid {
                return Err(Error::Model(
                    format!("the classifier returned the token {span:?} with probability {p} for a text of {} bytes", text.len()).into(),
                ));
            }
            *span = span.start + context.start..span.end + context.start;
            *p = p.clamp(0.0, 1.0);
        }
        tokens.sort_by_key(|(span, _)| span.start);
        meter.set_total(meter.done() + tokens.len());
        meter.advance(tokens.len());
        contexts.push(tokens);
    }
    Ok(contexts)
}

/// Words of `text` (see the module documentation): [`Words`], adjacent CJK characters inside one
/// classifier token merged, then cut at the edges of the sorted `force` ranges.
pub(crate) fn words(text: &str, tokens: &[Token], force: &[Range<usize>]) -> Vec<Range<usize>> {
    let words = Words.segment(text);
    let token_at = |byte: usize| {
        let i = tokens.partition_point(|(span, _)| span.end <= byte);
        tokens
            .get(i)
            .filter(|(span, _)| span.start <= byte)
            .map(|_| i)
    };
    let merged = group_words(text, &words, |i| {
        let (previous, word) = (&words[i - 1], &words[i]);
        let last = text[previous.clone()].chars().next_back();
        let first = text[word.clone()].chars().next();
        let both_cjk = last.is_some_and(is_cjk) && first.is_some_and(is_cjk);
        let last_byte = previous.end - last.map_or(0, char::len_utf8);
        !(both_cjk && token_at(last_byte).is_some() && token_at(last_byte) == token_at(word.start))
    });
    let mut units = Vec::with_capacity(merged.len());
    for unit in merged {
        let body = body(text, &unit);
        let mut start = unit.start;
        let first = force.partition_point(|r| r.end <= body.start);
        for range in &force[first..] {
            if range.start >= unit.end {
                break;
            }
            for cut in [range.start, range.end] {
                if cut > start && cut > body.start && cut < unit.end {
                    units.push(start..cut);
                    start = cut;
                }
            }
        }
        units.push(start..unit.end);
    }
    units
}

/// The models and counts scoring reads.
struct Inputs<'a> {
    tokens: &'a [Vec<Token>],
    question: &'a str,
    embedder: Option<&'a dyn Embedder>,
    counter: &'a dyn TokenCounter,
    budget: Budget,
    target: Target,
    /// Text tokens the classifier reads at once (compat mode's chunk size).
    window: usize,
    /// Units whose body is a force token (for `drop_consecutive`).
    force_units: &'a [bool],
}

impl Stages for Llmlingua2Options {
    fn validate(&self, request: &CompressRequest) -> Result<()> {
        self.check(request.contexts.len(), &request.budget)
    }

    fn classifies(&self) -> bool {
        true
    }

    /// Scores the units, runs the context filter (dropping whole contexts from `plan`) and
    /// selects.
    fn score(&self, stage: &mut Stage, input: &Scoring, plan: &mut Plan) -> Result<Decision> {
        let prompt = input.prompt;
        let text = prompt.text.as_str();
        let force_units = force_units(text, &plan.units, &stage.request.protect.force_tokens);
        let inputs = Inputs {
            tokens: input.classified,
            question: &stage.request.question,
            embedder: stage.embedder,
            counter: stage.counter,
            budget: stage.request.budget,
            target: stage.target,
            window: stage.classifier.map_or(usize::MAX, |c| c.window_tokens()),
            force_units: &force_units,
        };
        let (scores, mut kept) = self.decide(prompt, plan, &inputs)?;
        // LLMLingua-2's own selection never ends over a token target (its compat mode
        // reproduces the reference's arithmetic instead).
        if let (false, Target::Tokens(tokens)) = (self.compat, stage.target) {
            within_target(text, plan, &scores, &mut kept, tokens, stage.counter);
        }
        Ok(Decision::Kept { scores, kept })
    }
}

impl Llmlingua2Options {
    fn decide(
        &self,
        prompt: &Prompt,
        plan: &mut Plan,
        inputs: &Inputs,
    ) -> Result<(Vec<Option<f32>>, Vec<bool>)> {
        let options = self;
        let text = prompt.text.as_str();
        let spans: Vec<Range<usize>> = inputs
            .tokens
            .iter()
            .flatten()
            .map(|t| t.0.clone())
            .collect();
        let probabilities: Vec<f32> = inputs.tokens.iter().flatten().map(|t| t.1).collect();
        let mut scores = aggregate(&plan.units, &spans, &probabilities);
        if !inputs.question.trim().is_empty() && options.question_weight > 0.0 && !options.compat {
            let relevance = sentence_relevance(text, plan, inputs.question, inputs.embedder)?;
            let w = options.question_weight;
            for (score, r) in scores.iter_mut().zip(relevance) {
                *score = score.map(|p| (1.0 - w) * p + w * r);
            }
        }

        let units_of = context_units(prompt, &plan.units);
        let context_sizes = context_sizes(prompt, inputs.counter);
        let mut kept_contexts = vec![true; prompt.contexts.len()];
        if options.use_context_level_filter && prompt.contexts.len() > 1 {
            let rate = context_level_rate(options, inputs.budget, &context_sizes);
            let means: Vec<f64> = units_of
                .iter()
                .map(|units| {
                    let values: Vec<f64> = units
                        .clone()
                        .filter(|&i| matches!(plan.roles[i], Role::Group(_)))
                        .filter_map(|i| scores[i].map(f64::from))
                        .collect();
                    values.iter().sum::<f64>() / values.len().max(1) as f64
                })
                .collect();
            let threshold = percentile(&means, (100.0 * (1.0 - rate)).floor());
            let forced = forced_contexts(prompt, &options.force_context_ids);
            for c in 0..units_of.len() {
                kept_contexts[c] = forced[c] || means[c] >= threshold;
            }
            drop_contexts(plan, &units_of, &kept_contexts);
        }

        let kept = if options.compat {
            let kept_tokens = kept_tokens(&context_sizes, &kept_contexts);
            let rate = match inputs.budget {
                Budget::Rate(rate) => Some(rate),
                Budget::TargetTokens(tokens) => {
                    Some((tokens as f64 / kept_tokens.max(1) as f64).min(1.0))
                }
                Budget::Threshold(_) => None,
            };
            compat_keep(text, plan, &scores, inputs, &units_of, rate, options)
        } else {
            select_words(text, plan, &scores, inputs, options.drop_consecutive)
        };
        Ok((scores, kept))
    }
}

/// The fraction of contexts the filter keeps: `target_context`, `context_level_target_token` or
/// `context_level_rate` if given (in that order), else the reference's default from the budget
/// (`(rate + 1) / 2` of the contexts, or twice the target tokens).
fn context_level_rate(options: &Llmlingua2Options, budget: Budget, sizes: &[usize]) -> f64 {
    let total = sizes.iter().sum::<usize>().max(1) as f64;
    if let Some(n) = options.target_context {
        return (n as f64 / sizes.len() as f64).min(1.0);
    }
    if let Some(tokens) = options.context_level_target_token {
        return (tokens as f64 / total).min(1.0);
    }
    if let Some(rate) = options.context_level_rate {
        return rate;
    }
    match budget {
        Budget::Rate(rate) => (rate + 1.0) / 2.0,
        Budget::TargetTokens(tokens) => (2.0 * tokens as f64 / total).min(1.0),
        Budget::Threshold(_) => 1.0,
    }
}

/// Each unit's sentence's relevance to `question`, in [0, 1] (see the module documentation).
/// Only sentences with words that compete for the budget are compared (the question itself is
/// not one of them).
fn sentence_relevance(
    text: &str,
    plan: &Plan,
    question: &str,
    embedder: Option<&dyn Embedder>,
) -> Result<Vec<f32>> {
    let units = &plan.units;
    let starts = sentence_starts(text, units);
    let mut competes = Vec::new();
    let mut sentence_of = Vec::with_capacity(units.len());
    let mut sentences: Vec<Range<usize>> = Vec::new();
    for (unit, &start) in units.iter().zip(&starts) {
        match sentences.last_mut() {
            Some(sentence) if !start => sentence.end = unit.end,
            _ => {
                sentences.push(unit.clone());
                competes.push(false);
            }
        }
        sentence_of.push(sentences.len() - 1);
        let last = competes.len() - 1;
        competes[last] |= matches!(plan.roles[sentence_of.len() - 1], Role::Group(_));
    }
    let texts: Vec<&str> = sentences
        .iter()
        .zip(&competes)
        .map(|(s, &competes)| if competes { &text[s.clone()] } else { "" })
        .collect();
    let relevance = rank::relevance(&texts, question, embedder)?;
    Ok(sentence_of
        .into_iter()
        .map(|s| relevance[s] as f32)
        .collect())
}

/// The reference's selection, chunk by chunk: each context's tokens are cut into chunks of at most
/// the classifier's window, ending after a token followed by a line break or ending in `.` where
/// possible; in each chunk a word is kept if its probability is above the weighted percentile
/// `floor(100·(1 − rate) + 1)` of the chunk's word probabilities (each word repeated once per
/// target-LLM token; protected words count with probability 1), or if both are 1. A threshold
/// budget keeps words at or above it.
fn compat_keep(
    text: &str,
    plan: &mut Plan,
    scores: &[Option<f32>],
    inputs: &Inputs,
    units_of: &[Range<usize>],
    rate: Option<f64>,
    options: &Llmlingua2Options,
) -> Vec<bool> {
    let mut kept = plan.kept_by_role();
    let mut repeated = Vec::new();
    let probability = |i: usize| match plan.roles[i] {
        Role::Keep => 1.0,
        _ => f64::from(scores[i].unwrap_or(0.0)),
    };
    for (tokens, units) in inputs.tokens.iter().zip(units_of) {
        if units.clone().any(|i| plan.roles[i] == Role::Exclude) {
            continue;
        }
        for chunk in chunk_units(text, tokens, &plan.units, units.clone(), inputs.window) {
            let members: Vec<usize> = chunk
                .filter(|&i| !body(text, &plan.units[i]).is_empty())
                .collect();
            let Some(rate) = rate else {
                if let Target::Threshold(threshold) = inputs.target {
                    for &i in &members {
                        kept[i] |= probability(i) >= f64::from(threshold);
                    }
                }
                continue;
            };
            let reduce = 1.0 - rate;
            let mut weighted = Vec::new();
            for &i in &members {
                let count = inputs.counter.count(&text[body(text, &plan.units[i])]);
                weighted.extend(std::iter::repeat_n(probability(i), count));
            }
            let threshold = percentile(&weighted, (100.0 * reduce + 1.0).floor());
            let mut probabilities: Vec<f64> = members.iter().map(|&i| probability(i)).collect();
            if options.drop_consecutive {
                let separator = percentile(&probabilities, (100.0 * reduce).floor());
                let repeats = consecutive_repeats(
                    text,
                    &plan.units,
                    members.iter().map(|&i| (i, probability(i) > separator)),
                    inputs.force_units,
                );
                for (p, i) in probabilities.iter_mut().zip(&members) {
                    if repeats.contains(i) {
                        *p = 0.0;
                        kept[*i] = false;
                    }
                }
                repeated.extend(repeats);
            }
            for (&i, &p) in members.iter().zip(&probabilities) {
                if p > threshold || (threshold == 1.0 && p == 1.0) {
                    kept[i] = true;
                }
            }
        }
    }
    // Dropped repeats are no longer protected (the label map says so).
    for i in repeated {
        plan.roles[i] = Role::Exclude;
    }
    kept
}

/// The global selection (`select.rs`); with `drop_consecutive`, force-token repeats with no kept
/// word between them are excluded and the budget is spent again on other words.
fn select_words(
    text: &str,
    plan: &mut Plan,
    scores: &[Option<f32>],
    inputs: &Inputs,
    drop_consecutive: bool,
) -> Vec<bool> {
    let kept = select(text, plan, scores, None, inputs.target, inputs.counter);
    if !drop_consecutive {
        return kept;
    }
    let kept_units = (0..kept.len()).filter(|&i| kept[i]).map(|i| (i, true));
    let repeats = consecutive_repeats(text, &plan.units, kept_units, inputs.force_units);
    if repeats.is_empty() {
        return kept;
    }
    for i in repeats {
        plan.roles[i] = Role::Exclude;
    }
    select(text, plan, scores, None, inputs.target, inputs.counter)
}

/// Units whose body is exactly one of `force_tokens` (whitespace ignored).
fn force_units(text: &str, units: &[Range<usize>], force_tokens: &[String]) -> Vec<bool> {
    units
        .iter()
        .map(|unit| {
            let body = &text[body(text, unit)];
            !body.is_empty() && force_tokens.iter().any(|t| t.trim() == body)
        })
        .collect()
}

/// Of `sequence` (unit, whether it separates repeats), the force-token units that repeat the
/// previous force token with no separating unit since.
fn consecutive_repeats(
    text: &str,
    units: &[Range<usize>],
    sequence: impl Iterator<Item = (usize, bool)>,
    force_units: &[bool],
) -> Vec<usize> {
    let mut repeats = Vec::new();
    let mut last: Option<&str> = None;
    for (i, separates) in sequence {
        let body = &text[body(text, &units[i])];
        if body.is_empty() {
            continue;
        }
        if force_units[i] {
            if last == Some(body) {
                repeats.push(i);
            } else {
                last = Some(body);
            }
        } else if separates {
            last = None;
        }
    }
    repeats
}

/// Cuts a context's `units` into chunks of whole units covering at most `window` of its `tokens`
/// each, ending after a token followed by a line break or ending in `.` where one is in reach (the
/// reference's `chunk_end_tokens`).
fn chunk_units(
    text: &str,
    tokens: &[Token],
    units: &[Range<usize>],
    context_units: Range<usize>,
    window: usize,
) -> Vec<Range<usize>> {
    let window = window.max(1);
    let ends_chunk = |j: usize| {
        let gap_end = tokens.get(j + 1).map_or(text.len(), |t| t.0.start);
        let token = &tokens[j].0;
        text[token.clone()].trim_end().ends_with('.')
            || text
                .get(token.start..gap_end)
                .is_some_and(|s| s.contains('\n'))
    };
    let mut starts = Vec::new();
    let mut st = 0;
    while st < tokens.len() {
        starts.push(tokens[st].0.start);
        if tokens.len() - st <= window {
            break;
        }
        let end = (st + 1..=st + window)
            .rev()
            .find(|&e| ends_chunk(e - 1))
            .unwrap_or(st + window);
        st = end;
    }
    // A unit belongs to the chunk its body starts in.
    let mut chunks: Vec<(usize, Range<usize>)> = Vec::with_capacity(starts.len());
    for i in context_units {
        let start = body(text, &units[i]).start;
        let chunk = starts.partition_point(|&s| s <= start).saturating_sub(1);
        match chunks.last_mut() {
            Some((c, range)) if *c == chunk => range.end = i + 1,
            _ => chunks.push((chunk, i..i + 1)),
        }
    }
    chunks.into_iter().map(|(_, range)| range).collect()
}

/// numpy's default (linear) percentile `q` in [0, 100] of `values`; 0 for none.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = q.clamp(0.0, 100.0) / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeClassifier;

    #[test]
    fn percentile_interpolates_like_numpy() {
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert!((percentile(&[0.1, 0.5, 0.9], 66.0) - 0.628).abs() < 1e-12);
        assert_eq!(percentile(&[1.0, 2.0], 101.0), 2.0);
    }

    #[test]
    fn chunks_end_at_full_stops_and_line_breaks_within_the_window() {
        let text = "a b. c d\ne f g h i";
        let tokens: Vec<Token> = FakeClassifier::tokenize(text)
            .into_iter()
            .map(|span| (span, 0.5))
            .collect();
        let units = Words.segment(text);
        let pieces = |window| -> Vec<String> {
            chunk_units(text, &tokens, &units, 0..units.len(), window)
                .into_iter()
                .map(|chunk| text[units[chunk.start].start..units[chunk.end - 1].end].to_string())
                .collect()
        };
        // Tokens a b . c d e f g h i: a window of 5 ends at the last cut point in reach, the
        // line break after "d"; with 2, "b." belongs to the chunk its body starts in.
        assert_eq!(pieces(5), ["a b. c d", "\ne f g h i"]);
        assert_eq!(pieces(100), [text]);
        assert_eq!(pieces(2), ["a b.", " c d", "\ne f", " g h", " i"]);
    }

    #[test]
    fn words_merge_cjk_inside_a_token_and_split_at_force_tokens() {
        let text = "我们很好。 end.";
        let tokens: Vec<Token> = FakeClassifier::tokenize(text)
            .into_iter()
            .map(|span| (span, 0.5))
            .collect();
        let force = [Range {
            start: text.len() - 1,
            end: text.len(),
        }];
        let units: Vec<&str> = words(text, &tokens, &force)
            .into_iter()
            .map(|u| &text[u])
            .collect();
        assert_eq!(units, ["我们", "很好。", " end", "."]);
    }
}
