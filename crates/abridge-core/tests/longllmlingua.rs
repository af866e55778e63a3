//! LongLLMLingua end to end with fakes: ranking, the coarse filter, reordering, dynamic ratios,
//! question-aware token scores, the sentence filter, and bad input.
//!
//! The fake scorer "recalls": a word the session has already read costs 1 nat, a new word its
//! length. So a document that shares words with the question predicts it best, and under
//! `condition_compare` the words of the question are the ones the question makes cheaper.

use abridge_core::testing::{FakeEmbedder, FakeScorer, WordCounter};
use abridge_core::{
    compress, compress_with, Budget, CompressRequest, Compressed, ConditionInQuestion, Error,
    LongLlmlinguaOptions, Method, Models, QuestionPosition, RankMethod, Reorder, Unit,
};

const QUESTION: &str = "Which river flows through Cairo?";
const GOLD: &str = "The Nile river flows north through Cairo to the sea.";
const DISTRACTORS: [&str; 3] = [
    "Bananas grow in warm humid climates worldwide.",
    "Glaciers carve deep valleys over many thousands of years.",
    "Paris has many museums and elegant old bridges.",
];

fn documents() -> Vec<String> {
    let mut docs: Vec<String> = DISTRACTORS.iter().map(|d| d.to_string()).collect();
    docs.insert(2, GOLD.to_string());
    docs
}

fn scorer() -> FakeScorer {
    FakeScorer::new().with_recall(1.0)
}

fn request(options: LongLlmlinguaOptions, budget: Budget) -> CompressRequest {
    let mut request = CompressRequest::new(Method::LongLlmlingua(options), documents());
    request.question = QUESTION.into();
    request.budget = budget;
    // The fake scorer's costs are per word; these tests follow single words, not the default
    // phrase unit.
    request.unit = Unit::Word;
    request
}

fn run(request: &CompressRequest) -> Compressed {
    compress(request, &scorer(), &WordCounter, None).unwrap()
}

/// The kept words of each document of `result.source`, in source order (the question excluded).
fn kept_per_document(result: &Compressed) -> Vec<(String, usize)> {
    let source = &result.source;
    let mut out = Vec::new();
    let mut start = 0;
    for part in source.split("\n\n") {
        let range = start..start + part.len();
        start = range.end + 2;
        if part == QUESTION {
            continue;
        }
        let kept = result
            .spans
            .iter()
            .filter(|s| {
                s.kept && range.contains(&s.span.start) && !source[s.span.clone()].trim().is_empty()
            })
            .count();
        out.push((part.to_string(), kept));
    }
    out
}

#[test]
fn without_a_question_it_is_invalid_input_naming_the_fix() {
    let mut request = request(LongLlmlinguaOptions::default(), Budget::Rate(0.5));
    request.question = " ".into();
    let error = compress(&request, &scorer(), &WordCounter, None).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidOption(e) if e.field == "question" && e.to_string().contains("method llmlingua")),
        "{error}"
    );
    // Ranking by document perplexity without question-aware tokens needs no question.
    let options = LongLlmlinguaOptions {
        rank_method: RankMethod::Llmlingua,
        condition_in_question: "none".parse().unwrap(),
        condition_compare: false,
        ..Default::default()
    };
    let mut request = self::request(options, Budget::Rate(0.5));
    request.question.clear();
    assert!(compress(&request, &scorer(), &WordCounter, None).is_ok());
}

#[test]
fn bad_options_are_invalid_input() {
    for options in [
        LongLlmlinguaOptions {
            dynamic_context_compression_ratio: 1.5,
            ..Default::default()
        },
        LongLlmlinguaOptions {
            force_context_ids: vec![4],
            ..Default::default()
        },
        LongLlmlinguaOptions {
            iterative_size: 0,
            ..Default::default()
        },
        LongLlmlinguaOptions {
            token_budget_ratio: f64::NAN,
            ..Default::default()
        },
    ] {
        let error = compress(
            &request(options, Budget::Rate(0.5)),
            &scorer(),
            &WordCounter,
            None,
        )
        .unwrap_err();
        assert!(
            matches!(error, Error::InvalidInput(_) | Error::InvalidOption(_)),
            "{error}"
        );
    }
    assert!("sideways".parse::<ConditionInQuestion>().is_err());
}

#[test]
fn the_relevant_document_is_kept_and_sorted_first() {
    // 38 words; a target of 12 leaves 7 for the documents, +100 would keep all, so budget
    // the coarse filter tightly.
    let options = LongLlmlinguaOptions {
        context_budget: "+0".parse().unwrap(),
        ..Default::default()
    };
    let result = run(&request(options, Budget::TargetTokens(12)));
    assert!(result.source.starts_with(GOLD), "{}", result.source);
    assert!(result.source.ends_with(QUESTION));
    let kept = kept_per_document(&result);
    assert!(kept[0].1 > 0);
    assert!(kept[1..].iter().all(|(_, k)| *k == 0), "{kept:?}");
    assert!(result.text.contains("Cairo"), "{}", result.text);
    assert!(result.text.ends_with(QUESTION));
}

#[test]
fn every_rank_method_finds_the_relevant_document() {
    for method in [
        RankMethod::Longllmlingua,
        RankMethod::Bm25,
        RankMethod::Gzip,
        RankMethod::Embedding,
    ] {
        let options = LongLlmlinguaOptions {
            rank_method: method,
            context_budget: "+0".parse().unwrap(),
            ..Default::default()
        };
        let request = request(options, Budget::TargetTokens(12));
        let models = Models {
            scorer: Some(&scorer()),
            counter: &WordCounter,
            embedder: Some(&FakeEmbedder),
            classifier: None,
            generator: None,
        };
        let result = compress_with(&request, models, None).unwrap();
        assert!(
            result.source.starts_with(GOLD),
            "{method:?}: {}",
            result.source
        );
    }
    // The embedding ranker without an embedder says what is missing.
    let options = LongLlmlinguaOptions {
        rank_method: RankMethod::Embedding,
        ..Default::default()
    };
    let error = compress(
        &request(options, Budget::Rate(0.5)),
        &scorer(),
        &WordCounter,
        None,
    )
    .unwrap_err();
    assert!(matches!(error, Error::InvalidInput(m) if m.contains("embedder")));
}

#[test]
fn reorder_original_keeps_input_order_and_two_stage_puts_the_best_at_both_ends() {
    let original = LongLlmlinguaOptions {
        reorder_context: Reorder::Original,
        ..Default::default()
    };
    let result = run(&request(original, Budget::Rate(1.0)));
    let expected: Vec<String> = documents();
    let parts: Vec<String> = kept_per_document(&result)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(parts, expected);

    // BM25 ranks the gold document first and the "many"-sharing ones by their shared terms;
    // whatever the rest of the ranking, the best is first and the second best last.
    let two_stage = LongLlmlinguaOptions {
        reorder_context: Reorder::TwoStage,
        ..Default::default()
    };
    let ranking = abridge_core::rank(
        RankMethod::Longllmlingua,
        &documents().iter().map(String::as_str).collect::<Vec<_>>(),
        QUESTION,
        &scorer(),
        None,
    )
    .unwrap();
    let result = run(&request(two_stage, Budget::Rate(1.0)));
    let parts: Vec<String> = kept_per_document(&result)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(parts[0], documents()[ranking[0].index]);
    assert_eq!(parts[3], documents()[ranking[1].index]);
}

#[test]
fn the_dynamic_ratio_lets_better_ranked_documents_keep_more() {
    let kept_words = |delta: f64| {
        let options = LongLlmlinguaOptions {
            dynamic_context_compression_ratio: delta,
            condition_compare: false,
            ..Default::default()
        };
        kept_per_document(&run(&request(options, Budget::Rate(0.5))))
    };
    let flat = kept_words(0.0);
    let dynamic = kept_words(0.4);
    // Same documents in the same (sorted) order; the best keeps more, the worst less.
    assert_eq!(
        flat.iter().map(|p| &p.0).collect::<Vec<_>>(),
        dynamic.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    assert!(dynamic[0].1 > flat[0].1, "{flat:?} {dynamic:?}");
    assert!(dynamic[3].1 < flat[3].1, "{flat:?} {dynamic:?}");
}

#[test]
fn question_aware_scores_keep_the_words_of_the_question() {
    // Contrastive: only the words the question makes cheaper score above 0.
    let options = LongLlmlinguaOptions {
        use_context_level_filter: false,
        dynamic_context_compression_ratio: 0.0,
        reorder_context: Reorder::Original,
        ..Default::default()
    };
    // 8 words: the question's 5 and 3 of the document.
    let mut request = request(options, Budget::TargetTokens(8));
    request.contexts = vec![GOLD.into()];
    let result = run(&request);
    // ("Cairo" is not recalled: the question has "Cairo?".)
    assert_eq!(result.text, format!("river flows through\n\n{QUESTION}"));
    let score_of = |word: &str| {
        result
            .spans
            .iter()
            .find(|s| result.source[s.span.clone()].trim() == word)
            .and_then(|s| s.score)
            .unwrap()
    };
    // "flows": 5 nats without the question, 1 with it; "north" is not in the question.
    assert_eq!(score_of("flows"), 4.0);
    assert_eq!(score_of("north"), 0.0);

    // Conditioned (no contrast): surprisal after the question; the question's words are cheap
    // (1 nat), so the longest others are kept ("north", "Cairo", then "Nile" before "sea.").
    let conditioned = LongLlmlinguaOptions {
        condition_compare: false,
        ..request_options(&request)
    };
    request.method = Method::LongLlmlingua(conditioned);
    let result = run(&request);
    assert_eq!(result.text, format!("Nile north Cairo\n\n{QUESTION}"));
}

fn request_options(request: &CompressRequest) -> LongLlmlinguaOptions {
    match &request.method {
        Method::LongLlmlingua(options) => options.clone(),
        _ => unreachable!(),
    }
}

#[test]
fn forced_documents_survive_the_coarse_filter() {
    // Context target 14 - 5 = 9 words: the gold document (10) alone crosses it.
    let scored_words = |force: Vec<usize>| {
        let options = LongLlmlinguaOptions {
            context_budget: "+0".parse().unwrap(),
            force_context_ids: force,
            ..Default::default()
        };
        let result = run(&request(options, Budget::TargetTokens(14)));
        // Words of documents the coarse filter dropped are never scored.
        let bananas = result.source.find(DISTRACTORS[0]).unwrap();
        result
            .spans
            .iter()
            .filter(|s| (bananas..bananas + DISTRACTORS[0].len()).contains(&s.span.end))
            .filter(|s| s.score.is_some())
            .count()
    };
    assert_eq!(scored_words(vec![]), 0);
    assert_eq!(scored_words(vec![0]), 6);
}

/// Whether the word was scored by the token stage (words of dropped sentences or documents are
/// not).
fn scored(result: &Compressed, word: &str) -> bool {
    result
        .spans
        .iter()
        .find(|s| result.source[s.span.clone()].trim() == word)
        .unwrap()
        .score
        .is_some()
}

#[test]
fn the_sentence_filter_drops_irrelevant_sentences_and_keeps_last_ones_on_request() {
    let doc = "Bananas grow in warm climates. The Nile flows through Cairo. Snow falls in winter.";
    let base = LongLlmlinguaOptions {
        use_sentence_level_filter: true,
        token_budget_ratio: 1.0,
        condition_compare: false,
        ..Default::default()
    };
    let mut request = request(base.clone(), Budget::TargetTokens(12));
    request.contexts = vec![doc.into()];
    // Sentence budget 12 - 5 (question) = 7 words: the Nile sentence ranks first (5 words, 2
    // left), then the bananas one (it and the snow one each share only "in" with the
    // restriction sentence; ties go to the earlier) crosses the budget; the snow one is dropped.
    let result = run(&request);
    assert!(scored(&result, "Cairo.") && scored(&result, "Bananas"));
    assert!(
        !scored(&result, "Snow") && !result.text.contains("Snow"),
        "{:?} {}",
        result.spans,
        result.text
    );

    let last = LongLlmlinguaOptions {
        keep_sentences: abridge_core::KeepSentences {
            keep_last_sentence: 1,
            ..Default::default()
        },
        ..base
    };
    request.method = Method::LongLlmlingua(last);
    // Now the snow sentence is kept first (4 words, 3 left), the Nile one crosses the budget.
    let result = run(&request);
    assert!(scored(&result, "Snow") && scored(&result, "Cairo."));
    assert!(!scored(&result, "Bananas"));
}

#[test]
fn single_and_identical_documents_compress() {
    let mut one = request(LongLlmlinguaOptions::default(), Budget::Rate(0.5));
    one.contexts = vec![GOLD.into()];
    let result = run(&one);
    assert!(result.compressed_tokens <= result.origin_tokens);
    let mut same = request(LongLlmlinguaOptions::default(), Budget::Rate(0.5));
    same.contexts = vec![GOLD.into(); 3];
    let result = run(&same);
    assert_eq!(result.source.matches(GOLD).count(), 3);
    // A question longer than the documents.
    let mut long = request(LongLlmlinguaOptions::default(), Budget::Rate(0.9));
    long.question = format!(
        "{} {QUESTION}",
        "Consider this carefully please. ".repeat(20)
    );
    let result = run(&long);
    assert!(result.text.ends_with(QUESTION));
}

#[test]
fn options_round_trip_through_json_with_llmlingua_names() {
    let request = request(LongLlmlinguaOptions::rag(), Budget::Rate(0.5));
    let json = serde_json::to_value(&request).unwrap();
    let method = &json["method"];
    assert_eq!(method["name"], "longllmlingua");
    assert_eq!(method["rank_method"], "longllmlingua");
    assert_eq!(method["condition_in_question"], "after_condition");
    assert_eq!(method["reorder_context"], "sort");
    assert_eq!(method["dynamic_context_compression_ratio"], 0.4);
    assert_eq!(method["keep_first_sentence"], 0);
    assert_eq!(
        serde_json::from_value::<CompressRequest>(json).unwrap(),
        request
    );
    let parsed: LongLlmlinguaOptions =
        serde_json::from_str(r#"{"condition_in_question": "before", "rank_method": "bm25"}"#)
            .unwrap();
    assert_eq!(
        parsed.condition_in_question.position,
        QuestionPosition::Before
    );
    assert!(!parsed.condition_in_question.condition_tokens);
    assert!(
        parsed.conditions_tokens(),
        "condition_compare (default true) implies it"
    );
}
