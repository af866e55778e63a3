use std::path::PathBuf;

use serde::Serialize;

use crate::commands::progress_bar;
use crate::input::read_text;
use crate::model::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The text to score (`-` reads standard input).
    #[arg(value_name = "FILE|-")]
    input: PathBuf,

    /// Print JSON: every token's id, text and surprisal (nats), and the perplexity.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct TokenScore {
    id: u32,
    text: String,
    surprisal: f32,
}

#[derive(Serialize)]
struct Report {
    model: String,
    tokens: Vec<TokenScore>,
    mean_surprisal: f64,
    perplexity: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = read_text(&args.input)?;
    let lm = args.model.load()?;
    let tokens = lm.encode(&text)?;
    let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
    let bar = progress_bar(ids.len(), "scoring");
    let surprisal = lm.surprisal(&ids, &mut |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();

    let mean = surprisal.iter().map(|&s| f64::from(s)).sum::<f64>() / surprisal.len() as f64;
    let report = Report {
        model: lm.path.display().to_string(),
        tokens: tokens
            .iter()
            .zip(&surprisal)
            .map(|(t, &s)| TokenScore {
                id: t.id,
                text: lm.tokenizer.decode(&[t.id]),
                surprisal: s,
            })
            .collect(),
        mean_surprisal: mean,
        perplexity: mean.exp(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{:>6}  {:>6}  {:>9}  token", "index", "id", "surprisal");
    for (i, t) in report.tokens.iter().enumerate() {
        println!("{i:>6}  {:>6}  {:>9.3}  {:?}", t.id, t.surprisal, t.text);
    }
    println!(
        "{} tokens, mean surprisal {:.4} nats, perplexity {:.2}",
        report.tokens.len(),
        report.mean_surprisal,
        report.perplexity
    );
    Ok(())
}
