//! `abridge soft train`: train a compressor adapter (ICAE, 500x, GIST) on CPU from dev-split
//! texts, checkpointing as it goes, then evaluate it on held-out test-split texts.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use abridge_eval::data::Split;
use abridge_eval::datasets_dir;
use abridge_eval::distill::split_corpus;
use abridge_soft::compressor_eval::{self, Baselines, CompressorScores, Setting};
use abridge_soft::objective::Window;
use abridge_soft::train::{cut_windows, state_path, TextWindow, TrainOptions, Trainer};
use abridge_soft::Compressor;
use abridge_soft::{Method, ModelId};
use anyhow::Context;
use serde::Serialize;

use crate::model::ModelArgs;

/// A trained compressor's method on the command line (`compress`, `train`).
#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum MethodArg {
    /// Memory slots (the encoder's final hidden states) read as input embeddings by the frozen
    /// model.
    Icae,
    /// The encoder's per-layer keys and values at the memory positions as the frozen model's KV
    /// prefix.
    #[value(name = "500x")]
    KvPrefix,
    /// The 500x data flow with the adapted model as the decoder.
    Gist,
}

impl MethodArg {
    pub(super) fn method(self) -> Method {
        match self {
            Self::Icae => Method::Icae,
            Self::KvPrefix => Method::KvPrefix,
            Self::Gist => Method::Gist,
        }
    }
}

#[derive(clap::Args)]
pub struct TrainArgs {
    #[arg(long, value_enum)]
    method: MethodArg,

    /// Memory tokens (k).
    #[arg(long)]
    k: usize,

    /// LoRA rank on the query and value projections.
    #[arg(long, default_value_t = 8)]
    rank: usize,

    /// LoRA α (the scale is α / rank) [default: 2 × rank].
    #[arg(long)]
    alpha: Option<f32>,

    /// Text tokens compressed per window (L): the compression ratio is L / k.
    #[arg(long, default_value_t = 32)]
    length: usize,

    /// Continuation tokens per window.
    #[arg(long, default_value_t = 16)]
    continuation: usize,

    #[arg(long)]
    steps: usize,

    /// Windows per step.
    #[arg(long, default_value_t = 4)]
    batch: usize,

    /// Peak learning rate (AdamW, warm-up then cosine to a tenth).
    #[arg(long, default_value_t = 5e-4)]
    lr: f32,

    #[arg(long, default_value_t = 20)]
    warmup: usize,

    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Dev-split texts read per dataset (NQ, SQuAD, XSum, GSM8K, essays).
    #[arg(long, default_value_t = 400)]
    texts_per_dataset: usize,

    /// Most training windows cut from one text.
    #[arg(long, default_value_t = 4)]
    windows_per_text: usize,

    /// The adapter file (`.safetensors`); the optimiser state is written beside it
    /// (`NAME.state.safetensors`).
    #[arg(long, short = 'o', value_name = "FILE")]
    out: PathBuf,

    /// Continue the run checkpointed at --out (same options).
    #[arg(long)]
    resume: bool,

    /// Steps between checkpoints (the last step always writes one).
    #[arg(long, default_value_t = 50)]
    checkpoint_every: usize,

    /// Steps between loss lines on stderr.
    #[arg(long, default_value_t = 10)]
    log_every: usize,

    /// Held-out test-split windows evaluated after training (0: none).
    #[arg(long, default_value_t = 64)]
    eval_windows: usize,

    /// Also write the JSON report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct Report {
    adapter: String,
    method: &'static str,
    k: usize,
    rank: usize,
    length: usize,
    continuation: usize,
    ratio: f64,
    training_windows: usize,
    steps: usize,
    batch: usize,
    /// Text + continuation tokens read by the training steps of this invocation and before.
    tokens_seen: usize,
    /// Of this invocation's training steps.
    train_seconds: f64,
    /// `None` when this invocation only evaluated.
    seconds_per_step: Option<f64>,
    threads: usize,
    /// `[step, regeneration, continuation]`, every `log_every` steps.
    curve: Vec<[f64; 3]>,
    held_out: Option<HeldOut>,
}

/// The adapter on held-out windows, measured on the inference runtime (as `soft eval-compressor`
/// measures shipped adapters).
#[derive(Serialize)]
struct HeldOut {
    windows: usize,
    /// Continuation perplexity of the plain model: no context, the last k tokens, the full text.
    baselines: Baselines,
    scores: CompressorScores,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let method = args.method.method();
    let options = TrainOptions {
        method,
        k: args.k,
        rank: args.rank,
        alpha: args.alpha.unwrap_or(2.0 * args.rank as f32),
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        warmup: args.warmup,
        seed: args.seed,
        ..TrainOptions::default()
    };
    if args.length == 0 || args.continuation < 2 {
        anyhow::bail!("--length must be at least 1 and --continuation at least 2 tokens");
    }
    let lm = args.model.load()?;
    let model_id = ModelId::of_file(&lm.path)?;
    let dir = datasets_dir();
    let texts =
        split_corpus(&dir, Split::Dev, args.texts_per_dataset, args.seed).with_context(|| {
            format!(
                "reading the datasets in {} (fetch them with scripts/fetch-datasets.py)",
                dir.display()
            )
        })?;
    let train_owned = cut_windows(
        &lm,
        &texts,
        args.length,
        args.continuation,
        args.windows_per_text,
    )?;
    if train_owned.is_empty() {
        anyhow::bail!(
            "no text is {} tokens long: lower --length or --continuation",
            args.length + args.continuation
        );
    }
    let train: Vec<Window> = train_owned.iter().map(TextWindow::as_window).collect();
    tracing::info!(
        texts = texts.len(),
        windows = train.len(),
        "training windows cut"
    );

    let mut trainer = if args.resume {
        Trainer::resume(&lm.model, &args.out, options.clone(), &train)
            .with_context(|| format!("resuming {}", args.out.display()))?
    } else {
        if args.out.exists() {
            anyhow::bail!(
                "{} exists: pass --resume to continue its run, or another --out",
                args.out.display()
            );
        }
        Trainer::new(&lm.model, model_id.sha256.clone(), options.clone())?
    };
    let first_step = trainer.step;
    let bar = indicatif::ProgressBar::new(args.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(first_step as u64);
    let started = Instant::now();
    trainer.run(
        &train,
        args.steps,
        args.checkpoint_every,
        &args.out,
        &mut |step| {
            let message = format!(
                "regen {:.3} cont {:.3} nats",
                step.loss.regeneration, step.loss.continuation
            );
            bar.set_position(step.step as u64);
            bar.set_message(message.clone());
            if step.step % args.log_every.max(1) == 0 || step.step == 1 {
                bar.suspend(|| {
                    eprintln!(
                        "step {} {message} lr {:.2e} |g| {:.3} {:.1}s",
                        step.step,
                        step.lr,
                        step.gradient_norm,
                        started.elapsed().as_secs_f64()
                    )
                });
            }
        },
    )?;
    bar.finish_and_clear();
    let train_seconds = started.elapsed().as_secs_f64();
    let steps_run = trainer.step - first_step;

    let held_out = if args.eval_windows > 0 {
        // NQ and SQuAD repeat a passage under several ids, so one can be in both splits: such
        // passages are not held out.
        let seen: HashSet<&str> = texts.iter().map(|(_, text)| text.as_str()).collect();
        let mut test_texts = split_corpus(&dir, Split::Test, args.eval_windows, args.seed)?;
        let all = test_texts.len();
        test_texts.retain(|(_, text)| !seen.contains(text.as_str()));
        tracing::info!(
            dropped = all - test_texts.len(),
            "test-split texts also in the training texts"
        );
        let mut test_owned = cut_windows(&lm, &test_texts, args.length, args.continuation, 1)?;
        test_owned.truncate(args.eval_windows);
        let test: Vec<compressor_eval::Window> =
            test_owned.iter().map(TextWindow::held_out).collect();
        let setting = Setting {
            length: args.length,
            continuation: args.continuation,
            regenerate: true,
        };
        let sha256 = abridge_models::fetch::sha256_file(&args.out)?;
        let compressor = Compressor::new(trainer.adapter.clone(), sha256, &lm);
        let bar = indicatif::ProgressBar::new(compressor_eval::compare_steps(
            &[&compressor],
            test.len(),
        ) as u64);
        bar.set_message("held-out windows");
        let comparison =
            compressor_eval::compare(&lm, &model_id, &[&compressor], &test, setting, &mut || {
                bar.inc(1)
            })?
            .pop()
            .context("the held-out comparison of the trained adapter")?;
        bar.finish_and_clear();
        Some(HeldOut {
            windows: test.len(),
            baselines: comparison.baselines,
            scores: comparison.scores,
        })
    } else {
        None
    };
    let every = args.log_every.max(1);
    let report = Report {
        adapter: args.out.display().to_string(),
        method: method.name(),
        k: args.k,
        rank: args.rank,
        length: args.length,
        continuation: args.continuation,
        ratio: args.length as f64 / args.k as f64,
        training_windows: train.len(),
        steps: trainer.step,
        batch: args.batch,
        tokens_seen: trainer.step * args.batch * (args.length + args.continuation),
        train_seconds,
        seconds_per_step: (steps_run > 0).then(|| train_seconds / steps_run as f64),
        threads: rayon::current_num_threads(),
        curve: trainer
            .curve
            .iter()
            .filter(|c| (c[0] as usize).is_multiple_of(every) || c[0] == 1.0)
            .copied()
            .collect(),
        held_out,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.report {
        std::fs::write(path, &json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{json}");
    if steps_run > 0 {
        eprintln!(
            "wrote {} (and its optimiser state {})",
            args.out.display(),
            state_path(&args.out).display()
        );
    }
    Ok(())
}
