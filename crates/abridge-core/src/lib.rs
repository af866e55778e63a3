//! abridge-core: the model-free half of abridge.
//!
//! A compression is *segment → score → select → render*, and the modules follow it:
//! - [`segment`]: text → units (tokens, words, phrases, sentences) as byte ranges;
//! - [`protect`]: spans that must survive (force tokens, digits, patterns, code, `<abridge>` markup);
//! - `score`: model-token surprisal through [`TokenScorer`] sessions, aggregated to units;
//! - [`budget`] and `select`: which units to keep so the rendered text meets the budget in the
//!   target LLM's tokens ([`TokenCounter`]);
//! - [`render`]: kept units back to text, whitespace preserved, plus a label map;
//! - [`rank`] and [`coarse`]: document ranking (perplexity, BM25, gzip, embeddings), the
//!   context and sentence filters, reordering and dynamic ratios (LongLLMLingua's coarse stage);
//! - `fine`: LLMLingua's iterative token-level stage, shared by the methods that use it;
//! - [`methods`]: `auto`, Selective Context, LLMLingua, LongLLMLingua and LLMLingua-2, each a
//!   `Stages` implementation composing those stages, and `rewrite` (an `auto` extract rewritten
//!   by a [`Generator`], checked by [`faithfulness`]);
//! - [`request`]: the options every front end takes, validated once into a plan;
//! - [`compress()`]: the entry point front ends call; [`recover()`] restores compressed spans
//!   an LLM quoted in its response.
//!
//! Model runtimes live in `abridge-models`; everything here is unit-tested with the deterministic
//! fakes in `testing` (the `testing` feature makes them available to other crates' tests).

pub mod budget;
pub mod coarse;
pub mod compress;
pub mod error;
pub mod faithfulness;
mod fine;
pub mod methods;
mod prompt;
pub mod protect;
pub mod rank;
pub mod recover;
pub mod render;
pub mod request;
mod score;
pub mod scoring;
pub mod segment;
mod select;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use budget::Budget;
pub use coarse::sentence_filter::KeepSentences;
pub use coarse::Reorder;
pub use compress::{compress, compress_with, CompressRequest, Compressed, Models, Timings};
pub use error::{BoxError, Error, Fix, OptionError, Result, Wording};
pub use methods::{
    AutoConfig, ConditionInQuestion, ContextBudget, Llmlingua2Options, LlmlinguaOptions,
    LongLlmlinguaOptions, Method, Rewrite, RewriteConfig, UnsupportedSpan,
};
pub use prompt::PART_SEPARATOR;
pub use protect::ProtectOptions;
pub use rank::{rank, QuestionPosition, RankMethod, Ranked};
pub use recover::recover;
pub use render::LabeledSpan;
pub use request::{
    Classifier, CompressionOptions, CompressionPlan, EmbedderUse, MethodName, Needs,
};
pub use score::Progress;
pub use scoring::{
    Embedder, Generation, Generator, Interrupt, ModelToken, ScoringSession, TokenClassifier,
    TokenCounter, TokenScorer, Uninterrupted,
};
pub use segment::Unit;
