//! Selective Context end to end with the fake scorer: which spans are kept, exactly.

use std::cell::RefCell;

use abridge_core::testing::{FakeScorer, WordCounter};
use abridge_core::{
    compress, Budget, CompressRequest, Compressed, Error, Method, ProtectOptions, Unit,
};

fn request(text: &str, unit: Unit, budget: Budget) -> CompressRequest {
    let mut request = CompressRequest::new(Method::SelectiveContext, vec![text.into()]);
    request.unit = unit;
    request.budget = budget;
    request
}

fn run(request: &CompressRequest, scorer: &FakeScorer) -> Compressed {
    compress(request, scorer, &WordCounter, None).unwrap()
}

fn invalid(request: &CompressRequest) -> String {
    match compress(request, &FakeScorer::new(), &WordCounter, None) {
        Err(error @ (Error::InvalidInput(_) | Error::InvalidOption(_))) => error.to_string(),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn word_level_keeps_the_most_surprising_words_in_order() {
    let scorer = FakeScorer::new()
        .with("The", 1.0)
        .with("quick", 5.0)
        .with("brown", 2.0)
        .with("fox", 9.0)
        .with("jumps", 7.0)
        .with("over", 1.5)
        .with("the", 1.0)
        .with("lazy", 3.0)
        .with("dog", 8.0);
    let text = "The quick brown fox jumps over the lazy dog";
    let result = run(&request(text, Unit::Word, Budget::TargetTokens(4)), &scorer);
    assert_eq!(result.text, "quick fox jumps dog");
    assert_eq!((result.origin_tokens, result.compressed_tokens), (9, 4));
    assert_eq!(result.target_tokens, Some(4));
    assert_eq!(result.ratio, 9.0 / 4.0);
    assert_eq!(result.rate, 4.0 / 9.0);
    assert_eq!(result.tokenizer, "words");
    let kept: Vec<&str> = result
        .spans
        .iter()
        .filter(|s| s.kept)
        .map(|s| &result.source[s.span.clone()])
        .collect();
    assert_eq!(kept, vec![" quick", " fox", " jumps", " dog"]);
    assert_eq!(result.spans[3].score, Some(9.0));
}

#[test]
fn phrase_level_drops_whole_phrases_and_breaks_ties_by_position() {
    let scorer = FakeScorer::new()
        .with("The", 1.0)
        .with("old", 2.0)
        .with("red", 3.0)
        .with("barn", 6.0)
        .with("stood", 4.0)
        .with("in", 1.0)
        .with("the", 1.0)
        .with("quiet", 5.0)
        .with("valley,", 6.0)
        .with("and", 1.0)
        .with("it", 1.0)
        .with("fell.", 2.0);
    let text = "The old red barn stood in the quiet valley, and it fell.";
    // "stood" and "the quiet valley," both score 4; 1 + 3 words are nearest the target of 5.
    let result = run(
        &request(text, Unit::Phrase, Budget::TargetTokens(5)),
        &scorer,
    );
    assert_eq!(result.text, "stood the quiet valley,");
}

#[test]
fn sentence_level_rate_keeps_the_most_informative_sentences() {
    let scorer = FakeScorer::new().with("sleep.", 1.0).with("Birds", 9.0);
    let text = "Cats sleep. Dogs bark loudly! Birds sing?";
    // Rate 0.5 of 7 words is 4: two sentences (5 words) are nearer than one (2 words).
    let result = run(&request(text, Unit::Sentence, Budget::Rate(0.5)), &scorer);
    assert_eq!(result.text, "Dogs bark loudly! Birds sing?");
}

#[test]
fn threshold_keeps_units_scoring_at_least_it() {
    let result = run(
        &request("a bb ccccc dddddd", Unit::Word, Budget::Threshold(5.0)),
        &FakeScorer::new(),
    );
    assert_eq!(result.text, "ccccc dddddd");
    assert_eq!(result.target_tokens, None);
}

#[test]
fn protected_spans_survive_even_over_budget() {
    let mut request = request(
        "Call 555-0100 or email ops@example.com about invoice INV-7 now please",
        Unit::Word,
        Budget::TargetTokens(1),
    );
    request.protect = ProtectOptions {
        force_tokens: vec!["now".into()],
        force_reserve_digit: true,
        patterns: vec![r"\S+@\S+".into()],
        ..Default::default()
    };
    let result = run(&request, &FakeScorer::new());
    assert_eq!(result.text, "555-0100 ops@example.com INV-7 now");
    assert_eq!(result.protected_tokens, 4);
    assert!(result.protected_over_budget);
    assert!(result.spans.iter().filter(|s| s.protected).all(|s| s.kept));
}

#[test]
fn inline_code_is_protected_on_request() {
    let text = "Use `cargo build --release` to build it quickly";
    let mut protected = request(text, Unit::Word, Budget::TargetTokens(3));
    protected.protect.protect_code = true;
    assert_eq!(
        run(&protected, &FakeScorer::new()).text,
        "`cargo build --release`"
    );
    let unprotected = request(text, Unit::Word, Budget::TargetTokens(3));
    assert_eq!(
        run(&unprotected, &FakeScorer::new()).text,
        "`cargo --release` quickly"
    );
}

#[test]
fn markup_keeps_regions_applies_region_rates_and_never_leaks_tags() {
    let text = "<abridge keep>Keep this exactly.</abridge> Filler words here \
                <abridge rate=0.5>alpha beta gamma delta</abridge> end";
    let result = run(
        &request(text, Unit::Word, Budget::TargetTokens(7)),
        &FakeScorer::new(),
    );
    // Kept region (3 words) + region at rate 0.5 (alpha, gamma) + the two best plain words.
    assert_eq!(result.text, "Keep this exactly. Filler words alpha gamma");
    assert_eq!(
        result.source,
        "Keep this exactly. Filler words here alpha beta gamma delta end"
    );
    assert!(!result.text.contains("abridge"));
}

#[test]
fn malformed_markup_is_invalid_input() {
    let message = invalid(&request("a <abridge keep>b", Unit::Word, Budget::Rate(0.5)));
    assert!(message.contains("never closed"), "{message}");
}

#[test]
fn paragraph_breaks_survive_dropped_words() {
    let scorer = FakeScorer::new().with("drop1", 0.0).with("drop2", 0.0);
    let text = "Intro words\n\ndrop1 drop2\n\nkeep1 keep2\n";
    let result = run(&request(text, Unit::Word, Budget::TargetTokens(4)), &scorer);
    assert_eq!(result.text, "Intro words\n\nkeep1 keep2\n");
}

#[test]
fn cjk_and_emoji_are_dropped_as_whole_characters() {
    let scorer = FakeScorer::new()
        .with("数据", 9.0)
        .with("很", 1.0)
        .with("重要", 8.0)
        .with("👍🏽", 7.0)
        .with("fine", 2.0);
    let text = "数据 很 重要 👍🏽 fine";
    let result = run(&request(text, Unit::Word, Budget::TargetTokens(3)), &scorer);
    assert_eq!(result.text, "数据 重要 👍🏽");
    let units: Vec<&str> = result
        .spans
        .iter()
        .map(|s| &result.source[s.span.clone()])
        .collect();
    assert_eq!(units, vec!["数", "据", " 很", " 重", "要", " 👍🏽", " fine"]);
}

#[test]
fn single_word_is_kept_at_any_rate() {
    let result = run(
        &request("Hello", Unit::Word, Budget::Rate(0.1)),
        &FakeScorer::new(),
    );
    assert_eq!(result.text, "Hello");
}

#[test]
fn instruction_and_question_are_kept_verbatim() {
    // The instruction and question take 4 of the 5 tokens; the best context word takes the last.
    let mut request = request("aa b cccc d", Unit::Word, Budget::TargetTokens(5));
    request.instruction = "Read this.".into();
    request.question = "What matters?".into();
    let result = run(&request, &FakeScorer::new());
    assert_eq!(result.text, "Read this.\n\ncccc\n\nWhat matters?");
}

#[test]
fn inputs_longer_than_the_model_context_are_scored_in_windows() {
    let scorer = FakeScorer::new().with_max_context(8);
    let text: Vec<String> = (0..100).map(|i| "x".repeat(1 + (i * 7) % 11)).collect();
    let result = run(
        &request(&text.join(" "), Unit::Word, Budget::Rate(0.5)),
        &scorer,
    );
    assert_eq!(result.compressed_tokens, 50);
}

#[test]
fn progress_reports_every_token_and_ends_complete() {
    let calls = RefCell::new(Vec::new());
    let progress = |done: usize, total: usize| calls.borrow_mut().push((done, total));
    let text = vec!["word"; 600].join(" ");
    compress(
        &request(&text, Unit::Word, Budget::Rate(0.5)),
        &FakeScorer::new(),
        &WordCounter,
        Some(&progress),
    )
    .unwrap();
    let calls = calls.into_inner();
    assert_eq!(calls.last(), Some(&(600, 600)));
    assert!(calls.len() >= 3, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn bad_input_is_invalid_input_naming_the_fix() {
    assert!(invalid(&request("", Unit::Word, Budget::Rate(0.5))).contains("the text is empty"));
    assert!(invalid(&request("text", Unit::Word, Budget::Rate(0.0))).contains("(0, 1]"));
    assert!(invalid(&request("text", Unit::Word, Budget::Rate(1.5))).contains("(0, 1]"));
    assert!(invalid(&request("text", Unit::Word, Budget::TargetTokens(0))).contains("at least 1"));
    let mut question_only = request("", Unit::Word, Budget::Rate(0.5));
    question_only.contexts.clear();
    question_only.question = "What is 2+2?".into();
    assert!(invalid(&question_only).contains("give the text to compress as context"));
}

#[test]
fn label_map_partitions_the_source_and_matches_the_output() {
    let text = "One two three.\nFour five six seven.";
    let result = run(
        &request(text, Unit::Word, Budget::Rate(0.5)),
        &FakeScorer::new(),
    );
    let joined: String = result
        .spans
        .iter()
        .map(|s| &result.source[s.span.clone()])
        .collect();
    assert_eq!(joined, result.source);
    let kept_words: Vec<&str> = result
        .spans
        .iter()
        .filter(|s| s.kept)
        .map(|s| result.source[s.span.clone()].trim())
        .collect();
    assert_eq!(
        kept_words,
        result.text.split_whitespace().collect::<Vec<_>>()
    );
}
