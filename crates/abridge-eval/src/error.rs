//! Errors of the evaluation, each naming what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset file is absent: it has to be fetched.
    #[error("dataset `{name}` is not installed in {}: {hint}", dir.display())]
    Missing {
        name: String,
        dir: PathBuf,
        hint: String,
    },
    /// A dataset file does not have its recorded checksum, even after refetching.
    #[error("dataset `{name}` at {} has sha256 {actual}, expected {expected}: run `{command}`", path.display())]
    Corrupt {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
        command: String,
    },
    /// The fetch script could not be run or failed.
    #[error("fetching dataset `{name}` failed: {message}")]
    Fetch { name: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A dataset line that does not have the expected shape.
    #[error("{}:{line}: {message}", path.display())]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Options that cannot be honoured; the message says what to change.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("{case}: the evaluator failed: {message}")]
    Evaluator { case: String, message: String },
    #[error("{case}: {method} at rate {rate}: {source}")]
    Compress {
        case: String,
        method: String,
        rate: f64,
        source: abridge_core::Error,
    },
    #[error("{case}: ranking with {ranker}: {source}")]
    Rank {
        case: String,
        ranker: &'static str,
        source: abridge_core::Error,
    },
    /// The encoder abridge-fast reads failed (e.g. MiniLM is not installed).
    #[error(transparent)]
    Model(#[from] abridge_models::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
