//! Suites: datasets turned into prompts to compress, each with what the metrics need.
//!
//! One file per kind of prompt: [`qa`] (NaturalQuestions, SQuAD: a question and its gold passage
//! among distractors), [`gsm8k`] (few-shot chain-of-thought demonstrations), [`niah`] (a needle
//! in Paul Graham essays), [`xsum`] (a news article to summarise), [`sharegpt`] (a chat history),
//! and [`user`] (the user's own QA file, `--data`).

pub mod gsm8k;
pub mod niah;
pub mod qa;
pub mod sharegpt;
pub mod user;
pub mod xsum;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::rng::{fnv1a, mix};

/// One prompt to compress: LLMLingua's instruction / contexts / question layout. The instruction
/// and question are kept verbatim by every method; only the contexts are compressed.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: String,
    /// A cell to break results down by (NIAH: length × depth), if any.
    pub group: Option<Group>,
    pub instruction: String,
    pub contexts: Vec<String>,
    pub question: String,
    pub reference: Reference,
}

/// A cell of a two-way breakdown (NIAH: the haystack length is the row, the needle's depth the
/// column), so a report can print results as a grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub row: String,
    pub column: String,
}

impl Group {
    pub fn label(&self) -> String {
        format!("{}, {}", self.row, self.column)
    }
}

/// What a case's metric compares the compressed context with.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// Gold answers (aliases) that occur in the original context: is one still there?
    Answers(Vec<String>),
    /// Every number of the demonstrations should survive.
    Numbers,
    /// A reference text whose words should still be supported by the context (ROUGE recall):
    /// XSum's summary, ShareGPT's next reply.
    Summary(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    Nq,
    Squad,
    Gsm8k,
    Niah,
    Xsum,
    Sharegpt,
    /// The user's own QA file ([`SuiteOptions::data`]); not a `--suite` name.
    Data,
}

impl Suite {
    pub const ALL: [Suite; 6] = [
        Self::Nq,
        Self::Squad,
        Self::Gsm8k,
        Self::Niah,
        Self::Xsum,
        Self::Sharegpt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Nq => "nq",
            Self::Squad => "squad",
            Self::Gsm8k => "gsm8k",
            Self::Niah => "niah",
            Self::Xsum => "xsum",
            Self::Sharegpt => "sharegpt",
            Self::Data => "data",
        }
    }

    /// The dataset files the suite reads.
    pub fn datasets(self) -> &'static [Dataset] {
        match self {
            Self::Nq => &[Dataset::Nq],
            Self::Squad => &[Dataset::Squad],
            Self::Gsm8k => &[Dataset::Gsm8k],
            Self::Niah => &[Dataset::Essays],
            Self::Xsum => &[Dataset::Xsum],
            Self::Sharegpt => &[Dataset::Sharegpt],
            Self::Data => &[],
        }
    }

    /// The rates the issue asks for: 1/2, 1/3, 1/5, and 1/10 for GSM8K demonstrations.
    pub fn default_rates(self) -> Vec<f64> {
        match self {
            Self::Gsm8k => vec![0.5, 1.0 / 3.0, 0.2, 0.1],
            _ => vec![0.5, 1.0 / 3.0, 0.2],
        }
    }
}

impl FromStr for Suite {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|suite| suite.name() == s)
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "unknown suite `{s}`: choose one of nq, squad, gsm8k, niah, xsum, sharegpt"
                ))
            })
    }
}

/// How to build a suite's cases.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteOptions {
    pub split: Split,
    /// At most this many cases (NIAH: per length × depth cell).
    pub limit: Option<usize>,
    pub seed: u64,
    /// NIAH haystack lengths, in cl100k tokens.
    pub niah_lengths: Vec<usize>,
    /// NIAH needle depths, in percent of the haystack.
    pub niah_depths: Vec<u32>,
    /// The JSONL file of [`Suite::Data`].
    pub data: Option<PathBuf>,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            split: Split::Test,
            limit: None,
            seed: 0,
            niah_lengths: vec![1000, 2000, 4000, 8000],
            niah_depths: niah::DEPTHS.to_vec(),
            data: None,
        }
    }
}

/// The cases of `suite` from the dataset files in `dir` (which [`crate::data::ensure`] checked).
/// `count` measures lengths in the target LLM's tokens (NIAH haystacks).
pub fn build(
    suite: Suite,
    dir: &Path,
    options: &SuiteOptions,
    count: &dyn Fn(&str) -> usize,
) -> Result<Vec<Case>> {
    let cases = match suite {
        Suite::Nq => qa::cases(&Dataset::Nq.path(dir), options)?,
        Suite::Squad => qa::cases(&Dataset::Squad.path(dir), options)?,
        Suite::Gsm8k => gsm8k::cases(&Dataset::Gsm8k.path(dir), options)?,
        Suite::Niah => niah::cases(&Dataset::Essays.path(dir), options, count)?,
        Suite::Xsum => xsum::cases(&Dataset::Xsum.path(dir), options)?,
        Suite::Sharegpt => sharegpt::cases(&Dataset::Sharegpt.path(dir), options)?,
        Suite::Data => {
            let path = options.data.as_deref().ok_or_else(|| {
                Error::InvalidOption("the data suite needs a file: pass --data FILE.jsonl".into())
            })?;
            user::cases(path, options)?
        }
    };
    if cases.is_empty() {
        return Err(Error::InvalidOption(format!(
            "suite {} has no {} cases with these options",
            suite.name(),
            options.split.name()
        )));
    }
    Ok(cases)
}

/// The records of `split`, in a fixed pseudo-random order (by a hash of the id and the seed), so
/// that the first N are a random sample and the sample is the same on every run.
pub(crate) fn sample<T>(
    records: Vec<T>,
    id: impl Fn(&T) -> &str,
    split: Split,
    seed: u64,
) -> Vec<T> {
    let mut chosen: Vec<(u64, T)> = records
        .into_iter()
        .filter(|r| Split::of(id(r)) == split)
        .map(|r| (mix(fnv1a(format!("{seed}:{}", id(&r)).as_bytes())), r))
        .collect();
    chosen.sort_by_key(|(key, _)| *key);
    chosen.into_iter().map(|(_, r)| r).collect()
}

/// Checks a limit: zero examples is a mistake, not an empty report.
pub(crate) fn take<T>(items: Vec<T>, limit: Option<usize>) -> Result<Vec<T>> {
    match limit {
        Some(0) => Err(Error::InvalidOption("--limit must be at least 1".into())),
        Some(n) => Ok(items.into_iter().take(n).collect()),
        None => Ok(items),
    }
}
