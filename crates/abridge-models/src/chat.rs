//! Chat models on the runtime: a ChatML prompt (the template of Qwen2.5 and SmolLM2) answered
//! greedily until the assistant's turn ends. The evaluator's answers and the `rewrite` method's
//! local generator both go through [`reply`].

use std::path::{Path, PathBuf};

use abridge_core::{BoxError, Generation, Generator};

use crate::generate::{greedy_steps, stop_ids};
use crate::{Error, LanguageModel, LoadOptions, Result};

/// Qwen2.5's default system message, which its template inserts when none is given.
pub const QWEN_SYSTEM: &str =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/// The file `scripts/fetch-evaluator.py` installs by default: Qwen2.5-Coder-0.5B-Instruct
/// (Q4_K_M), the `rewrite` method's default generator.
pub const DEFAULT_GENERATOR_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// Where the default generator is installed (the models directory).
pub fn default_generator_path() -> PathBuf {
    crate::fetch::models_dir().join(DEFAULT_GENERATOR_FILE)
}

/// A ChatML conversation of a system message and one user turn, open for the assistant's reply.
pub fn chat_turn(system: &str, user: &str) -> String {
    format!(
        "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
}

/// The model's greedy reply to `user` after `system`, in at most `max_tokens` tokens, ending at
/// `<|im_end|>` (or `<|endoftext|>`). `on_token(n)` is called after each token with the count so
/// far; an error from it stops the generation and is returned as it is.
pub fn reply(
    lm: &LanguageModel,
    system: &str,
    user: &str,
    max_tokens: usize,
    on_token: &mut dyn FnMut(usize) -> std::result::Result<(), BoxError>,
) -> std::result::Result<String, BoxError> {
    let ids: Vec<u32> = lm
        .encode(&chat_turn(system, user))?
        .into_iter()
        .map(|t| t.id)
        .collect();
    if ids.len() >= lm.model.config.context {
        return Err(Error::InvalidInput(format!(
            "the chat prompt is {} tokens, over the model's context of {}: give it a shorter text",
            ids.len(),
            lm.model.config.context
        ))
        .into());
    }
    let mut cache = lm.model.new_cache();
    lm.model.forward(&mut cache, &ids)?;
    let generated = greedy_steps(
        lm,
        &mut cache,
        None,
        max_tokens,
        &stop_ids(lm),
        &mut |_, n| on_token(n).map_err(Error::Interrupted),
    );
    match generated {
        Ok(tokens) => Ok(lm.tokenizer.decode(&tokens).trim().to_string()),
        // The caller's own error, so it can recognise it (a cancellation).
        Err(Error::Interrupted(error)) => Err(error),
        Err(error) => Err(error.into()),
    }
}

/// A local instruction model (a qwen2 or llama GGUF with a ChatML template, e.g.
/// Qwen2.5-Coder-0.5B-Instruct) as a [`Generator`].
pub struct ChatGenerator {
    pub lm: LanguageModel,
    name: String,
}

impl ChatGenerator {
    pub fn new(lm: LanguageModel) -> Self {
        let name = lm.path.file_name().map_or_else(
            || lm.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Self { lm, name }
    }

    pub fn load(path: &Path, options: LoadOptions) -> Result<Self> {
        Ok(Self::new(LanguageModel::load(path, options)?))
    }
}

impl Generator for ChatGenerator {
    fn generate(
        &self,
        request: &Generation,
        on_token: &mut dyn FnMut(usize) -> std::result::Result<(), BoxError>,
    ) -> std::result::Result<String, BoxError> {
        reply(
            &self.lm,
            request.system,
            request.user,
            request.max_new_tokens,
            on_token,
        )
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_is_one_user_turn_and_the_assistant_speaks_next() {
        let turn = chat_turn(QWEN_SYSTEM, "Question: who?\nAnswer:");
        assert!(turn.starts_with("<|im_start|>system\nYou are Qwen"));
        assert!(turn.contains("<|im_start|>user\nQuestion: who?\nAnswer:<|im_end|>\n"));
        assert!(turn.ends_with("<|im_start|>assistant\n"));
    }
}
