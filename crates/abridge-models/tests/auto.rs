//! `auto`, the default method of every front end, with the real abridge-fast classifier on a
//! ten-minute reader's worth of retrieved passages (examples/marisol).

use abridge_core::{compress_with, Compressed, CompressionOptions, Embedder, MethodName, Models};
use abridge_models::{FastClassifier, SentenceEncoder, TargetTokenizer, TiktokenCounter};

fn documents() -> Vec<String> {
    include_str!("../../../examples/marisol/documents.txt")
        .split("\n\n")
        .map(|d| d.trim().to_string())
        .collect()
}

fn question() -> String {
    include_str!("../../../examples/marisol/question.txt")
        .trim()
        .to_string()
}

fn compress_by_default(rate: f64, embedder: Option<&dyn Embedder>) -> Compressed {
    let options = CompressionOptions {
        rate: Some(rate),
        ..CompressionOptions::default()
    };
    let plan = options
        .plan(String::new(), documents(), question())
        .unwrap();
    assert_eq!(plan.method, MethodName::Auto, "auto is the default method");
    let classifier = FastClassifier::load_default()
        .expect("abridge-fast is installed (scripts/fetch-models.sh)");
    let counter = TiktokenCounter::new(TargetTokenizer::default());
    let models = Models {
        scorer: None,
        counter: &counter,
        embedder,
        classifier: Some(&classifier),
        generator: None,
    };
    compress_with(&plan.request, models, None).unwrap()
}

#[test]
fn the_default_method_keeps_the_year_and_the_yard_of_the_answer_at_a_fifth() {
    let embedder = SentenceEncoder::load_default().expect("MiniLM is installed");
    // With MiniLM's sentence relevance, and with BM25's when no embedder is installed.
    for embedder in [Some(&embedder as &dyn Embedder), None] {
        let result = compress_by_default(0.2, embedder);
        let text = &result.text;
        assert!(
            text.contains("1954") && text.contains("Kessler"),
            "embedder: {}: {text}",
            embedder.is_some()
        );
        assert!(text.ends_with(&question()), "{text}");
        assert!(result.rate < 0.3, "rate {}: {text}", result.rate);
    }
}

#[test]
fn dates_numbers_and_names_survive_whole_or_not_at_all() {
    for rate in [0.2, 0.35, 0.5] {
        let text = compress_by_default(rate, None).text;
        // Each is one unit: kept as it stands, or none of its distinctive part is.
        for (whole, part) in [
            ("1,200 people", "1,200"),
            ("62 metres", "62 "),
            ("25 minutes", "25 "),
            ("Tobias Kessler", "Tobias"),
            ("Aldine Star", "Star"),
            ("Second World War", "World"),
        ] {
            assert!(
                text.contains(whole) || !text.contains(part),
                "rate {rate}: `{part}` without `{whole}`: {text}"
            );
        }
    }
}
