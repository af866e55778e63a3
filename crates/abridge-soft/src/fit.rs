//! Fitting a soft prompt for one prompt text (per-prompt optimisation, as in Wingate et al. 2022,
//! "CC"): k input vectors are optimised with Adam while the model stays frozen.
//!
//! - `cram`: the model, reading only the k vectors, must predict the prompt's tokens (teacher
//!   forcing). Fitting stops as soon as every token is the model's top prediction, which is the
//!   same as greedy regeneration reproducing the text exactly.
//! - `distill`: for each query, the model reading the hard prompt answers greedily; the soft
//!   prompt is fitted so that the model reading `[soft; query; answer]` predicts the answer tokens
//!   with the same next-token distributions (KL(hard ‖ soft) per answer token). Fitting stops
//!   when the loss has not improved by 1% for `patience` steps.

use abridge_models::kernels;
use abridge_models::matrix::Matrix;
use abridge_models::LanguageModel;

use crate::differentiable::Differentiable;
use crate::error::{Error, Result};
use crate::loss::{head_loss, log_softmax, Targets};
use crate::optim::Adam;
use crate::prefix;
use crate::rng::SplitMix64;
use crate::soft_prompt::{FitRecord, ModelId, SoftPrompt};

/// What the soft prompt is fitted to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    Cram,
    Distill,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cram => "cram",
            Self::Distill => "distill",
        }
    }
}

/// Where the vectors start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Vector i is the mean embedding of the i-th of k equal chunks of the prompt's tokens: it
    /// starts where the model reads text from and carries a summary of its chunk. But the mean
    /// of many embeddings is a poor input: on SmolLM2-135M, one vector for 16 tokens was still
    /// at 4.5 nats/token after 200 steps (lr 0.1), where [`Init::Random`] was exact after 90.
    Tokens,
    /// Gaussian noise with the embedding matrix's standard deviation (seeded). The default.
    Random,
}

#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Soft vectors (k).
    pub tokens: usize,
    /// Most optimisation steps.
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f32,
    pub seed: u64,
    pub init: Init,
    pub objective: Objective,
    /// Distill: the queries answered after the prompt (each read as `"\n{query}\n"`).
    pub queries: Vec<String>,
    /// Distill: most tokens of each answer.
    pub answer_tokens: usize,
    /// Distill: steps without a 1% improvement before stopping.
    pub patience: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            tokens: 8,
            steps: 200,
            lr: 0.1,
            seed: 0,
            init: Init::Random,
            objective: Objective::Cram,
            queries: Vec::new(),
            answer_tokens: 32,
            patience: 20,
        }
    }
}

/// One optimisation step, as reported to the caller.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub step: usize,
    /// Nats per predicted token.
    pub loss: f64,
    /// Fraction of predicted positions whose top token is the target (cram) or the hard
    /// prompt's top token (distill).
    pub agreement: f64,
}

/// A fitted soft prompt and how the fit ended.
#[derive(Debug)]
pub struct Fitted {
    pub soft: SoftPrompt,
    /// Cram: greedy generation from the soft prompt reproduces the text exactly (checked on
    /// the inference path). Distill: always false.
    pub exact: bool,
}

/// One training sequence: `[soft; inputs]`, predicting `targets` from position `k + from`.
struct Example {
    /// Input embeddings after the soft prefix.
    inputs: Vec<f32>,
    /// First predicting position, counted after the soft prefix (-1: the last soft vector).
    from: isize,
    targets: Targets,
    positions: usize,
}

/// How well soft vectors do on an objective.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation {
    /// Nats per predicted token: NLL (cram) or KL(hard prompt ‖ soft prompt) (distill).
    pub loss: f64,
    /// Fraction of predicted positions whose top token is the target (cram) or the hard
    /// prompt's top token (distill).
    pub agreement: f64,
    /// Predicted positions.
    pub positions: usize,
}

/// Fits a soft prompt for `prompt`. `progress` is called after every evaluated step.
pub fn fit(
    lm: &LanguageModel,
    model_id: ModelId,
    prompt: &str,
    options: &FitOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Fitted> {
    validate(options)?;
    let diff = Differentiable::new(&lm.model);
    let (ids, examples) = prepare(lm, &diff, prompt, options.tokens, options)?;
    let d = lm.model.config.hidden;
    let k = options.tokens;
    let mut vectors = initial_vectors(&diff, &ids, options);
    let mut adam = Adam::new(vectors.len(), options.lr);
    let lead = lead(lm, &diff)?;
    let mut best = (f64::INFINITY, vectors.clone());
    let (mut steps, mut since_best, mut reached) = (0, 0, false);
    for step in 1..=options.steps {
        let (evaluation, gradient) = evaluate_examples(&diff, &lead, &examples, &vectors, true)?;
        let report = Progress {
            step,
            loss: evaluation.loss,
            agreement: evaluation.agreement,
        };
        progress(&report);
        steps = step;
        if report.loss < best.0 * 0.99 {
            since_best = 0;
        } else {
            since_best += 1;
        }
        reached = match options.objective {
            Objective::Cram => evaluation.agreement == 1.0,
            Objective::Distill => since_best >= options.patience,
        };
        // Exact vectors are kept even when an earlier step had a lower loss.
        if report.loss < best.0 || (reached && options.objective == Objective::Cram) {
            best = (report.loss, vectors.clone());
        }
        if reached {
            break;
        }
        adam.step(&mut vectors, &gradient);
    }
    let soft = SoftPrompt {
        vectors: best.1,
        hidden: d,
        model: model_id,
        fit: FitRecord {
            objective: options.objective.name().to_string(),
            loss: best.0,
            steps,
            text_tokens: ids.len(),
        },
    };
    // Teacher-forced top-1 on every token is greedy regeneration by induction; generating on
    // the inference path confirms it there (float order differs), and costs nothing otherwise.
    let exact = options.objective == Objective::Cram
        && reached
        && prefix::generate(lm, &soft, &[], ids.len())? == ids;
    tracing::info!(
        objective = options.objective.name(),
        k,
        steps,
        loss = soft.fit.loss,
        exact,
        "soft prompt fitted"
    );
    Ok(Fitted { soft, exact })
}

/// How `soft` does on `prompt` under `options.objective` (distill: on `options.queries`).
pub fn evaluate(
    lm: &LanguageModel,
    soft: &SoftPrompt,
    prompt: &str,
    options: &FitOptions,
) -> Result<Evaluation> {
    validate(&FitOptions {
        tokens: soft.len(),
        ..options.clone()
    })?;
    let diff = Differentiable::new(&lm.model);
    let (_, examples) = prepare(lm, &diff, prompt, soft.len(), options)?;
    let lead = lead(lm, &diff)?;
    Ok(evaluate_examples(&diff, &lead, &examples, &soft.vectors, false)?.0)
}

/// The embedding read before the soft prompt (see [`prefix`]).
fn lead(lm: &LanguageModel, diff: &Differentiable) -> Result<Vec<f32>> {
    diff.embed(&[lm.tokenizer.document_start()])
}

/// The prompt's tokens and the objective's examples, checked against the context for k vectors.
fn prepare(
    lm: &LanguageModel,
    diff: &Differentiable,
    prompt: &str,
    k: usize,
    options: &FitOptions,
) -> Result<(Vec<u32>, Vec<Example>)> {
    let ids: Vec<u32> = lm.encode(prompt)?.iter().map(|t| t.id).collect();
    if ids.is_empty() {
        return Err(Error::InvalidInput(
            "the prompt is empty: there is nothing to fit a soft prompt to".into(),
        ));
    }
    let examples = match options.objective {
        Objective::Cram => vec![cram_example(diff, &ids)?],
        Objective::Distill => distill_examples(lm, diff, &ids, options)?,
    };
    let d = lm.model.config.hidden;
    let longest = examples
        .iter()
        .map(|e| e.inputs.len() / d)
        .max()
        .unwrap_or(0);
    if k.saturating_add(longest) > lm.model.config.context {
        return Err(Error::InvalidInput(format!(
            "{k} soft vectors and {longest} tokens exceed the model's context of {} tokens",
            lm.model.config.context
        )));
    }
    Ok((ids, examples))
}

/// The objective at `vectors` over all examples, and its gradient when asked for.
fn evaluate_examples(
    diff: &Differentiable,
    lead: &[f32],
    examples: &[Example],
    vectors: &[f32],
    with_gradient: bool,
) -> Result<(Evaluation, Vec<f32>)> {
    let d = diff.model.config.hidden;
    let k = vectors.len() / d;
    let lead_rows = lead.len() / d;
    let total: usize = examples.iter().map(|e| e.positions).sum();
    let mut gradient = vec![0f32; if with_gradient { vectors.len() } else { 0 }];
    let (mut loss, mut agreeing) = (0f64, 0);
    for example in examples {
        let mut x = lead.to_vec();
        x.extend_from_slice(vectors);
        x.extend_from_slice(&example.inputs);
        let trace = diff.forward(x)?;
        let from = ((lead_rows + k) as isize + example.from) as usize;
        let head = head_loss(
            diff.model,
            &trace.hidden,
            from,
            &example.targets,
            1.0 / total as f32,
        );
        loss += head.sum;
        agreeing += head.agreeing;
        if with_gradient {
            let dx = diff.backward(&trace, &head.d_hidden);
            kernels::add_assign(&mut gradient, &dx[lead.len()..lead.len() + k * d]);
        }
    }
    let evaluation = Evaluation {
        loss: loss / total as f64,
        agreement: agreeing as f64 / total as f64,
        positions: total,
    };
    Ok((evaluation, gradient))
}

fn validate(options: &FitOptions) -> Result<()> {
    let problem = if options.tokens == 0 {
        "the number of soft vectors (--tokens) must be at least 1"
    } else if options.steps == 0 {
        "the number of steps (--steps) must be at least 1"
    } else if !(options.lr.is_finite() && options.lr > 0.0) {
        "the learning rate (--lr) must be a positive number"
    } else if options.objective == Objective::Distill && options.queries.is_empty() {
        "distill needs queries (--queries FILE, one query per line)"
    } else if options.objective == Objective::Distill && options.answer_tokens == 0 {
        "distill needs answers of at least one token (--answer-tokens)"
    } else {
        return Ok(());
    };
    Err(Error::InvalidInput(problem.into()))
}

/// Cram: `[soft; text[..t-1]]` predicts `text` from the last soft vector on.
fn cram_example(diff: &Differentiable, ids: &[u32]) -> Result<Example> {
    Ok(Example {
        inputs: diff.embed(&ids[..ids.len() - 1])?,
        from: -1,
        targets: Targets::Tokens(ids.to_vec()),
        positions: ids.len(),
    })
}

/// Distill: per query, the hard prompt's greedy answer and its next-token distributions.
fn distill_examples(
    lm: &LanguageModel,
    diff: &Differentiable,
    prompt: &[u32],
    options: &FitOptions,
) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    for query in &options.queries {
        let query: Vec<u32> = lm
            .encode(&format!("\n{}\n", query.trim()))?
            .iter()
            .map(|t| t.id)
            .collect();
        let mut hard = vec![lm.tokenizer.document_start()];
        hard.extend_from_slice(prompt);
        hard.extend_from_slice(&query);
        let (answer, teacher) = teacher_answer(lm, &hard, options.answer_tokens)?;
        if answer.is_empty() {
            tracing::warn!("a query got an empty answer from the hard prompt; it is skipped");
            continue;
        }
        let mut inputs = query.clone();
        inputs.extend_from_slice(&answer[..answer.len() - 1]);
        examples.push(Example {
            inputs: diff.embed(&inputs)?,
            from: query.len() as isize - 1,
            positions: answer.len(),
            targets: Targets::LogProbs(teacher),
        });
    }
    if examples.is_empty() {
        return Err(Error::InvalidInput(
            "the model answered no query: distill has nothing to match".into(),
        ));
    }
    Ok(examples)
}

/// Greedy answer to `hard` (at most `max_tokens`, ending at end-of-text) and the log-probability
/// distribution before each of its tokens.
fn teacher_answer(
    lm: &LanguageModel,
    hard: &[u32],
    max_tokens: usize,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let mut cache = lm.model.new_cache();
    lm.model.forward(&mut cache, hard)?;
    let mut distributions = Vec::new();
    let answer =
        abridge_models::generate::greedy(lm, &mut cache, None, max_tokens, &mut |logits| {
            let start = distributions.len();
            distributions.extend_from_slice(logits);
            log_softmax(&mut distributions[start..]);
        })?;
    Ok((answer, distributions))
}

fn initial_vectors(diff: &Differentiable, ids: &[u32], options: &FitOptions) -> Vec<f32> {
    let (k, t) = (options.tokens, ids.len());
    let embedding = diff.model.embedding();
    let d = embedding.cols;
    let mut vectors = vec![0f32; k * d];
    let mut row = vec![0f32; d];
    match options.init {
        Init::Tokens => {
            for (i, vector) in vectors.chunks_exact_mut(d).enumerate() {
                let start = i * t / k;
                let end = ((i + 1) * t / k).max(start + 1);
                for &id in &ids[start..end] {
                    embedding.row(id as usize, &mut row);
                    kernels::add_assign(vector, &row);
                }
                vector.iter_mut().for_each(|v| *v /= (end - start) as f32);
            }
        }
        Init::Random => {
            let std = embedding_std(embedding);
            let mut rng = SplitMix64::new(options.seed);
            vectors.iter_mut().for_each(|v| *v = rng.normal() * std);
        }
    }
    vectors
}

/// The standard deviation of all token-embedding entries: the scale at which new input vectors
/// start.
pub(crate) fn embedding_std(embedding: &Matrix) -> f32 {
    let mut row = vec![0f32; embedding.cols];
    let (mut sum, mut squares) = (0f64, 0f64);
    for r in 0..embedding.rows {
        embedding.row(r, &mut row);
        sum += row.iter().map(|&v| f64::from(v)).sum::<f64>();
        squares += row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>();
    }
    let n = (embedding.rows * embedding.cols) as f64;
    (squares / n - (sum / n).powi(2)).max(0.0).sqrt() as f32
}
