//! Choosing and loading the scoring model, fetching the default one on first use.

use std::path::PathBuf;
use std::time::Instant;

use abridge_models::fetch;
use abridge_models::{LanguageModel, LoadOptions, WeightFormat};

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

    /// How every language model the command loads holds and multiplies its weights: f32 (exact);
    /// int8 (requantised per block of 32 with int8 activations, integer products with AVX-512
    /// VNNI where the CPU has it: the fastest, scores about 0.06 nats from f32); int8-a16 (int16
    /// activations: about 0.015 nats from f32). Both int8 formats take about a third of f32's
    /// memory
    #[arg(long, default_value = "f32", value_parser = weight_formats(), conflicts_with = "low_memory")]
    pub weights: WeightFormat,

    /// Skip checking the model file against the sha256 recorded when it was fetched (saves
    /// about 0.3 s for the default model, 4 s for a 1 GB one).
    #[arg(long)]
    pub no_verify: bool,
}

/// `--weights`: the names abridge-models parses, listed in `--help` and in clap's errors.
fn weight_formats() -> impl clap::builder::TypedValueParser<Value = WeightFormat> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(WeightFormat::NAMES)
        .map(|name| name.parse().expect("every listed name parses"))
}

impl ModelArgs {
    /// The load options these flags ask for, for the scoring model and any other LM a command
    /// loads (evaluator, answerer, rewriter).
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            weights: if self.low_memory {
                WeightFormat::Gguf
            } else {
                self.weights
            },
            skip_verify: self.no_verify,
            ..LoadOptions::default()
        }
    }

    pub fn load(&self) -> anyhow::Result<LanguageModel> {
        let path = match &self.model {
            Some(path) => path.clone(),
            None => fetch::ensure_default_model(&mut |line| eprintln!("abridge: {line}"))?,
        };
        let started = Instant::now();
        let model = LanguageModel::load(&path, self.load_options())?;
        tracing::info!(
            path = %path.display(),
            seconds = started.elapsed().as_secs_f64(),
            weight_mib = model.model.memory_bytes() >> 20,
            "model loaded"
        );
        Ok(model)
    }
}
