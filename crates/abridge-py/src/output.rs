//! A [`Compressed`] result as the Python side reads it: character offsets instead of byte
//! offsets in the label map, and the question taken off when `concate_question=False`.

use abridge_core::render::render;
use abridge_core::request::llmlingua_call::LlmlinguaPlan;
use abridge_core::{Compressed, TokenCounter};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Label {
    /// Character (code point) offsets into `source`, as Python indexes strings.
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub kept: bool,
    pub protected: bool,
    pub score: Option<f32>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub compressed_prompt: String,
    /// Each context's compressed text, without the contexts the context filter dropped
    /// (LLMLingua-2's `compressed_prompt_list`).
    pub compressed_prompt_list: Vec<String>,
    pub origin_tokens: usize,
    pub compressed_tokens: usize,
    pub ratio: f64,
    pub rate: f64,
    pub target_tokens: Option<usize>,
    pub protected_tokens: usize,
    pub protected_over_budget: bool,
    pub budget_unreachable: bool,
    pub budget_unreachable_reason: Option<String>,
    pub tokenizer: String,
    pub method: &'static str,
    pub model_seconds: f64,
    pub total_seconds: f64,
    pub source: String,
    pub label_map: Vec<Label>,
}

impl Output {
    pub fn new(result: Compressed, plan: &LlmlinguaPlan, counter: &dyn TokenCounter) -> Self {
        let (text, compressed_tokens) = match &plan.strip_question {
            Some(question) => {
                let text = result.text_without(question).to_string();
                let tokens = counter.count(&text);
                (text, tokens)
            }
            None => (result.text.clone(), result.compressed_tokens),
        };
        let origin_tokens = result.origin_tokens;
        let compressed_prompt_list = result
            .contexts
            .iter()
            .filter_map(|context| {
                let spans: Vec<_> = result
                    .spans
                    .iter()
                    .filter(|s| s.span.start < context.end && s.span.end > context.start)
                    .collect();
                let units: Vec<_> = spans.iter().map(|s| s.span.clone()).collect();
                let kept: Vec<bool> = spans.iter().map(|s| s.kept).collect();
                let text = render(&result.source, &units, &kept).trim().to_string();
                (!text.is_empty()).then_some(text)
            })
            .collect();
        let label_map = {
            let char_offset = char_offsets(&result.source);
            result
                .spans
                .iter()
                .map(|span| Label {
                    start: char_offset(span.span.start),
                    end: char_offset(span.span.end),
                    text: result.source[span.span.clone()].to_string(),
                    kept: span.kept,
                    protected: span.protected,
                    score: span.score,
                })
                .collect()
        };
        Self {
            compressed_prompt: text,
            compressed_prompt_list,
            origin_tokens,
            compressed_tokens,
            ratio: origin_tokens as f64 / compressed_tokens.max(1) as f64,
            rate: compressed_tokens as f64 / origin_tokens.max(1) as f64,
            target_tokens: result.target_tokens,
            protected_tokens: result.protected_tokens,
            protected_over_budget: result.protected_over_budget,
            budget_unreachable: result.budget_unreachable,
            budget_unreachable_reason: result.budget_unreachable_reason,
            tokenizer: result.tokenizer,
            method: plan.plan.method.name(),
            model_seconds: result.timings.model_seconds,
            total_seconds: result.timings.total_seconds,
            source: result.source,
            label_map,
        }
    }
}

/// Byte offset → character offset in `text` (offsets at character boundaries).
fn char_offsets(text: &str) -> impl Fn(usize) -> usize + '_ {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    move |byte| boundaries.partition_point(|&b| b < byte)
}
