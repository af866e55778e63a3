//! `abridge soft`: fit a soft prompt for a prompt text, then generate or score with it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use abridge_models::LanguageModel;
use abridge_soft::{fit, prefix, FitOptions, Init, ModelId, Objective, SoftPrompt};
use anyhow::Context;
use serde::Serialize;

use crate::input::read_text;
use crate::model::ModelArgs;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Fit k soft vectors that stand for a prompt (the model stays frozen) and save them.
    Fit(Box<FitArgs>),
    /// Generate greedily after a soft prompt (and an optional text prompt).
    Generate(GenerateArgs),
    /// Log-likelihood of a text read after a soft prompt.
    Score(ScoreArgs),
    /// How closely a soft prompt stands for its prompt: NLL and top-1 agreement on the prompt
    /// text (cram), or KL and top-1 agreement with the hard prompt on queries (distill).
    Eval(EvalArgs),
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
pub struct GenerateArgs {
    /// A soft prompt written by `abridge soft fit`.
    #[arg(long, value_name = "FILE")]
    soft: PathBuf,

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
    /// A soft prompt written by `abridge soft fit`.
    #[arg(long, value_name = "FILE")]
    soft: PathBuf,

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

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Fit(args) => run_fit(*args),
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
    let bar = indicatif::ProgressBar::new(args.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
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

fn run_generate(args: GenerateArgs) -> anyhow::Result<()> {
    let (soft, lm) = load_soft(&args.soft, &args.model)?;
    let prompt: Vec<u32> = lm.encode(&args.prompt)?.iter().map(|t| t.id).collect();
    let generated = prefix::generate(&lm, &soft, &prompt, args.max_tokens)?;
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
    let (soft, lm) = load_soft(&args.soft, &args.model)?;
    let ids: Vec<u32> = lm.encode(&text)?.iter().map(|t| t.id).collect();
    let log_probs = prefix::log_likelihoods(&lm, &soft, &ids)?;
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
