//! KV caches made of another cache's positions (`KvCache::select`) or of saved rows
//! (`CausalLm::cache_from_rows`), and the LoRA'd forward's off switch, on the tiny llama.

use std::path::PathBuf;

use abridge_models::lora::{LowRank, QvLora};
use abridge_models::matrix::Matrix;
use abridge_models::{LanguageModel, LoadOptions};

fn tiny_llama() -> LanguageModel {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama.gguf");
    LanguageModel::load(&path, LoadOptions::default()).unwrap()
}

const FIRST: [u32; 5] = [5, 17, 42, 99, 7];
const SECOND: [u32; 4] = [250, 3, 11, 64];

/// Final hidden rows of `SECOND` read after `cache`.
fn hidden_after(lm: &LanguageModel, mut cache: abridge_models::llama::KvCache) -> Vec<f32> {
    let from = cache.len();
    lm.model.forward(&mut cache, &SECOND).unwrap();
    cache.hidden()[from * lm.model.config.hidden..].to_vec()
}

#[test]
fn a_selected_prefix_reads_on_like_the_original_cache() {
    let lm = tiny_llama();
    let mut cache = lm.model.new_cache();
    lm.model.forward(&mut cache, &FIRST).unwrap();
    let whole = hidden_after(&lm, cache.clone());
    let selected = cache.select(0..FIRST.len());
    assert_eq!(selected.len(), FIRST.len());
    assert_eq!(hidden_after(&lm, selected), whole);

    // A middle slice holds exactly those positions' rows.
    let middle = cache.select(1..3);
    let d = lm.model.config.hidden;
    assert_eq!((middle.len(), middle.layers()), (2, lm.model.config.layers));
    assert_eq!(middle.hidden(), &cache.hidden()[d..3 * d]);
    let width = cache.keys(0).len() / cache.len();
    assert_eq!(middle.keys(1), &cache.keys(1)[width..3 * width]);
    assert_eq!(middle.values(0), &cache.values(0)[width..3 * width]);
}

#[test]
fn saved_rows_rebuild_the_cache_and_bad_shapes_are_refused() {
    let lm = tiny_llama();
    let mut cache = lm.model.new_cache();
    lm.model.forward(&mut cache, &FIRST).unwrap();
    let layers = cache.layers();
    let rows = |part: fn(&abridge_models::llama::KvCache, usize) -> &[f32]| {
        (0..layers)
            .map(|l| part(&cache, l).to_vec())
            .collect::<Vec<_>>()
    };
    let (keys, values) = (
        rows(abridge_models::llama::KvCache::keys),
        rows(abridge_models::llama::KvCache::values),
    );
    let rebuilt = lm
        .model
        .cache_from_rows(keys.clone(), values.clone(), cache.hidden().to_vec())
        .unwrap();
    assert_eq!(hidden_after(&lm, rebuilt), hidden_after(&lm, cache.clone()));

    let mut short = keys.clone();
    short[1].pop();
    assert!(lm
        .model
        .cache_from_rows(short, values.clone(), cache.hidden().to_vec())
        .is_err());
    assert!(lm
        .model
        .cache_from_rows(
            keys[..1].to_vec(),
            values[..1].to_vec(),
            cache.hidden().to_vec()
        )
        .is_err());
}

/// Zero-initialised B (PEFT's start) changes nothing; a non-zero one changes the output; a
/// wrong shape is refused.
#[test]
fn lora_forward_is_the_plain_forward_when_b_is_zero() {
    let lm = tiny_llama();
    let c = &lm.model.config;
    let adapters = |b_value: f32, input: usize| -> Vec<QvLora> {
        let low = |output: usize| {
            LowRank::new(
                Matrix::from_f32(
                    2,
                    input,
                    (0..2 * input).map(|i| (i % 7) as f32 * 0.1).collect(),
                ),
                Matrix::from_f32(output, 2, vec![b_value; output * 2]),
                2.0,
            )
        };
        (0..c.layers)
            .map(|_| QvLora {
                q: low(c.heads * c.head_dim),
                v: low(c.kv_heads * c.head_dim),
            })
            .collect()
    };
    let run = |lora: Option<&[QvLora]>| {
        let mut cache = lm.model.new_cache();
        lm.model
            .forward_with_lora(&mut cache, &FIRST, lora)
            .unwrap();
        cache.hidden().to_vec()
    };
    let plain = run(None);
    assert_eq!(run(Some(&adapters(0.0, c.hidden))), plain);
    assert_ne!(run(Some(&adapters(0.05, c.hidden))), plain);
    let mut cache = lm.model.new_cache();
    let wrong = adapters(0.05, c.hidden + 1);
    assert!(lm
        .model
        .forward_with_lora(&mut cache, &FIRST, Some(&wrong))
        .is_err());
}
