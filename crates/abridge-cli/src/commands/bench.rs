use std::time::Instant;

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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.repeat > 0, "--repeat must be at least 1");
    let lm = args.model.load()?;
    let sample: Vec<u32> = lm.encode(BENCH_TEXT)?.iter().map(|t| t.id).collect();
    let threads = rayon::current_num_threads();
    let mut lengths = args.lengths.clone();
    lengths.sort_unstable();
    if !args.json {
        println!("model: {} ({threads} threads)", lm.path.display());
        println!(
            "{:>7}  {:>11}  {:>9}  {:>13}",
            "tokens", "tokens/s", "seconds", "peak RSS MiB"
        );
    }
    for &requested in &lengths {
        ensure!(requested > 0, "--lengths must be positive");
        let length = requested.min(lm.max_tokens());
        let ids: Vec<u32> = sample.iter().copied().cycle().take(length).collect();
        let mut best = f64::INFINITY;
        for _ in 0..args.repeat {
            let started = Instant::now();
            let mut cache = lm.start()?;
            lm.extend(&mut cache, &ids)?;
            best = best.min(started.elapsed().as_secs_f64());
        }
        let record = Record {
            tokens: length,
            tokens_per_second: length as f64 / best,
            seconds: best,
            peak_rss_mib: peak_rss_mib(),
            threads,
        };
        if args.json {
            println!("{}", serde_json::to_string(&record)?);
        } else {
            println!(
                "{:>7}  {:>11.1}  {:>9.3}  {:>13}",
                record.tokens,
                record.tokens_per_second,
                record.seconds,
                record.peak_rss_mib.map_or("-".into(), |m| m.to_string())
            );
        }
    }
    Ok(())
}

/// The process's peak resident memory so far (Linux only).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
