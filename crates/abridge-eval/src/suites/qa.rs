//! NaturalQuestions and SQuAD: the gold passage among distractor passages of other questions
//! (the multi-document QA setting of LongLLMLingua), at a random position. The metric asks whether
//! the gold answer survives compression.

use std::path::Path;

use super::{sample, take, Case, Reference, SuiteOptions};
use crate::data::{read_jsonl, QaRecord};
use crate::error::Result;
use crate::metrics::contains_answer;
use crate::rng::Rng;

/// Distractor passages per question (with the gold one, about 700 cl100k tokens for NQ).
pub const DISTRACTORS: usize = 4;

pub const INSTRUCTION: &str =
    "Answer the question based on the given passages. Only give the answer and do not output any other words.";

pub fn cases(path: &Path, options: &SuiteOptions) -> Result<Vec<Case>> {
    let pool = sample(
        read_jsonl::<QaRecord>(path)?,
        |r| &r.id,
        options.split,
        options.seed,
    );
    let chosen = take((0..pool.len()).collect(), options.limit)?;
    Ok(chosen
        .into_iter()
        .filter_map(|i| case(&pool, i, options.seed))
        .collect())
}

/// The case of `pool[i]`, or none when the pool has too few passages without its answer.
fn case(pool: &[QaRecord], i: usize, seed: u64) -> Option<Case> {
    let record = &pool[i];
    let mut rng = Rng::new(seed, &record.id);
    let mut distractors: Vec<&str> = Vec::with_capacity(DISTRACTORS);
    let mut used = vec![i];
    for _ in 0..DISTRACTORS * 20 {
        if distractors.len() == DISTRACTORS {
            break;
        }
        let j = rng.below(pool.len());
        if used.contains(&j) || contains_answer(&pool[j].passage, &record.answers) {
            continue;
        }
        used.push(j);
        distractors.push(&pool[j].passage);
    }
    if distractors.len() < DISTRACTORS {
        return None;
    }
    let at = rng.below(DISTRACTORS + 1);
    let mut contexts: Vec<String> = distractors.into_iter().map(str::to_string).collect();
    contexts.insert(at, record.passage.clone());
    Some(Case {
        id: record.id.clone(),
        group: None,
        instruction: INSTRUCTION.to_string(),
        contexts,
        question: format!("Question: {}\nAnswer:", record.question),
        reference: Reference::Answers(record.answers.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: usize, answer: &str) -> QaRecord {
        QaRecord {
            id: format!("q-{id}"),
            question: format!("question {id}?"),
            passage: format!("Passage {id} says {answer}."),
            answers: vec![answer.to_string()],
        }
    }

    #[test]
    fn the_gold_passage_sits_among_distractors_without_the_answer() {
        let mut pool: Vec<QaRecord> = (0..30).map(|i| record(i, &format!("answer{i}"))).collect();
        // Passages that contain record 0's answer must never be its distractors.
        for r in pool.iter_mut().skip(1).step_by(2) {
            r.passage.push_str(" Also answer0.");
        }
        let case = case(&pool, 0, 1).unwrap();
        assert_eq!(case.contexts.len(), DISTRACTORS + 1);
        let gold: Vec<_> = case
            .contexts
            .iter()
            .filter(|c| contains_answer(c, &pool[0].answers))
            .collect();
        assert_eq!(gold, [&pool[0].passage]);
        assert_eq!(case.question, "Question: question 0?\nAnswer:");
        assert_eq!(case, super::case(&pool, 0, 1).unwrap(), "reproducible");
    }

    #[test]
    fn a_pool_too_small_gives_no_case() {
        let pool: Vec<QaRecord> = (0..3).map(|i| record(i, "x")).collect();
        assert!(case(&pool, 0, 0).is_none());
    }
}
