//! abridge-models: the model runtimes behind abridge-core's traits.
//!
//! - [`gguf`] reads GGUF files; [`quant`] decodes their GGML storage types.
//! - [`llama`] is our own llama-family forward pass (llama, qwen2) on the [`kernels`], with a
//!   reusable KV cache and all-position next-token log-probabilities.
//! - [`tokenizer`] builds the model's byte-level BPE tokenizer from the GGUF metadata.
//! - [`scorer::LanguageModel`] joins the two into a [`abridge_core::TokenScorer`].
//! - [`counter`] counts target-LLM tokens (tiktoken); [`fetch`] installs the packaged models.

pub mod counter;
pub mod error;
pub mod fetch;
pub mod gguf;
pub mod kernels;
pub mod llama;
pub mod matrix;
pub mod quant;
pub mod scorer;
pub mod tokenizer;

pub use counter::{TargetTokenizer, TiktokenCounter};
pub use error::{Error, Result};
pub use llama::LoadOptions;
pub use scorer::LanguageModel;
