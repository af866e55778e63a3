//! Rankers from the scoring model's surprisal (LLMLingua's `get_condition_ppl`).
//!
//! Every document is read by one reused session, truncated back between documents, so the model
//! state is allocated once; with the question *before* the documents its tokens are read once and
//! kept (pinned) while each document is scored after them. The question is tokenised once.
//! Documents longer than the model's context are read in rolling windows (`score.rs`).

use crate::score::{Meter, RollingSession};
use crate::{Result, TokenScorer};

/// LongLLMLingua's restriction sentence, appended to the question when ranking (reference: the
/// same string, with its leading space).
pub const RESTRICTION: &str = " We can get the answer to this question in the given documents.";

/// Separator between a document and the question, as between the parts of a prompt.
const SEPARATOR: &str = "\n\n";

fn mean(values: &[f32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64
}

fn ids(scorer: &dyn TokenScorer, text: &str, meter: &mut Meter) -> Result<Vec<u32>> {
    Ok(meter
        .tokenize(scorer, text)?
        .into_iter()
        .map(|t| t.id)
        .collect())
}

/// The tokens of `"\n\n" + text`, split into the separator's and the text's (a token straddling
/// the two counts as the text's). Tokenised together so the text's first token is the one the
/// model sees after a blank line.
fn after_separator(
    scorer: &dyn TokenScorer,
    text: &str,
    meter: &mut Meter,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let joined = format!("{SEPARATOR}{text}");
    let tokens = meter.tokenize(scorer, &joined)?;
    let split = tokens.partition_point(|t| t.span.end <= SEPARATOR.len());
    let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
    Ok((ids[..split].to_vec(), ids[split..].to_vec()))
}

/// Tokenises every document, and sets the meter's total to the tokens the ranker will read.
fn tokenize_all(
    documents: &[&str],
    scorer: &dyn TokenScorer,
    meter: &mut Meter,
    extra_per_document: usize,
) -> Result<Vec<Vec<u32>>> {
    let mut all = Vec::with_capacity(documents.len());
    for document in documents {
        all.push(ids(scorer, document, meter)?);
    }
    let total: usize = all.iter().map(|d| d.len() + extra_per_document).sum();
    meter.set_total(meter.done() + total);
    Ok(all)
}

/// LLMLingua: each document's mean surprisal on its own (higher = more informative).
pub(crate) fn document_surprisal(
    documents: &[&str],
    scorer: &dyn TokenScorer,
    meter: &mut Meter,
) -> Result<Vec<f64>> {
    let documents = tokenize_all(documents, scorer, meter, 0)?;
    let mut session = RollingSession::new(scorer, meter)?;
    let mut scores = Vec::with_capacity(documents.len());
    for document in &documents {
        session.truncate(0, meter)?;
        scores.push(mean(&session.extend(document, meter)?));
        meter.advance(document.len());
    }
    Ok(scores)
}

/// LongLLMLingua (`condition_in_question="after"`): the mean surprisal of the question and the
/// restriction sentence read after each document (lower = the document predicts the question
/// better = more relevant).
pub(crate) fn question_given_document(
    documents: &[&str],
    question: &str,
    scorer: &dyn TokenScorer,
    meter: &mut Meter,
) -> Result<Vec<f64>> {
    let (separator, question) =
        after_separator(scorer, &format!("{question}{RESTRICTION}"), meter)?;
    let documents = tokenize_all(documents, scorer, meter, separator.len() + question.len())?;
    let mut session = RollingSession::new(scorer, meter)?;
    let mut scores = Vec::with_capacity(documents.len());
    for document in &documents {
        session.truncate(0, meter)?;
        session.extend(document, meter)?;
        session.extend(&separator, meter)?;
        scores.push(mean(&session.extend(&question, meter)?));
        meter.advance(document.len() + separator.len() + question.len());
    }
    Ok(scores)
}

/// `condition_in_question="before"`: the mean surprisal of each document read after the
/// question (lower = more relevant). The question is read once and kept for every document.
pub(crate) fn document_given_question(
    documents: &[&str],
    question: &str,
    scorer: &dyn TokenScorer,
    meter: &mut Meter,
) -> Result<Vec<f64>> {
    let mut prefix = ids(scorer, question, meter)?;
    prefix.extend(ids(scorer, SEPARATOR, meter)?);
    let documents = tokenize_all(documents, scorer, meter, 0)?;
    let mut session = RollingSession::with_prefix(scorer, &prefix, meter)?;
    let mut scores = Vec::with_capacity(documents.len());
    for document in &documents {
        session.truncate(session.pinned(), meter)?;
        scores.push(mean(&session.extend(document, meter)?));
        meter.advance(document.len());
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeScorer;

    #[test]
    fn documents_that_mention_the_question_predict_it_best() {
        // Words already read cost 1 nat; new words cost their length.
        let scorer = FakeScorer::new().with_recall(1.0);
        let docs = ["pasta with tomato", "the barn is red", "the red barn"];
        let mut meter = Meter::new(None);
        let scores = question_given_document(&docs, "red barn", &scorer, &mut meter).unwrap();
        // The question plus the restriction sentence is cheaper after a document that holds
        // its words ("the" is in the restriction sentence).
        assert!(scores[1] < scores[0]);
        assert_eq!(
            scores[1], scores[2],
            "only which words occur matters to the fake"
        );
        let before =
            document_given_question(&["pasta", "red barn"], "red barn", &scorer, &mut meter)
                .unwrap();
        // "red barn" after the question is all recall: 1 nat per word.
        assert_eq!(before, vec![5.0, 1.0]);
    }

    #[test]
    fn document_surprisal_is_the_mean_per_token() {
        let scorer = FakeScorer::new();
        let mut meter = Meter::new(None);
        let scores = document_surprisal(&["aa bbbb", "", "c"], &scorer, &mut meter).unwrap();
        assert_eq!(scores, vec![3.0, 0.0, 1.0]);
    }

    #[test]
    fn documents_longer_than_the_context_are_read_in_windows() {
        let scorer = FakeScorer::new().with_max_context(8).with_recall(1.0);
        let mut meter = Meter::new(None);
        let long = "alpha ".repeat(30);
        let scores =
            question_given_document(&[&long, "beta"], "alpha", &scorer, &mut meter).unwrap();
        assert!(scores[0] < scores[1]);
        // The question stays pinned while the document rolls through the 8-token context: the
        // last word is still recalled from it (1 nat, not 5).
        let document = "bb cc dd ee ff gg hh ii jj kk alpha";
        let before = document_given_question(&[document], "alpha", &scorer, &mut meter).unwrap();
        assert_eq!(before[0], 21.0 / 11.0);
    }
}
