//! Compression options as clients and the config file spell them: LLMLingua's names, flat, every
//! one optional. Request options are laid over the config's `[compress]` defaults.

use abridge_core::{
    Budget, CompressRequest, ConditionInQuestion, ContextBudget, LlmlinguaOptions,
    LongLlmlinguaOptions, Method, ProtectOptions, RankMethod, Reorder, Unit,
};
use abridge_models::{TargetTokenizer, TiktokenCounter};
use serde::Deserialize;

use crate::ApiError;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompressOptions {
    /// `llmlingua` (default), `longllmlingua` or `selective-context`.
    pub method: Option<String>,
    /// Kept/original target-LLM tokens, in (0, 1]. At most one of rate, target_token, threshold.
    pub rate: Option<f64>,
    /// Tokens of the whole compressed prompt, in the target tokenizer.
    pub target_token: Option<i64>,
    /// Keep units whose mean surprisal (nats per model token) is at least this.
    pub threshold: Option<f32>,
    /// token, word, phrase or sentence (Selective Context's `reduce_level` is accepted too).
    #[serde(alias = "reduce_level")]
    pub unit: Option<String>,
    pub force_tokens: Option<Vec<String>>,
    pub force_reserve_digit: Option<bool>,
    /// Regular expressions whose matches are kept.
    pub patterns: Option<Vec<String>>,
    pub protect_code: Option<bool>,
    /// Interpret `<abridge keep>` / `<abridge rate=R>` tags (default true).
    pub markup: Option<bool>,
    /// LLMLingua: model tokens per window.
    pub iterative_size: Option<usize>,
    /// LLMLingua: `+N` or `*K`.
    pub context_budget: Option<String>,
    pub use_context_level_filter: Option<bool>,
    pub force_context_ids: Option<Vec<usize>>,
    /// LongLLMLingua (defaults: the paper's setting): longllmlingua, llmlingua, bm25, gzip or
    /// embedding (needs all-MiniLM-L6-v2, installed by `abridge models fetch`).
    pub rank_method: Option<String>,
    /// LongLLMLingua: none, before, after, before_condition or after_condition.
    pub condition_in_question: Option<String>,
    pub condition_compare: Option<bool>,
    /// LongLLMLingua: original, sort or two_stage.
    pub reorder_context: Option<String>,
    pub dynamic_context_compression_ratio: Option<f64>,
    pub use_sentence_level_filter: Option<bool>,
    /// cl100k_base (default) or o200k_base: the budget's and the reported counts' tokenizer.
    pub target_tokenizer: Option<String>,
}

impl CompressOptions {
    /// These options, with `defaults` wherever they say nothing. The budget is taken as a whole:
    /// a request's `target_token` replaces the default `rate` rather than conflicting with it.
    pub fn over(&self, defaults: &Self) -> Self {
        let has_budget =
            self.rate.is_some() || self.target_token.is_some() || self.threshold.is_some();
        let budget_source = if has_budget { self } else { defaults };
        Self {
            method: self.method.clone().or_else(|| defaults.method.clone()),
            rate: budget_source.rate,
            target_token: budget_source.target_token,
            threshold: budget_source.threshold,
            unit: self.unit.clone().or_else(|| defaults.unit.clone()),
            force_tokens: self
                .force_tokens
                .clone()
                .or_else(|| defaults.force_tokens.clone()),
            force_reserve_digit: self.force_reserve_digit.or(defaults.force_reserve_digit),
            patterns: self.patterns.clone().or_else(|| defaults.patterns.clone()),
            protect_code: self.protect_code.or(defaults.protect_code),
            markup: self.markup.or(defaults.markup),
            iterative_size: self.iterative_size.or(defaults.iterative_size),
            context_budget: self
                .context_budget
                .clone()
                .or_else(|| defaults.context_budget.clone()),
            use_context_level_filter: self
                .use_context_level_filter
                .or(defaults.use_context_level_filter),
            force_context_ids: self
                .force_context_ids
                .clone()
                .or_else(|| defaults.force_context_ids.clone()),
            rank_method: self
                .rank_method
                .clone()
                .or_else(|| defaults.rank_method.clone()),
            condition_in_question: self
                .condition_in_question
                .clone()
                .or_else(|| defaults.condition_in_question.clone()),
            condition_compare: self.condition_compare.or(defaults.condition_compare),
            reorder_context: self
                .reorder_context
                .clone()
                .or_else(|| defaults.reorder_context.clone()),
            dynamic_context_compression_ratio: self
                .dynamic_context_compression_ratio
                .or(defaults.dynamic_context_compression_ratio),
            use_sentence_level_filter: self
                .use_sentence_level_filter
                .or(defaults.use_sentence_level_filter),
            target_tokenizer: self
                .target_tokenizer
                .clone()
                .or_else(|| defaults.target_tokenizer.clone()),
        }
    }

    /// LongLLMLingua's own options that these options set, by name.
    fn longllmlingua_only(&self) -> [(&'static str, bool); 6] {
        [
            ("rank_method", self.rank_method.is_some()),
            (
                "condition_in_question",
                self.condition_in_question.is_some(),
            ),
            ("condition_compare", self.condition_compare.is_some()),
            ("reorder_context", self.reorder_context.is_some()),
            (
                "dynamic_context_compression_ratio",
                self.dynamic_context_compression_ratio.is_some(),
            ),
            (
                "use_sentence_level_filter",
                self.use_sentence_level_filter.is_some(),
            ),
        ]
    }

    /// LongLLMLingua from the paper's setting, with what these options change.
    fn longllmlingua(&self) -> Result<LongLlmlinguaOptions, ApiError> {
        let paper = LongLlmlinguaOptions::paper();
        let ratio = self
            .dynamic_context_compression_ratio
            .unwrap_or(paper.dynamic_context_compression_ratio);
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ApiError::invalid(format!(
                "dynamic_context_compression_ratio must be in [0, 1], got {ratio}"
            )));
        }
        Ok(LongLlmlinguaOptions {
            rank_method: match &self.rank_method {
                Some(name) => name.parse::<RankMethod>()?,
                None => paper.rank_method,
            },
            condition_in_question: match &self.condition_in_question {
                Some(name) => name.parse::<ConditionInQuestion>()?,
                None => paper.condition_in_question,
            },
            condition_compare: self.condition_compare.unwrap_or(paper.condition_compare),
            reorder_context: match &self.reorder_context {
                Some(name) => name.parse::<Reorder>()?,
                None => paper.reorder_context,
            },
            dynamic_context_compression_ratio: ratio,
            context_budget: match &self.context_budget {
                Some(text) => text.parse::<ContextBudget>()?,
                None => paper.context_budget,
            },
            iterative_size: self.iterative_size.unwrap_or(paper.iterative_size),
            use_context_level_filter: self
                .use_context_level_filter
                .unwrap_or(paper.use_context_level_filter),
            force_context_ids: self.force_context_ids.clone().unwrap_or_default(),
            use_sentence_level_filter: self
                .use_sentence_level_filter
                .unwrap_or(paper.use_sentence_level_filter),
            ..paper
        })
    }

    /// The library request these options describe. Option errors are `400 invalid_request`;
    /// the rest of the checking (budgets, force_context_ids, patterns) happens in
    /// [`abridge_core::compress`] and maps the same way.
    pub fn to_request(
        &self,
        instruction: String,
        contexts: Vec<String>,
        question: String,
    ) -> Result<CompressRequest, ApiError> {
        let llmlingua_only = [
            ("iterative_size", self.iterative_size.is_some()),
            ("context_budget", self.context_budget.is_some()),
            (
                "use_context_level_filter",
                self.use_context_level_filter.is_some(),
            ),
            ("force_context_ids", self.force_context_ids.is_some()),
        ];
        let method_name = self.method.as_deref().unwrap_or("llmlingua");
        if method_name != "longllmlingua" {
            if let Some((name, _)) = self.longllmlingua_only().iter().find(|(_, given)| *given) {
                return Err(ApiError::invalid(format!(
                    "{name} is an option of longllmlingua, not {method_name}: remove it or set \"method\": \"longllmlingua\""
                )));
            }
        }
        let method = match method_name {
            "longllmlingua" => Method::LongLlmlingua(self.longllmlingua()?),
            "llmlingua" => {
                let defaults = LlmlinguaOptions::default();
                Method::Llmlingua(LlmlinguaOptions {
                    iterative_size: self.iterative_size.unwrap_or(defaults.iterative_size),
                    context_budget: match &self.context_budget {
                        Some(text) => text.parse::<ContextBudget>()?,
                        None => defaults.context_budget,
                    },
                    use_context_level_filter: self
                        .use_context_level_filter
                        .unwrap_or(defaults.use_context_level_filter),
                    force_context_ids: self.force_context_ids.clone().unwrap_or_default(),
                    ..defaults
                })
            }
            "selective-context" | "selective_context" => {
                if let Some((name, _)) = llmlingua_only.iter().find(|(_, given)| *given) {
                    return Err(ApiError::invalid(format!(
                        "{name} is an option of llmlingua, not selective-context: remove it or set \"method\": \"llmlingua\""
                    )));
                }
                Method::SelectiveContext
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown method `{other}`: use llmlingua, longllmlingua or selective-context"
                )))
            }
        };
        let mut request = CompressRequest::new(method, contexts);
        request.budget = Budget::from_options(self.rate, self.target_token, self.threshold)?;
        if let Some(unit) = &self.unit {
            request.unit = unit.parse::<Unit>()?;
        }
        request.instruction = instruction;
        request.question = question;
        request.markup = self.markup.unwrap_or(true);
        request.protect = ProtectOptions {
            force_tokens: self.force_tokens.clone().unwrap_or_default(),
            force_reserve_digit: self.force_reserve_digit.unwrap_or(false),
            patterns: self.patterns.clone().unwrap_or_default(),
            protect_code: self.protect_code.unwrap_or(false),
        };
        Ok(request)
    }

    /// The target LLM's token counter these options name.
    pub fn counter(&self) -> Result<TiktokenCounter, ApiError> {
        let tokenizer = match &self.target_tokenizer {
            Some(name) => name
                .parse::<TargetTokenizer>()
                .map_err(|e| ApiError::invalid(e.to_string()))?,
            None => TargetTokenizer::default(),
        };
        Ok(TiktokenCounter::new(tokenizer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(json: &str) -> CompressOptions {
        serde_json::from_str(json).unwrap()
    }

    fn request(json: &str) -> Result<CompressRequest, ApiError> {
        options(json).to_request(String::new(), vec!["text".into()], String::new())
    }

    #[test]
    fn requests_use_llmlingua_names_and_defaults() {
        let request = request(
            r#"{"rate": 0.3, "force_tokens": ["\n", "?"], "force_reserve_digit": true,
                "iterative_size": 100, "context_budget": "*1.5", "unit": "sent"}"#,
        )
        .unwrap();
        assert_eq!(request.budget, Budget::Rate(0.3));
        assert_eq!(request.unit, Unit::Sentence);
        assert_eq!(request.protect.force_tokens, ["\n", "?"]);
        assert!(request.protect.force_reserve_digit);
        let Method::Llmlingua(llmlingua) = &request.method else {
            panic!("{:?}", request.method)
        };
        assert_eq!(llmlingua.iterative_size, 100);
        assert_eq!(llmlingua.context_budget, ContextBudget::Multiply(1.5));

        let request = self::request(r#"{"method": "selective-context"}"#).unwrap();
        assert_eq!(request.method, Method::SelectiveContext);
        assert_eq!(request.unit, Unit::Phrase);
        assert_eq!(request.budget, Budget::Rate(0.5));
    }

    #[test]
    fn bad_options_are_client_errors_that_name_the_fix() {
        for (json, expected) in [
            (r#"{"method": "gzip"}"#, "unknown method `gzip`"),
            (r#"{"rate": 1.5}"#, "(0, 1]"),
            (r#"{"rate": 0.5, "target_token": 10}"#, "only one budget"),
            (r#"{"target_token": -3}"#, "positive"),
            (r#"{"unit": "paragraph"}"#, "unknown unit"),
            (r#"{"context_budget": "100"}"#, "`+N` or `*K`"),
            (
                r#"{"method": "selective-context", "iterative_size": 10}"#,
                "option of llmlingua",
            ),
        ] {
            let error = request(json).unwrap_err();
            assert_eq!(error.status, 400, "{json}");
            assert!(
                error.message.contains(expected),
                "{json}: {}",
                error.message
            );
        }
        let error = options(r#"{"target_tokenizer": "p50k"}"#)
            .counter()
            .err()
            .unwrap();
        assert!(error.message.contains("cl100k_base"), "{}", error.message);
        assert!(serde_json::from_str::<CompressOptions>(r#"{"rat": 0.5}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown field `rat`"));
    }

    #[test]
    fn longllmlingua_starts_from_the_paper_and_takes_its_options() {
        let request = request(r#"{"method": "longllmlingua"}"#).unwrap();
        assert_eq!(
            request.method,
            Method::LongLlmlingua(LongLlmlinguaOptions::paper())
        );
        let request = self::request(
            r#"{"method": "longllmlingua", "rank_method": "bm25", "reorder_context": "two_stage",
                "condition_compare": false, "dynamic_context_compression_ratio": 0.4,
                "iterative_size": 100, "use_sentence_level_filter": true}"#,
        )
        .unwrap();
        let Method::LongLlmlingua(options) = &request.method else {
            panic!("{:?}", request.method)
        };
        assert_eq!(options.rank_method, RankMethod::Bm25);
        assert_eq!(options.reorder_context, Reorder::TwoStage);
        assert!(!options.condition_compare);
        assert_eq!(options.dynamic_context_compression_ratio, 0.4);
        assert_eq!(options.iterative_size, 100);
        assert!(options.use_sentence_level_filter);
        for (json, expected) in [
            (
                r#"{"rank_method": "bm25"}"#,
                "option of longllmlingua, not llmlingua",
            ),
            (
                r#"{"method": "longllmlingua", "rank_method": "cohere"}"#,
                "unknown rank method `cohere`",
            ),
            (
                r#"{"method": "longllmlingua", "reorder_context": "random"}"#,
                "two_stage",
            ),
            (
                r#"{"method": "longllmlingua", "dynamic_context_compression_ratio": 2}"#,
                "[0, 1]",
            ),
        ] {
            let error = self::request(json).unwrap_err();
            assert_eq!(error.status, 400, "{json}");
            assert!(
                error.message.contains(expected),
                "{json}: {}",
                error.message
            );
        }
    }

    #[test]
    fn request_options_lie_over_the_defaults_and_budgets_do_not_mix() {
        let defaults = options(r#"{"method": "selective-context", "rate": 0.3, "unit": "word"}"#);
        let merged = options(r#"{"target_token": 50}"#).over(&defaults);
        assert_eq!(merged.method.as_deref(), Some("selective-context"));
        assert_eq!(merged.unit.as_deref(), Some("word"));
        assert_eq!((merged.rate, merged.target_token), (None, Some(50)));
        let merged = options("{}").over(&defaults);
        assert_eq!(merged.rate, Some(0.3));
    }
}
