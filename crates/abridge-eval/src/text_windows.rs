//! Held-out token windows of the trained-compressor evaluation: the test windows that
//! `scripts/soft/prepare_icae_data.py` writes (and `scripts/soft/train_icae.py` evaluates on),
//! rebuilt from the dataset files so Rust needs no `.npz`.
//!
//! Texts, in this order: NQ then SQuAD passages (deduplicated by text, in first-seen order; a
//! passage is kept only when all its ids fall in one split, under its first id), XSum articles,
//! essays, ShareGPT assistant turns (under the conversation's id). Each test-split text is
//! tokenised without special tokens, and its first full window of `window` tokens among its first
//! eight is kept, at most `per_source` per source.

use std::collections::HashMap;
use std::path::Path;

use abridge_models::tokenizer::GgufTokenizer;

use crate::data::{read_jsonl, Conversation, Dataset, Essay, QaRecord, Split, XsumRecord};
use crate::error::Result;

/// Windows of one text looked at (the trainer's `--max-windows-per-doc`).
const WINDOWS_PER_TEXT: usize = 8;

/// One held-out window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextWindow {
    /// The dataset's name (`nq`, `squad`, `xsum`, `essays`, `sharegpt`).
    pub source: &'static str,
    pub id: String,
    pub ids: Vec<u32>,
}

/// `(source, id, text)` of every usable text, in the trainer's order. A dataset file that is not
/// installed contributes nothing (as in the trainer).
fn texts(dir: &Path) -> Result<Vec<(&'static str, String, String)>> {
    let mut out = Vec::new();
    let present = |dataset: Dataset| dataset.path(dir).is_file();
    for dataset in [Dataset::Nq, Dataset::Squad] {
        if !present(dataset) {
            continue;
        }
        let mut order: Vec<String> = Vec::new();
        let mut ids_of: HashMap<String, Vec<String>> = HashMap::new();
        for record in read_jsonl::<QaRecord>(&dataset.path(dir))? {
            let ids = ids_of.entry(record.passage.clone()).or_insert_with(|| {
                order.push(record.passage.clone());
                Vec::new()
            });
            ids.push(record.id);
        }
        for passage in order {
            let ids = &ids_of[&passage];
            let split = Split::of(&ids[0]);
            if ids.iter().all(|id| Split::of(id) == split) {
                out.push((dataset.name(), ids[0].clone(), passage));
            }
        }
    }
    if present(Dataset::Xsum) {
        for r in read_jsonl::<XsumRecord>(&Dataset::Xsum.path(dir))? {
            out.push((Dataset::Xsum.name(), r.id, r.article));
        }
    }
    if present(Dataset::Essays) {
        for r in read_jsonl::<Essay>(&Dataset::Essays.path(dir))? {
            out.push((Dataset::Essays.name(), r.id, r.text));
        }
    }
    if present(Dataset::Sharegpt) {
        for c in read_jsonl::<Conversation>(&Dataset::Sharegpt.path(dir))? {
            for turn in c.turns.into_iter().filter(|t| t.role == "assistant") {
                out.push((Dataset::Sharegpt.name(), c.id.clone(), turn.text));
            }
        }
    }
    Ok(out)
}

/// The held-out windows of `window` tokens, at most `per_source` per source, from the dataset
/// files in `dir`, tokenised by `tokenizer`.
pub fn held_out_windows(
    dir: &Path,
    tokenizer: &GgufTokenizer,
    window: usize,
    per_source: usize,
) -> Result<Vec<TextWindow>> {
    let mut taken: HashMap<&'static str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (source, id, text) in texts(dir)? {
        if Split::of(&id) != Split::Test || taken.get(source).copied().unwrap_or(0) >= per_source {
            continue;
        }
        // Only the first eight windows are looked at, so longer texts need not be tokenised whole.
        let ids: Vec<u32> = tokenizer.encode(&text)?.iter().map(|t| t.id).collect();
        if let Some(chunk) = ids
            .chunks(window)
            .take(WINDOWS_PER_TEXT)
            .find(|chunk| chunk.len() == window)
        {
            out.push(TextWindow {
                source,
                id,
                ids: chunk.to_vec(),
            });
            *taken.entry(source).or_default() += 1;
        }
    }
    Ok(out)
}

/// `count` of `windows`, evenly spaced (the list is grouped by source, so a subset stays mixed).
pub fn spread<T: Clone>(windows: &[T], count: usize) -> Vec<T> {
    let count = count.min(windows.len());
    (0..count)
        .map(|i| windows[i * windows.len() / count].clone())
        .collect()
}
