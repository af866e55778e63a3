//! `abridge recover`: restore the spans of an LLM response that quote a compressed prompt.

use std::path::PathBuf;

use crate::input::read_text;

#[derive(clap::Args)]
pub struct Args {
    /// The LLM's response (`-` reads standard input).
    #[arg(value_name = "RESPONSE|-")]
    response: PathBuf,

    /// The prompt before compression.
    #[arg(long, value_name = "FILE")]
    original: PathBuf,

    /// The compressed prompt the LLM read.
    #[arg(long, value_name = "FILE")]
    compressed: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        [&args.original, &args.compressed, &args.response]
            .iter()
            .filter(|p| p.as_os_str() == "-")
            .count()
            <= 1,
        "only one of the inputs can be standard input (-)"
    );
    let original = read_text(&args.original)?;
    let compressed = read_text(&args.compressed)?;
    let response = read_text(&args.response)?;
    print!(
        "{}",
        abridge_core::recover(&original, &compressed, &response)
    );
    Ok(())
}
