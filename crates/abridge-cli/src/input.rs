//! Reading user text: a file or standard input, which must be non-empty UTF-8.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};

/// Reads `source` (`-` for standard input) as UTF-8 text.
pub fn read_text(source: &Path) -> anyhow::Result<String> {
    let (bytes, name) = if source == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        (bytes, "standard input".to_string())
    } else {
        let bytes =
            std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
        (bytes, source.display().to_string())
    };
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
