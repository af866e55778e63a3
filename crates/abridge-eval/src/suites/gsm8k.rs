//! GSM8K: few-shot chain-of-thought demonstrations before a test question (LLMLingua's setting,
//! where the demonstrations compress up to 20x). Demonstrations are drawn from the dev split, so
//! test questions never see test solutions. The metric is the share of the demonstrations'
//! numbers that survive.

use std::path::Path;

use super::{sample, take, Case, Reference, SuiteOptions};
use crate::data::{read_jsonl, Gsm8kRecord, Split};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Demonstrations per prompt (about 1,000 cl100k tokens in all; LLMLingua used 8 as well).
pub const SHOTS: usize = 8;

pub const INSTRUCTION: &str =
    "Please reference the following examples to answer the math question.";

pub fn demonstration(record: &Gsm8kRecord) -> String {
    format!(
        "Question: {}\nLet's think step by step\n{}\nThe answer is {}",
        record.question, record.reasoning, record.answer
    )
}

pub fn cases(path: &Path, options: &SuiteOptions) -> Result<Vec<Case>> {
    let records = read_jsonl::<Gsm8kRecord>(path)?;
    let dev = sample(records.clone(), |r| &r.id, Split::Dev, options.seed);
    if dev.len() <= SHOTS {
        return Err(Error::InvalidOption(format!(
            "GSM8K has only {} dev examples, too few for {SHOTS} demonstrations",
            dev.len()
        )));
    }
    let chosen = take(
        sample(records, |r| &r.id, options.split, options.seed),
        options.limit,
    )?;
    Ok(chosen
        .into_iter()
        .map(|record| {
            let mut rng = Rng::new(options.seed, &record.id);
            let mut shots: Vec<usize> = Vec::with_capacity(SHOTS);
            while shots.len() < SHOTS {
                let j = rng.below(dev.len());
                if !shots.contains(&j) && dev[j].id != record.id {
                    shots.push(j);
                }
            }
            Case {
                id: record.id.clone(),
                group: None,
                instruction: INSTRUCTION.to_string(),
                contexts: shots.into_iter().map(|j| demonstration(&dev[j])).collect(),
                question: format!("Question: {}\nLet's think step by step", record.question),
                reference: Reference::Numbers,
            }
        })
        .collect())
}
