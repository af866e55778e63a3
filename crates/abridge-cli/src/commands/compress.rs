use std::io::IsTerminal;
use std::path::PathBuf;

use abridge_core::{
    compress_with, Budget, CompressRequest, Compressed, ConditionInQuestion, ContextBudget,
    Embedder, KeepSentences, Llmlingua2Options, LlmlinguaOptions, LongLlmlinguaOptions, Method,
    Models, ProtectOptions, RankMethod, Reorder, TokenClassifier, TokenScorer, Unit,
};
use abridge_models::{
    FastClassifier, SentenceEncoder, TargetTokenizer, TiktokenCounter, TokenClassificationModel,
};
use anyhow::{bail, Context};

use crate::commands::progress_bar;
use crate::input::read_text;
use crate::model::ModelArgs;

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodName {
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
}

/// LongLLMLingua's document rankers.
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

    #[arg(long, value_enum, default_value = "llmlingua")]
    method: MethodName,

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
    /// selective-context, word for llmlingua].
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

    /// (Long)LLMLingua: scoring-model tokens per window of the iterative compression.
    #[arg(long, default_value_t = 200, value_name = "TOKENS")]
    iterative_size: usize,

    /// (Long)LLMLingua: the coarse filter's budget from the context target, `+N` or `*K`.
    #[arg(
        long,
        default_value = "+100",
        value_name = "+N|*K",
        allow_hyphen_values = true
    )]
    context_budget: String,

    /// (Long)LLMLingua: skip the coarse demonstration/document filter.
    #[arg(long)]
    no_context_filter: bool,

    /// (Long)LLMLingua: only drop whole contexts (and, with --sentence-filter, whole sentences);
    /// keep what remains word for word (llmlingua's use_token_level_filter=False).
    #[arg(long, conflicts_with = "no_context_filter")]
    no_token_filter: bool,

    /// (Long)LLMLingua: a context (0-based) the coarse filter always keeps; repeat for several.
    #[arg(long = "force-context-id", value_name = "INDEX")]
    force_context_ids: Vec<usize>,

    /// LLMLingua-2: the reference's per-chunk thresholds and rate arithmetic (same output as
    /// llmlingua's compress_prompt_llmlingua2, the budget not met exactly).
    #[arg(long)]
    llmlingua2_compat: bool,

    /// LLMLingua-2: of a force token repeated with no kept word in between, keep the first.
    #[arg(long)]
    drop_consecutive: bool,

    /// LLMLingua-2: weight in [0, 1] of the question's relevance in a word's score.
    #[arg(long, default_value_t = 0.5, value_name = "W")]
    question_weight: f32,

    /// LLMLingua-2 context filter: keep at most N contexts.
    #[arg(long, value_name = "N")]
    target_context: Option<usize>,

    /// LLMLingua-2 context filter: keep this fraction of the contexts, in (0, 1].
    #[arg(long, value_name = "RATE")]
    context_level_rate: Option<f64>,

    /// LLMLingua-2 context filter: keep contexts worth about N tokens.
    #[arg(long, value_name = "N")]
    context_level_target_token: Option<usize>,

    /// LongLLMLingua: how documents are ranked for the question (LLMLingua-2: `embedding` scores
    /// sentences with all-MiniLM-L6-v2 instead of BM25).
    #[arg(long, value_enum, default_value = "longllmlingua")]
    rank_method: RankName,

    /// LongLLMLingua: where the kept documents go: original, sort (most relevant first),
    /// two_stage (most relevant at both ends).
    #[arg(
        long,
        alias = "reorder-context",
        default_value = "sort",
        value_name = "ORDER"
    )]
    reorder: String,

    /// LongLLMLingua: the best document keeps this much more of its tokens than the average, the
    /// worst this much less (linear by rank).
    #[arg(
        long,
        alias = "dynamic-context-compression-ratio",
        default_value_t = 0.3,
        value_name = "DELTA"
    )]
    dynamic_ratio: f64,

    /// LongLLMLingua: none, before or after (where the ranking model reads the question), with
    /// `_condition` to score tokens after the question.
    #[arg(long, default_value = "after_condition", value_name = "MODE")]
    condition_in_question: String,

    /// LongLLMLingua: score tokens by how much the question lowers their surprisal
    /// (contrastive perplexity); `--condition-compare false` turns it off.
    #[arg(
        long,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        action = clap::ArgAction::Set
    )]
    condition_compare: bool,

    /// LongLLMLingua: drop the least relevant sentences of the kept documents first.
    #[arg(long)]
    sentence_filter: bool,

    /// LongLLMLingua sentence filter: always keep the first N sentences of each document.
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_first_sentence: usize,

    /// LongLLMLingua sentence filter: always keep the last N sentences of each document.
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_last_sentence: usize,

    /// LongLLMLingua sentence filter: always keep each document's N most relevant sentences.
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_sentence_number: usize,

    /// LongLLMLingua sentence filter: its budget as a multiple of the context target.
    #[arg(long, default_value_t = 1.4, value_name = "X")]
    token_budget_ratio: f64,

    /// LongLLMLingua: condition token scores on the instruction too.
    #[arg(long)]
    add_instruction: bool,

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
    let request = request(&args)?;
    let counter = TiktokenCounter::new(args.target_tokenizer.parse::<TargetTokenizer>()?);
    // LLMLingua-2 reads a token classifier; the other methods a causal LM.
    let (lm, classifier) = match &request.method {
        Method::Llmlingua2(_) => (None, Some(load_classifier(&args)?)),
        _ => (Some(args.model.load()?), None),
    };
    let wants_embedder = match &request.method {
        Method::LongLlmlingua(options) => options.rank_method == RankMethod::Embedding,
        Method::Llmlingua2(_) => {
            matches!(args.rank_method, RankName::Embedding) && !request.question.trim().is_empty()
        }
        _ => false,
    };
    let embedder = match wants_embedder {
        true => Some(
            SentenceEncoder::load_default()
                .context("--rank-method embedding needs all-MiniLM-L6-v2")?,
        ),
        false => None,
    };
    let bar = progress_bar(0, "compressing");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let models = Models {
        scorer: lm.as_ref().map(|lm| lm as &dyn TokenScorer),
        counter: &counter,
        embedder: embedder.as_ref().map(|e| e as &dyn Embedder),
        classifier: classifier.as_deref(),
    };
    let result = compress_with(&request, models, Some(&progress));
    bar.finish_and_clear();
    let result = result?;

    if args.json {
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

/// The token classifier LLMLingua-2 reads: `--model DIR`, or abridge-fast's.
fn load_classifier(args: &Args) -> anyhow::Result<Box<dyn TokenClassifier>> {
    match (args.method, &args.model.model) {
        (MethodName::Fast, None) => Ok(Box::new(FastClassifier::load_default()?)),
        (MethodName::Fast, Some(_)) => bail!(
            "--method fast reads all-MiniLM-L6-v2 from `abridge models fetch` with its own head; --model is for --method llmlingua2"
        ),
        (_, Some(dir)) => Ok(Box::new(TokenClassificationModel::load(dir)?)),
        (_, None) => bail!(
            "--method llmlingua2 needs a token-classification model: pass --model DIR, a folder with config.json, model.safetensors and tokenizer.json (e.g. a download of microsoft/llmlingua-2-xlm-roberta-large-meetingbank), or use --method fast"
        ),
    }
}

fn request(args: &Args) -> anyhow::Result<CompressRequest> {
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
    let method = match args.method {
        MethodName::SelectiveContext => Method::SelectiveContext,
        MethodName::Llmlingua => Method::Llmlingua(LlmlinguaOptions {
            iterative_size: args.iterative_size,
            context_budget: args.context_budget.parse::<ContextBudget>()?,
            use_context_level_filter: !args.no_context_filter,
            force_context_ids: args.force_context_ids.clone(),
            use_token_level_filter: !args.no_token_filter,
        }),
        MethodName::Longllmlingua => Method::LongLlmlingua(LongLlmlinguaOptions {
            rank_method: args.rank_method.into(),
            condition_in_question: args.condition_in_question.parse::<ConditionInQuestion>()?,
            condition_compare: args.condition_compare,
            reorder_context: args.reorder.parse::<Reorder>()?,
            dynamic_context_compression_ratio: args.dynamic_ratio,
            context_budget: args.context_budget.parse::<ContextBudget>()?,
            iterative_size: args.iterative_size,
            use_context_level_filter: !args.no_context_filter,
            force_context_ids: args.force_context_ids.clone(),
            use_sentence_level_filter: args.sentence_filter,
            keep_sentences: KeepSentences {
                keep_first_sentence: args.keep_first_sentence,
                keep_last_sentence: args.keep_last_sentence,
                keep_sentence_number: args.keep_sentence_number,
            },
            token_budget_ratio: args.token_budget_ratio,
            add_instruction: args.add_instruction,
            use_token_level_filter: !args.no_token_filter,
        }),
        MethodName::Llmlingua2 | MethodName::Fast => Method::Llmlingua2(Llmlingua2Options {
            compat: args.llmlingua2_compat,
            drop_consecutive: args.drop_consecutive,
            use_context_level_filter: !args.no_context_filter,
            force_context_ids: args.force_context_ids.clone(),
            target_context: args.target_context,
            context_level_rate: args.context_level_rate,
            context_level_target_token: args.context_level_target_token,
            question_weight: args.question_weight,
        }),
    };
    let mut request = CompressRequest::new(method, contexts);
    request.budget = Budget::from_options(args.rate, args.target_token, args.threshold)?;
    if let Some(unit) = &args.unit {
        request.unit = unit.parse::<Unit>()?;
    }
    request.instruction = args.instruction.clone();
    request.question = args.question.clone();
    request.markup = !args.no_markup;
    request.protect = ProtectOptions {
        force_tokens: args.force_tokens.clone(),
        force_reserve_digit: args.force_reserve_digit,
        patterns: args.patterns.clone(),
        protect_code: args.protect_code,
    };
    Ok(request)
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
