//! Coarse ranking: how relevant each document is to a question, best first.
//!
//! LongLLMLingua's first stage: before any token is dropped, documents are ranked and the least
//! relevant are dropped whole (`crate::coarse`). One file per ranker:
//! - [`perplexity`]: the scoring model's surprisal. `longllmlingua` ranks by how well a document
//!   predicts the question (the paper's r_k, lowest first); `llmlingua` by the document's own
//!   perplexity (highest first: the question-agnostic demonstration ranking of LLMLingua).
//! - [`bm25`]: Okapi BM25 over our own tokenisation (no model).
//! - [`gzip`]: normalised compression distance between question and document (no model).
//! - [`embedding`]: cosine similarity of sentence embeddings from an [`Embedder`].

pub mod bm25;
pub mod embedding;
pub mod gzip;
pub mod perplexity;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Fix, OptionError};
use crate::score::Meter;
use crate::{Embedder, Error, Result, TokenScorer};

/// How documents are ranked (LLMLingua's `rank_method`, the rankers we implement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RankMethod {
    /// Surprisal of the question (plus the paper's restriction sentence) after each document;
    /// lowest first.
    Longllmlingua,
    /// Each document's own perplexity, highest first; ignores the question.
    Llmlingua,
    /// Okapi BM25 of the question's terms; highest first.
    Bm25,
    /// Normalised compression distance to the question; lowest first.
    Gzip,
    /// Cosine similarity of embeddings; highest first. Needs an [`Embedder`].
    Embedding,
}

impl RankMethod {
    pub const ALL: [RankMethod; 5] = [
        Self::Longllmlingua,
        Self::Llmlingua,
        Self::Bm25,
        Self::Gzip,
        Self::Embedding,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Longllmlingua => "longllmlingua",
            Self::Llmlingua => "llmlingua",
            Self::Bm25 => "bm25",
            Self::Gzip => "gzip",
            Self::Embedding => "embedding",
        }
    }

    /// Whether the ranking depends on the question (all but `llmlingua`).
    pub fn uses_question(self) -> bool {
        self != Self::Llmlingua
    }
}

impl FromStr for RankMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                "unknown rank method `{s}`: use longllmlingua, llmlingua, bm25, gzip or embedding"
            ))
            })
    }
}

/// Where the question goes when a language model ranks a document with it (the base part of
/// LLMLingua's `condition_in_question`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionPosition {
    /// The question is not used.
    None,
    /// The document is scored after the question: mean surprisal of the document's tokens.
    Before,
    /// The question is scored after the document: mean surprisal of the question's tokens
    /// (LongLLMLingua's ranking).
    After,
}

/// One document's place in a ranking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// The document's index in the input.
    pub index: usize,
    /// The ranker's raw score: mean surprisal (nats), BM25 score, compression distance or
    /// cosine similarity; whether higher is better depends on the method.
    pub score: f64,
}

/// Ranks `documents` for `question`, most relevant first (ties keep input order).
///
/// `longllmlingua` scores the question after each document; `embedding` needs `embedder`.
/// Empty documents are allowed (each ranker gives them a finite score).
pub fn rank(
    method: RankMethod,
    documents: &[&str],
    question: &str,
    scorer: &dyn TokenScorer,
    embedder: Option<&dyn Embedder>,
) -> Result<Vec<Ranked>> {
    let position = match method {
        RankMethod::Longllmlingua => QuestionPosition::After,
        _ => QuestionPosition::None,
    };
    let mut meter = Meter::new(None);
    rank_with(
        method, position, documents, question, scorer, embedder, &mut meter,
    )
}

/// [`rank`] with the language-model rankers' question position chosen, and progress metered.
pub(crate) fn rank_with(
    method: RankMethod,
    position: QuestionPosition,
    documents: &[&str],
    question: &str,
    scorer: &dyn TokenScorer,
    embedder: Option<&dyn Embedder>,
    meter: &mut Meter,
) -> Result<Vec<Ranked>> {
    if method.uses_question() && question.trim().is_empty() {
        return Err(OptionError::new(
            "question",
            format!(
                "is missing, and rank method `{}` ranks documents by it",
                method.name()
            ),
            Fix::Text(
                "give the question, or rank by document perplexity with rank method llmlingua"
                    .into(),
            ),
        )
        .into());
    }
    let (scores, higher_is_better) = match method {
        RankMethod::Llmlingua => (
            perplexity::document_surprisal(documents, scorer, meter)?,
            true,
        ),
        RankMethod::Longllmlingua => match position {
            QuestionPosition::Before => (
                perplexity::document_given_question(documents, question, scorer, meter)?,
                false,
            ),
            // LLMLingua forces `none` to `after` for this ranker; so do we.
            QuestionPosition::After | QuestionPosition::None => (
                perplexity::question_given_document(documents, question, scorer, meter)?,
                false,
            ),
        },
        RankMethod::Bm25 => (bm25::scores(documents, question), true),
        RankMethod::Gzip => (gzip::distances(documents, question), false),
        RankMethod::Embedding => {
            let embedder = embedder.ok_or_else(|| {
                Error::InvalidInput(
                    "rank method `embedding` needs a sentence embedder (all-MiniLM-L6-v2): install \
                     it with `abridge models fetch`, or choose rank method longllmlingua, bm25 or gzip"
                        .into(),
                )
            })?;
            (
                embedding::similarities(documents, question, embedder)?,
                true,
            )
        }
    };
    Ok(order(&scores, higher_is_better))
}

/// How relevant each text is to `question`, in [0, 1]: the cosine of sentence embeddings
/// (negative ones count as 0) when `embedder` is given, else BM25 divided by the best text's
/// score (all 0 when no text shares a term with the question). An empty text scores 0.
pub(crate) fn relevance(
    texts: &[&str],
    question: &str,
    embedder: Option<&dyn Embedder>,
) -> Result<Vec<f64>> {
    Ok(match embedder {
        Some(embedder) => embedding::similarities(texts, question, embedder)?
            .into_iter()
            .map(|cosine| cosine.clamp(0.0, 1.0))
            .collect(),
        None => {
            let scores = bm25::scores(texts, question);
            let best = scores.iter().copied().fold(0.0, f64::max);
            scores
                .into_iter()
                .map(|s| if best > 0.0 { s / best } else { 0.0 })
                .collect()
        }
    })
}

/// Indices by score, best first; ties (and NaNs, last) keep input order.
pub(crate) fn order(scores: &[f64], higher_is_better: bool) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = scores
        .iter()
        .enumerate()
        .map(|(index, &score)| Ranked { index, score })
        .collect();
    ranked.sort_by(|a, b| {
        let (x, y) = if higher_is_better {
            (b.score, a.score)
        } else {
            (a.score, b.score)
        };
        a.score
            .is_nan()
            .cmp(&b.score.is_nan())
            .then(x.total_cmp(&y))
            .then(a.index.cmp(&b.index))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeEmbedder, FakeScorer};

    fn indices(ranked: &[Ranked]) -> Vec<usize> {
        ranked.iter().map(|r| r.index).collect()
    }

    #[test]
    fn order_is_best_first_with_ties_in_input_order() {
        assert_eq!(indices(&order(&[1.0, 3.0, 1.0, 2.0], true)), [1, 3, 0, 2]);
        assert_eq!(indices(&order(&[1.0, 3.0, 1.0, 2.0], false)), [0, 2, 3, 1]);
        assert_eq!(indices(&order(&[f64::NAN, 1.0], false)), [1, 0]);
    }

    #[test]
    fn rank_methods_parse_by_name() {
        for method in RankMethod::ALL {
            assert_eq!(method.name().parse::<RankMethod>().unwrap(), method);
        }
        assert!(
            matches!("sentbert".parse::<RankMethod>(), Err(Error::InvalidInput(m)) if m.contains("bm25"))
        );
    }

    #[test]
    fn question_rankers_need_a_question_and_embedding_an_embedder() {
        let scorer = FakeScorer::new();
        for method in [
            RankMethod::Longllmlingua,
            RankMethod::Bm25,
            RankMethod::Gzip,
        ] {
            let error = rank(method, &["a b", "c"], "  ", &scorer, None).unwrap_err();
            assert!(matches!(error, Error::InvalidOption(e) if e.field == "question"));
        }
        assert_eq!(
            indices(&rank(RankMethod::Llmlingua, &["a", "bbbb cc"], "", &scorer, None).unwrap()),
            [1, 0]
        );
        let error = rank(RankMethod::Embedding, &["a"], "q", &scorer, None).unwrap_err();
        assert!(matches!(error, Error::InvalidInput(m) if m.contains("embedder")));
        let embedder = FakeEmbedder;
        let ranked = rank(
            RankMethod::Embedding,
            &["x y", "apple pie"],
            "apple",
            &scorer,
            Some(&embedder),
        )
        .unwrap();
        assert_eq!(indices(&ranked), [1, 0]);
    }

    #[test]
    fn every_ranker_handles_one_identical_and_empty_documents() {
        let scorer = FakeScorer::new();
        let embedder = FakeEmbedder;
        let question = "where is the red barn";
        for method in RankMethod::ALL {
            let rank = |docs: &[&str]| {
                rank(method, docs, question, &scorer, Some(&embedder))
                    .unwrap_or_else(|e| panic!("{method:?}: {e}"))
            };
            assert_eq!(indices(&rank(&["the barn is red"])), [0], "{method:?}");
            // Identical documents tie, and ties keep input order.
            let same = rank(&["a red barn", "a red barn", "a red barn"]);
            assert_eq!(indices(&same), [0, 1, 2], "{method:?}");
            assert!(same.windows(2).all(|w| w[0].score == w[1].score));
            let with_empty = rank(&["", "the red barn is here", ""]);
            assert_eq!(with_empty.len(), 3);
            assert!(with_empty.iter().all(|r| r.score.is_finite()), "{method:?}");
            // A question longer than every document still ranks.
            let long_question = "word ".repeat(200);
            assert_eq!(
                rank_with(
                    method,
                    QuestionPosition::After,
                    &["x", "y z"],
                    &long_question,
                    &scorer,
                    Some(&embedder),
                    &mut Meter::new(None)
                )
                .unwrap()
                .len(),
                2
            );
        }
    }
}
