/// An error from a model runtime, passed through the traits without tying this crate to it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the compression core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input or options cannot be honoured; the message says what to change.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The scorer, classifier, embedder or counter failed.
    #[error(transparent)]
    Model(#[from] BoxError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
