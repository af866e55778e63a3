//! The CI-sized evaluation (`abridge eval --quick`) on the real default model and real data:
//! 8 NaturalQuestions dev cases, every baseline and method at rate 1/2, with floors set from what
//! was measured (docs/QUALITY.md). Needs the model (scripts/fetch-models.sh) and the NQ dataset
//! (scripts/fetch-datasets.py nq).

use abridge_eval::{datasets_dir, Models, Plan, Report, Row};
use abridge_models::{fetch, LanguageModel, LoadOptions, TargetTokenizer, TiktokenCounter};

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

#[test]
fn quick_evaluation_meets_its_floors() {
    let plan = Plan::quick();
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let cases = plan
        .cases(&datasets_dir(), None, &counter, &mut |line| {
            eprintln!("{line}")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 8);
    let model = LanguageModel::load(&fetch::default_model_path(), LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}\n(run scripts/fetch-models.sh)"));
    let report = plan
        .run(
            &cases,
            Models {
                scorer: &model,
                scorer_name: "smollm2",
                evaluator: None,
                evaluator_name: None,
            },
            &counter,
            &mut |_| {},
        )
        .unwrap();
    eprintln!("{}", report.markdown());

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
    // Measured at rate 1/2: selective-context and llmlingua 7/8, random word drop 1/8. The floors
    // leave room for two cases to flip.
    for method in ["selective-context", "llmlingua"] {
        let ours = kept(&report, method);
        assert!(ours >= 0.625, "{method} kept the answer in {ours}");
        assert!(
            ours >= kept(&report, "random") + 0.25,
            "{method}: {ours} vs random"
        );
    }
}
