//! abridge-soft: soft prompts for abridge's own llama runtime.
//!
//! A soft prompt is k input vectors that a model reads in place of a prompt's tokens. They are
//! fitted per prompt (Wingate et al. 2022, "CC") with the model frozen, which needs gradients
//! with respect to the model's inputs:
//!
//! - [`differentiable`]: an f32 forward pass of abridge-models' llama / qwen2 model over input
//!   vectors, keeping its activations, and the hand-written backward pass to those vectors;
//! - [`loss`]: next-token NLL and KL(teacher ‖ model) on the LM head, with their gradients;
//! - [`fit`]: Adam on the `cram` (regenerate the prompt) or `distill` (behave as with the prompt)
//!   objective;
//! - [`soft_prompt`]: the fitted vectors and their `.safetensors` file, tied to one model by its
//!   sha256;
//! - [`prefix`]: generation and scoring with a soft prompt on the runtime's KV-cache path;
//! - [`adapter`], [`compressor`], [`compressed`]: trained compressors (ICAE, 500xCompressor,
//!   GIST): the adapter file, compressing a text to k memory positions with it, and the
//!   compressed prompt's file; [`compressor_eval`] measures them on held-out text.
//!
//! Training them reuses the differentiable pass with a LoRA on q and v and a KV prefix:
//!
//! - [`objective`]: encoder → memory → decoder, the regeneration + continuation loss and its
//!   gradient with respect to every trainable weight of an [`Adapter`];
//! - [`train`]: AdamW ([`optim`]) with warm-up, cosine decay and clipping, checkpoints that
//!   resume bit for bit.

pub mod adapter;
pub mod compressed;
pub mod compressor;
pub mod compressor_eval;
pub mod differentiable;
pub mod error;
mod file;
pub mod fit;
pub mod loss;
pub mod objective;
pub mod optim;
pub mod prefix;
mod rng;
pub mod soft_prompt;
pub mod train;

pub use adapter::{Adapter, Method};
pub use compressed::{CompressedPrompt, Memory, Task};
pub use compressor::Compressor;
pub use error::{Error, Result};
pub use fit::{fit, FitOptions, Fitted, Init, Objective, Progress};
pub use soft_prompt::{FitRecord, ModelId, SoftPrompt};
