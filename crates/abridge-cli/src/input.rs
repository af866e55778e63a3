//! Reading user text: a file or standard input, which must be non-empty UTF-8.

use std::io::Read;
use std::path::Path;

use abridge_core::request::MAX_INPUT_BYTES;
use anyhow::{bail, Context};

/// Reads `source` (`-` for standard input) as UTF-8 text of at most [`MAX_INPUT_BYTES`].
pub fn read_text(source: &Path) -> anyhow::Result<String> {
    // One byte more than the limit, to tell "at the limit" from "over it" without reading all.
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let name = if source == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        "standard input".to_string()
    } else {
        std::fs::File::open(source)
            .and_then(|file| file.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {}", source.display()))?;
        source.display().to_string()
    };
    if bytes.len() > MAX_INPUT_BYTES {
        bail!(
            "{name} is over {} MiB, the most abridge reads at once: split it into parts and compress each",
            MAX_INPUT_BYTES >> 20
        );
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name} is not valid UTF-8 (invalid byte at offset {}); convert it to UTF-8 first, e.g. with iconv",
            e.utf8_error().valid_up_to()
        )
    })?;
    if text.trim().is_empty() {
        bail!("{name} is empty: there is nothing to score or compress");
    }
    Ok(text)
}
