use std::path::PathBuf;

/// Errors of soft-prompt fitting and use. Each message says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] abridge_models::Error),

    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("{path} was fitted for the model {fitted_for} (sha256 {fitted_sha256}), not for {model} (sha256 {model_sha256}): a soft prompt only works with the exact model it was fitted for: fit it again with this model (`abridge soft fit --model PATH`)")]
    ModelMismatch {
        path: PathBuf,
        fitted_for: String,
        fitted_sha256: String,
        model: String,
        model_sha256: String,
    },

    #[error(
        "soft prompt not found at {path}: fit one with `abridge soft fit PROMPT_FILE -o {path}`"
    )]
    NotFound { path: PathBuf },

    #[error("{path} is not a soft prompt written by `abridge soft fit`: {reason}")]
    InvalidFile { path: PathBuf, reason: String },

    #[error("compressor adapter not found at {path}: the shipped ones are in models/soft/ (docs/SOFT_PROMPTS_II.md)")]
    AdapterNotFound { path: PathBuf },

    #[error("{path} is not a compressor adapter (format `abridge-soft-compressor/1`): {reason}")]
    InvalidAdapter { path: PathBuf, reason: String },

    #[error("{path} was trained on the model with sha256 {trained_sha256}, not on {model} (sha256 {model_sha256}): an adapter only works with the exact model it was trained on")]
    AdapterModelMismatch {
        path: PathBuf,
        trained_sha256: String,
        model: String,
        model_sha256: String,
    },

    #[error("{path} was compressed for the model {made_for} (sha256 {made_for_sha256}), not for {model} (sha256 {model_sha256}): compress the text again with an adapter for this model (`abridge soft compress --model PATH`)")]
    CompressedModelMismatch {
        path: PathBuf,
        made_for: String,
        made_for_sha256: String,
        model: String,
        model_sha256: String,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
