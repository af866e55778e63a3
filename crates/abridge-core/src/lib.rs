//! abridge-core: the model-free half of abridge.
//!
//! A compression is *segment → score → select → render*. This crate holds the traits that the
//! scoring stage is written against ([`TokenScorer`], [`TokenCounter`], [`TokenClassifier`],
//! [`Embedder`]) and the algorithms built on them. Model runtimes live in `abridge-models`;
//! everything here is unit-tested with the deterministic fakes in [`testing`].

pub mod error;
pub mod scoring;
pub mod testing;

pub use error::{BoxError, Error, Result};
pub use scoring::{
    Embedder, ModelToken, ScoringSession, TokenClassifier, TokenCounter, TokenScorer,
};
