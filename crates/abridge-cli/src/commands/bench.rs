use std::path::{Path, PathBuf};
use std::time::Instant;

use std::cell::Cell;

use abridge_core::{
    compress, compress_with, rank, AutoConfig, BoxError, Budget, CompressRequest,
    Llmlingua2Options, LlmlinguaOptions, LongLlmlinguaOptions, Method, ModelToken, Models,
    RankMethod, ScoringSession, TokenScorer, Uninterrupted,
};
use abridge_models::kv_policy::{self, KvPolicy, PolicyKind};
use abridge_models::{
    kernels, FastClassifier, LanguageModel, SentenceEncoder, TargetTokenizer, TiktokenCounter,
    TokenClassificationModel,
};
use anyhow::ensure;
use serde::Serialize;

use crate::model::ModelArgs;

/// The question of the RAG-shaped prompt (`--documents`).
const RAG_QUESTION: &str =
    "When did the railway arrive in Vellmouth, and what was built next to the sheds?";

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

    /// Also time each length on the portable kernel bodies (what a CPU without AVX2 runs) in the
    /// same run, and print the SIMD kernels' speed-up over them.
    #[arg(long, conflicts_with = "classifier")]
    compare_portable: bool,

    /// Also time every hard-prompt method on a RAG-shaped prompt: N documents of about 150 tokens
    /// and a question compressed to 1/3 by `auto` (if abridge-fast is installed), LLMLingua,
    /// Selective Context and LongLLMLingua with each coarse ranker (embedding: if MiniLM is
    /// installed), with the tokens each makes the scoring LM read.
    #[arg(long, value_name = "N", conflicts_with = "classifier")]
    documents: Option<usize>,

    /// With --documents: the time side of compression against KV-cache eviction at equal
    /// memory. This answering model (a llama/qwen2 GGUF, e.g. the evaluator that
    /// scripts/fetch-evaluator.py installs) reads the RAG prompt whole, compressed by `auto` to
    /// 1/3, 1/5 and 1/10, and whole under each KV-cache policy keeping that share of its
    /// positions; prints the seconds (compression and reading) and the most cache positions held.
    #[arg(long, value_name = "GGUF", requires = "documents")]
    kv_answerer: Option<PathBuf>,

    /// Instead, time abridge-fast against its teacher: whole compressions to 1/3 of the same
    /// inputs (the sample repeated to each length in scoring-model tokens) by Selective Context on
    /// the scoring model and by `--method fast`, and print the speed-up.
    #[arg(long, conflicts_with_all = ["classifier", "compare_portable", "pipeline", "documents"])]
    compare_fast: bool,

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
    #[serde(skip_serializing_if = "Option::is_none")]
    portable_tokens_per_second: Option<f64>,
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
        None if args.compare_fast => compare_fast(&args),
        None => run_scorer(&args),
    }
}

/// One input length of `--compare-fast`: tokens/s are the input's scoring-model tokens per
/// second of whole compression, for both.
#[derive(Serialize)]
struct FastRecord {
    tokens: usize,
    teacher_tokens_per_second: f64,
    fast_tokens_per_second: f64,
    speed_up: f64,
    threads: usize,
}

fn compare_fast(args: &Args) -> anyhow::Result<()> {
    let lm = args.model.load()?;
    let fast = FastClassifier::load_default()?;
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let threads = rayon::current_num_threads();
    if !args.json {
        println!(
            "whole compressions to 1/3: Selective Context on {} vs abridge-fast (MiniLM, {} of {} layers), {threads} threads, best of {}",
            lm.path.display(),
            fast.head.layers,
            fast.minilm.encoder.layers(),
            args.repeat
        );
        println!(
            "{:>7}  {:>15}  {:>12}  {:>8}",
            "tokens", "teacher tok/s", "fast tok/s", "speed-up"
        );
    }
    let mut lengths = args.lengths.clone();
    lengths.sort_unstable();
    for &requested in &lengths {
        let length = requested.min(lm.max_tokens());
        let text = &sample_text(&lm, length)?;
        let time = |method: Method, models: Models| -> anyhow::Result<f64> {
            let mut request = CompressRequest::new(method, vec![text.to_string()]);
            request.budget = Budget::Rate(1.0 / 3.0);
            let mut best = f64::INFINITY;
            for _ in 0..args.repeat {
                let started = Instant::now();
                compress_with(&request, models, None)?;
                best = best.min(started.elapsed().as_secs_f64());
            }
            Ok(best)
        };
        let teacher = time(
            Method::SelectiveContext,
            Models {
                scorer: Some(&lm),
                counter: &counter,
                embedder: None,
                classifier: None,
                generator: None,
            },
        )?;
        let student = time(
            Method::Llmlingua2(Llmlingua2Options::default()),
            Models {
                scorer: None,
                counter: &counter,
                embedder: None,
                classifier: Some(&fast),
                generator: None,
            },
        )?;
        let record = FastRecord {
            tokens: length,
            teacher_tokens_per_second: length as f64 / teacher,
            fast_tokens_per_second: length as f64 / student,
            speed_up: teacher / student,
            threads,
        };
        if args.json {
            println!("{}", serde_json::to_string(&record)?);
        } else {
            println!(
                "{:>7}  {:>15.1}  {:>12.1}  {:>7.1}x",
                record.tokens,
                record.teacher_tokens_per_second,
                record.fast_tokens_per_second,
                record.speed_up
            );
        }
    }
    Ok(())
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
        let best = fastest_scoring(&lm, &ids, args.repeat)?;
        let portable_best = if args.compare_portable {
            kernels::force_portable(true);
            let portable = fastest_scoring(&lm, &ids, args.repeat);
            kernels::force_portable(false);
            Some(portable?)
        } else {
            None
        };
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
            portable_tokens_per_second: portable_best.map(|seconds| length as f64 / seconds),
            pipelines,
        };
        print_record(&record, args.json)?;
    }
    if let Some(documents) = args.documents {
        ensure!(documents > 0, "--documents must be at least 1");
        rag_latency(&lm, documents, args.repeat, args.json)?;
        if let Some(path) = &args.kv_answerer {
            let answerer = LanguageModel::load(path, args.model.load_options())?;
            compression_against_eviction(&answerer, documents, args.repeat, args.json)?;
        }
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
            model.keep_probabilities_of(&[text], &Uninterrupted)?;
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
                generator: None,
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
            portable_tokens_per_second: None,
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
    if let Some(portable) = record.portable_tokens_per_second {
        println!(
            "         portable kernels   {portable:>9.1} tokens/s  (SIMD: {:.2}x)",
            record.tokens_per_second / portable
        );
    }
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

#[derive(Serialize)]
struct RagRecord {
    documents: usize,
    method: String,
    /// LongLLMLingua's ranking alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    rank_seconds: Option<f64>,
    /// The whole compression to 1/3 (ranking included).
    compress_seconds: f64,
    /// Tokens the scoring LM read (every forward pass of every session, re-reads included).
    model_tokens_read: usize,
    /// The scoring LM's tokens of the documents and the question, read once.
    model_tokens_input: usize,
    origin_tokens: usize,
    compressed_tokens: usize,
}

/// `documents` passages of ~150 tokens: overlapping 110-word stretches of the sample, each
/// starting elsewhere, so no two are equal.
fn rag_documents(documents: usize) -> Vec<String> {
    let words: Vec<&str> = BENCH_TEXT.split_whitespace().collect();
    (0..documents)
        .map(|d| {
            let start = d * 37;
            (start..start + 110)
                .map(|i| words[i % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// A scorer that counts the tokens its sessions read: what a method costs in forward passes,
/// independent of the machine.
struct CountingScorer<'a> {
    inner: &'a dyn TokenScorer,
    read: Cell<usize>,
}

struct CountingSession<'a> {
    inner: Box<dyn ScoringSession + 'a>,
    read: &'a Cell<usize>,
}

impl TokenScorer for CountingScorer<'_> {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        self.inner.tokenize(text)
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        Ok(Box::new(CountingSession {
            inner: self.inner.session()?,
            read: &self.read,
        }))
    }

    fn max_context(&self) -> usize {
        self.inner.max_context()
    }
}

impl ScoringSession for CountingSession<'_> {
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
        self.read.set(self.read.get() + ids.len());
        self.inner.extend(ids)
    }

    fn truncate(&mut self, len: usize) {
        self.inner.truncate(len)
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// Every hard-prompt method on one RAG-shaped prompt compressed to 1/3 (fastest of `repeat`):
/// `auto` (when abridge-fast is installed), LLMLingua, Selective Context, and LongLLMLingua with
/// each coarse ranker (its ranking also timed alone), with the tokens each makes the scoring LM
/// read.
fn rag_latency(
    lm: &LanguageModel,
    documents: usize,
    repeat: usize,
    json: bool,
) -> anyhow::Result<()> {
    let contexts = rag_documents(documents);
    let question = RAG_QUESTION;
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let embedder = SentenceEncoder::load_default().ok();
    let fast = FastClassifier::load_default().ok();
    let scorer = CountingScorer {
        inner: lm,
        read: Cell::new(0),
    };
    let models = Models {
        scorer: Some(&scorer),
        counter: &counter,
        embedder: embedder.as_ref().map(|e| e as &dyn abridge_core::Embedder),
        classifier: fast
            .as_ref()
            .map(|f| f as &dyn abridge_core::TokenClassifier),
        generator: None,
    };
    let mut methods: Vec<(String, Method)> = Vec::new();
    if fast.is_some() {
        methods.push(("auto".into(), Method::Auto(AutoConfig::default())));
    }
    methods.push((
        "llmlingua".into(),
        Method::Llmlingua(LlmlinguaOptions::default()),
    ));
    methods.push(("selective-context".into(), Method::SelectiveContext));
    let mut rankers = vec![RankMethod::Longllmlingua, RankMethod::Bm25];
    if embedder.is_some() {
        rankers.push(RankMethod::Embedding);
    }
    for &ranker in &rankers {
        // `abridge eval`'s names: the paper's ranker is plain `longllmlingua`.
        let name = match ranker {
            RankMethod::Longllmlingua => "longllmlingua".to_string(),
            other => format!("longllmlingua-{}", other.name()),
        };
        methods.push((
            name,
            Method::LongLlmlingua(LongLlmlinguaOptions {
                rank_method: ranker,
                ..LongLlmlinguaOptions::default()
            }),
        ));
    }
    let input_tokens = contexts
        .iter()
        .map(String::as_str)
        .chain([question])
        .map(|text| lm.encode(text).map(|t| t.len()))
        .sum::<abridge_models::Result<usize>>()?;
    if !json {
        println!(
            "{documents} documents of ~150 tokens + a question (the scoring LM's {input_tokens} \
             tokens), compressed to 1/3; best of {repeat}:"
        );
        println!(
            "{:>23}  {:>7}  {:>11}  {:>11}  {:>15}",
            "method", "rank s", "compress s", "LM read", "cl100k tokens"
        );
    }
    let documents_ref: Vec<&str> = contexts.iter().map(String::as_str).collect();
    for (name, method) in methods {
        let ranker = match &method {
            Method::LongLlmlingua(options) => Some(options.rank_method),
            _ => None,
        };
        let (mut rank_seconds, mut compress_seconds) = (None::<f64>, f64::INFINITY);
        let (mut tokens, mut read) = ((0, 0), 0);
        for _ in 0..repeat {
            if let Some(ranker) = ranker {
                let started = Instant::now();
                rank(ranker, &documents_ref, question, lm, models.embedder)?;
                let seconds = started.elapsed().as_secs_f64();
                rank_seconds = Some(rank_seconds.map_or(seconds, |best| best.min(seconds)));
            }
            let mut request = CompressRequest::new(method.clone(), contexts.clone());
            request.question = question.to_string();
            request.budget = Budget::Rate(1.0 / 3.0);
            scorer.read.set(0);
            let started = Instant::now();
            let result = compress_with(&request, models, None)?;
            compress_seconds = compress_seconds.min(started.elapsed().as_secs_f64());
            tokens = (result.origin_tokens, result.compressed_tokens);
            read = scorer.read.get();
        }
        let record = RagRecord {
            documents,
            method: name,
            rank_seconds,
            compress_seconds,
            model_tokens_read: read,
            model_tokens_input: input_tokens,
            origin_tokens: tokens.0,
            compressed_tokens: tokens.1,
        };
        if json {
            println!("{}", serde_json::to_string(&record)?);
        } else {
            println!(
                "{:>23}  {:>7}  {:>11.3}  {:>11}  {:>7} -> {:>5}",
                record.method,
                record
                    .rank_seconds
                    .map_or("-".to_string(), |s| format!("{s:.3}")),
                record.compress_seconds,
                record.model_tokens_read,
                record.origin_tokens,
                record.compressed_tokens
            );
        }
    }
    Ok(())
}

/// One way the answering model reads the RAG prompt at one rate.
#[derive(Serialize)]
struct ReadRecord {
    rate: f64,
    /// `whole`, `auto` (compressed, then read) or `kv-<policy>`.
    method: String,
    /// Compressing first (`auto` only).
    compress_seconds: f64,
    /// Reading the (compressed) prompt into the answering model's cache.
    read_seconds: f64,
    /// Prompt tokens in the answering model's tokens.
    prompt_tokens: usize,
    /// The most cache positions held while reading: what memory must hold.
    peak_positions: usize,
    /// Positions left for answering.
    final_positions: usize,
    peak_cache_mib: f64,
}

/// The RAG prompt of `rag_latency` read by `answerer` whole, compressed by `auto`, and under each
/// KV-cache policy at 1/3, 1/5 and 1/10 (fastest of `repeat`): compression pays for a scoring pass
/// but the answering model reads fewer tokens; eviction reads every token.
fn compression_against_eviction(
    answerer: &LanguageModel,
    documents: usize,
    repeat: usize,
    json: bool,
) -> anyhow::Result<()> {
    let contexts = rag_documents(documents);
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let embedder = SentenceEncoder::load_default().ok();
    let fast = FastClassifier::load_default()?;
    let models = Models {
        scorer: None,
        counter: &counter,
        embedder: embedder.as_ref().map(|e| e as &dyn abridge_core::Embedder),
        classifier: Some(&fast),
        generator: None,
    };
    let config = &answerer.model.config;
    let mib_per_position =
        (config.layers * 2 * config.kv_heads * config.head_dim * 4) as f64 / (1 << 20) as f64;
    let prompt = format!("{}\n\n{RAG_QUESTION}", contexts.join("\n\n"));
    let ids: Vec<u32> = answerer.encode(&prompt)?.iter().map(|t| t.id).collect();
    let read_whole = |ids: &[u32]| -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut cache = answerer.model.new_cache();
        answerer.model.forward(&mut cache, ids)?;
        Ok(started.elapsed().as_secs_f64())
    };
    let fastest = |f: &mut dyn FnMut() -> anyhow::Result<f64>| -> anyhow::Result<f64> {
        (0..repeat).try_fold(f64::INFINITY, |best, _| Ok(best.min(f()?)))
    };
    let mut records = vec![ReadRecord {
        rate: 1.0,
        method: "whole".into(),
        compress_seconds: 0.0,
        read_seconds: fastest(&mut || read_whole(&ids))?,
        prompt_tokens: ids.len(),
        peak_positions: ids.len(),
        final_positions: ids.len(),
        peak_cache_mib: ids.len() as f64 * mib_per_position,
    }];
    for rate in [1.0 / 3.0, 0.2, 0.1] {
        let mut request =
            CompressRequest::new(Method::Auto(AutoConfig::default()), contexts.clone());
        request.question = RAG_QUESTION.to_string();
        request.budget = Budget::Rate(rate);
        let (mut compress_seconds, mut read_seconds, mut compressed) =
            (f64::INFINITY, f64::INFINITY, Vec::new());
        for _ in 0..repeat {
            let started = Instant::now();
            let result = compress_with(&request, models, None)?;
            compress_seconds = compress_seconds.min(started.elapsed().as_secs_f64());
            compressed = answerer
                .encode(&result.text)?
                .iter()
                .map(|t| t.id)
                .collect();
            read_seconds = read_seconds.min(read_whole(&compressed)?);
        }
        records.push(ReadRecord {
            rate,
            method: "auto".into(),
            compress_seconds,
            read_seconds,
            prompt_tokens: compressed.len(),
            peak_positions: compressed.len(),
            final_positions: compressed.len(),
            peak_cache_mib: compressed.len() as f64 * mib_per_position,
        });
        let budget =
            ((rate * ids.len() as f64).round() as usize).max(kv_policy::OBSERVATION_WINDOW);
        for kind in PolicyKind::ALL {
            let policy = KvPolicy::new(kind, budget);
            let mut peak = 0;
            let read_seconds = fastest(&mut || {
                let started = Instant::now();
                let read = kv_policy::read(&answerer.model, &ids, &policy)?;
                peak = read.peak_rows;
                Ok(started.elapsed().as_secs_f64())
            })?;
            records.push(ReadRecord {
                rate,
                method: format!("kv-{}", kind.name()),
                compress_seconds: 0.0,
                read_seconds,
                prompt_tokens: ids.len(),
                peak_positions: peak,
                final_positions: budget.min(ids.len()),
                peak_cache_mib: peak as f64 * mib_per_position,
            });
        }
    }
    if json {
        for record in &records {
            println!("{}", serde_json::to_string(record)?);
        }
        return Ok(());
    }
    println!(
        "Read by {} ({} of its tokens whole), best of {repeat}:",
        answerer.path.display(),
        ids.len()
    );
    println!(
        "{:>6}  {:>12}  {:>10}  {:>8}  {:>7}  {:>14}  {:>15}",
        "rate", "method", "compress s", "read s", "total s", "peak positions", "peak cache MiB"
    );
    for r in &records {
        println!(
            "{:>6.3}  {:>12}  {:>10.3}  {:>8.3}  {:>7.3}  {:>14}  {:>15.1}",
            r.rate,
            r.method,
            r.compress_seconds,
            r.read_seconds,
            r.compress_seconds + r.read_seconds,
            r.peak_positions,
            r.peak_cache_mib
        );
    }
    Ok(())
}

/// The shortest of `repeat` scorings of `ids`, in seconds.
fn fastest_scoring(lm: &LanguageModel, ids: &[u32], repeat: usize) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let started = Instant::now();
        let mut cache = lm.start()?;
        lm.extend(&mut cache, ids)?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The sample repeated and cut to `length` scoring-model tokens.
fn sample_text(lm: &LanguageModel, length: usize) -> anyhow::Result<String> {
    let mut text = String::new();
    let tokens = loop {
        text.push_str(BENCH_TEXT);
        text.push('\n');
        let tokens = lm.encode(&text)?;
        if tokens.len() >= length {
            break tokens;
        }
    };
    text.truncate(tokens[length - 1].span.end);
    Ok(text)
}

/// Compresses `length` model tokens of the sample with each hard-prompt method.
fn pipeline_records(lm: &LanguageModel, length: usize) -> anyhow::Result<Vec<PipelineRecord>> {
    let text = &sample_text(lm, length)?;
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
