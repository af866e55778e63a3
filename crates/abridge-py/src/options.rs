//! `PromptCompressor.compress_prompt`'s options (LLMLingua's names and meanings) → a
//! [`CompressRequest`].
//!
//! The Python side has already checked types and refused what we do not support; the values are
//! parsed here with the core's own parsers, so their errors read the same as the CLI's.
//!
//! Where LLMLingua's meaning differs from the core's, the translation is here:
//! - `target_token` is LLMLingua's budget for the *contexts*; the core's is for the whole prompt,
//!   so the instruction and the question (when it is part of the output) are added to it.
//! - `concate_question=False` keeps the question out of the output while the method may still
//!   use it (LongLLMLingua ranks and conditions on it): the core always renders the question
//!   last, so the budget gets room for it and [`Plan::strip_question`] takes it off the result.
//! - `rank_method="llmlingua"` with none of LongLLMLingua's options is LLMLingua
//!   ([`Method::Llmlingua`]); any other ranker, question-conditioned token scores
//!   (`condition_compare` or `…_condition`), reordering, a dynamic ratio or the sentence filter
//!   make it LongLLMLingua, with LLMLingua's rules for `condition_in_question`.

use abridge_core::{
    Budget, CompressRequest, ConditionInQuestion, ContextBudget, KeepSentences, Llmlingua2Options,
    LlmlinguaOptions, LongLlmlinguaOptions, Method, ProtectOptions, QuestionPosition, RankMethod,
    Reorder, TokenCounter, Unit,
};
use abridge_core::{Error, Result};
use serde::Deserialize;

/// Separator between the parts of a prompt (instruction, contexts, question).
const PART_SEPARATOR: &str = "\n\n";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptOptions {
    pub context: Vec<String>,
    pub instruction: String,
    pub question: String,
    pub rate: f64,
    pub target_token: i64,
    pub iterative_size: usize,
    pub force_context_ids: Option<Vec<usize>>,
    pub force_tokens: Vec<String>,
    pub force_reserve_digit: bool,
    pub use_context_level_filter: bool,
    pub use_token_level_filter: bool,
    pub use_sentence_level_filter: bool,
    pub keep_first_sentence: usize,
    pub keep_last_sentence: usize,
    pub keep_sentence_number: usize,
    pub token_budget_ratio: f64,
    pub condition_in_question: String,
    pub reorder_context: String,
    pub dynamic_context_compression_ratio: f64,
    pub condition_compare: bool,
    pub add_instruction: bool,
    pub rank_method: String,
    pub concate_question: bool,
    pub context_budget: String,
    // LLMLingua-2's (a negative count or a rate of 1 means "not given", as in llmlingua).
    pub drop_consecutive: bool,
    pub target_context: i64,
    pub context_level_rate: f64,
    pub context_level_target_token: i64,
    // abridge's own options.
    pub llmlingua2_compat: bool,
    pub question_weight: f32,
    pub threshold: Option<f32>,
    pub unit: Option<String>,
    pub markup: bool,
    pub protect_patterns: Vec<String>,
    pub protect_code: bool,
}

/// A request, and what to do to its result.
#[derive(Debug, Clone)]
pub struct Plan {
    pub request: CompressRequest,
    /// The question to take off the end of the compressed prompt (`concate_question=False`).
    pub strip_question: Option<String>,
}

/// LLMLingua's rankers that we have, by LLMLingua's names (`sentbert` is a sentence embedder,
/// ours all-MiniLM-L6-v2).
fn rank_method(name: &str) -> Result<RankMethod> {
    match name {
        "sentbert" => Ok(RankMethod::Embedding),
        "openai" | "bge" | "bge_reranker" | "bge_llmembedder" | "jinza" | "voyageai" | "cohere" => {
            Err(Error::InvalidInput(format!(
                "rank_method=\"{name}\" is not available in abridge (it needs a hosted API or a \
                 model we do not ship): use \"longllmlingua\", \"llmlingua\", \"bm25\", \"gzip\" \
                 or \"sentbert\"/\"embedding\" (all-MiniLM-L6-v2)"
            )))
        }
        other => other.parse(),
    }
}

impl PromptOptions {
    /// The parts of the prompt that appear in the output besides the contexts.
    fn verbatim_parts(&self) -> Vec<&str> {
        let mut parts = Vec::new();
        if !self.instruction.trim().is_empty() {
            parts.push(self.instruction.as_str());
        }
        if self.concate_question && !self.question.trim().is_empty() {
            parts.push(self.question.as_str());
        }
        parts
    }

    fn llmlingua2(&self) -> Method {
        let count = |n: i64| usize::try_from(n).ok();
        Method::Llmlingua2(Llmlingua2Options {
            compat: self.llmlingua2_compat,
            drop_consecutive: self.drop_consecutive,
            use_context_level_filter: self.use_context_level_filter,
            force_context_ids: self.force_context_ids.clone().unwrap_or_default(),
            target_context: count(self.target_context),
            context_level_rate: (self.context_level_rate != 1.0).then_some(self.context_level_rate),
            context_level_target_token: count(self.context_level_target_token),
            question_weight: self.question_weight,
        })
    }

    fn method(&self) -> Result<Method> {
        let rank = rank_method(&self.rank_method)?;
        let mut condition = self.condition_in_question.parse::<ConditionInQuestion>()?;
        let reorder = self.reorder_context.parse::<Reorder>()?;
        let context_budget = self.context_budget.parse::<ContextBudget>()?;
        // LLMLingua's rules: condition_compare implies `_condition`; the longllmlingua ranker
        // needs the question (none → after); the llmlingua ranker ignores it.
        if self.condition_compare {
            condition.condition_tokens = true;
        }
        match rank {
            RankMethod::Longllmlingua if condition.position == QuestionPosition::None => {
                condition.position = QuestionPosition::After
            }
            RankMethod::Llmlingua => condition.position = QuestionPosition::None,
            _ => {}
        }
        let keep_sentences = KeepSentences {
            keep_first_sentence: self.keep_first_sentence,
            keep_last_sentence: self.keep_last_sentence,
            keep_sentence_number: self.keep_sentence_number,
        };
        let force_context_ids = self.force_context_ids.clone().unwrap_or_default();
        let plain_llmlingua = rank == RankMethod::Llmlingua
            && !condition.condition_tokens
            && reorder == Reorder::Original
            && self.dynamic_context_compression_ratio == 0.0
            && !self.use_sentence_level_filter;
        if plain_llmlingua {
            return Ok(Method::Llmlingua(LlmlinguaOptions {
                iterative_size: self.iterative_size,
                context_budget,
                use_context_level_filter: self.use_context_level_filter,
                force_context_ids,
                use_token_level_filter: self.use_token_level_filter,
            }));
        }
        Ok(Method::LongLlmlingua(LongLlmlinguaOptions {
            rank_method: rank,
            condition_in_question: condition,
            condition_compare: self.condition_compare,
            reorder_context: reorder,
            dynamic_context_compression_ratio: self.dynamic_context_compression_ratio,
            context_budget,
            iterative_size: self.iterative_size,
            use_context_level_filter: self.use_context_level_filter,
            force_context_ids,
            use_sentence_level_filter: self.use_sentence_level_filter,
            keep_sentences,
            token_budget_ratio: self.token_budget_ratio,
            add_instruction: self.add_instruction,
            use_token_level_filter: self.use_token_level_filter,
        }))
    }

    /// The budget in the core's terms (tokens of the whole compressed prompt, question included
    /// even when it is stripped afterwards).
    fn budget(&self, counter: &dyn TokenCounter) -> Result<Budget> {
        if let Some(threshold) = self.threshold {
            return Budget::from_options(None, None, Some(threshold));
        }
        let question_stripped = !self.concate_question && !self.question.trim().is_empty();
        // Tokens the stripped question (and its separator) takes in the core's output.
        let stripped = if question_stripped {
            counter.count(&self.question) + counter.count(PART_SEPARATOR)
        } else {
            0
        };
        if self.target_token >= 0 {
            if self.target_token == 0 {
                return Err(Error::InvalidInput(
                    "target_token must be at least 1 (or -1 to use rate)".into(),
                ));
            }
            let verbatim: usize = self
                .verbatim_parts()
                .iter()
                .map(|part| counter.count(part) + counter.count(PART_SEPARATOR))
                .sum();
            let target = self.target_token as usize + verbatim + stripped;
            return Budget::from_options(None, Some(target as i64), None);
        }
        let budget = Budget::from_options(Some(self.rate), None, None)?;
        if !question_stripped {
            return Ok(budget);
        }
        // LLMLingua's output is `rate` of the whole prompt, question included, even when the
        // question is not part of it.
        let mut parts: Vec<&str> = Vec::new();
        if !self.instruction.trim().is_empty() {
            parts.push(&self.instruction);
        }
        parts.extend(self.context.iter().map(String::as_str));
        parts.push(&self.question);
        let origin = counter.count(&parts.join(PART_SEPARATOR));
        let target = ((self.rate * origin as f64).round() as usize).max(1) + stripped;
        Budget::from_options(None, Some(target as i64), None)
    }

    /// The plan for an engine that holds a token classifier (`llmlingua2`) or a causal LM.
    pub fn to_plan(&self, counter: &dyn TokenCounter, llmlingua2: bool) -> Result<Plan> {
        let method = if llmlingua2 {
            self.llmlingua2()
        } else {
            self.method()?
        };
        let mut request = CompressRequest::new(method, self.context.clone());
        request.budget = self.budget(counter)?;
        if let Some(unit) = &self.unit {
            request.unit = unit.parse::<Unit>()?;
        }
        request.instruction = self.instruction.clone();
        request.question = self.question.clone();
        request.markup = self.markup;
        request.protect = ProtectOptions {
            force_tokens: self.force_tokens.clone(),
            force_reserve_digit: self.force_reserve_digit,
            patterns: self.protect_patterns.clone(),
            protect_code: self.protect_code,
        };
        let strip_question = (!self.concate_question && !self.question.trim().is_empty())
            .then(|| self.question.clone());
        Ok(Plan {
            request,
            strip_question,
        })
    }
}
