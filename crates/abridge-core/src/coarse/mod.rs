//! Coarse stages: decisions about whole documents and sentences, before any token is scored.
//!
//! - `contexts`: context accounting (each context's units and size, the tokens left for them)
//!   and dropping whole contexts;
//! - [`context_filter`]: keep documents in rank order until the context budget is spent
//!   (LLMLingua's budget controller, LongLLMLingua's coarse compression), forced ones first;
//! - [`reorder`]: where the kept documents go in the prompt (`original`, `sort`, `two_stage`);
//! - [`dynamic_ratio`]: how much of each kept document the token stage keeps, by rank;
//! - [`sentence_filter`]: drop the least relevant sentences of the kept documents.
//!
//! The rankers that order documents and sentences are in [`crate::rank`].

pub(crate) mod arrangement;
pub mod context_filter;
pub(crate) mod contexts;
pub mod dynamic_ratio;
pub mod reorder;
pub mod sentence_filter;

pub(crate) use arrangement::Arrangement;
pub use reorder::Reorder;
