//! abridge-core: the model-free half of abridge.
//!
//! A compression is *segment → score → select → render*, and the modules follow it:
//! - [`segment`]: text → units (tokens, words, phrases, sentences) as byte ranges;
//! - [`protect`]: spans that must survive (force tokens, digits, patterns, code, `<abridge>` markup);
//! - `score`: model-token surprisal through [`TokenScorer`] sessions, aggregated to units;
//! - [`budget`] and `select`: which units to keep so the rendered text meets the budget in the
//!   target LLM's tokens ([`TokenCounter`]);
//! - [`render`]: kept units back to text, whitespace preserved, plus a label map;
//! - [`methods`]: Selective Context and LLMLingua as compositions of those stages;
//! - [`compress()`]: the entry point front ends call.
//!
//! Model runtimes live in `abridge-models`; everything here is unit-tested with the deterministic
//! fakes in [`testing`].

pub mod budget;
pub mod compress;
pub mod error;
pub mod methods;
mod prompt;
pub mod protect;
pub mod render;
mod score;
pub mod scoring;
pub mod segment;
mod select;
pub mod testing;

pub use budget::Budget;
pub use compress::{compress, CompressRequest, Compressed, Timings};
pub use error::{BoxError, Error, Result};
pub use methods::{ContextBudget, LlmlinguaOptions, Method};
pub use protect::ProtectOptions;
pub use render::LabeledSpan;
pub use score::Progress;
pub use scoring::{
    Embedder, ModelToken, ScoringSession, TokenClassifier, TokenCounter, TokenScorer,
};
pub use segment::Unit;
