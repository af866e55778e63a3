//! `abridge soft`: fit a soft prompt for a prompt text, or compress a text with a trained
//! compressor (ICAE, 500xCompressor, GIST), then generate or score with either.

use std::path::{Path, PathBuf};
use std::time::Instant;

use abridge_eval::datasets_dir;
use abridge_eval::text_windows::{held_out_windows, spread};
use abridge_models::llama::KvCache;
use abridge_models::lora::QvLora;
use abridge_models::LanguageModel;
use abridge_soft::compressed::is_compressed;
use abridge_soft::compressor_eval::{self, Setting, Window};
use abridge_soft::{
    fit, prefix, CompressedPrompt, Compressor, FitOptions, Init, ModelId, Objective, SoftPrompt,
    Task,
};
use anyhow::Context;
use serde::Serialize;

use super::soft_train::MethodArg;
use crate::input::read_text;
use crate::model::ModelArgs;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Fit k soft vectors that stand for a prompt (the model stays frozen) and save them.
    Fit(Box<FitArgs>),
    /// Compress a text to k memory positions with a trained compressor adapter (ICAE,
    /// 500xCompressor, GIST) and save them.
    Compress(CompressArgs),
    /// Generate greedily after a soft prompt or a compressed text (and an optional text prompt).
    Generate(GenerateArgs),
    /// Log-likelihood of a text read after a soft prompt or a compressed text.
    Score(ScoreArgs),
    /// How closely a soft prompt stands for its prompt: NLL and top-1 agreement on the prompt
    /// text (cram), or KL and top-1 agreement with the hard prompt on queries (distill).
    Eval(EvalArgs),
    /// Measure compressor adapters on held-out text windows: continuation perplexity with no
    /// context, the memory, another text's memory, the last k tokens and the full text; greedy
    /// regeneration.
    EvalCompressor(EvalCompressorArgs),
    /// Train a compressor adapter (ICAE, 500x, GIST) on CPU from dev-split texts, then evaluate
    /// it on held-out texts.
    Train(Box<super::soft_train::TrainArgs>),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ObjectiveArg {
    /// Regenerate the prompt text exactly from the soft vectors alone.
    Cram,
    /// Answer queries as the model does after the hard prompt (KL on its own answers).
    Distill,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InitArg {
    /// Mean embeddings of k equal chunks of the prompt's tokens.
    Tokens,
    /// Gaussian noise at the embeddings' scale (depends on --seed).
    Random,
}

#[derive(clap::Args)]
pub struct FitArgs {
    /// The prompt text to compress (`-` reads standard input).
    #[arg(value_name = "PROMPT_FILE|-")]
    prompt: PathBuf,

    /// Soft vectors (k).
    #[arg(long, value_name = "K")]
    tokens: usize,

    /// Most optimisation steps (cram stops early once regeneration is exact; distill when the
    /// loss stops improving).
    #[arg(long, value_name = "N")]
    steps: usize,

    #[arg(long, value_enum, default_value = "cram")]
    objective: ObjectiveArg,

    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f32,

    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    #[arg(long, value_enum, default_value = "random")]
    init: InitArg,

    /// Distill: a file of queries, one per line.
    #[arg(long, value_name = "FILE")]
    queries: Option<PathBuf>,

    /// Distill: most tokens of each answer the model gives after the hard prompt.
    #[arg(long, default_value_t = 32, value_name = "N")]
    answer_tokens: usize,

    /// Distill: steps without a 1% loss improvement before stopping.
    #[arg(long, default_value_t = 20, value_name = "N")]
    patience: usize,

    /// Where to write the soft prompt (.safetensors).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,

    /// Print a JSON record of the fit.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    model: ModelArgs,
}

#[derive(clap::Args)]
pub struct CompressArgs {
    /// The text to compress (or --file).
    #[arg(
        value_name = "TEXT",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    text: Option<String>,

    /// Read the text from a file (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// A compressor adapter (e.g. models/soft/500x-k16.safetensors).
    #[arg(long, value_name = "FILE")]
    adapter: PathBuf,

    /// The method the adapter was trained for [default: the adapter's own]; another one is
    /// refused.
    #[arg(long, value_enum)]
    method: Option<MethodArg>,

    /// Where to write the compressed text (.safetensors).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,

    /// Print a JSON record.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    model: ModelArgs,
}

/// Options shared by `generate` and `score` on how a prompt file is read.
#[derive(clap::Args)]
struct PromptFileArgs {
    /// A soft prompt written by `abridge soft fit`, or a text compressed by `abridge soft
    /// compress`.
    #[arg(long, value_name = "FILE")]
    soft: PathBuf,

    /// Compressed text only: decode with the regenerate indicator ([AE], reproduce the
    /// compressed text) instead of the continue one ([LM]).
    #[arg(long)]
    regenerate: bool,

    /// GIST-compressed text only: the adapter it was compressed with (GIST decodes with it).
    #[arg(long, value_name = "FILE")]
    adapter: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    file: PromptFileArgs,

    /// Text read after the soft prompt, before generating.
    #[arg(long, default_value = "")]
    prompt: String,

    /// Most tokens to generate.
    #[arg(long, default_value_t = 256, value_name = "N")]
    max_tokens: usize,

    #[command(flatten)]
    model: ModelArgs,
}

#[derive(clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    file: PromptFileArgs,

    /// The text to score, as an argument (`-` reads standard input).
    #[arg(value_name = "TEXT|-")]
    text: String,

    /// Print JSON: each token's log-probability and the totals.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    model: ModelArgs,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A soft prompt written by `abridge soft fit`.
    #[arg(long, value_name = "FILE")]
    soft: PathBuf,

    /// The prompt text it stands for (`-` reads standard input).
    #[arg(value_name = "PROMPT_FILE|-")]
    prompt: PathBuf,

    /// Queries, one per line (best held out from the fit): compares the model's next-token
    /// distributions on its own answers after the hard prompt and after the soft prompt.
    #[arg(long, value_name = "FILE")]
    queries: Option<PathBuf>,

    /// Most tokens of each answer.
    #[arg(long, default_value_t = 32, value_name = "N")]
    answer_tokens: usize,

    /// Print a JSON record.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    model: ModelArgs,
}

#[derive(clap::Args)]
pub struct EvalCompressorArgs {
    /// Compressor adapters to measure (repeat the flag for several).
    #[arg(long, value_name = "FILE", required = true)]
    adapter: Vec<PathBuf>,

    /// Text lengths L compressed, comma-separated (at most 128: the held-out windows are the
    /// trainer's 160 tokens).
    #[arg(long, value_delimiter = ',', default_value = "64,128")]
    lengths: Vec<usize>,

    /// Held-out windows used, evenly spaced over the trainer's 244 (grouped by source).
    #[arg(long, default_value_t = 32, value_name = "N")]
    texts: usize,

    /// Continuation tokens scored after each text.
    #[arg(long, default_value_t = 32, value_name = "N")]
    continuation: usize,

    /// Skip greedy regeneration (the slow part).
    #[arg(long)]
    no_regenerate: bool,

    /// Print JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Fit(args) => run_fit(*args),
        Command::Compress(args) => run_compress(args),
        Command::EvalCompressor(args) => run_eval_compressor(args),
        Command::Generate(args) => run_generate(args),
        Command::Score(args) => run_score(args),
        Command::Eval(args) => run_eval(args),
        Command::Train(args) => super::soft_train::run(*args),
    }
}

#[derive(Serialize)]
struct FitReport {
    output: String,
    objective: &'static str,
    k: usize,
    text_tokens: usize,
    steps: usize,
    loss: f64,
    exact: bool,
    seconds: f64,
    seconds_per_step: f64,
}

fn run_fit(args: FitArgs) -> anyhow::Result<()> {
    let prompt = read_text(&args.prompt)?;
    let queries = read_queries(args.queries.as_deref())?;
    let options = FitOptions {
        tokens: args.tokens,
        steps: args.steps,
        lr: args.lr,
        seed: args.seed,
        init: match args.init {
            InitArg::Tokens => Init::Tokens,
            InitArg::Random => Init::Random,
        },
        objective: match args.objective {
            ObjectiveArg::Cram => Objective::Cram,
            ObjectiveArg::Distill => Objective::Distill,
        },
        queries,
        answer_tokens: args.answer_tokens,
        patience: args.patience,
    };
    let (lm, model_id) = load_model(&args.model)?;
    let bar = progress_bar(args.steps, "steps");
    let started = Instant::now();
    let fitted = fit(&lm, model_id, &prompt, &options, &mut |p| {
        bar.set_position(p.step as u64);
        bar.set_message(format!(
            "loss {:.4}, top-1 {:.0}%",
            p.loss,
            100.0 * p.agreement
        ));
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    fitted.soft.save(&args.output)?;
    let soft = &fitted.soft;
    let report = FitReport {
        output: args.output.display().to_string(),
        objective: options.objective.name(),
        k: soft.len(),
        text_tokens: soft.fit.text_tokens,
        steps: soft.fit.steps,
        loss: soft.fit.loss,
        exact: fitted.exact,
        seconds,
        seconds_per_step: seconds / soft.fit.steps as f64,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "wrote {}: {} vectors for {} tokens ({}), loss {:.4} nats/token after {} steps in {:.1} s",
        report.output,
        report.k,
        report.text_tokens,
        report.objective,
        report.loss,
        report.steps,
        report.seconds
    );
    if options.objective == Objective::Cram {
        println!(
            "greedy regeneration is {}",
            if fitted.exact {
                "exact"
            } else {
                "not exact: try more --steps, more --tokens or a higher --lr"
            }
        );
    }
    Ok(())
}

/// A progress bar over `len` `unit`s, with a message in front.
fn progress_bar(len: usize, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}}, eta {{eta}})"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Non-blank lines of the queries file, if one is given.
fn read_queries(path: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the queries file {}", path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

fn load_model(args: &ModelArgs) -> anyhow::Result<(LanguageModel, ModelId)> {
    let lm = args.load()?;
    let id = ModelId::of_file(&lm.path)?;
    Ok((lm, id))
}

/// The soft prompt at `path` and the model it was fitted for (refusing any other model).
fn load_soft(path: &Path, model: &ModelArgs) -> anyhow::Result<(SoftPrompt, LanguageModel)> {
    let soft = SoftPrompt::load(path)?;
    let (lm, id) = load_model(model)?;
    soft.check_model(path, &id)?;
    Ok((soft, lm))
}

/// A prompt file as read: a fitted soft prompt, or a compressed text (with the adapter a GIST
/// memory is decoded with).
enum PromptFile {
    Fitted(SoftPrompt),
    Compressed {
        prompt: Box<CompressedPrompt>,
        adapter: Option<Compressor>,
    },
}

impl PromptFile {
    /// Reads `args.soft` for the model (refusing another model's file) and loads the model.
    fn load(args: &PromptFileArgs, model: &ModelArgs) -> anyhow::Result<(Self, LanguageModel)> {
        if !is_compressed(&args.soft)? {
            anyhow::ensure!(
                !args.regenerate && args.adapter.is_none(),
                "--regenerate and --adapter are for texts compressed by `abridge soft compress`; \
                 {} is a fitted soft prompt",
                args.soft.display()
            );
            let (soft, lm) = load_soft(&args.soft, model)?;
            return Ok((Self::Fitted(soft), lm));
        }
        let (lm, id) = load_model(model)?;
        let prompt = CompressedPrompt::load(&args.soft, &lm, &id)?;
        let adapter = match &args.adapter {
            Some(path) => Some(Compressor::open(path, &lm, &id)?),
            None => None,
        };
        let file = Self::Compressed {
            prompt: Box::new(prompt),
            adapter,
        };
        Ok((file, lm))
    }

    /// The cache to generate or score after (holding `ids` after the prefix), and the adapters
    /// the model reads with from there.
    fn cache(
        &self,
        lm: &LanguageModel,
        regenerate: bool,
        ids: &[u32],
    ) -> anyhow::Result<(KvCache, Option<&[QvLora]>)> {
        match self {
            Self::Fitted(soft) => Ok((prefix::prefixed_cache(lm, soft, ids)?, None)),
            Self::Compressed { prompt, adapter } => {
                let lora = prompt.decoder_lora(adapter.as_ref())?;
                let task = if regenerate {
                    Task::Regenerate
                } else {
                    Task::Continue
                };
                let mut cache = prompt.decoder_cache(lm, task, lora)?;
                lm.model.forward_with_lora(&mut cache, ids, lora)?;
                Ok((cache, lora))
            }
        }
    }
}

fn run_compress(args: CompressArgs) -> anyhow::Result<()> {
    let text = match (&args.text, &args.file) {
        (Some(text), _) => text.clone(),
        (None, Some(file)) => read_text(file)?,
        (None, None) => anyhow::bail!("give the text to compress, or --file"),
    };
    anyhow::ensure!(
        !text.trim().is_empty(),
        "the text is empty: there is nothing to compress"
    );
    let (lm, id) = load_model(&args.model)?;
    let compressor = Compressor::open(&args.adapter, &lm, &id)?;
    if let Some(method) = args.method.map(MethodArg::method) {
        anyhow::ensure!(
            method == compressor.method(),
            "{} is a {} adapter, not {method}: drop --method or pass a {method} adapter",
            args.adapter.display(),
            compressor.method()
        );
    }
    let ids: Vec<u32> = lm.encode(&text)?.iter().map(|t| t.id).collect();
    let started = Instant::now();
    let compressed = compressor.compress(&lm, &id, &ids)?;
    let seconds = started.elapsed().as_secs_f64();
    compressed.save(&args.output)?;
    let report = serde_json::json!({
        "output": args.output.display().to_string(),
        "method": compressed.method.name(),
        "k": compressed.k,
        "text_tokens": compressed.text_tokens,
        "seconds": seconds,
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "wrote {}: {} tokens compressed to {} memory positions ({}) in {:.2} s",
        args.output.display(),
        compressed.text_tokens,
        compressed.k,
        compressed.method,
        seconds
    );
    Ok(())
}

fn run_generate(args: GenerateArgs) -> anyhow::Result<()> {
    let (file, lm) = PromptFile::load(&args.file, &args.model)?;
    let prompt: Vec<u32> = lm.encode(&args.prompt)?.iter().map(|t| t.id).collect();
    let (mut cache, lora) = file.cache(&lm, args.file.regenerate, &prompt)?;
    let generated =
        abridge_models::generate::greedy(&lm, &mut cache, lora, args.max_tokens, &mut |_| {})?;
    println!("{}", lm.tokenizer.decode(&generated));
    Ok(())
}

#[derive(Serialize)]
struct TokenLogProb {
    id: u32,
    text: String,
    log_prob: f32,
}

#[derive(Serialize)]
struct ScoreReport {
    tokens: Vec<TokenLogProb>,
    log_likelihood: f64,
    mean_nll: f64,
    perplexity: f64,
}

fn run_score(args: ScoreArgs) -> anyhow::Result<()> {
    let text = if args.text == "-" {
        read_text(Path::new("-"))?
    } else {
        args.text.clone()
    };
    anyhow::ensure!(
        !text.trim().is_empty(),
        "the text is empty: there is nothing to score"
    );
    let (file, lm) = PromptFile::load(&args.file, &args.model)?;
    let ids: Vec<u32> = lm.encode(&text)?.iter().map(|t| t.id).collect();
    let (cache, lora) = file.cache(&lm, args.file.regenerate, &[])?;
    let log_probs = prefix::log_likelihoods_after(&lm, cache, lora, &ids)?;
    let total: f64 = log_probs.iter().map(|&v| f64::from(v)).sum();
    let mean_nll = -total / ids.len() as f64;
    let report = ScoreReport {
        tokens: ids
            .iter()
            .zip(&log_probs)
            .map(|(&id, &log_prob)| TokenLogProb {
                id,
                text: lm.tokenizer.decode(&[id]),
                log_prob,
            })
            .collect(),
        log_likelihood: total,
        mean_nll,
        perplexity: mean_nll.exp(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} tokens, log-likelihood {:.4} nats, mean NLL {:.4} nats/token, perplexity {:.2}",
            report.tokens.len(),
            report.log_likelihood,
            report.mean_nll,
            report.perplexity
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct EvalReport {
    objective: &'static str,
    loss: f64,
    agreement: f64,
    positions: usize,
    seconds: f64,
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let prompt = read_text(&args.prompt)?;
    let queries = read_queries(args.queries.as_deref())?;
    let (soft, lm) = load_soft(&args.soft, &args.model)?;
    let objective = if queries.is_empty() {
        Objective::Cram
    } else {
        Objective::Distill
    };
    let options = FitOptions {
        objective,
        queries,
        answer_tokens: args.answer_tokens,
        ..FitOptions::default()
    };
    let started = Instant::now();
    let evaluation = abridge_soft::fit::evaluate(&lm, &soft, &prompt, &options)?;
    let report = EvalReport {
        objective: objective.name(),
        loss: evaluation.loss,
        agreement: evaluation.agreement,
        positions: evaluation.positions,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let what = match objective {
        Objective::Cram => "NLL of the prompt text",
        Objective::Distill => "KL(hard prompt || soft prompt) on the answers",
    };
    println!(
        "{what}: {:.4} nats/token; top-1 agreement {:.1}% over {} tokens",
        report.loss,
        100.0 * report.agreement,
        report.positions
    );
    Ok(())
}

/// The trainer's held-out windows: 128 text + 32 continuation tokens.
const TRAINER_WINDOW: usize = 160;
/// Held-out windows per source in the trainer's test set.
const TRAINER_PER_SOURCE: usize = 64;

fn run_eval_compressor(args: EvalCompressorArgs) -> anyhow::Result<()> {
    let longest = args.lengths.iter().copied().max().unwrap_or(0);
    anyhow::ensure!(
        longest + args.continuation <= TRAINER_WINDOW && !args.lengths.contains(&0),
        "--lengths and --continuation must fit the trainer's {TRAINER_WINDOW}-token windows"
    );
    anyhow::ensure!(args.texts >= 2, "--texts must be at least 2");
    let (lm, id) = load_model(&args.model)?;
    let compressors = args
        .adapter
        .iter()
        .map(|path| Ok(Compressor::open(path, &lm, &id)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let windows = held_out_windows(
        &datasets_dir(),
        &lm.tokenizer,
        TRAINER_WINDOW,
        TRAINER_PER_SOURCE,
    )?;
    anyhow::ensure!(
        windows.len() >= 2,
        "found {} held-out windows in {}: fetch the datasets (scripts/fetch-datasets.py)",
        windows.len(),
        datasets_dir().display()
    );
    let chosen = spread(&windows, args.texts);
    let texts: Vec<Window> = chosen
        .iter()
        .map(|w| Window {
            document: format!("{}/{}", w.source, w.id),
            ids: w.ids.clone(),
        })
        .collect();
    let n = texts.len();
    tracing::info!(windows = windows.len(), chosen = n, "held-out windows");
    let compressors: Vec<&Compressor> = compressors.iter().collect();
    let per_length = compressor_eval::compare_steps(&compressors, n);
    let bar = progress_bar(per_length * args.lengths.len(), "texts");
    let started = Instant::now();
    let mut rows = Vec::new();
    for &length in &args.lengths {
        let setting = Setting {
            length,
            continuation: args.continuation,
            regenerate: !args.no_regenerate,
        };
        bar.set_message(format!("L={length}"));
        let comparisons =
            compressor_eval::compare(&lm, &id, &compressors, &texts, setting, &mut || bar.inc(1))?;
        for (path, comparison) in args.adapter.iter().zip(comparisons) {
            let (base, scores) = (comparison.baselines, comparison.scores);
            rows.push(serde_json::json!({
                "adapter": path.display().to_string(),
                "method": comparison.method,
                "k": comparison.k,
                "L": length,
                "texts": n,
                "ppl_none": base.none,
                "ppl_memory": scores.memory,
                "ppl_mismatched_memory": scores.mismatched,
                "ppl_truncated_last_k": base.truncated,
                "ppl_full": base.full,
                "gap_closed": comparison.gap_closed(),
                "gap_closed_mismatched": comparison.gap_closed_mismatched(),
                "regen_nll": scores.regeneration_nll,
                "regen_token_accuracy": scores.token_accuracy,
                "regen_exact_match": scores.exact_match,
            }));
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut sources = std::collections::BTreeMap::<&str, usize>::new();
        for window in &chosen {
            *sources.entry(window.source).or_default() += 1;
        }
        let report = serde_json::json!({
            "held_out_windows": windows.len(),
            "texts_by_source": sources,
            "seconds": seconds,
            "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{n} of {} held-out texts, {} continuation tokens, {seconds:.0} s",
        windows.len(),
        args.continuation
    );
    println!("| adapter | L | PPL none | PPL memory | PPL mismatched | PPL last-k | PPL full | gap closed | gap closed (mismatched) | regen NLL | token acc | exact |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let number = |v: &serde_json::Value, digits: usize| {
        v.as_f64()
            .map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
    };
    for row in &rows {
        println!(
            "| {} k={} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row["method"].as_str().unwrap_or(""),
            row["k"],
            row["L"],
            number(&row["ppl_none"], 1),
            number(&row["ppl_memory"], 1),
            number(&row["ppl_mismatched_memory"], 1),
            number(&row["ppl_truncated_last_k"], 1),
            number(&row["ppl_full"], 1),
            number(&row["gap_closed"], 2),
            number(&row["gap_closed_mismatched"], 2),
            number(&row["regen_nll"], 3),
            number(&row["regen_token_accuracy"], 3),
            number(&row["regen_exact_match"], 3),
        );
    }
    Ok(())
}
