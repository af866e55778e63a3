//! Every valid UTF-8 text compresses (issue #21, item 1): characters from all of Unicode —
//! controls, every plane, unassigned and private-use code points, combining marks, ZWJ
//! sequences, bidi controls — mixed into prose, through the real tokenizer and every method on
//! the real default models. Before the fix, a byte SmolLM2's vocabulary lacks (U+0004, the lead
//! byte of U+40000..U+BFFFF) made the tokenizer refuse the text.

mod common;

use std::sync::OnceLock;

use abridge_core::{
    compress_with, Budget, CompressRequest, Llmlingua2Options, LlmlinguaOptions,
    LongLlmlinguaOptions, Method, Models, RankMethod,
};
use abridge_models::{FastClassifier, TargetTokenizer, TiktokenCounter};
use common::smollm2;
use proptest::prelude::*;

const PROSE: &[&str] = &[
    "The", "harbour", "was", "rebuilt", "in", "1889,", "after", "the", "storm.", "Ships", "waited",
    "offshore", "for", "weeks;", "the", "quay", "(now", "a", "museum)", "opened", "again.", "\n",
    "\n\n", "  ",
];

/// One piece of a hostile text: a prose word, or characters from a corner of Unicode.
fn piece() -> impl Strategy<Value = String> {
    let chars = |range: std::ops::RangeInclusive<u32>| {
        proptest::collection::vec(range, 1..4).prop_map(|codes| {
            codes
                .into_iter()
                .filter_map(char::from_u32)
                .collect::<String>()
        })
    };
    prop_oneof![
        4 => proptest::sample::select(PROSE).prop_map(|w| format!("{w} ")),
        // Any scalar value: every plane, unassigned and private-use code points included.
        2 => proptest::collection::vec(any::<char>(), 1..4).prop_map(String::from_iter),
        1 => chars(0x00..=0x1f),
        1 => chars(0x7f..=0x9f),
        // Planes 4-11, whose UTF-8 lead bytes (0xF1, 0xF2) SmolLM2's vocabulary lacks.
        1 => chars(0x40000..=0xBFFFF),
        1 => chars(0xE000..=0xF8FF),
        1 => chars(0xF0000..=0x10FFFF),
        // Combining marks, alone and after a letter.
        1 => chars(0x0300..=0x036F).prop_map(|marks| format!("e{marks}")),
        1 => chars(0x0300..=0x036F),
        1 => proptest::sample::select(&[
            "👩\u{200D}💻", "👨\u{200D}👩\u{200D}👧", "\u{200D}", "🏳\u{FE0F}\u{200D}🌈",
            "\u{202E}abc\u{202C}", "\u{2067}שלום\u{2069}", "\u{200E}", "\u{200F}", "\u{FEFF}",
            "\u{FFFD}", "\u{FFFF}", "中文", "<|endoftext|>", "<abridge keep>x</abridge>",
        ][..]).prop_map(str::to_string),
    ]
}

fn hostile_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 1..24).prop_map(|pieces| pieces.concat())
}

fn counter() -> TiktokenCounter {
    TiktokenCounter::new(TargetTokenizer::Cl100kBase)
}

fn fast() -> &'static FastClassifier {
    static MODEL: OnceLock<FastClassifier> = OnceLock::new();
    MODEL.get_or_init(|| {
        FastClassifier::load_default().unwrap_or_else(|e| {
            panic!("{e}\n(the tests need all-MiniLM-L6-v2: run scripts/fetch-models.sh)")
        })
    })
}

fn methods() -> Vec<Method> {
    vec![
        Method::SelectiveContext,
        Method::Llmlingua(LlmlinguaOptions::default()),
        Method::LongLlmlingua(LongLlmlinguaOptions {
            rank_method: RankMethod::Bm25,
            ..LongLlmlinguaOptions::default()
        }),
        Method::Llmlingua2(Llmlingua2Options::default()),
    ]
}

#[test]
fn the_issues_repros_tokenize() {
    for text in [
        "a \u{4} b",
        "\u{46fbb}",
        "\u{4}",
        "\u{4}\u{6}\u{13}",
        "x\u{1d}",
    ] {
        let tokens = smollm2().encode(text).unwrap();
        assert!(!tokens.is_empty(), "{text:?}");
        assert_eq!(tokens.first().unwrap().span.start, 0);
        assert_eq!(tokens.last().unwrap().span.end, text.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Spans tile the text, start and end on character boundaries, and the ids decode to the
    /// text minus only the bytes the vocabulary lacks.
    #[test]
    fn any_text_tokenizes_into_spans_that_tile_it(text in hostile_text()) {
        let tokens = smollm2().encode(&text).unwrap();
        let mut at = 0;
        for token in &tokens {
            prop_assert_eq!(token.span.start, at);
            prop_assert!(token.span.end >= token.span.start);
            prop_assert!(text.is_char_boundary(token.span.end));
            at = token.span.end;
        }
        prop_assert_eq!(at, text.len());
    }
}

proptest! {
    // Each case runs four compressions on the real models: kept small so the file takes seconds.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn any_text_compresses_with_every_method(text in hostile_text(), rate in 0.1f64..0.9) {
        let counter = counter();
        for method in methods() {
            let name = format!("{method:?}");
            let mut request = CompressRequest::new(method, vec![text.clone()]);
            request.budget = Budget::Rate(rate);
            request.question = "When was the harbour rebuilt?".into();
            let models = Models {
                scorer: Some(smollm2()),
                counter: &counter,
                embedder: None,
                classifier: Some(fast()),
                generator: None,
            };
            let result = compress_with(&request, models, None);
            if text.trim().is_empty() {
                // Blank text is the one refusal: a clear error, not a failure of the method.
                let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(error.contains("nothing to compress"), "{name} on {text:?}: {error}");
                continue;
            }
            prop_assert!(result.is_ok(), "{name} on {text:?}: {}", result.unwrap_err());
            let result = result.unwrap();
            for span in &result.spans {
                prop_assert!(result.source.get(span.span.clone()).is_some(), "{name}");
            }
        }
    }
}
