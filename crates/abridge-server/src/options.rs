//! Compression options as clients and the config file spell them: the library's
//! [`CompressionOptions`] (LLMLingua's names, flat, every one optional). Request options are laid
//! over the config's `[compress]` defaults ([`CompressionOptions::over`]); errors name the JSON
//! field.

use abridge_core::{CompressionOptions, CompressionPlan, Wording};
use abridge_models::{TargetTokenizer, TiktokenCounter};

use crate::ApiError;

/// Options as JSON fields: `"rate"`, `"rate": 0.5`.
pub(crate) struct JsonFields;

impl Wording for JsonFields {
    fn name(&self, field: &str) -> String {
        format!("`{field}`")
    }

    fn setting(&self, field: &str, value: &str) -> String {
        let value = match value.parse::<f64>() {
            Ok(_) => value.to_string(),
            Err(_) => format!("\"{value}\""),
        };
        format!("\"{field}\": {value}")
    }
}

/// The validated plan for these options.
pub fn plan(
    options: &CompressionOptions,
    instruction: String,
    contexts: Vec<String>,
    question: String,
) -> Result<CompressionPlan, ApiError> {
    Ok(options.plan(instruction, contexts, question)?)
}

/// The target LLM's token counter these options name.
pub fn counter(options: &CompressionOptions) -> Result<TiktokenCounter, ApiError> {
    let tokenizer = match &options.target_tokenizer {
        Some(name) => name
            .parse::<TargetTokenizer>()
            .map_err(|e| ApiError::invalid(e.to_string()))?,
        None => TargetTokenizer::default(),
    };
    Ok(TiktokenCounter::new(tokenizer))
}

#[cfg(test)]
mod tests {
    use super::*;

    use abridge_core::{
        Budget, CompressRequest, ContextBudget, LongLlmlinguaOptions, Method, RankMethod, Reorder,
        Unit,
    };

    fn options(json: &str) -> CompressionOptions {
        serde_json::from_str(json).unwrap()
    }

    fn request(json: &str) -> Result<CompressRequest, ApiError> {
        plan(
            &options(json),
            String::new(),
            vec!["text".into()],
            "Why?".into(),
        )
        .map(|plan| plan.request)
    }

    #[test]
    fn requests_use_llmlingua_names_and_defaults() {
        let request = request(
            r#"{"method": "llmlingua", "rate": 0.3, "force_tokens": ["\n", "?"], "force_reserve_digit": true,
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
        // LLMLingua keeps or drops phrases unless the request names a unit.
        let request = self::request(r#"{"method": "llmlingua"}"#).unwrap();
        assert_eq!(request.unit, Unit::Phrase);
    }

    #[test]
    fn bad_options_are_client_errors_that_name_the_fix() {
        for (json, expected) in [
            (r#"{"method": "gzip"}"#, "`gzip` is not a method"),
            (r#"{"rate": 1.5}"#, "(0, 1]"),
            (
                r#"{"rate": 0.5, "target_token": 10}"#,
                "give only one of rate, target_token and threshold",
            ),
            (r#"{"target_token": -3}"#, "positive"),
            (r#"{"unit": "paragraph"}"#, "unknown unit"),
            (
                r#"{"method": "llmlingua", "context_budget": "100"}"#,
                "`+N` or `*K`",
            ),
            (
                r#"{"context_budget": "+100"}"#,
                "`context_budget` is an option of llmlingua, not auto: remove it or pass \"method\": \"llmlingua\"",
            ),
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
        let error = counter(&options(r#"{"target_tokenizer": "p50k"}"#))
            .err()
            .unwrap();
        assert!(error.message.contains("cl100k_base"), "{}", error.message);
        assert!(
            serde_json::from_str::<CompressionOptions>(r#"{"rat": 0.5}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown field `rat`")
        );
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
                "option of longllmlingua, not auto",
            ),
            (
                r#"{"method": "longllmlingua", "rank_method": "cohere"}"#,
                "`cohere` is not available in abridge",
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
}
