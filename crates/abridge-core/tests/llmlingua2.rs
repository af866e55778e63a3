//! LLMLingua-2 with a fake classifier: given probabilities, exactly which words are kept.

use abridge_core::testing::{FakeClassifier, FakeEmbedder, FakeScorer, WordCounter};
use abridge_core::{
    compress, compress_with, Budget, CompressRequest, Compressed, Error, Llmlingua2Options,
    LlmlinguaOptions, Method, Models,
};

fn request(options: Llmlingua2Options, contexts: &[&str], budget: Budget) -> CompressRequest {
    let mut request = CompressRequest::new(
        Method::Llmlingua2(options),
        contexts.iter().map(|c| c.to_string()).collect(),
    );
    request.budget = budget;
    request
}

fn run(request: &CompressRequest, classifier: &FakeClassifier) -> Result<Compressed, Error> {
    let models = Models {
        scorer: None,
        counter: &WordCounter,
        embedder: None,
        classifier: Some(classifier),
        generator: None,
    };
    compress_with(request, models, None)
}

fn text(request: &CompressRequest, classifier: &FakeClassifier) -> String {
    run(request, classifier).unwrap().text
}

fn cat_classifier() -> FakeClassifier {
    FakeClassifier::new()
        .with("the", 0.1)
        .with("cat", 0.9)
        .with("sat", 0.8)
        .with("on", 0.2)
        .with("mat", 0.7)
}

#[test]
fn keeps_the_most_probable_words_to_the_budget() {
    let classifier = cat_classifier();
    let options = Llmlingua2Options::default();
    let text_of = |budget| {
        text(
            &request(options.clone(), &["the cat sat on the mat"], budget),
            &classifier,
        )
    };
    assert_eq!(text_of(Budget::Rate(0.5)), "cat sat mat");
    assert_eq!(text_of(Budget::TargetTokens(2)), "cat sat");
    assert_eq!(text_of(Budget::Rate(1.0)), "the cat sat on the mat");
}

#[test]
fn threshold_keeps_words_at_or_above_the_probability() {
    let classifier = cat_classifier();
    let text_of = |threshold| {
        text(
            &request(
                Llmlingua2Options::default(),
                &["the cat sat on the mat"],
                Budget::Threshold(threshold),
            ),
            &classifier,
        )
    };
    assert_eq!(text_of(0.75), "cat sat");
    assert_eq!(text_of(0.7), "cat sat mat");
    assert_eq!(text_of(0.0), "the cat sat on the mat");
    assert_eq!(text_of(1.0), "");
    for bad in [1.5, -0.1] {
        let error = run(
            &request(
                Llmlingua2Options::default(),
                &["the cat"],
                Budget::Threshold(bad),
            ),
            &classifier,
        )
        .unwrap_err();
        assert!(error.to_string().contains("[0, 1]"), "{error}");
    }
    let nan = request(
        Llmlingua2Options::default(),
        &["the cat"],
        Budget::Threshold(f32::NAN),
    );
    assert!(matches!(
        run(&nan, &classifier),
        Err(Error::InvalidInput(_) | Error::InvalidOption(_))
    ));
}

#[test]
fn a_word_scores_the_mean_of_its_tokens() {
    // "cats," is "cats" (0.9) and "," (0.1): 0.5, below "dogs" at 0.6.
    let classifier = FakeClassifier::new()
        .with("cats", 0.9)
        .with(",", 0.1)
        .with("dogs", 0.6)
        .with("and", 0.0);
    let result = run(
        &request(
            Llmlingua2Options::default(),
            &["cats, and dogs"],
            Budget::TargetTokens(1),
        ),
        &classifier,
    )
    .unwrap();
    assert_eq!(result.text, "dogs");
    let scores: Vec<_> = result.spans.iter().map(|s| s.score).collect();
    assert_eq!(scores, [Some(0.5), Some(0.0), Some(0.6)]);
}

#[test]
fn cjk_words_follow_the_classifier_tokens() {
    // Tokens 我们 很好 。 他们 不好 。: two-character words, never the whole sentence.
    let classifier = FakeClassifier::new()
        .with("我们", 0.9)
        .with("很好", 0.1)
        .with("他们", 0.2)
        .with("不好", 0.8)
        .with("。", 1.0);
    let context = "我们很好。他们不好。";
    let result = run(
        &request(
            Llmlingua2Options::default(),
            &[context],
            Budget::Threshold(0.7),
        ),
        &classifier,
    )
    .unwrap();
    let units: Vec<&str> = result
        .spans
        .iter()
        .map(|s| &context[s.span.clone()])
        .collect();
    assert_eq!(units, ["我们", "很好。", "他们", "不好。"]);
    assert_eq!(result.text, "我们不好。");
}

#[test]
fn force_tokens_are_words_of_their_own_and_always_kept() {
    let classifier = FakeClassifier::new().with("low", 0.0).with("high", 1.0);
    let run_with = |target| {
        let mut request = request(
            Llmlingua2Options::default(),
            &["high low. low? high 42 low"],
            Budget::TargetTokens(target),
        );
        request.protect.force_tokens = vec![".".into(), "?".into(), "\n".into()];
        request.protect.force_reserve_digit = true;
        run(&request, &classifier).unwrap()
    };
    let result = run_with(1);
    assert_eq!(result.text, ". ? 42");
    assert!(result.protected_over_budget);
    assert_eq!(run_with(4).text, "high . ? 42");
}

#[test]
fn drop_consecutive_keeps_the_first_of_repeated_force_tokens() {
    let classifier = FakeClassifier::new()
        .with("x", 0.9)
        .with("y", 0.9)
        .with("z", 0.0);
    let text_of = |drop_consecutive| {
        let mut request = request(
            Llmlingua2Options {
                drop_consecutive,
                ..Default::default()
            },
            &["x | z | z | y | z"],
            Budget::Rate(1.0),
        );
        request.protect.force_tokens = vec!["|".into()];
        text(&request, &classifier)
    };
    assert_eq!(text_of(false), "x | z | z | y | z");
    assert_eq!(
        text_of(true),
        "x | z | z | y | z",
        "kept words separate the repeats"
    );
    let with_budget = |drop_consecutive| {
        let mut request = request(
            Llmlingua2Options {
                drop_consecutive,
                ..Default::default()
            },
            &["x | z | z | y | z"],
            Budget::TargetTokens(6),
        );
        request.protect.force_tokens = vec!["|".into()];
        text(&request, &classifier)
    };
    assert_eq!(with_budget(false), "x | | | y |");
    // The repeats go, and the budget they freed goes to the dropped words.
    assert_eq!(with_budget(true), "x | z z y |");
}

#[test]
fn the_context_filter_drops_contexts_with_low_mean_probability() {
    let classifier = FakeClassifier::new()
        .with("good", 0.9)
        .with("bad", 0.1)
        .with("fair", 0.5);
    let contexts = ["good good", "bad bad", "fair fair"];
    let text_of = |options: Llmlingua2Options| {
        text(
            &request(
                Llmlingua2Options {
                    use_context_level_filter: true,
                    ..options
                },
                &contexts,
                Budget::Rate(1.0),
            ),
            &classifier,
        )
    };
    // Keep a third: the 66th percentile of (0.1, 0.5, 0.9) is 0.628.
    let third = Llmlingua2Options {
        context_level_rate: Some(1.0 / 3.0),
        ..Default::default()
    };
    assert_eq!(text_of(third.clone()), "good good");
    let forced = Llmlingua2Options {
        force_context_ids: vec![1],
        ..third
    };
    assert_eq!(text_of(forced), "good good\n\nbad bad");
    let two = Llmlingua2Options {
        target_context: Some(2),
        ..Default::default()
    };
    assert_eq!(text_of(two), "good good\n\nfair fair");
    // rate 1 and no context option: the reference's default keeps (1 + 1) / 2 = all.
    assert_eq!(
        text_of(Llmlingua2Options::default()),
        "good good\n\nbad bad\n\nfair fair"
    );
}

#[test]
fn compat_thresholds_each_chunk_where_the_default_selects_globally() {
    // Window 5 tokens: chunks "a b c d." and "e f g h." (cut after the full stop).
    let classifier = FakeClassifier::new()
        .with("a", 0.9)
        .with("b", 0.8)
        .with("c", 0.7)
        .with("d", 0.6)
        .with(".", 0.5)
        .with("e", 0.4)
        .with("f", 0.3)
        .with("g", 0.2)
        .with("h", 0.1)
        .with_window(5);
    let context = ["a b c d. e f g h."];
    let global = text(
        &request(Llmlingua2Options::default(), &context, Budget::Rate(0.5)),
        &classifier,
    );
    assert_eq!(global, "a b c d.");
    let compat = Llmlingua2Options {
        compat: true,
        ..Default::default()
    };
    // Chunk 1: the weighted 51st percentile of (.55 .7 .8 .9) is 0.753, so a and b; chunk 2:
    // of (.2 .3 .3 .4) it is 0.3, so only e.
    assert_eq!(
        text(&request(compat, &context, Budget::Rate(0.5)), &classifier),
        "a b e"
    );
}

#[test]
fn a_question_raises_the_words_of_relevant_sentences() {
    let classifier = FakeClassifier::new();
    let mut request = request(
        Llmlingua2Options::default(),
        &["Cats purr softly. Dogs bark loudly."],
        Budget::TargetTokens(7),
    );
    request.question = "Why do dogs bark?".into();
    assert_eq!(
        text(&request, &classifier),
        "Dogs bark loudly.\n\nWhy do dogs bark?"
    );
    // The embedder is used when there is one.
    let models = Models {
        scorer: None,
        counter: &WordCounter,
        embedder: Some(&FakeEmbedder),
        classifier: Some(&classifier),
        generator: None,
    };
    let result = compress_with(&request, models, None).unwrap();
    assert_eq!(result.text, "Dogs bark loudly.\n\nWhy do dogs bark?");
    // A weight of 0 ignores the question: ties resolve by position.
    request.method = Method::Llmlingua2(Llmlingua2Options {
        question_weight: 0.0,
        ..Default::default()
    });
    assert_eq!(
        text(&request, &classifier),
        "Cats purr softly.\n\nWhy do dogs bark?"
    );
}

#[test]
fn missing_models_and_bad_options_are_invalid_input() {
    let llmlingua2 = request(
        Llmlingua2Options::default(),
        &["some text"],
        Budget::Rate(0.5),
    );
    let error = compress(&llmlingua2, &FakeScorer::new(), &WordCounter, None).unwrap_err();
    assert!(error.to_string().contains("token classifier"), "{error}");
    let llmlingua = CompressRequest::new(
        Method::Llmlingua(LlmlinguaOptions::default()),
        vec!["some text".into()],
    );
    let error = run(&llmlingua, &FakeClassifier::new()).unwrap_err();
    assert!(
        error.to_string().contains("scoring language model"),
        "{error}"
    );
    for options in [
        Llmlingua2Options {
            force_context_ids: vec![3],
            ..Default::default()
        },
        Llmlingua2Options {
            context_level_rate: Some(0.0),
            ..Default::default()
        },
        Llmlingua2Options {
            target_context: Some(0),
            ..Default::default()
        },
        Llmlingua2Options {
            question_weight: 2.0,
            ..Default::default()
        },
    ] {
        let error = run(
            &request(options, &["a b"], Budget::Rate(0.5)),
            &FakeClassifier::new(),
        );
        assert!(
            matches!(error, Err(Error::InvalidInput(_) | Error::InvalidOption(_))),
            "{error:?}"
        );
    }
    let empty = request(Llmlingua2Options::default(), &[""], Budget::Rate(0.5));
    assert!(matches!(
        run(&empty, &FakeClassifier::new()),
        Err(Error::InvalidInput(_) | Error::InvalidOption(_))
    ));
}
