//! `llmlingua.PromptCompressor.compress_prompt`'s arguments (LLMLingua's names and meanings) as
//! [`CompressionOptions`]: the compatibility rules, in one place.
//!
//! - `target_token` is LLMLingua's budget for the *contexts*; ours is for the whole prompt, so
//!   the instruction and the question (when it is part of the output) are added to it.
//! - `concate_question=False` keeps the question out of the output while the method may still
//!   use it (LongLLMLingua ranks and conditions on it): the core always renders the question
//!   last, so the budget gets room for it and [`LlmlinguaPlan::strip_question`] says to take it
//!   off the result.
//! - `rank_method="llmlingua"` with none of LongLLMLingua's options is LLMLingua; any other
//!   ranker, question-conditioned token scores (`condition_compare` or `…_condition`),
//!   reordering, a dynamic ratio or the sentence filter make it LongLLMLingua, with LLMLingua's
//!   rules for `condition_in_question`.
//! - `use_llmlingua2=True` is LLMLingua-2 over the caller's classifier; its negative counts and
//!   a `context_level_rate` of 1 mean "not given".

use serde::Deserialize;

use super::{parse_field, parse_rank_method, CompressionOptions, CompressionPlan, MethodName};
use crate::error::{Fix, OptionError};
use crate::prompt::PART_SEPARATOR;
use crate::rank::QuestionPosition;
use crate::{ConditionInQuestion, RankMethod, Result, TokenCounter};

/// One `compress_prompt` call: every argument, as llmlingua defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmlinguaCall {
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

/// A plan, and what to do to its result.
#[derive(Debug, Clone)]
pub struct LlmlinguaPlan {
    pub plan: CompressionPlan,
    /// The question to take off the end of the compressed prompt (`concate_question=False`).
    pub strip_question: Option<String>,
}

impl LlmlinguaCall {
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

    fn question_stripped(&self) -> bool {
        !self.concate_question && !self.question.trim().is_empty()
    }

    /// Which of our methods the arguments describe, with its options set.
    fn method_options(&self, llmlingua2: bool) -> Result<CompressionOptions> {
        if llmlingua2 {
            let count = |n: i64| usize::try_from(n).ok();
            return Ok(CompressionOptions {
                method: Some(MethodName::Llmlingua2.name().into()),
                llmlingua2_compat: Some(self.llmlingua2_compat),
                drop_consecutive: Some(self.drop_consecutive),
                use_context_level_filter: Some(self.use_context_level_filter),
                force_context_ids: self.force_context_ids.clone(),
                target_context: count(self.target_context),
                context_level_rate: (self.context_level_rate != 1.0)
                    .then_some(self.context_level_rate),
                context_level_target_token: count(self.context_level_target_token),
                question_weight: Some(self.question_weight),
                // Question relevance by embeddings instead of BM25.
                rank_method: (self.rank_method == "embedding").then(|| self.rank_method.clone()),
                ..CompressionOptions::default()
            });
        }
        let rank = parse_rank_method(&self.rank_method)?;
        let mut condition: ConditionInQuestion =
            parse_field("condition_in_question", &self.condition_in_question)?;
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
        let shared = CompressionOptions {
            iterative_size: Some(self.iterative_size),
            context_budget: Some(self.context_budget.clone()),
            use_context_level_filter: Some(self.use_context_level_filter),
            use_token_level_filter: Some(self.use_token_level_filter),
            force_context_ids: self.force_context_ids.clone(),
            ..CompressionOptions::default()
        };
        let plain_llmlingua = rank == RankMethod::Llmlingua
            && !condition.condition_tokens
            && self.reorder_context == "original"
            && self.dynamic_context_compression_ratio == 0.0
            && !self.use_sentence_level_filter;
        if plain_llmlingua {
            return Ok(CompressionOptions {
                method: Some(MethodName::Llmlingua.name().into()),
                ..shared
            });
        }
        Ok(CompressionOptions {
            method: Some(MethodName::Longllmlingua.name().into()),
            rank_method: Some(rank.name().into()),
            condition_in_question: Some(condition.to_string()),
            condition_compare: Some(self.condition_compare),
            reorder_context: Some(self.reorder_context.clone()),
            dynamic_context_compression_ratio: Some(self.dynamic_context_compression_ratio),
            use_sentence_level_filter: Some(self.use_sentence_level_filter),
            keep_first_sentence: Some(self.keep_first_sentence),
            keep_last_sentence: Some(self.keep_last_sentence),
            keep_sentence_number: Some(self.keep_sentence_number),
            token_budget_ratio: Some(self.token_budget_ratio),
            add_instruction: Some(self.add_instruction),
            ..shared
        })
    }

    /// The budget in the core's terms (tokens of the whole compressed prompt, question included
    /// even when it is stripped afterwards), as `(rate, target_token, threshold)`.
    fn budget(
        &self,
        counter: &dyn TokenCounter,
    ) -> Result<(Option<f64>, Option<i64>, Option<f32>)> {
        if let Some(threshold) = self.threshold {
            return Ok((None, None, Some(threshold)));
        }
        // Tokens the stripped question (and its separator) takes in the core's output.
        let stripped = if self.question_stripped() {
            counter.count(&self.question) + counter.count(PART_SEPARATOR)
        } else {
            0
        };
        if self.target_token >= 0 {
            if self.target_token == 0 {
                return Err(OptionError::new(
                    "target_token",
                    "must be at least 1 (or -1 to use rate)",
                    Fix::Example("200".into()),
                )
                .into());
            }
            let verbatim: usize = self
                .verbatim_parts()
                .iter()
                .map(|part| counter.count(part) + counter.count(PART_SEPARATOR))
                .sum();
            let target = self.target_token as usize + verbatim + stripped;
            return Ok((None, Some(target as i64), None));
        }
        if !self.question_stripped() {
            return Ok((Some(self.rate), None, None));
        }
        crate::Budget::from_options(Some(self.rate), None, None)?;
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
        Ok((None, Some(target as i64), None))
    }

    /// The plan for an engine that holds a token classifier (`llmlingua2`) or a causal LM.
    pub fn to_plan(&self, counter: &dyn TokenCounter, llmlingua2: bool) -> Result<LlmlinguaPlan> {
        let (rate, target_token, threshold) = self.budget(counter)?;
        let options = CompressionOptions {
            rate,
            target_token,
            threshold,
            unit: self.unit.clone(),
            force_tokens: Some(self.force_tokens.clone()),
            force_reserve_digit: Some(self.force_reserve_digit),
            patterns: Some(self.protect_patterns.clone()),
            protect_code: Some(self.protect_code),
            markup: Some(self.markup),
            ..self.method_options(llmlingua2)?
        };
        let plan = options.plan(
            self.instruction.clone(),
            self.context.clone(),
            self.question.clone(),
        )?;
        let strip_question = self.question_stripped().then(|| self.question.clone());
        Ok(LlmlinguaPlan {
            plan,
            strip_question,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::WordCounter;
    use crate::{Budget, Method, RankMethod, Unit};

    fn call(changes: serde_json::Value) -> LlmlinguaCall {
        let mut json = serde_json::json!({
            "context": ["one two three four", "five six"], "instruction": "Do it.",
            "question": "Why not?", "rate": 0.5, "target_token": -1, "iterative_size": 200,
            "force_context_ids": null, "force_tokens": [], "force_reserve_digit": false,
            "use_context_level_filter": true, "use_token_level_filter": true,
            "use_sentence_level_filter": false, "keep_first_sentence": 0,
            "keep_last_sentence": 0, "keep_sentence_number": 0, "token_budget_ratio": 1.4,
            "condition_in_question": "none", "reorder_context": "original",
            "dynamic_context_compression_ratio": 0.0, "condition_compare": false,
            "add_instruction": false, "rank_method": "llmlingua", "concate_question": true,
            "context_budget": "+100", "drop_consecutive": false, "target_context": -1,
            "context_level_rate": 1.0, "context_level_target_token": -1,
            "llmlingua2_compat": false, "question_weight": 0.5, "threshold": null,
            "unit": null, "markup": true, "protect_patterns": [], "protect_code": false
        });
        for (key, value) in changes.as_object().unwrap() {
            json[key] = value.clone();
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn llmlinguas_defaults_are_llmlingua_and_its_rankers_make_it_longllmlingua() {
        let plain = call(serde_json::json!({}))
            .to_plan(&WordCounter, false)
            .unwrap();
        assert_eq!(plain.plan.method, MethodName::Llmlingua);
        assert_eq!(plain.plan.request.budget, Budget::Rate(0.5));
        // `unit` is abridge's own option: the drop-in gets abridge's default, the phrase.
        assert_eq!(plain.plan.request.unit, Unit::Phrase);
        let word = call(serde_json::json!({"unit": "word"}))
            .to_plan(&WordCounter, false)
            .unwrap();
        assert_eq!(word.plan.request.unit, Unit::Word);
        let long =
            call(serde_json::json!({"rank_method": "longllmlingua", "condition_compare": true}))
                .to_plan(&WordCounter, false)
                .unwrap();
        let Method::LongLlmlingua(options) = &long.plan.request.method else {
            panic!("{:?}", long.plan.request.method)
        };
        assert_eq!(options.rank_method, RankMethod::Longllmlingua);
        assert_eq!(options.condition_in_question.to_string(), "after_condition");
        let two = call(serde_json::json!({}))
            .to_plan(&WordCounter, true)
            .unwrap();
        assert_eq!(two.plan.method, MethodName::Llmlingua2);
    }

    #[test]
    fn target_token_counts_the_contexts_and_a_stripped_question_gets_room() {
        // Instruction (2 words) and question (2 words) each with their separator (0 words).
        let kept = call(serde_json::json!({"target_token": 3}))
            .to_plan(&WordCounter, false)
            .unwrap();
        assert_eq!(kept.plan.request.budget, Budget::TargetTokens(7));
        assert_eq!(kept.strip_question, None);
        let stripped = call(serde_json::json!({"target_token": 3, "concate_question": false}))
            .to_plan(&WordCounter, false)
            .unwrap();
        assert_eq!(stripped.plan.request.budget, Budget::TargetTokens(7));
        assert_eq!(stripped.strip_question.as_deref(), Some("Why not?"));
        let zero = call(serde_json::json!({"target_token": 0})).to_plan(&WordCounter, false);
        assert!(matches!(zero, Err(crate::Error::InvalidOption(e)) if e.field == "target_token"));
    }
}
