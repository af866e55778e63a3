//! LongLLMLingua (Jiang et al., ACL 2024): question-aware compression for prompts made of many
//! documents (retrieval-augmented generation).
//!
//! 1. *Coarse ranking and filter*: the documents are ranked for the question (`rank_method`, see
//!    [`crate::rank`]; the paper's ranker is how well each document predicts the question) and
//!    taken in rank order until the context budget is spent, forced ones first
//!    ([`crate::coarse::context_filter`]).
//! 2. *Reordering*: the kept documents are arranged (`reorder_context`) so the most relevant sit
//!    where LLMs look (first, or at both ends).
//! 3. *Dynamic ratio*: better-ranked documents keep more of their tokens
//!    (`dynamic_context_compression_ratio`, ±δ linear by rank).
//! 4. *Sentence filter* (optional): the kept documents' least relevant sentences are dropped.
//! 5. *Question-aware token compression*: LLMLingua's iterative windows (`llmlingua.rs`), with
//!    every token scored after the question (`condition_in_question="…_condition"`) or by how
//!    much the question lowers its surprisal (`condition_compare`, the contrastive perplexity).
//!
//! The compressed prompt's `source` (and label map) holds the documents in their new order: the
//! kept ones as arranged, then the dropped ones. Deliberate differences from the reference are
//! listed in docs/ALGORITHMS.md.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::llmlingua::validate_windows_and_context_ids;
use super::{ContextBudget, Decision, Scoring, Stage, Stages};
use crate::budget::Target;
use crate::coarse::context_filter::take_within_budget;
use crate::coarse::contexts::{
    context_sizes, context_target, context_units, drop_contexts, forced_contexts,
};
use crate::coarse::dynamic_ratio;
use crate::coarse::sentence_filter::{select_sentences, KeepSentences};
use crate::coarse::Arrangement;
use crate::coarse::Reorder;
use crate::error::{Fix, OptionError};
use crate::fine::{iterate, Fine, Quota, Stream};
use crate::prompt::Prompt;
use crate::rank::{rank_with, QuestionPosition, RankMethod};
use crate::score::Meter;
use crate::segment::{body, Segmenter, Sentences};
use crate::select::{Plan, Role};
use crate::{CompressRequest, Embedder, Error, Result, TokenScorer};

/// LongLLMLingua's options, with LLMLingua's names. The default is the paper's setting
/// ([`LongLlmlinguaOptions::paper`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LongLlmlinguaOptions {
    /// How documents (and sentences) are ranked.
    pub rank_method: RankMethod,
    /// Where the question goes when a language model ranks, and whether tokens are scored
    /// after the question (`"after_condition"`).
    pub condition_in_question: ConditionInQuestion,
    /// Score tokens by contrast: surprisal without the question minus with it. Implies
    /// scoring with the question.
    pub condition_compare: bool,
    /// Where the kept documents go.
    pub reorder_context: Reorder,
    /// δ of the dynamic ratio: the best document keeps τ+δ of its tokens, the worst τ−δ.
    pub dynamic_context_compression_ratio: f64,
    /// The coarse filter's budget from the context target (`+N` or `*K`).
    pub context_budget: ContextBudget,
    /// Model tokens per window of the token-level compression.
    pub iterative_size: usize,
    /// Drop whole documents by rank (only with several documents and a token budget).
    pub use_context_level_filter: bool,
    /// Documents (0-based, in input order) the coarse filter always keeps.
    pub force_context_ids: Vec<usize>,
    /// Drop the least relevant sentences of the kept documents.
    pub use_sentence_level_filter: bool,
    /// Sentences the sentence filter always keeps.
    #[serde(flatten)]
    pub keep_sentences: KeepSentences,
    /// The sentence filter's budget, as a multiple of the context target.
    pub token_budget_ratio: f64,
    /// Condition on the instruction too (after the question).
    pub add_instruction: bool,
    /// Compress inside the documents the coarse stages keep; `false` keeps them whole (only the
    /// document and sentence filters drop text).
    pub use_token_level_filter: bool,
}

impl Default for LongLlmlinguaOptions {
    fn default() -> Self {
        Self::paper()
    }
}

impl LongLlmlinguaOptions {
    /// The paper's setting (LLMLingua README / Transparency FAQ): `rank_method="longllmlingua"`,
    /// `condition_in_question="after_condition"`, `reorder_context="sort"`,
    /// `dynamic_context_compression_ratio=0.3`, `condition_compare=True`,
    /// `context_budget="+100"`, no sentence filter, `iterative_size=200`.
    pub fn paper() -> Self {
        Self {
            rank_method: RankMethod::Longllmlingua,
            condition_in_question: ConditionInQuestion {
                position: QuestionPosition::After,
                condition_tokens: true,
            },
            condition_compare: true,
            reorder_context: Reorder::Sort,
            dynamic_context_compression_ratio: 0.3,
            context_budget: ContextBudget::Add(100.0),
            iterative_size: 200,
            use_context_level_filter: true,
            force_context_ids: Vec::new(),
            use_sentence_level_filter: false,
            keep_sentences: KeepSentences::default(),
            token_budget_ratio: 1.4,
            add_instruction: false,
            use_token_level_filter: true,
        }
    }

    /// The authors' RAG recipe (RAG notebook, LangChain's and LlamaIndex's integrations): the
    /// paper's setting with `dynamic_context_compression_ratio=0.4`.
    pub fn rag() -> Self {
        Self {
            dynamic_context_compression_ratio: 0.4,
            ..Self::paper()
        }
    }

    /// Whether tokens are scored with the question (asked for, or implied by `condition_compare`).
    pub fn conditions_tokens(&self) -> bool {
        self.condition_in_question.condition_tokens || self.condition_compare
    }

    /// Where a language-model ranker puts the question: `longllmlingua` needs it, so `none`
    /// means `after` there (as in the reference).
    fn rank_position(&self) -> QuestionPosition {
        match (self.rank_method, self.condition_in_question.position) {
            (RankMethod::Longllmlingua, QuestionPosition::None) => QuestionPosition::After,
            (_, position) => position,
        }
    }

    /// The indices of `texts` (documents, or the sentence filter's sentences), most relevant to
    /// `question` first, by this configuration's ranker.
    fn rank_order(
        &self,
        texts: &[&str],
        question: &str,
        scorer: &dyn TokenScorer,
        embedder: Option<&dyn Embedder>,
        meter: &mut Meter,
    ) -> Result<Vec<usize>> {
        Ok(rank_with(
            self.rank_method,
            self.rank_position(),
            texts,
            question,
            scorer,
            embedder,
            meter,
        )?
        .into_iter()
        .map(|r| r.index)
        .collect())
    }

    fn check(&self, contexts: usize, question: &str) -> Result<()> {
        validate_windows_and_context_ids(self.iterative_size, &self.force_context_ids, contexts)?;
        let delta = self.dynamic_context_compression_ratio;
        if !(0.0..=1.0).contains(&delta) {
            return Err(OptionError::new(
                "dynamic_context_compression_ratio",
                format!("must be in [0, 1], got {delta}"),
                Fix::Example("0.3".into()),
            )
            .into());
        }
        if !(self.token_budget_ratio.is_finite() && self.token_budget_ratio > 0.0) {
            return Err(OptionError::new(
                "token_budget_ratio",
                format!("must be a positive number, got {}", self.token_budget_ratio),
                Fix::Example("1.4".into()),
            )
            .into());
        }
        let needs_question = self.rank_method.uses_question() || self.conditions_tokens();
        if needs_question && question.trim().is_empty() {
            return Err(OptionError::new(
                "question",
                "is missing, and LongLLMLingua compresses the documents for a question",
                Fix::Text(
                    "give the question, or use method llmlingua or auto to compress without one"
                        .into(),
                ),
            )
            .into());
        }
        Ok(())
    }
}

/// LLMLingua's `condition_in_question`: `none`, `before` or `after` (where a language-model ranker
/// puts the question), optionally with `_condition` (score tokens after the question). Written
/// and read as LLMLingua's strings, e.g. `"after_condition"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConditionInQuestion {
    pub position: QuestionPosition,
    pub condition_tokens: bool,
}

impl FromStr for ConditionInQuestion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (base, condition_tokens) = match s.strip_suffix("_condition") {
            Some(base) => (base, true),
            None => (s, false),
        };
        let position = match base {
            "none" => QuestionPosition::None,
            "before" => QuestionPosition::Before,
            "after" => QuestionPosition::After,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "unknown condition_in_question `{s}`: use none, before or after, optionally \
                     with _condition (e.g. after_condition)"
                )))
            }
        };
        Ok(Self {
            position,
            condition_tokens,
        })
    }
}

impl fmt::Display for ConditionInQuestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match self.position {
            QuestionPosition::None => "none",
            QuestionPosition::Before => "before",
            QuestionPosition::After => "after",
        };
        let suffix = if self.condition_tokens {
            "_condition"
        } else {
            ""
        };
        write!(f, "{base}{suffix}")
    }
}

impl TryFrom<String> for ConditionInQuestion {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ConditionInQuestion> for String {
    fn from(c: ConditionInQuestion) -> Self {
        c.to_string()
    }
}

impl Stages for LongLlmlinguaOptions {
    fn validate(&self, request: &CompressRequest) -> Result<()> {
        self.check(request.contexts.len(), &request.question)
    }

    /// Ranks the documents of `prompt` (in input order), keeps those that fit the coarse budget
    /// and arranges them.
    fn arrange(&self, stage: &mut Stage, prompt: &Prompt) -> Result<Arrangement> {
        let options = self;
        let request = stage.request;
        let (question, target, counter) = (request.question.as_str(), stage.target, stage.counter);
        let (scorer, embedder) = (stage.scorer(), stage.embedder);
        let meter = &mut *stage.meter;
        let n = prompt.contexts.len();
        let budget = context_target(prompt, target, counter)
            .filter(|_| options.use_context_level_filter)
            .map(|t| options.context_budget.apply(t as f64));
        let ranking_matters = budget.is_some()
            || options.reorder_context != Reorder::Original
            || options.dynamic_context_compression_ratio > 0.0;
        if n < 2 || !ranking_matters {
            return Ok(Arrangement::identity(n));
        }
        let documents: Vec<&str> = prompt
            .contexts
            .iter()
            .map(|c| &prompt.text[c.clone()])
            .collect();
        let ranked: Vec<usize> =
            options.rank_order(&documents, question, scorer, embedder, meter)?;
        let kept = match budget {
            Some(budget) => {
                let sizes = context_sizes(prompt, counter);
                let forced = forced_contexts(prompt, &options.force_context_ids);
                take_within_budget(&ranked, &forced, &sizes, budget)
            }
            None => vec![true; n],
        };
        let kept_ranked: Vec<usize> = ranked.iter().copied().filter(|&d| kept[d]).collect();
        let mut offset_of = vec![0.0; n];
        for (&d, offset) in kept_ranked.iter().zip(dynamic_ratio::offsets(
            kept_ranked.len(),
            options.dynamic_context_compression_ratio,
        )) {
            offset_of[d] = offset;
        }
        let order: Vec<usize> = match options.reorder_context {
            Reorder::Original => (0..n).collect(),
            reorder => reorder
                .apply(&kept_ranked)
                .into_iter()
                .chain((0..n).filter(|&d| !kept[d]))
                .collect(),
        };
        Ok(Arrangement {
            kept: order.iter().map(|&d| kept[d]).collect(),
            offsets: order.iter().map(|&d| offset_of[d]).collect(),
            order,
        })
    }

    /// The fine stage on the arranged prompt: drops the documents the coarse stage dropped and,
    /// if asked, the least relevant sentences; then compresses the rest token by token,
    /// question-aware.
    fn score(&self, stage: &mut Stage, input: &Scoring, plan: &mut Plan) -> Result<Decision> {
        let options = self;
        let (prompt, arrangement) = (input.prompt, input.arrangement);
        let request = stage.request;
        let (instruction, question) = (request.instruction.as_str(), request.question.as_str());
        let (target, counter, scorer) = (stage.target, stage.counter, stage.scorer());
        let text = prompt.text.as_str();
        let context_units = context_units(prompt, &plan.units);
        let context_target = context_target(prompt, target, counter);
        drop_contexts(plan, &context_units, &arrangement.kept);

        // Tokens left in each kept document after the sentence filter, for the keep ratio τ.
        let mut remaining: Vec<usize> = context_sizes(prompt, counter)
            .into_iter()
            .zip(&arrangement.kept)
            .map(|(size, &kept)| if kept { size } else { 0 })
            .collect();
        if let (true, Some(context_target)) = (options.use_sentence_level_filter, context_target) {
            remaining = self.filter_sentences(
                stage,
                prompt,
                plan,
                arrangement,
                context_target as f64 * options.token_budget_ratio,
            )?;
        }

        if !options.use_token_level_filter {
            return Ok(Decision::coarse_only(plan));
        }
        let meter = &mut *stage.meter;
        // The model reads what the coarse stages left: runs of units not excluded.
        let mut stream = Stream::default();
        for units in context_units.iter().filter(|u| !u.is_empty()) {
            let mut run_start = None;
            for u in units.clone().chain([units.end]) {
                let excluded = u == units.end || plan.roles[u] == Role::Exclude;
                match (run_start, excluded) {
                    (None, false) => run_start = Some(u),
                    (Some(start), true) => {
                        stream.push(text, &plan.units, start..u, scorer, meter)?;
                        run_start = None;
                    }
                    _ => {}
                }
            }
        }

        let condition = if options.conditions_tokens() {
            let mut prefix = question.to_string();
            if options.add_instruction && !instruction.trim().is_empty() {
                prefix.push_str("\n\n");
                prefix.push_str(instruction);
            }
            // The stream carries the blank line before each document, except before one that starts
            // the prompt.
            if stream.spans.first().is_some_and(|s| s.start == 0) {
                prefix.push_str("\n\n");
            }
            meter
                .tokenize(scorer, &prefix)?
                .into_iter()
                .map(|t| t.id)
                .collect()
        } else {
            Vec::new()
        };
        meter.set_total(meter.done() + stream.ids.len());

        let quota = match target {
            Target::Threshold(threshold) => Quota::Threshold(threshold),
            Target::Tokens(_) => {
                let tau = (context_target.unwrap_or_default() as f64
                    / remaining.iter().sum::<usize>().max(1) as f64)
                    .min(1.0);
                let mut ratios = vec![tau; plan.units.len()];
                for (context, units) in context_units.iter().enumerate() {
                    ratios[units.clone()]
                        .fill(dynamic_ratio::ratio(tau, arrangement.offsets[context]));
                }
                Quota::Ratio(ratios)
            }
        };
        let fine = Fine {
            iterative_size: options.iterative_size,
            quota,
            condition: &condition,
            compare: options.condition_compare,
        };
        Ok(iterate(plan, &stream, &fine, scorer, meter)?.decision())
    }
}

impl LongLlmlinguaOptions {
    /// The sentence filter over the kept documents: marks the units of dropped sentences
    /// [`Role::Exclude`] and returns the tokens left in each document. A sentence holding
    /// protected text is always kept.
    fn filter_sentences(
        &self,
        stage: &mut Stage,
        prompt: &Prompt,
        plan: &mut Plan,
        arrangement: &Arrangement,
        budget: f64,
    ) -> Result<Vec<usize>> {
        let options = self;
        let request = stage.request;
        let question = request.question.as_str();
        let (scorer, embedder, counter) = (stage.scorer(), stage.embedder, stage.counter);
        let meter = &mut *stage.meter;
        let text = prompt.text.as_str();
        let mut sentences: Vec<Range<usize>> = Vec::new();
        let mut document_of = Vec::new();
        for (context, span) in prompt.contexts.iter().enumerate() {
            if !arrangement.kept[context] {
                continue;
            }
            for sentence in Sentences.segment(&text[span.clone()]) {
                let sentence = body(
                    text,
                    &(span.start + sentence.start..span.start + sentence.end),
                );
                if !sentence.is_empty() {
                    sentences.push(sentence);
                    document_of.push(context);
                }
            }
        }
        let sizes: Vec<usize> = sentences
            .iter()
            .map(|s| counter.count(&text[s.clone()]))
            .collect();
        let pieces: Vec<&str> = sentences.iter().map(|s| &text[s.clone()]).collect();
        let ranked: Vec<usize> = options.rank_order(&pieces, question, scorer, embedder, meter)?;
        // Units are grouped by the sentence holding their body's first byte.
        let sentence_of_unit = |u: &Range<usize>| {
            let start = body(text, u).start;
            sentences
                .partition_point(|s| s.end <= start)
                .min(sentences.len().saturating_sub(1))
        };
        let mut protected = vec![false; sentences.len()];
        for (u, unit) in plan.units.iter().enumerate() {
            if plan.roles[u] == Role::Keep && !sentences.is_empty() {
                let s = sentence_of_unit(unit);
                if sentences[s].contains(&body(text, unit).start) {
                    protected[s] = true;
                }
            }
        }
        let mut kept = select_sentences(
            &document_of,
            &ranked,
            &sizes,
            options.keep_sentences,
            budget,
        );
        for (k, p) in kept.iter_mut().zip(&protected) {
            *k |= p;
        }
        for (u, unit) in plan.units.iter().enumerate() {
            let start = body(text, unit).start;
            let s = sentence_of_unit(unit);
            let in_sentence = sentences
                .get(s)
                .is_some_and(|sentence| sentence.contains(&start));
            if in_sentence && !kept[s] && matches!(plan.roles[u], Role::Group(_)) {
                plan.roles[u] = Role::Exclude;
            }
        }
        let mut remaining = vec![0; prompt.contexts.len()];
        for (s, &document) in document_of.iter().enumerate() {
            if kept[s] {
                remaining[document] += sizes[s];
            }
        }
        Ok(remaining)
    }
}
