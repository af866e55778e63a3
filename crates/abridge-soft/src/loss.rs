//! Losses on the LM head's output and their gradients with respect to the final hidden states.

pub use abridge_models::generate::argmax;
use abridge_models::kernels;
use abridge_models::llama::CausalLm;
use rayon::prelude::*;

/// Rows of logits computed at once: bounds the `rows × vocab` buffers.
const LOGITS_TILE: usize = 64;

/// What the model should predict at consecutive positions.
pub enum Targets {
    /// The next tokens (negative log-likelihood).
    Tokens(Vec<u32>),
    /// Teacher log-probabilities, `positions × vocab` (KL(teacher ‖ model)).
    LogProbs(Vec<f32>),
}

impl Targets {
    fn len(&self, vocab: usize) -> usize {
        match self {
            Self::Tokens(ids) => ids.len(),
            Self::LogProbs(lp) => lp.len() / vocab,
        }
    }
}

/// A loss summed over its positions, with its gradient.
pub struct HeadLoss {
    /// Summed over positions (nats).
    pub sum: f64,
    /// Positions where the model's top token equals the target (or the teacher's top token).
    pub agreeing: usize,
    pub positions: usize,
    /// Gradient of `sum · weight` with respect to every final hidden state (`rows × hidden`).
    pub d_hidden: Vec<f32>,
}

/// The loss of predicting `targets` at positions `from..` of `hidden` (`rows × hidden` final
/// states), its gradient scaled by `weight` (e.g. 1/n for a mean).
pub fn head_loss(
    model: &CausalLm,
    hidden: &[f32],
    from: usize,
    targets: &Targets,
    weight: f32,
) -> HeadLoss {
    let (d, vocab) = (model.config.hidden, model.config.vocab);
    let n = targets.len(vocab);
    assert!((from + n) * d <= hidden.len());
    let threads = rayon::current_num_threads();
    let mut d_hidden = vec![0f32; hidden.len()];
    let mut logits = vec![0f32; LOGITS_TILE.min(n) * vocab];
    let (mut sum, mut agreeing) = (0f64, 0);
    for first in (0..n).step_by(LOGITS_TILE) {
        let rows = LOGITS_TILE.min(n - first);
        let at = (from + first) * d..(from + first + rows) * d;
        let logits = &mut logits[..rows * vocab];
        model
            .lm_head()
            .forward(&hidden[at.clone()], rows, logits, threads);
        // Each row becomes its gradient `weight · (softmax − target distribution)` in place.
        let per_row: Vec<(f64, bool)> = logits
            .par_chunks_exact_mut(vocab)
            .enumerate()
            .map(|(r, row)| {
                let position = first + r;
                let top = argmax(row).0;
                let log_z = kernels::log_sum_exp(row);
                let (loss, agrees) = match targets {
                    Targets::Tokens(ids) => {
                        let target = ids[position] as usize;
                        let loss = f64::from(log_z - row[target]);
                        row.iter_mut()
                            .for_each(|v| *v = (*v - log_z).exp() * weight);
                        row[target] -= weight;
                        (loss, top == target)
                    }
                    Targets::LogProbs(teacher) => {
                        let teacher = &teacher[position * vocab..(position + 1) * vocab];
                        let mut loss = 0f64;
                        for (v, &t) in row.iter_mut().zip(teacher) {
                            let log_p = *v - log_z;
                            let p_teacher = t.exp();
                            loss += f64::from(p_teacher * (t - log_p));
                            *v = (log_p.exp() - p_teacher) * weight;
                        }
                        (loss, top == argmax(teacher).0)
                    }
                };
                (loss, agrees)
            })
            .collect();
        for (loss, agrees) in per_row {
            sum += loss;
            agreeing += usize::from(agrees);
        }
        model
            .lm_head()
            .backward(logits, rows, &mut d_hidden[at], threads);
    }
    HeadLoss {
        sum,
        agreeing,
        positions: n,
        d_hidden,
    }
}

/// `ln softmax(logits)`, in place.
pub fn log_softmax(logits: &mut [f32]) {
    let log_z = kernels::log_sum_exp(logits);
    logits.iter_mut().for_each(|v| *v -= log_z);
}
