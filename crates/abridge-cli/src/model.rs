//! Choosing and loading the scoring model, fetching the default one on first use.

use std::path::PathBuf;
use std::time::Instant;

use abridge_models::fetch;
use abridge_models::{LanguageModel, LoadOptions};

/// Options shared by every command that loads the scoring model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A llama-family GGUF file (llama, qwen2) to score with [default: SmolLM2-135M-Instruct Q4_1];
    /// for `compress --method llmlingua2`, a token-classification model folder.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,

    /// Keep the weights quantised in memory (about 4x smaller; slightly slower on long inputs).
    #[arg(long)]
    pub low_memory: bool,

    /// Skip checking the model file against the sha256 recorded when it was fetched (saves
    /// about 0.3 s for the default model, 4 s for a 1 GB one).
    #[arg(long)]
    pub no_verify: bool,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<LanguageModel> {
        let path = match &self.model {
            Some(path) => path.clone(),
            None => fetch::ensure_default_model(&mut |line| eprintln!("abridge: {line}"))?,
        };
        let started = Instant::now();
        let options = LoadOptions {
            keep_quantized: self.low_memory,
            skip_verify: self.no_verify,
            ..LoadOptions::default()
        };
        let model = LanguageModel::load(&path, options)?;
        tracing::info!(
            path = %path.display(),
            seconds = started.elapsed().as_secs_f64(),
            weight_mib = model.model.memory_bytes() >> 20,
            "model loaded"
        );
        Ok(model)
    }
}
