use std::path::{Path, PathBuf};
use std::time::Instant;

use abridge_core::{
    compress, compress_with, Budget, CompressRequest, Llmlingua2Options, LlmlinguaOptions, Method,
    Models,
};
use abridge_models::{LanguageModel, TargetTokenizer, TiktokenCounter, TokenClassificationModel};
use anyhow::ensure;
use serde::Serialize;

use crate::model::ModelArgs;

/// Natural prose the benchmark tokenizes and repeats up to each length.
const BENCH_TEXT: &str = include_str!("../../../../examples/sample.txt");

#[derive(clap::Args)]
pub struct Args {
    /// Input lengths in model tokens (at most the context minus the document-start token).
    #[arg(long, value_delimiter = ',', default_value = "128,512,2048,8192")]
    lengths: Vec<usize>,

    /// Runs per length; the fastest is reported.
    #[arg(long, default_value_t = 2)]
    repeat: usize,

    /// Print one JSON record per length.
    #[arg(long)]
    json: bool,

    /// Also time whole compressions (LLMLingua and Selective Context at rate 0.5, or LLMLingua-2
    /// with --classifier) of inputs of each length, and the share of their time spent outside
    /// the model.
    #[arg(long)]
    pipeline: bool,

    /// Time a token-classification (LLMLingua-2) model folder instead of the scoring LM; lengths
    /// are then in classifier tokens, read in windows of the encoder's size.
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    classifier: Option<PathBuf>,

    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct Record {
    tokens: usize,
    tokens_per_second: f64,
    seconds: f64,
    peak_rss_mib: Option<u64>,
    threads: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pipelines: Vec<PipelineRecord>,
}

/// One whole compression of an input of the record's length.
#[derive(Serialize)]
struct PipelineRecord {
    method: &'static str,
    tokens_per_second: f64,
    seconds: f64,
    /// Share of the time spent outside the model (segmenting, selecting, counting, rendering).
    overhead: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.repeat > 0, "--repeat must be at least 1");
    ensure!(
        args.lengths.iter().all(|&l| l > 0),
        "--lengths must be positive"
    );
    match &args.classifier {
        Some(dir) => run_classifier(&args, dir),
        None => run_scorer(&args),
    }
}

fn run_scorer(args: &Args) -> anyhow::Result<()> {
    let lm = args.model.load()?;
    let sample: Vec<u32> = lm.encode(BENCH_TEXT)?.iter().map(|t| t.id).collect();
    let threads = rayon::current_num_threads();
    let mut lengths = args.lengths.clone();
    lengths.sort_unstable();
    print_header(&lm.path, args.json);
    for &requested in &lengths {
        let length = requested.min(lm.max_tokens());
        let ids: Vec<u32> = sample.iter().copied().cycle().take(length).collect();
        let mut best = f64::INFINITY;
        for _ in 0..args.repeat {
            let started = Instant::now();
            let mut cache = lm.start()?;
            lm.extend(&mut cache, &ids)?;
            best = best.min(started.elapsed().as_secs_f64());
        }
        let pipelines = if args.pipeline {
            pipeline_records(&lm, length)?
        } else {
            Vec::new()
        };
        let record = Record {
            tokens: length,
            tokens_per_second: length as f64 / best,
            seconds: best,
            peak_rss_mib: peak_rss_mib(),
            threads,
            pipelines,
        };
        print_record(&record, args.json)?;
    }
    Ok(())
}

/// Times the classifier's keep-probabilities (and, with --pipeline, whole LLMLingua-2
/// compressions) on the sample repeated to each length in classifier tokens.
fn run_classifier(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let model = TokenClassificationModel::load(dir)?;
    let mut lengths = args.lengths.clone();
    lengths.sort_unstable();
    print_header(dir, args.json);
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    for &length in &lengths {
        let mut text = String::new();
        let tokens = loop {
            text.push_str(BENCH_TEXT);
            text.push('\n');
            let tokens = model.tokenizer.encode(&text)?;
            if tokens.len() >= length {
                break tokens;
            }
        };
        let text = &text[..tokens[length - 1].span.end];
        let mut best = f64::INFINITY;
        for _ in 0..args.repeat {
            let started = Instant::now();
            model.keep_probabilities_of(&[text])?;
            best = best.min(started.elapsed().as_secs_f64());
        }
        let mut pipelines = Vec::new();
        if args.pipeline {
            let mut request = CompressRequest::new(
                Method::Llmlingua2(Llmlingua2Options::default()),
                vec![text.to_string()],
            );
            request.budget = Budget::Rate(0.5);
            let models = Models {
                scorer: None,
                counter: &counter,
                embedder: None,
                classifier: Some(&model),
            };
            let timings = compress_with(&request, models, None)?.timings;
            pipelines.push(PipelineRecord {
                method: "llmlingua2",
                tokens_per_second: length as f64 / timings.total_seconds,
                seconds: timings.total_seconds,
                overhead: 1.0 - timings.model_seconds / timings.total_seconds,
            });
        }
        let record = Record {
            tokens: length,
            tokens_per_second: length as f64 / best,
            seconds: best,
            peak_rss_mib: peak_rss_mib(),
            threads: rayon::current_num_threads(),
            pipelines,
        };
        print_record(&record, args.json)?;
    }
    Ok(())
}

fn print_header(model: &Path, json: bool) {
    if !json {
        let threads = rayon::current_num_threads();
        println!("model: {} ({threads} threads)", model.display());
        println!(
            "{:>7}  {:>11}  {:>9}  {:>13}",
            "tokens", "tokens/s", "seconds", "peak RSS MiB"
        );
    }
}

fn print_record(record: &Record, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(record)?);
        return Ok(());
    }
    println!(
        "{:>7}  {:>11.1}  {:>9.3}  {:>13}",
        record.tokens,
        record.tokens_per_second,
        record.seconds,
        record.peak_rss_mib.map_or("-".into(), |m| m.to_string())
    );
    for p in &record.pipelines {
        println!(
            "         {:<18} {:>9.1} tokens/s  {:>8.3} s  {:>5.1}% outside the model",
            p.method,
            p.tokens_per_second,
            p.seconds,
            100.0 * p.overhead
        );
    }
    Ok(())
}

/// Compresses `length` model tokens of the sample with each hard-prompt method.
fn pipeline_records(lm: &LanguageModel, length: usize) -> anyhow::Result<Vec<PipelineRecord>> {
    let mut text = String::new();
    let tokens = loop {
        text.push_str(BENCH_TEXT);
        text.push('\n');
        let tokens = lm.encode(&text)?;
        if tokens.len() >= length {
            break tokens;
        }
    };
    let text = &text[..tokens[length - 1].span.end];
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let mut records = Vec::new();
    for (name, method) in [
        ("llmlingua", Method::Llmlingua(LlmlinguaOptions::default())),
        ("selective-context", Method::SelectiveContext),
    ] {
        let mut request = CompressRequest::new(method, vec![text.to_string()]);
        request.budget = Budget::Rate(0.5);
        let result = compress(&request, lm, &counter, None)?;
        let timings = result.timings;
        records.push(PipelineRecord {
            method: name,
            tokens_per_second: length as f64 / timings.total_seconds,
            seconds: timings.total_seconds,
            overhead: 1.0 - timings.model_seconds / timings.total_seconds,
        });
    }
    Ok(records)
}

/// The process's peak resident memory so far (Linux only).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
