//! Training a compressor adapter (ICAE, 500x, GIST) on CPU, as `scripts/soft/train_icae.py`
//! does on a GPU: AdamW on every LoRA factor and the memory / indicator embeddings, linear
//! warm-up then cosine decay to a tenth of the learning rate, clipping of the gradient's global
//! norm, batches drawn from a fixed set of windows by a seeded generator.
//!
//! A checkpoint is the adapter file itself (loadable by [`Adapter::load`] at any step) plus a
//! state file beside it ([`state_path`]): the optimiser's moments, the step, the generator's
//! state, the options and a hash of the training windows. Resuming from it continues bit for bit
//! where the run stopped.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use abridge_models::llama::CausalLm;
use abridge_models::safetensors::SafeTensors;
use abridge_models::LanguageModel;

use crate::adapter::{Adapter, AdapterWeights, Method};
use crate::compressor_eval;
use crate::differentiable::Differentiable;
use crate::error::{Error, Result};
use crate::fit::embedding_std;
use crate::objective::{Differentiated, Window, WindowLoss};
use crate::optim::Adam;
use crate::rng::SplitMix64;

#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub method: Method,
    /// Memory tokens.
    pub k: usize,
    pub rank: usize,
    /// LoRA α (the scale is α / rank).
    pub alpha: f32,
    pub steps: usize,
    /// Windows per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Steps of linear warm-up.
    pub warmup: usize,
    /// Largest global gradient norm (larger gradients are scaled down to it).
    pub clip: f32,
    pub weight_decay: f32,
    pub seed: u64,
}

impl Default for TrainOptions {
    /// The GPU recipe's values (docs/SOFT_PROMPTS_II.md), except the rank, batch and steps.
    fn default() -> Self {
        Self {
            method: Method::Gist,
            k: 4,
            rank: 8,
            alpha: 16.0,
            steps: 100,
            batch: 4,
            lr: 5e-4,
            warmup: 10,
            clip: 1.0,
            weight_decay: 0.0,
            seed: 0,
        }
    }
}

impl TrainOptions {
    fn validate(&self) -> Result<()> {
        let problem = if self.k == 0 {
            "the number of memory tokens (--k) must be at least 1"
        } else if self.rank == 0 {
            "the LoRA rank (--rank) must be at least 1"
        } else if self.steps == 0 || self.batch == 0 {
            "the steps (--steps) and the batch (--batch) must be at least 1"
        } else if !(self.lr.is_finite() && self.lr > 0.0) {
            "the learning rate (--lr) must be a positive number"
        } else if !(self.clip.is_finite() && self.clip > 0.0) {
            "the gradient clip must be a positive number"
        } else {
            return Ok(());
        };
        Err(Error::InvalidInput(problem.into()))
    }

    /// As recorded in the adapter's and the state file's metadata.
    fn record(&self) -> BTreeMap<String, String> {
        [
            ("alpha", self.alpha.to_string()),
            ("steps_planned", self.steps.to_string()),
            ("batch", self.batch.to_string()),
            ("lr", self.lr.to_string()),
            ("warmup", self.warmup.to_string()),
            ("clip", self.clip.to_string()),
            ("weight_decay", self.weight_decay.to_string()),
            ("seed", self.seed.to_string()),
            ("schedule", "linear warm-up, cosine to 0.1 × lr".into()),
            ("optimiser", "AdamW β 0.9/0.98".into()),
            ("trainer", "abridge soft train (Rust, CPU, f32)".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The learning rate of step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f32 {
        let warm = ((step + 1) as f64 / self.warmup.max(1) as f64).min(1.0);
        let progress = (step as f64 / self.steps as f64).min(1.0);
        let cosine = 0.1 + 0.9 * 0.5 * (1.0 + (PI * progress).cos());
        (f64::from(self.lr) * warm * cosine) as f32
    }
}

/// One optimisation step, as reported to the caller.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    /// 1-based.
    pub step: usize,
    /// Means over the batch.
    pub loss: WindowLoss,
    pub lr: f32,
    /// Before clipping.
    pub gradient_norm: f64,
}

/// A training run in progress.
pub struct Trainer<'m> {
    diff: Differentiable<'m>,
    pub options: TrainOptions,
    pub adapter: Adapter,
    adam: Adam,
    rng: SplitMix64,
    /// Steps done.
    pub step: usize,
    /// `[step, regeneration, continuation]` of every step.
    pub curve: Vec<[f64; 3]>,
}

/// Where the optimiser state of a checkpoint at `adapter` lives: `NAME.state.safetensors`.
pub fn state_path(adapter: &Path) -> PathBuf {
    adapter.with_extension("state.safetensors")
}

impl<'m> Trainer<'m> {
    /// A new run: LoRA A uniform in ±1/√hidden and B = 0 (PEFT's initialisation: training starts
    /// from the frozen model), memory and indicator embeddings N(0, σ) with σ the token
    /// embeddings' standard deviation.
    pub fn new(model: &'m CausalLm, base_sha256: String, options: TrainOptions) -> Result<Self> {
        options.validate()?;
        let config = &model.config;
        let d = config.hidden;
        let mut rng = SplitMix64::new(options.seed);
        let bound = 1.0 / (d as f32).sqrt();
        let shapes = Adapter::lora_shapes(config, options.rank);
        let lora = (0..config.layers)
            .map(|_| {
                let mut factors = shapes.map(|[rows, cols]| vec![0f32; rows * cols]);
                // A (factors 0 and 2, q and v) is uniform; B stays zero.
                for a in [0, 2] {
                    factors[a]
                        .iter_mut()
                        .for_each(|v| *v = (rng.uniform() as f32 * 2.0 - 1.0) * bound);
                }
                factors
            })
            .collect();
        let std = embedding_std(model.embedding());
        let mut normal = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() * std).collect() };
        let weights = AdapterWeights {
            lora,
            memory: normal(options.k * d),
            ae_token: normal(d),
            lm_token: normal(d),
        };
        let adapter = Adapter {
            method: options.method,
            k: options.k,
            rank: options.rank,
            lora_scale: options.alpha / options.rank as f32,
            hidden: d,
            base_sha256,
            weights,
            record: options.record(),
        };
        let mut adam = Adam::new(flatten(&adapter.weights).len(), options.lr);
        adam.beta2 = 0.98;
        adam.weight_decay = options.weight_decay;
        Ok(Self {
            diff: Differentiable::new(model),
            options,
            adapter,
            adam,
            rng,
            step: 0,
            curve: Vec::new(),
        })
    }

    /// Continues the run checkpointed at `path` (see [`Self::save`]). `options` must be the
    /// run's own and `windows` its training windows: anything else would not continue it.
    pub fn resume(
        model: &'m CausalLm,
        path: &Path,
        options: TrainOptions,
        windows: &[Window],
    ) -> Result<Self> {
        let adapter = Adapter::load(path, &model.config)?;
        let mut trainer = Self::new(model, adapter.base_sha256.clone(), options)?;
        let state_file = state_path(path);
        let invalid = |reason: String| Error::InvalidAdapter {
            path: state_file.clone(),
            reason,
        };
        let state = SafeTensors::open(&state_file).map_err(|e| invalid(e.to_string()))?;
        let meta = state.metadata();
        let expected = trainer.state_metadata(windows);
        for key in ["method", "k", "rank", "windows"]
            .into_iter()
            .chain(trainer.options.record().keys().map(String::as_str))
        {
            if key != "steps_planned" && meta.get(key) != expected.get(key) {
                return Err(Error::InvalidInput(format!(
                    "{} was trained with {key} = {}, not {}: resume with the run's own options and data",
                    state_file.display(),
                    meta.get(key).map_or("(none)", String::as_str),
                    expected.get(key).map_or("(none)", String::as_str),
                )));
            }
        }
        let number = |key: &str| -> Result<u64> {
            meta.get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| invalid(format!("its metadata `{key}` is missing or not a number")))
        };
        let len = flatten(&adapter.weights).len();
        let read = |name: &str| {
            state
                .read_f32(name, &[len])
                .map_err(|e| invalid(e.to_string()))
        };
        trainer
            .adam
            .restore(read("adam_m")?, read("adam_v")?, number("adam_t")? as i32);
        trainer.step = number("step")? as usize;
        trainer.rng = SplitMix64::new(number("rng")?);
        trainer.curve = serde_json::from_str(meta.get("curve").map_or("[]", String::as_str))
            .map_err(|e| invalid(format!("its `curve` is not JSON: {e}")))?;
        trainer.adapter = adapter;
        Ok(trainer)
    }

    fn state_metadata(&self, windows: &[Window]) -> BTreeMap<String, String> {
        let mut meta = self.options.record();
        meta.insert("method".into(), self.options.method.name().into());
        meta.insert("k".into(), self.options.k.to_string());
        meta.insert("rank".into(), self.options.rank.to_string());
        meta.insert("windows".into(), windows_fingerprint(windows));
        meta.insert("step".into(), self.step.to_string());
        meta.insert("adam_t".into(), self.adam.state().2.to_string());
        meta.insert("rng".into(), self.rng.state().to_string());
        meta
    }

    /// Writes the adapter (with its training record) to `path` and the optimiser state beside it.
    pub fn save(&self, path: &Path, windows: &[Window]) -> Result<()> {
        let mut adapter = self.adapter.clone();
        adapter.record.insert("steps".into(), self.step.to_string());
        let tail = &self.curve[self.curve.len().saturating_sub(40)..];
        adapter.record.insert("losses".into(), json(tail));
        if let Some(&[_, regeneration, continuation]) = self.curve.last() {
            adapter
                .record
                .insert("final_ae_loss".into(), regeneration.to_string());
            adapter
                .record
                .insert("final_lm_loss".into(), continuation.to_string());
        }
        adapter.save(path, &self.diff.model.config)?;
        let mut meta = self.state_metadata(windows);
        meta.insert("curve".into(), json(&self.curve));
        let (m, v, _) = self.adam.state();
        let state_file = state_path(path);
        crate::file::write(
            &state_file,
            &meta,
            &[("adam_m", vec![m.len()], m), ("adam_v", vec![v.len()], v)],
        )
    }

    /// Steps until `steps` are done, writing a checkpoint to `path` every `checkpoint_every`
    /// steps and after the last; `on_step` sees each step's report.
    pub fn run(
        &mut self,
        windows: &[Window],
        steps: usize,
        checkpoint_every: usize,
        path: &Path,
        on_step: &mut dyn FnMut(&StepReport),
    ) -> Result<()> {
        while self.step < steps {
            let report = self.step(windows)?;
            on_step(&report);
            if report.step % checkpoint_every.max(1) == 0 || report.step == steps {
                self.save(path, windows)?;
            }
        }
        Ok(())
    }

    /// One step on a batch drawn from `windows`.
    pub fn step(&mut self, windows: &[Window]) -> Result<StepReport> {
        if windows.is_empty() {
            return Err(Error::InvalidInput("there are no training windows".into()));
        }
        let batch = self.options.batch;
        let picks: Vec<usize> = (0..batch).map(|_| self.rng.below(windows.len())).collect();
        let mut gradient = zeros_like(&self.adapter.weights);
        let mut loss = WindowLoss::default();
        let compressor = Differentiated {
            diff: &self.diff,
            adapter: &self.adapter,
        };
        for &i in &picks {
            let part = compressor.loss(windows[i], 1.0 / batch as f32, Some(&mut gradient))?;
            loss.regeneration += part.regeneration / batch as f64;
            loss.continuation += part.continuation / batch as f64;
            loss.regeneration_agreeing += part.regeneration_agreeing;
        }
        let mut flat_gradient = flatten(&gradient);
        let norm = flat_gradient
            .iter()
            .map(|&g| f64::from(g) * f64::from(g))
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() {
            return Err(Error::InvalidInput(format!(
                "the gradient is not finite at step {}: lower the learning rate (--lr)",
                self.step + 1
            )));
        }
        if norm > f64::from(self.options.clip) {
            let shrink = (f64::from(self.options.clip) / norm) as f32;
            flat_gradient.iter_mut().for_each(|g| *g *= shrink);
        }
        let lr = self.options.lr_at(self.step);
        self.adam.lr = lr;
        let mut params = flatten(&self.adapter.weights);
        self.adam.step(&mut params, &flat_gradient);
        unflatten(&params, &mut self.adapter.weights);
        self.step += 1;
        self.curve
            .push([self.step as f64, loss.regeneration, loss.continuation]);
        Ok(StepReport {
            step: self.step,
            loss,
            lr,
            gradient_norm: norm,
        })
    }
}

fn json(curve: &[[f64; 3]]) -> String {
    serde_json::to_string(curve).expect("numbers serialise")
}

/// Every trainable tensor, in a fixed order: each layer's LoRA factors, memory, `[AE]`, `[LM]`.
fn tensors(w: &AdapterWeights) -> impl Iterator<Item = &Vec<f32>> {
    w.lora
        .iter()
        .flatten()
        .chain([&w.memory, &w.ae_token, &w.lm_token])
}

fn flatten(w: &AdapterWeights) -> Vec<f32> {
    tensors(w).flatten().copied().collect()
}

fn unflatten(flat: &[f32], w: &mut AdapterWeights) {
    let mut rest = flat;
    for tensor in
        w.lora
            .iter_mut()
            .flatten()
            .chain([&mut w.memory, &mut w.ae_token, &mut w.lm_token])
    {
        let (head, tail) = rest.split_at(tensor.len());
        tensor.copy_from_slice(head);
        rest = tail;
    }
}

/// A window cut from one text, owning its tokens.
#[derive(Debug, Clone)]
pub struct TextWindow {
    /// The text's id (windows of one text are never each other's mismatched memory).
    pub document: String,
    pub text: Vec<u32>,
    pub continuation: Vec<u32>,
}

impl TextWindow {
    /// The window as the objective reads it.
    pub fn as_window(&self) -> Window<'_> {
        Window {
            text: &self.text,
            continuation: &self.continuation,
        }
    }

    /// The window as [`compressor_eval`] reads it: text and continuation in one.
    pub fn held_out(&self) -> compressor_eval::Window {
        compressor_eval::Window {
            document: self.document.clone(),
            ids: [self.text.as_slice(), &self.continuation].concat(),
        }
    }
}

/// Up to `per_text` consecutive windows of `length` text + `continuation` tokens from each of
/// `texts` (id, text); texts too short for one are skipped, so the result may be empty.
pub fn cut_windows(
    lm: &LanguageModel,
    texts: &[(String, String)],
    length: usize,
    continuation: usize,
    per_text: usize,
) -> Result<Vec<TextWindow>> {
    if length == 0 || continuation == 0 {
        return Err(Error::InvalidInput(
            "a window needs at least one text and one continuation token".into(),
        ));
    }
    let mut windows = Vec::new();
    for (id, text) in texts {
        let ids: Vec<u32> = lm.encode(text)?.iter().map(|t| t.id).collect();
        for chunk in ids.chunks_exact(length + continuation).take(per_text) {
            let (text, continuation) = chunk.split_at(length);
            windows.push(TextWindow {
                document: id.clone(),
                text: text.to_vec(),
                continuation: continuation.to_vec(),
            });
        }
    }
    Ok(windows)
}

/// An all-zero gradient with the shapes of `w`.
pub fn zeros_like(w: &AdapterWeights) -> AdapterWeights {
    let zeros = |v: &Vec<f32>| vec![0f32; v.len()];
    AdapterWeights {
        lora: w
            .lora
            .iter()
            .map(|layer| layer.each_ref().map(zeros))
            .collect(),
        memory: zeros(&w.memory),
        ae_token: zeros(&w.ae_token),
        lm_token: zeros(&w.lm_token),
    }
}

/// The windows' count and an FNV-1a hash of their tokens: a resumed run must read the same data.
fn windows_fingerprint(windows: &[Window]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for w in windows {
        for &id in w.text.iter().chain([&u32::MAX]).chain(w.continuation) {
            for byte in id.to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("{} windows, fnv1a {hash:016x}", windows.len())
}
