use std::io::IsTerminal;
use std::path::PathBuf;

use abridge_core::{
    compress, Budget, CompressRequest, Compressed, ContextBudget, LlmlinguaOptions, Method,
    ProtectOptions, Unit,
};
use abridge_models::{TargetTokenizer, TiktokenCounter};
use anyhow::bail;

use crate::commands::progress_bar;
use crate::input::read_text;
use crate::model::ModelArgs;

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodName {
    /// Drop the least informative units (self-information under the scoring model).
    SelectiveContext,
    /// Coarse demonstration filter, then iterative token-level compression (LLMLingua).
    Llmlingua,
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

    /// Keep every unit whose mean surprisal (nats per model token) is at least this.
    #[arg(long, group = "budget", value_name = "NATS")]
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

    /// LLMLingua: scoring-model tokens per window of the iterative compression.
    #[arg(long, default_value_t = 200, value_name = "TOKENS")]
    iterative_size: usize,

    /// LLMLingua: the coarse filter's budget from the context target, `+N` or `*K`.
    #[arg(
        long,
        default_value = "+100",
        value_name = "+N|*K",
        allow_hyphen_values = true
    )]
    context_budget: String,

    /// LLMLingua: skip the coarse demonstration filter.
    #[arg(long)]
    no_context_filter: bool,

    /// LLMLingua: a context (0-based) the coarse filter always keeps; repeat for several.
    #[arg(long = "force-context-id", value_name = "INDEX")]
    force_context_ids: Vec<usize>,

    /// The target LLM's tokenizer, for the budget and the reported counts.
    #[arg(long, default_value = "cl100k_base", value_name = "NAME")]
    target_tokenizer: String,

    /// Print the full result as JSON (text, counts, ratio, timings, label map).
    #[arg(long, conflicts_with = "show")]
    json: bool,

    /// Print the original with the dropped text marked (struck through on a terminal, else `[-…-]`).
    #[arg(long)]
    show: bool,

    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let request = request(&args)?;
    let counter = TiktokenCounter::new(args.target_tokenizer.parse::<TargetTokenizer>()?);
    let lm = args.model.load()?;
    let bar = progress_bar(0, "compressing");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let result = compress(&request, &lm, &counter, Some(&progress));
    bar.finish_and_clear();
    let result = result?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
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
    if result.protected_over_budget {
        line.push_str(&format!(
            "; the protected text alone is {} tokens, over the target, and was kept",
            result.protected_tokens
        ));
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
