//! The CI-sized evaluation (`abridge eval --quick`) on the real default models and real data:
//! 8 SQuAD dev cases, every baseline and method at rate 1/2, with floors set from what was
//! measured (docs/QUALITY.md). Needs the models (scripts/fetch-models.sh) and the SQuAD dataset
//! (scripts/fetch-datasets.py squad).

use std::sync::OnceLock;

use abridge_core::{RankMethod, TokenClassifier};
use abridge_eval::{datasets_dir, evaluate_rankers, Case, Models, Plan, Report, Row};
use abridge_models::{
    fetch, FastClassifier, LanguageModel, LoadOptions, SentenceEncoder, TargetTokenizer,
    TiktokenCounter,
};

fn row<'r>(report: &'r Report, method: &str) -> &'r Row {
    report
        .rows
        .iter()
        .find(|r| r.method == method && r.group.is_none())
        .unwrap_or_else(|| panic!("no row for {method}"))
}

fn kept(report: &Report, method: &str) -> f64 {
    row(report, method).metrics["answer_kept"].mean
}

fn quick_cases(plan: &Plan, counter: &TiktokenCounter) -> Vec<Case> {
    let cases = plan
        .cases(&datasets_dir(), None, counter, &mut |line| {
            eprintln!("{line}")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 8);
    cases
}

fn smollm2() -> &'static LanguageModel {
    static MODEL: OnceLock<LanguageModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        LanguageModel::load(&fetch::default_model_path(), LoadOptions::default())
            .unwrap_or_else(|e| panic!("{e}\n(run scripts/fetch-models.sh)"))
    })
}

fn minilm() -> &'static SentenceEncoder {
    static MODEL: OnceLock<SentenceEncoder> = OnceLock::new();
    MODEL.get_or_init(|| {
        SentenceEncoder::load_default()
            .unwrap_or_else(|e| panic!("{e}\n(run scripts/fetch-models.sh)"))
    })
}

fn classifier() -> &'static FastClassifier {
    static MODEL: OnceLock<FastClassifier> = OnceLock::new();
    MODEL.get_or_init(|| {
        FastClassifier::load_default()
            .unwrap_or_else(|e| panic!("{e}\n(run scripts/fetch-models.sh)"))
    })
}

/// Runs `plan` with SmolLM2 as the scorer, no evaluator, and the default classifier and MiniLM
/// for `auto` and `fast`.
fn run(plan: &Plan, cases: &[Case], counter: &TiktokenCounter) -> Report {
    let models = Models {
        scorer: smollm2(),
        scorer_name: "smollm2",
        evaluator: None,
        evaluator_name: None,
        embedder: Some(minilm()),
        classifier: Some(classifier() as &dyn TokenClassifier),
        answerer: None,
        generator: None,
    };
    let report = plan.run(cases, models, counter, &mut |_| {}).unwrap();
    eprintln!("{}", report.markdown());
    report
}

#[test]
fn quick_evaluation_meets_its_floors() {
    let plan = Plan::quick();
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let cases = quick_cases(&plan, &counter);
    let report = run(&plan, &cases, &counter);

    // Every case's answer is in its uncompressed context.
    assert_eq!(kept(&report, "none"), 1.0);
    for row in report.rows.iter().filter(|r| r.method != "none") {
        assert_eq!(row.n, 8);
        assert_eq!(row.protected_over_budget, 0, "{}", row.method);
        // No method exceeds its budget by more than 3% (measured: +0.4% at most).
        assert!(
            row.max_over_budget <= 0.03,
            "{}: {:+}",
            row.method,
            row.max_over_budget
        );
        // ... nor falls far short of it.
        let achieved = row.metrics["achieved_rate"].mean;
        assert!(
            (0.45..=0.515).contains(&achieved),
            "{}: rate {achieved}",
            row.method
        );
    }
    // Measured at rate 1/2: auto 8/8; the question-blind selective-context 3/8 and llmlingua 4/8
    // (SQuAD's answers are often plain words such as "major" that carry little surprisal); random
    // word drop 1/8. The floors leave room for one case to flip.
    let auto = kept(&report, "auto");
    assert!(auto >= 0.875, "auto kept the answer in {auto}");
    assert!(
        auto >= kept(&report, "random") + 0.5,
        "auto: {auto} vs random"
    );
    for method in ["selective-context", "llmlingua"] {
        let ours = kept(&report, method);
        assert!(ours >= 0.25, "{method} kept the answer in {ours}");
        assert!(
            ours >= kept(&report, "random"),
            "{method}: {ours} vs random"
        );
    }
}

#[test]
fn question_aware_rankers_find_the_gold_passage() {
    let plan = Plan::quick();
    let cases = quick_cases(&plan, &TiktokenCounter::new(TargetTokenizer::Cl100kBase));
    let rankers = [
        RankMethod::Longllmlingua,
        RankMethod::Bm25,
        RankMethod::Embedding,
        RankMethod::Llmlingua,
    ];
    let rows =
        evaluate_rankers(&cases, &rankers, smollm2(), Some(minilm()), 0, &mut || {}).unwrap();
    eprintln!("{}", abridge_eval::ranking::markdown(&rows));
    // Measured on these 8 dev cases of 5 passages: longllmlingua, bm25 and embedding 8/8; the
    // question-blind llmlingua ranking 2/8, about chance (1/5).
    for row in &rows[..3] {
        assert_eq!(row.n, 8);
        assert!(
            row.recall_at_1.mean >= 0.75,
            "{}: {}",
            row.ranker.name(),
            row.recall_at_1.mean
        );
        assert!(row.recall_at_1.mean >= rows[3].recall_at_1.mean + 0.4);
    }
}

#[test]
fn abridge_fast_keeps_answers_like_its_teacher() {
    let plan = Plan {
        methods: ["random", "fast"]
            .into_iter()
            .map(|name| name.parse().unwrap())
            .collect(),
        ..Plan::quick()
    };
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let cases = quick_cases(&plan, &counter);
    let report = run(&plan, &cases, &counter);
    // Measured at rate 1/2: fast 4/8 (its teacher, Selective Context, 3/8), random 1/8; takes
    // about a second.
    let ours = kept(&report, "fast");
    assert!(ours >= 0.375, "fast kept the answer in {ours}");
    assert!(ours >= kept(&report, "random") + 0.125, "{ours} vs random");
    assert!(row(&report, "fast").max_over_budget <= 0.03);
}
