//! Throughput of the encoder runtime on all-MiniLM-L6-v2: one 512-token sequence, and a batch
//! of eight.
//!
//! cargo run --release -p abridge-models --example encoder_speed [MODEL_DIR]

use std::time::Instant;

use abridge_models::{fetch, SentenceEncoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || fetch::models_dir().join(abridge_models::embedder::MINILM_DIR),
        Into::into,
    );
    let model = SentenceEncoder::load(&dir)?;
    let text = "The budget review starts at ten on Monday and everyone should attend. ".repeat(60);
    let ids: Vec<u32> = model
        .tokenizer
        .encode(&text)?
        .iter()
        .map(|t| t.id)
        .collect();
    let window = model.encoder.max_tokens() - model.tokenizer.special_tokens();
    let sequence = model
        .tokenizer
        .with_special_tokens(&ids[..window.min(ids.len())]);
    println!(
        "{} threads, sequence of {} tokens",
        rayon::current_num_threads(),
        sequence.len()
    );
    for batch in [1, 8] {
        let inputs = vec![sequence.as_slice(); batch];
        // A warm-up run, then the fastest of a few: the machine may be busy with other work.
        model.encoder.forward(&inputs)?;
        let mut seconds = f64::INFINITY;
        for _ in 0..5 {
            let start = Instant::now();
            model.encoder.forward(&inputs)?;
            seconds = seconds.min(start.elapsed().as_secs_f64());
        }
        println!(
            "batch {batch}: {:.1} ms per forward, {:.0} tokens/s",
            seconds * 1e3,
            (batch * sequence.len()) as f64 / seconds
        );
    }
    Ok(())
}
