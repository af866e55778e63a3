//! The trained compressors' objective on one text window, and its gradient with respect to every
//! trainable weight of an [`Adapter`] (the conventions of `scripts/soft/train_icae.py`, see
//! docs/SOFT_PROMPTS_II.md):
//!
//! - the encoder is the base model with the adapter's LoRA on q and v, over
//!   `[E(text); memory_embeddings]` at positions 0..L+k−1 (causal, no document-start token);
//! - ICAE: the final hidden states at the k memory positions ("slots") are the frozen decoder's
//!   first input rows: `[slots; ae_token; E(text[..L−1])]` regenerates the text,
//!   `[slots; lm_token; E(cont[..C−1])]` continues it, positions 0..;
//! - 500x: every layer's keys (after rope) and values at the memory positions are the frozen
//!   decoder's KV prefix; it reads `[ae_token|lm_token; tokens]` at positions k..;
//! - GIST: the 500x data flow with the adapted (LoRA) model as the decoder too.
//!
//! The loss is the mean cross-entropy of regeneration plus that of continuation. Its gradient
//! flows from each decoder back into the slots (ICAE) or the KV prefix (500x, GIST), then through
//! the encoder into the LoRA factors and the memory embeddings.

use abridge_models::kernels;

use crate::adapter::{Adapter, AdapterWeights, Method};
use crate::differentiable::{Differentiable, KeyValues, Lora, Pass, Trace};
use crate::error::{Error, Result};
use crate::loss::{argmax, head_loss, Targets};

/// One training or evaluation example: `text` is compressed, `continuation` follows it.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub text: &'a [u32],
    pub continuation: &'a [u32],
}

/// What the decoder reads of a compressed text.
pub enum Memory {
    /// ICAE: k input rows (`k × hidden`).
    Slots(Vec<f32>),
    /// 500x, GIST: a KV prefix of k positions.
    Prefix(KeyValues),
}

/// The objective on one window (teacher forcing).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowLoss {
    /// Mean cross-entropy of regenerating the text from the memory (nats per token).
    pub regeneration: f64,
    /// Mean cross-entropy of the continuation given the memory.
    pub continuation: f64,
    /// Text tokens that are the decoder's top prediction under teacher forcing.
    pub regeneration_agreeing: usize,
}

impl WindowLoss {
    pub fn total(&self) -> f64 {
        self.regeneration + self.continuation
    }
}

/// The encoder and decoders of one adapter on the differentiable pass (training); the inference
/// runtime's counterpart is [`crate::Compressor`].
pub struct Differentiated<'a, 'm> {
    pub diff: &'a Differentiable<'m>,
    pub adapter: &'a Adapter,
}

impl Differentiated<'_, '_> {
    fn lora(&self) -> Lora<'_> {
        Lora {
            factors: &self.adapter.weights.lora,
            rank: self.adapter.rank,
            scale: self.adapter.lora_scale,
        }
    }

    fn encoder_pass(&self) -> Pass<'_> {
        Pass {
            lora: Some(self.lora()),
            ..Pass::default()
        }
    }

    /// The decoder's pass over a memory (its own rows come after the memory's k positions).
    fn decoder_pass<'p>(&'p self, memory: &'p Memory) -> Pass<'p> {
        match memory {
            Memory::Slots(_) => Pass::default(),
            Memory::Prefix(prefix) => Pass {
                lora: (self.adapter.method == Method::Gist).then(|| self.lora()),
                prefix: Some(prefix),
                start: prefix.len,
            },
        }
    }

    /// Runs the encoder over `text`: its trace and the memory the decoder reads.
    pub fn encode(&self, text: &[u32]) -> Result<(Trace, Memory)> {
        if text.is_empty() {
            return Err(Error::InvalidInput("there is no text to compress".into()));
        }
        let (d, k) = (self.diff.model.config.hidden, self.adapter.k);
        let mut x = self.diff.embed(text)?;
        x.extend_from_slice(&self.adapter.weights.memory);
        let trace = self.diff.forward_with(x, &self.encoder_pass())?;
        let memory = match self.adapter.method {
            Method::Icae => Memory::Slots(trace.hidden[text.len() * d..].to_vec()),
            Method::KvPrefix | Method::Gist => Memory::Prefix(trace.last_key_values(k)),
        };
        Ok((trace, memory))
    }

    /// Runs the decoder over `[memory; indicator; E(ids)]`; the trace's rows after the memory's
    /// (from [`Self::decoded_from`]) predict `ids` and then the next token.
    pub fn decode(&self, memory: &Memory, indicator: &[f32], ids: &[u32]) -> Result<Trace> {
        let mut x = match memory {
            Memory::Slots(slots) => slots.clone(),
            Memory::Prefix(_) => Vec::new(),
        };
        x.extend_from_slice(indicator);
        x.extend(self.diff.embed(ids)?);
        self.diff.forward_with(x, &self.decoder_pass(memory))
    }

    /// The first decoder row that predicts a token (the indicator's).
    fn decoded_from(memory: &Memory, d: usize) -> usize {
        match memory {
            Memory::Slots(slots) => slots.len() / d,
            Memory::Prefix(_) => 0,
        }
    }

    /// The objective on `window`; with `gradient`, adds `weight ×` its gradient there.
    pub fn loss(
        &self,
        window: Window,
        weight: f32,
        mut gradient: Option<&mut AdapterWeights>,
    ) -> Result<WindowLoss> {
        let model = self.diff.model;
        let (d, k) = (model.config.hidden, self.adapter.k);
        if window.continuation.is_empty() {
            return Err(Error::InvalidInput("the window has no continuation".into()));
        }
        let (encoded, memory) = self.encode(window.text)?;
        let from = Self::decoded_from(&memory, d);
        let w = &self.adapter.weights;
        let mut result = WindowLoss::default();
        let mut d_slots = vec![0f32; k * d];
        let mut d_prefix = match &memory {
            Memory::Prefix(p) => Some(KeyValues::zeros(p.keys.len(), k, p.keys[0].len() / k)),
            Memory::Slots(_) => None,
        };
        for (regenerate, targets) in [(true, window.text), (false, window.continuation)] {
            let indicator = if regenerate { &w.ae_token } else { &w.lm_token };
            let n = targets.len();
            let trace = self.decode(&memory, indicator, &targets[..n - 1])?;
            let head = head_loss(
                model,
                &trace.hidden,
                from,
                &Targets::Tokens(targets.to_vec()),
                weight / n as f32,
            );
            let mean = head.sum / n as f64;
            if regenerate {
                result.regeneration = mean;
                result.regeneration_agreeing = head.agreeing;
            } else {
                result.continuation = mean;
            }
            let Some(gradient) = gradient.as_deref_mut() else {
                continue;
            };
            let pass = self.decoder_pass(&memory);
            let g = self.diff.backward_with(&trace, &pass, &head.d_hidden, None);
            let d_indicator = if regenerate {
                &mut gradient.ae_token
            } else {
                &mut gradient.lm_token
            };
            kernels::add_assign(d_indicator, &g.inputs[from * d..(from + 1) * d]);
            kernels::add_assign(&mut d_slots, &g.inputs[..from * d]);
            if let (Some(sum), Some(d)) = (&mut d_prefix, &g.prefix) {
                sum.add_assign(d);
            }
            add_lora(&mut gradient.lora, &g.lora);
        }
        if let Some(gradient) = gradient {
            let rows = encoded.rows;
            let mut d_hidden = vec![0f32; rows * d];
            if matches!(memory, Memory::Slots(_)) {
                d_hidden[(rows - k) * d..].copy_from_slice(&d_slots);
            }
            let g = self.diff.backward_with(
                &encoded,
                &self.encoder_pass(),
                &d_hidden,
                d_prefix.as_ref(),
            );
            kernels::add_assign(&mut gradient.memory, &g.inputs[(rows - k) * d..]);
            add_lora(&mut gradient.lora, &g.lora);
        }
        Ok(result)
    }

    /// Mean cross-entropy of `targets` read after `memory` and `[AE]` (`regenerate`) or `[LM]`.
    pub fn memory_nll(&self, memory: &Memory, regenerate: bool, targets: &[u32]) -> Result<f64> {
        let w = &self.adapter.weights;
        let indicator = if regenerate { &w.ae_token } else { &w.lm_token };
        let n = targets.len();
        let trace = self.decode(memory, indicator, &targets[..n - 1])?;
        let from = Self::decoded_from(memory, self.diff.model.config.hidden);
        let targets = Targets::Tokens(targets.to_vec());
        Ok(head_loss(self.diff.model, &trace.hidden, from, &targets, 1.0).sum / n as f64)
    }

    /// Greedy regeneration of `len` tokens from the memory of `text` (no KV cache: each step
    /// reruns the decoder, cheap at the short lengths trained here).
    pub fn regenerate(&self, text: &[u32], len: usize) -> Result<Vec<u32>> {
        let model = self.diff.model;
        let (d, vocab) = (model.config.hidden, model.config.vocab);
        let (_, memory) = self.encode(text)?;
        let mut out = Vec::with_capacity(len);
        let mut logits = vec![0f32; vocab];
        for _ in 0..len {
            let trace = self.decode(&memory, &self.adapter.weights.ae_token, &out)?;
            let last = &trace.hidden[(trace.rows - 1) * d..];
            model.lm_head().forward(last, 1, &mut logits, 1);
            out.push(argmax(&logits).0 as u32);
        }
        Ok(out)
    }
}

/// `sum += part`, factor by factor (`part` empty: nothing to add).
fn add_lora(sum: &mut [[Vec<f32>; 4]], part: &[[Vec<f32>; 4]]) {
    for (s, p) in sum.iter_mut().zip(part) {
        for (s, p) in s.iter_mut().zip(p) {
            kernels::add_assign(s, p);
        }
    }
}
