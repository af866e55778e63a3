//! The coarse rankers on their own: how often each puts the gold passage first.
//!
//! On suites whose cases are one gold passage among distractors that lack the answer (nq,
//! squad), the gold passage is the one context that holds an answer. A ranker is measured by
//! recall@1 (gold ranked first) and the mean reciprocal rank, with bootstrap intervals, and by
//! its time per case. This is what LongLLMLingua's first stage decides before any token is
//! dropped: a gold passage ranked last is cut whole at high rates.

use std::fmt::Write;
use std::time::Instant;

use abridge_core::{rank, Embedder, RankMethod, TokenScorer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::contains_answer;
use crate::rng::Rng;
use crate::stats::{bootstrap, Estimate};
use crate::suites::{Case, Reference};

/// Bootstrap resamples of the intervals.
const RESAMPLES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankerRow {
    pub ranker: RankMethod,
    /// Cases with exactly one gold passage, all of them ranked.
    pub n: usize,
    /// Passages per case, on average.
    pub passages: f64,
    pub recall_at_1: Estimate,
    pub mean_reciprocal_rank: Estimate,
    pub mean_seconds: f64,
}

/// The one context of `case` holding a gold answer, if exactly one does.
fn gold_passage(case: &Case) -> Option<usize> {
    let Reference::Answers(answers) = &case.reference else {
        return None;
    };
    let mut holding = case
        .contexts
        .iter()
        .enumerate()
        .filter(|(_, c)| contains_answer(c, answers));
    match (holding.next(), holding.next()) {
        (Some((index, _)), None) => Some(index),
        _ => None,
    }
}

/// Ranks every case's contexts with each ranker. Cases without exactly one gold passage are
/// skipped; if none is left the suite has no gold passages to find and this is an error.
/// `progress` is called once per ranking.
pub fn evaluate_rankers(
    cases: &[Case],
    rankers: &[RankMethod],
    scorer: &dyn TokenScorer,
    embedder: Option<&dyn Embedder>,
    seed: u64,
    progress: &mut dyn FnMut(),
) -> Result<Vec<RankerRow>> {
    let gold: Vec<(&Case, usize)> = cases
        .iter()
        .filter_map(|case| Some((case, gold_passage(case)?)))
        .collect();
    if gold.is_empty() {
        return Err(Error::InvalidOption(
            "ranking needs cases with one gold passage among distractors: use --suite nq or squad"
                .into(),
        ));
    }
    let passages =
        gold.iter().map(|(c, _)| c.contexts.len()).sum::<usize>() as f64 / gold.len() as f64;
    let mut rows = Vec::with_capacity(rankers.len());
    for &ranker in rankers {
        let (mut firsts, mut reciprocal_ranks, mut seconds) = (Vec::new(), Vec::new(), 0.0);
        for (case, gold) in &gold {
            let documents: Vec<&str> = case.contexts.iter().map(String::as_str).collect();
            let started = Instant::now();
            let ranking =
                rank(ranker, &documents, &case.question, scorer, embedder).map_err(|source| {
                    Error::Rank {
                        case: case.id.clone(),
                        ranker: ranker.name(),
                        source,
                    }
                })?;
            seconds += started.elapsed().as_secs_f64();
            let place = ranking
                .iter()
                .position(|r| r.index == *gold)
                .expect("a ranking holds every document");
            firsts.push(if place == 0 { 1.0 } else { 0.0 });
            reciprocal_ranks.push(1.0 / (place + 1) as f64);
            progress();
        }
        let mut rng = Rng::new(seed, ranker.name());
        rows.push(RankerRow {
            ranker,
            n: gold.len(),
            passages,
            recall_at_1: bootstrap(&firsts, RESAMPLES, &mut rng),
            mean_reciprocal_rank: bootstrap(&reciprocal_ranks, RESAMPLES, &mut rng),
            mean_seconds: seconds / gold.len() as f64,
        });
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[RankerRow]) -> String {
    let mut out = String::from(
        "| ranker | n | passages | recall@1 | MRR | s/case |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let interval = |e: &Estimate| format!("{:.3} [{:.3}, {:.3}]", e.mean, e.low, e.high);
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} | {:.3} |",
            row.ranker.name(),
            row.n,
            row.passages,
            interval(&row.recall_at_1),
            interval(&row.mean_reciprocal_rank),
            row.mean_seconds
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use abridge_core::testing::FakeScorer;

    fn case(contexts: &[&str], question: &str, answer: &str) -> Case {
        Case {
            id: question.into(),
            group: None,
            instruction: String::new(),
            contexts: contexts.iter().map(|c| c.to_string()).collect(),
            question: question.into(),
            reference: Reference::Answers(vec![answer.into()]),
        }
    }

    #[test]
    fn bm25_finds_the_passage_that_shares_the_question_s_words() {
        let cases = [
            case(
                &[
                    "Bananas grow in tropical climates.",
                    "The capital of Australia is Canberra, a planned city.",
                    "Rivers flow into the sea.",
                ],
                "What is the capital of Australia?",
                "Canberra",
            ),
            case(
                &[
                    "Penguins live in Antarctica and eat fish.",
                    "Mount Everest is the highest mountain on Earth.",
                ],
                "Which mountain is the highest on Earth?",
                "Everest",
            ),
        ];
        let scorer = FakeScorer::new();
        let rows =
            evaluate_rankers(&cases, &[RankMethod::Bm25], &scorer, None, 0, &mut || {}).unwrap();
        assert_eq!(rows[0].n, 2);
        assert_eq!(rows[0].recall_at_1.mean, 1.0);
        assert_eq!(rows[0].mean_reciprocal_rank.mean, 1.0);
        assert!(markdown(&rows).contains("| bm25 | 2 | 2.5 | 1.000"));
    }

    #[test]
    fn cases_without_exactly_one_gold_passage_are_skipped() {
        let none = case(&["a b c", "d e f"], "q", "zzz");
        let two = case(&["zzz here", "zzz there"], "q", "zzz");
        assert_eq!(gold_passage(&none), None);
        assert_eq!(gold_passage(&two), None);
        let scorer = FakeScorer::new();
        let error = evaluate_rankers(
            &[none, two],
            &[RankMethod::Gzip],
            &scorer,
            None,
            0,
            &mut || {},
        )
        .unwrap_err();
        assert!(error.to_string().contains("--suite nq"), "{error}");
    }
}
