use std::path::PathBuf;

/// Errors of the model runtimes. Each message says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model file not found at {path}: run `abridge models fetch` (or scripts/fetch-models.sh), or pass --model PATH")]
    ModelNotFound { path: PathBuf },

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not a valid GGUF file: {reason}. Re-download it with `abridge models fetch --force`")]
    InvalidGguf { path: PathBuf, reason: String },

    #[error("{path} is corrupted: its sha256 is {actual}, but {expected} was recorded when it was fetched. Re-download it with `abridge models fetch --force`, or pass --no-verify to use it anyway")]
    Corrupt {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("token-classification model not found at {path}: pass --model DIR, a folder with config.json, model.safetensors and tokenizer.json (e.g. a download of microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank)")]
    ClassifierNotFound { path: PathBuf },

    #[error("{path} is not a valid model file: {reason}")]
    InvalidModelFile { path: PathBuf, reason: String },

    #[error("unsupported model: {0}")]
    Unsupported(String),

    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error("model fetch failed: {0}")]
    Fetch(String),

    /// The caller stopped a computation (an [`abridge_core::Interrupt`], or a generation's
    /// token callback); its reason, as given.
    #[error("{0}")]
    Interrupted(abridge_core::BoxError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
