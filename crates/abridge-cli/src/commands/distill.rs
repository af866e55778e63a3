//! `abridge distill`: the teacher's labels and the training of abridge-fast's classifier head.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use abridge_eval::data::sha256_file;
use abridge_eval::datasets_dir;
use abridge_eval::distill::{self, corpus, label, LabeledText, TrainOptions};
use abridge_models::{SentenceEncoder, TargetTokenizer, TiktokenCounter};
use anyhow::Context;

use crate::model::ModelArgs;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Label dev-split texts with the teacher (Selective Context, phrase units, on the scoring
    /// model) into a JSONL file; rerunning resumes where an interrupted run stopped.
    Labels(LabelArgs),
    /// Train abridge-fast's head on the labels (MiniLM frozen) and write it as JSON.
    Train(TrainArgs),
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The labels [default: ~/.cache/abridge/distill/labels.jsonl].
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Where to write the head (the shipped one is crates/abridge-models/assets/fast-head.json).
    #[arg(long)]
    out: PathBuf,
    /// MiniLM layers the head reads (of 6; fewer is faster).
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Units of the head's hidden layer.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    #[arg(long, default_value_t = 6)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Fixes the initial weights and the order of the examples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args)]
pub struct LabelArgs {
    /// Where to write the labels [default: ~/.cache/abridge/distill/labels.jsonl].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Texts taken from each dataset (NQ, SQuAD, XSum, GSM8K, essays).
    #[arg(long, default_value_t = 120)]
    per_dataset: usize,
    /// Fixes which texts are taken and their order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Labels(args) => labels(args),
        Command::Train(args) => train(args),
    }
}

/// `~/.cache/abridge/distill/<name>`, beside the models and datasets.
fn default_path(name: &str) -> PathBuf {
    abridge_models::fetch::models_dir()
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join("distill")
        .join(name)
}

fn labels(args: LabelArgs) -> anyhow::Result<()> {
    let out = args.out.unwrap_or_else(|| default_path("labels.jsonl"));
    let texts = corpus(&datasets_dir(), args.per_dataset, args.seed)
        .context("the datasets are needed: run `scripts/fetch-datasets.py`")?;
    let done: HashSet<String> = read_labels(&out)
        .unwrap_or_default()
        .into_iter()
        .map(|l| l.id)
        .collect();
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)
        .with_context(|| format!("opening {}", out.display()))?;
    let scorer = args.model.load()?;
    let counter = TiktokenCounter::new(TargetTokenizer::Cl100kBase);
    let started = Instant::now();
    let todo: Vec<_> = texts
        .into_iter()
        .filter(|(id, _)| !done.contains(id))
        .collect();
    eprintln!(
        "abridge: labelling {} texts ({} already in {})",
        todo.len(),
        done.len(),
        out.display()
    );
    let mut bytes = 0;
    for (i, (id, text)) in todo.into_iter().enumerate() {
        bytes += text.len();
        let labeled = label(id, text, &scorer, &counter)?;
        // One line per text, flushed, so an interrupted run loses at most the text in progress.
        writeln!(file, "{}", serde_json::to_string(&labeled)?)?;
        file.flush()?;
        eprintln!(
            "abridge: {} texts, {} bytes, {:.0} s",
            i + 1,
            bytes,
            started.elapsed().as_secs_f64()
        );
    }
    // Sorted by id, so that the file (and its checksum) does not depend on how many runs
    // made it.
    let mut all = read_labels(&out)?;
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let mut text = String::new();
    for labeled in &all {
        text.push_str(&serde_json::to_string(labeled)?);
        text.push('\n');
    }
    let temporary = out.with_extension("jsonl.tmp");
    fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, &out).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "abridge: {} labelled texts in {} (sha256 {})",
        all.len(),
        out.display(),
        sha256_file(&out)?
    );
    Ok(())
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let path = args.labels.unwrap_or_else(|| default_path("labels.jsonl"));
    let texts = read_labels(&path)?;
    let minilm = SentenceEncoder::load_default()?;
    let options = TrainOptions {
        layers: args.layers,
        hidden: args.hidden,
        epochs: args.epochs,
        batch: args.batch,
        learning_rate: args.learning_rate,
        seed: args.seed,
    };
    let started = Instant::now();
    eprintln!(
        "abridge: training on {} texts from {}",
        texts.len(),
        path.display()
    );
    let mut head = distill::train(&minilm, &texts, &options, &mut |epoch| {
        eprintln!(
            "abridge: epoch {} ({} steps, {:.0} s): train loss {:.4}, held-out loss {:.4}, held-out top-third agreement {:.3}",
            epoch.epoch,
            epoch.steps,
            started.elapsed().as_secs_f64(),
            epoch.train_loss,
            epoch.held_out_loss,
            epoch.held_out_top_third
        )
    })?;
    if let serde_json::Value::Object(training) = &mut head.training {
        training.insert("labels_sha256".into(), sha256_file(&path)?.into());
        training.insert(
            "seconds".into(),
            started.elapsed().as_secs_f64().round().into(),
        );
    }
    fs::write(&args.out, head.to_json() + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("abridge: wrote {}", args.out.display());
    Ok(())
}

/// The labelled texts of a labels file (one JSON object a line).
fn read_labels(path: &Path) -> anyhow::Result<Vec<LabeledText>> {
    let file = File::open(path).with_context(|| {
        format!(
            "no labels at {}: run `abridge distill labels` first",
            path.display()
        )
    })?;
    BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(&line?)
                .with_context(|| format!("{}:{}: not a labelled text", path.display(), i + 1))
        })
        .collect()
}
