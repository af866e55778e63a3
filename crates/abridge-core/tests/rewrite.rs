//! `rewrite` with fake generators: the budget, the faithfulness guard, the instruction with and
//! without a question, protected text, and failures.

use std::sync::Mutex;

use abridge_core::faithfulness::Facts;
use abridge_core::testing::{document_of, FakeClassifier, FakeGenerator, WordCounter};
use abridge_core::{
    compress_with, BoxError, Budget, CompressRequest, Compressed, Error, Generation, Generator,
    Method, Models, ProtectOptions, RewriteConfig,
};
use proptest::prelude::*;

const TEXT: &str = "Gerd Müller was born in Nördlingen in 1945. He played for Bayern Munich \
    from 1964 to 1979. He scored 68 goals in 62 games for West Germany. The weather in the town \
    is mild in spring. Many visitors come to see the old walls. The river runs past the mill.";

fn request(question: &str, budget: Budget) -> CompressRequest {
    let mut request = CompressRequest::new(
        Method::Rewrite(RewriteConfig::default()),
        vec![TEXT.to_string()],
    );
    request.question = question.to_string();
    request.budget = budget;
    request
}

fn run(request: &CompressRequest, generator: Option<&dyn Generator>) -> Result<Compressed, Error> {
    let classifier = FakeClassifier::new();
    let models = Models {
        scorer: None,
        counter: &WordCounter,
        embedder: None,
        classifier: Some(&classifier),
        generator,
    };
    compress_with(request, models, None)
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[test]
fn the_result_meets_the_target_and_reports_both_sizes() {
    // A generator that goes on and on (all supported sentences): the budget cuts it.
    let generator = FakeGenerator::new(|request: &Generation| Ok(document_of(request).repeat(5)));
    let request = request("", Budget::Rate(0.3));
    let result = run(&request, Some(&generator)).unwrap();
    let target = result.target_tokens.unwrap();
    assert_eq!(target, (0.3 * words(TEXT) as f64).round() as usize);
    assert!(result.compressed_tokens <= target, "{result:?}");
    assert!(result.compressed_tokens > 0);
    let rewrite = result.rewrite.as_ref().unwrap();
    // Without a question or an instruction the prompt is the rewrite and its fill.
    assert_eq!(
        rewrite.rewrite_tokens + rewrite.fill_tokens,
        result.compressed_tokens
    );
    // The extract had twice the target to spend.
    assert!(rewrite.extract_tokens <= 2 * target, "{rewrite:?}");
    assert!(rewrite.extract_tokens > target, "{rewrite:?}");
    assert!(rewrite.sentences_over_budget > 0);
    assert!(rewrite.unsupported_spans.is_empty());
    assert_eq!(result.origin_tokens, words(TEXT));
}

#[test]
fn a_short_rewrite_is_filled_with_the_extracts_most_relevant_uncovered_sentences() {
    // The small model's habit: one sentence, far under the budget.
    let generator =
        FakeGenerator::new(|_: &Generation| Ok("Gerd Müller was born in Nördlingen.".into()));
    let question = "How many goals did he score for West Germany?";
    for target in [27, 31, 36, 45] {
        let request = request(question, Budget::TargetTokens(target));
        let result = run(&request, Some(&generator)).unwrap();
        let rewrite = result.rewrite.as_ref().unwrap();
        assert!(result.compressed_tokens <= target, "{target}: {result:?}");
        // Within the 3% (a word's rounding at these sizes).
        assert!(
            result.compressed_tokens as f64 >= 0.97 * target as f64 - 1.0,
            "{target}: {} in {:?}",
            result.compressed_tokens,
            result.text
        );
        assert!(result
            .text
            .starts_with("Gerd Müller was born in Nördlingen."));
        // The sentence that answers the question comes first in the fill.
        assert!(
            rewrite
                .fill
                .starts_with("He scored 68 goals in 62 games for West Germany."),
            "{target}: {:?}",
            rewrite.fill
        );
        // What the rewrite covers is not added twice.
        assert!(!rewrite.fill.contains("born in"), "{:?}", rewrite.fill);
        assert_eq!(words(&rewrite.fill), rewrite.fill_tokens);
        assert_eq!(rewrite.rewritten, "Gerd Müller was born in Nördlingen.");
        assert_eq!(words(&rewrite.rewritten), rewrite.rewrite_tokens);
        assert!(result
            .text
            .starts_with(&format!("{} {}", rewrite.rewritten, rewrite.fill)));
    }
    // Without a question the fill follows the extract's order.
    let result = run(&request("", Budget::TargetTokens(20)), Some(&generator)).unwrap();
    let fill = &result.rewrite.as_ref().unwrap().fill;
    assert!(fill.starts_with("He played for Bayern Munich"), "{fill:?}");
}

#[test]
fn a_rewrite_that_fills_the_budget_gets_no_fill() {
    let generator = FakeGenerator::new(|request: &Generation| Ok(document_of(request).into()));
    let result = run(&request("", Budget::TargetTokens(8)), Some(&generator)).unwrap();
    let rewrite = result.rewrite.as_ref().unwrap();
    assert_eq!(result.text, "Gerd Müller was born in Nördlingen in 1945.");
    assert_eq!((rewrite.fill.as_str(), rewrite.fill_tokens), ("", 0));
}

#[test]
fn the_extract_keeps_the_first_word_of_every_context() {
    // Each context's first unit carries the separator before it; it is still the context's.
    let generator = FakeGenerator::new(|_: &Generation| Ok(String::new()));
    let mut request = request("Who played Pilate?", Budget::Rate(0.9));
    request.instruction = "Answer briefly.".into();
    request.contexts = vec![
        "Choi Tae-joon as Pontius Pilate.".into(),
        "Barry Dennen as Pontius Pilate.".into(),
    ];
    let result = run(&request, Some(&generator)).unwrap();
    let extract = &result.rewrite.as_ref().unwrap().extract;
    assert_eq!(
        extract,
        "Choi Tae-joon as Pontius Pilate.\n\nBarry Dennen as Pontius Pilate."
    );
    // Nor does the question's first word, after a context that ends in a line break, join it.
    request.contexts[1].push('\n');
    let result = run(&request, Some(&generator)).unwrap();
    let rewrite = result.rewrite.as_ref().unwrap();
    assert!(!rewrite.extract.contains("Who"), "{:?}", rewrite.extract);
    assert!(rewrite.restored_protected.is_empty(), "{rewrite:?}");
}

#[test]
fn a_sentence_that_invents_a_fact_is_replaced_by_the_extracts_nearest_sentence() {
    let generator = FakeGenerator::new(|_: &Generation| {
        Ok("Gerd Müller was born in Zorblax in 1946. He scored 68 goals in 62 games.".into())
    });
    let request = request("Where was Gerd Müller born?", Budget::Rate(0.8));
    let result = run(&request, Some(&generator)).unwrap();
    let rewrite = result.rewrite.as_ref().unwrap();
    let spans: Vec<&str> = rewrite
        .unsupported_spans
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(spans, ["Zorblax", "1946"]);
    let replacement = rewrite.unsupported_spans[0].replaced_by.as_deref().unwrap();
    assert!(replacement.contains("Nördlingen"), "{replacement}");
    assert!(result.text.contains(replacement), "{}", result.text);
    assert!(result.text.contains("He scored 68 goals in 62 games."));
    assert!(!result.text.contains("Zorblax") && !result.text.contains("1946"));
    // The question is kept verbatim after the rewrite.
    assert!(result.text.ends_with("\n\nWhere was Gerd Müller born?"));
}

#[test]
fn the_instruction_asks_for_an_answer_with_a_question_and_a_summary_without() {
    let seen = Mutex::new(Vec::new());
    let generator = FakeGenerator::new(|request: &Generation| {
        seen.lock()
            .unwrap()
            .push((request.user.to_string(), request.max_new_tokens));
        Ok("He played for Bayern Munich.".into())
    });
    run(
        &request("Who did he play for?", Budget::TargetTokens(30)),
        Some(&generator),
    )
    .unwrap();
    run(&request("", Budget::TargetTokens(30)), Some(&generator)).unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(
        seen[0].0.contains("Question: Who did he play for?"),
        "{}",
        seen[0].0
    );
    assert!(seen[0].0.contains("answers the question"));
    assert!(
        seen[1].0.contains("Summarise the document"),
        "{}",
        seen[1].0
    );
    assert!(!seen[1].0.contains("Question:"));
    // Generation is bounded near the budget left after the question (30 - 5 words).
    assert!(seen[0].1 < 2 * 30 && seen[0].1 >= 24, "{}", seen[0].1);
}

#[test]
fn an_empty_generation_leaves_the_extract_cut_to_the_budget() {
    let generator = FakeGenerator::new(|_: &Generation| Ok("   ".into()));
    let result = run(&request("", Budget::Rate(0.4)), Some(&generator)).unwrap();
    let rewrite = result.rewrite.as_ref().unwrap();
    assert_eq!(rewrite.generated, "");
    assert!(result.compressed_tokens <= result.target_tokens.unwrap());
    assert!(!result.text.is_empty());
    // Every sentence of the output is one of the extract's.
    assert!(rewrite
        .extract
        .contains(result.text.split(". ").next().unwrap()));
}

#[test]
fn a_failing_generator_and_a_missing_one_are_clear_errors() {
    let failing = FakeGenerator::new(|_: &Generation| -> Result<String, BoxError> {
        Err("connection refused".into())
    });
    let error = run(&request("", Budget::Rate(0.4)), Some(&failing)).unwrap_err();
    assert!(matches!(error, Error::Model(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the rewrite's generator (fake) failed: connection refused"
    );
    let error = run(&request("", Budget::Rate(0.4)), None).unwrap_err();
    assert!(error.to_string().contains("needs a generator"), "{error}");
    let error = run(&request("", Budget::Threshold(0.5)), Some(&failing)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("threshold does not apply to rewrite"),
        "{error}"
    );
}

#[test]
fn protected_text_the_rewrite_lost_is_put_back() {
    let generator = FakeGenerator::new(|_: &Generation| Ok("He played for Bayern Munich.".into()));
    let mut request = request("", Budget::Rate(0.5));
    request.protect = ProtectOptions {
        force_tokens: vec!["old walls".into()],
        ..ProtectOptions::default()
    };
    let result = run(&request, Some(&generator)).unwrap();
    let rewrite = result.rewrite.as_ref().unwrap();
    assert_eq!(rewrite.restored_protected, ["old walls"]);
    assert!(result.text.contains("old walls"), "{}", result.text);
    assert!(result.text.starts_with("He played for Bayern Munich."));
}

/// Words for random source texts: no capitalised word and no number in them starts with `Zq`
/// or has five digits, so the generator's inventions never occur in the source.
const VOCABULARY: &[&str] = &[
    "river", "town", "mill", "walls", "Anna", "Berlin", "Otto", "played", "built", "the", "in",
    "was", "a", "old", "Rhine", "scored", "goals", "and",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn invented_facts_never_reach_the_output(
        sentences in prop::collection::vec(
            (prop::collection::vec(prop::sample::select(VOCABULARY), 3..9), 1u32..999),
            2..8,
        ),
        inventions in prop::collection::vec(
            (prop::sample::select(&["Zqor", "Zqanda", "Zqel"][..]), 10_000u32..99_999, 0usize..4),
            1..6,
        ),
        rate in 0.2f64..1.0,
        question in prop::bool::ANY,
    ) {
        let text: String = sentences
            .iter()
            .map(|(words, number)| format!("{} {number}.", words.join(" ")))
            .collect::<Vec<_>>()
            .join(" ");
        let invented: Vec<String> = inventions
            .iter()
            .flat_map(|(name, number, _)| [name.to_string(), number.to_string()])
            .collect();
        // The fake copies the document's sentences and slips an invented name or number into
        // some, or adds sentences of its own.
        let generator = FakeGenerator::new(|request: &Generation| {
            let document = document_of(request);
            let mut reply: Vec<String> =
                document.split(". ").map(|s| s.trim_end_matches('.').to_string()).collect();
            for (name, number, how) in &inventions {
                let at = *how % reply.len().max(1);
                match *how {
                    0 => reply.push(format!("{name} paid {number}")),
                    1 if !reply.is_empty() => reply[at].push_str(&format!(" near {name}")),
                    2 if !reply.is_empty() => reply[at].push_str(&format!(" {number} times")),
                    _ => reply.insert(0, format!("It was {number}")),
                }
            }
            Ok(reply.join(". ") + ".")
        });
        let mut request = CompressRequest::new(
            Method::Rewrite(RewriteConfig::default()),
            vec![text.clone()],
        );
        request.budget = Budget::Rate(rate);
        if question {
            request.question = "Who played in Berlin?".into();
        }
        let result = run(&request, Some(&generator)).unwrap();
        for fact in &invented {
            prop_assert!(!result.text.contains(fact.as_str()), "{fact} in {:?}", result.text);
        }
        let facts = Facts::of(&result.source);
        for sentence in result.text.split(". ") {
            prop_assert!(facts.unsupported(sentence).is_empty(), "{sentence}");
        }
        let rewrite = result.rewrite.as_ref().unwrap();
        let reported = rewrite.unsupported_spans.iter().any(|s| invented.contains(&s.text));
        let generated = invented.iter().any(|fact| rewrite.generated.contains(fact.as_str()));
        prop_assert_eq!(reported, generated, "{:?}", rewrite);
        prop_assert!(result.compressed_tokens <= result.target_tokens.unwrap() || result.protected_over_budget);
    }
}
