//! The compression core on the real default model and real text: outputs a person has read once
//! (insta snapshots), budgets, protected numbers, bad input.

mod common;

use abridge_core::{
    compress, Budget, CompressRequest, Compressed, LlmlinguaOptions, Method, TokenCounter,
};
use abridge_models::{LanguageModel, LoadOptions, TargetTokenizer, TiktokenCounter};
use common::{sample_text, smollm2};

fn demonstrations() -> Vec<String> {
    include_str!("fixtures/compress/gsm8k_demonstrations.txt")
        .split("\n\n###\n\n")
        .map(str::to_string)
        .collect()
}

fn counter() -> TiktokenCounter {
    TiktokenCounter::new(TargetTokenizer::Cl100kBase)
}

fn run(request: &CompressRequest) -> Compressed {
    compress(request, smollm2(), &counter(), None).unwrap()
}

fn llmlingua() -> Method {
    Method::Llmlingua(LlmlinguaOptions::default())
}

fn request(method: Method, contexts: Vec<String>, rate: f64) -> CompressRequest {
    let mut request = CompressRequest::new(method, contexts);
    request.budget = Budget::Rate(rate);
    request
}

/// The words of `compressed` appear in `original`, in order.
fn is_word_subsequence(compressed: &str, original: &str) -> bool {
    let mut words = original.split_whitespace();
    compressed
        .split_whitespace()
        .all(|w| words.by_ref().any(|o| o == w))
}

fn assert_budget(result: &Compressed, rate: f64) {
    let target = rate * result.origin_tokens as f64;
    let error = (result.compressed_tokens as f64 - target).abs();
    assert!(
        error <= 0.03 * target,
        "{} tokens for a target of {target:.1} ({} originally)",
        result.compressed_tokens,
        result.origin_tokens
    );
}

#[test]
fn llmlingua_compresses_prose_to_the_rate() {
    for (rate, name) in [(0.5, "prose_llmlingua_0.5"), (0.33, "prose_llmlingua_0.33")] {
        let result = run(&request(llmlingua(), vec![sample_text().to_string()], rate));
        assert!(result.origin_tokens >= 200);
        assert_budget(&result, rate);
        assert!(is_word_subsequence(&result.text, sample_text()));
        // Paragraph breaks survive compression.
        assert_eq!(result.text.matches("\n\n").count(), 2, "{}", result.text);
        insta::assert_snapshot!(name, result.text);
    }
}

#[test]
fn selective_context_compresses_prose_to_the_rate() {
    let result = run(&request(
        Method::SelectiveContext,
        vec![sample_text().to_string()],
        0.5,
    ));
    assert!(is_word_subsequence(&result.text, sample_text()));
    // Phrase units move in steps of a few tokens; within 5% here.
    let target = 0.5 * result.origin_tokens as f64;
    assert!((result.compressed_tokens as f64 - target).abs() <= 0.05 * target);
    insta::assert_snapshot!("prose_selective_context_0.5", result.text);
}

#[test]
fn numbers_in_demonstrations_survive_with_force_reserve_digit() {
    let demos = demonstrations();
    let all = demos.join("\n\n");
    for (rate, name) in [(0.5, "gsm8k_llmlingua_0.5"), (0.33, "gsm8k_llmlingua_0.33")] {
        let mut request = request(llmlingua(), demos.clone(), rate);
        request.protect.force_reserve_digit = true;
        request.question = "Question: A baker sells 12 loaves a day for $3 each. How much does she earn in 5 days?".into();
        let result = run(&request);
        // The coarse filter may drop whole demonstrations; in those it keeps, every word with a
        // digit survives.
        let mut kept_demonstrations = 0;
        for demo in &demos {
            let start = result.source.find(demo.as_str()).unwrap();
            let range = start..start + demo.len();
            let inside = |s: &&abridge_core::LabeledSpan| range.contains(&s.span.start);
            if !result.spans.iter().filter(inside).any(|s| s.kept) {
                continue;
            }
            kept_demonstrations += 1;
            for span in result.spans.iter().filter(inside) {
                let word = &result.source[span.span.clone()];
                if word.chars().any(|c| c.is_ascii_digit()) {
                    assert!(span.kept, "{word:?} lost at rate {rate}:\n{}", result.text);
                    assert!(result.text.contains(word.trim()));
                }
            }
        }
        assert!(kept_demonstrations >= 2, "{}", result.text);
        assert!(result.text.ends_with(&request.question));
        assert!(is_word_subsequence(
            &result.text,
            &format!("{all}\n\n{}", request.question)
        ));
        insta::assert_snapshot!(name, result.text);
    }
}

#[test]
fn target_tokens_are_counted_in_the_target_tokenizer() {
    for tokenizer in [TargetTokenizer::Cl100kBase, TargetTokenizer::O200kBase] {
        let counter = TiktokenCounter::new(tokenizer);
        let mut request = CompressRequest::new(llmlingua(), vec![sample_text().to_string()]);
        request.budget = Budget::TargetTokens(120);
        let result = compress(&request, smollm2(), &counter, None).unwrap();
        assert_eq!(result.compressed_tokens, counter.count(&result.text));
        assert!(
            result.compressed_tokens.abs_diff(120) <= 4,
            "{}",
            result.compressed_tokens
        );
        assert_eq!(result.tokenizer, tokenizer.name());
    }
}

#[test]
fn inputs_longer_than_the_context_are_compressed_in_windows() {
    let short_context = LanguageModel::load(
        &abridge_models::fetch::default_model_path(),
        LoadOptions {
            context_limit: Some(256),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let long = format!("{}\n\n{}", sample_text(), sample_text());
    assert!(short_context.encode(&long).unwrap().len() > 2 * short_context.max_tokens());
    for method in [llmlingua(), Method::SelectiveContext] {
        let result = compress(
            &request(method, vec![long.clone()], 0.5),
            &short_context,
            &counter(),
            None,
        )
        .unwrap();
        assert!(is_word_subsequence(&result.text, &long));
        assert!(result.rate > 0.4 && result.rate < 0.6, "{}", result.rate);
    }
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let text = vec![sample_text().to_string()];
    for rate in [0.0, -0.5, 1.5, f64::NAN] {
        let error = compress(
            &request(llmlingua(), text.clone(), rate),
            smollm2(),
            &counter(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("rate"), "{error}");
    }
    let mut question_only = CompressRequest::new(llmlingua(), vec![]);
    question_only.question = "What is the capital of France?".into();
    assert!(compress(&question_only, smollm2(), &counter(), None).is_err());
    let empty = CompressRequest::new(Method::SelectiveContext, vec!["   ".into()]);
    assert!(compress(&empty, smollm2(), &counter(), None).is_err());
}
