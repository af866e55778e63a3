//! XSum: a BBC article to summarise in one sentence. The metric is the ROUGE-1/L recall of the
//! reference summary against the compressed article: how much of what the summary says is still
//! there to be said.

use std::path::Path;

use super::{sample, take, Case, Reference, SuiteOptions};
use crate::data::{read_jsonl, XsumRecord};
use crate::error::Result;

/// Longer articles (a few percent, up to 64 K characters) are left out to keep runs predictable.
pub const MAX_ARTICLE_CHARS: usize = 8_000;

pub const INSTRUCTION: &str = "Summarize the following article in one sentence.";

pub fn cases(path: &Path, options: &SuiteOptions) -> Result<Vec<Case>> {
    let records: Vec<XsumRecord> = read_jsonl::<XsumRecord>(path)?
        .into_iter()
        .filter(|r| !r.article.trim().is_empty() && r.article.chars().count() <= MAX_ARTICLE_CHARS)
        .collect();
    let chosen = take(
        sample(records, |r| &r.id, options.split, options.seed),
        options.limit,
    )?;
    Ok(chosen
        .into_iter()
        .map(|r| Case {
            id: r.id,
            group: None,
            instruction: INSTRUCTION.to_string(),
            contexts: vec![r.article],
            question: "Summary:".to_string(),
            reference: Reference::Summary(r.summary),
        })
        .collect())
}
