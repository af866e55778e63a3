//! Compression methods: each a composition of the pipeline's stages.

pub mod llmlingua;
pub mod llmlingua2;
pub mod longllmlingua;
pub mod selective_context;

use serde::{Deserialize, Serialize};

pub use llmlingua::{ContextBudget, LlmlinguaOptions};
pub use llmlingua2::Llmlingua2Options;
pub use longllmlingua::{ConditionInQuestion, LongLlmlinguaOptions};

use crate::segment::Unit;

/// The compression method and its own options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Method {
    /// Selective Context: drop the least informative units.
    SelectiveContext,
    /// LLMLingua: coarse demonstration filter, then iterative token-level compression.
    Llmlingua(LlmlinguaOptions),
    /// LongLLMLingua: rank documents for the question, keep and arrange the relevant ones, then
    /// question-aware token-level compression. Needs a question.
    #[serde(rename = "longllmlingua")]
    LongLlmlingua(LongLlmlinguaOptions),
    /// LLMLingua-2: keep the words a token classifier gives the highest keep-probability.
    /// Needs a classifier.
    Llmlingua2(Llmlingua2Options),
}

impl Method {
    /// The unit each method's users know: Selective Context's default `reduce_level` is
    /// `phrase`; LLMLingua and LongLLMLingua drop tokens, which we round up to whole words;
    /// LLMLingua-2 keeps words.
    pub fn default_unit(&self) -> Unit {
        match self {
            Self::SelectiveContext => Unit::Phrase,
            Self::Llmlingua(_) | Self::LongLlmlingua(_) | Self::Llmlingua2(_) => Unit::Word,
        }
    }
}
