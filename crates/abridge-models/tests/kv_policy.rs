//! KV-cache policies on the tiny llama: a budget that covers the prompt changes nothing, and a
//! smaller one keeps the positions each rule names, with their keys as computed.

use std::path::PathBuf;

use abridge_models::generate::{generate_with_policy, greedy, surprisal_with_policy};
use abridge_models::kv_policy::{self, KvPolicy, PolicyKind, Rule};
use abridge_models::llama::KvCache;
use abridge_models::{LanguageModel, LoadOptions};

fn tiny_llama() -> LanguageModel {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama.gguf");
    LanguageModel::load(&path, LoadOptions::default()).unwrap()
}

const PROMPT_LEN: usize = 40;

fn prompt() -> Vec<u32> {
    (0..PROMPT_LEN as u32).map(|i| (i * 37 + 5) % 250).collect()
}

/// The plain forward over `ids` in chunks of `step` (the policies' reading order).
fn plain(lm: &LanguageModel, ids: &[u32], step: usize) -> KvCache {
    let mut cache = lm.model.new_cache();
    for chunk in ids.chunks(step) {
        lm.model.forward(&mut cache, chunk).unwrap();
    }
    cache
}

/// `kind` at `budget` with small settings, reading 8 tokens between evictions.
fn policy(kind: PolicyKind, budget: usize) -> KvPolicy {
    let mut policy = KvPolicy::new(kind, budget);
    policy.step = 8;
    policy.rule = match kind {
        PolicyKind::Streaming => Rule::Streaming { sinks: 4 },
        PolicyKind::HeavyHitters => Rule::HeavyHitters { recent: 6 },
        PolicyKind::SnapKv => Rule::SnapKv {
            window: 4,
            kernel: 3,
        },
    };
    policy
}

/// The rows of `layer` (keys or values) at `positions` for KV head `head`.
fn head_rows(rows: &[f32], width: usize, head_dim: usize, head: usize, at: &[usize]) -> Vec<f32> {
    at.iter()
        .flat_map(|&p| rows[p * width + head * head_dim..][..head_dim].to_vec())
        .collect()
}

#[test]
fn a_budget_that_covers_the_prompt_is_the_full_cache() {
    let lm = tiny_llama();
    let ids = prompt();
    for kind in PolicyKind::ALL {
        let policy = policy(kind, PROMPT_LEN);
        // SnapKV reads the prompt at once; the others in steps.
        let step = match kind {
            PolicyKind::SnapKv => PROMPT_LEN,
            _ => policy.step,
        };
        let mut full = plain(&lm, &ids, step);
        let read = kv_policy::read(&lm.model, &ids, &policy).unwrap();
        let name = kind.name();
        assert_eq!(read.cache.len(), PROMPT_LEN, "{name}");
        for layer in 0..full.layers() {
            assert_eq!(read.cache.keys(layer), full.keys(layer), "{name}");
            assert_eq!(read.cache.values(layer), full.values(layer), "{name}");
            for head in 0..lm.model.config.kv_heads {
                let all: Vec<usize> = (0..PROMPT_LEN).collect();
                assert_eq!(read.positions(layer, head), all, "{name}");
            }
        }
        assert_eq!(read.cache.hidden(), full.hidden(), "{name}");
        let last = PROMPT_LEN - 1;
        assert_eq!(
            lm.model.next_token_logits(&read.cache, last),
            lm.model.next_token_logits(&full, last),
            "{name}"
        );
        // Answering from it is answering from the full cache.
        let answer = generate_with_policy(&lm, &ids, 6, &policy).unwrap();
        let expected = greedy(&lm, &mut full, None, 6, &mut |_| {}).unwrap();
        assert_eq!(answer, expected, "{name}");
        // And so is scoring a continuation teacher-forced.
        let continuation = [17, 99, 3, 42];
        assert_eq!(
            surprisal_with_policy(&lm, &ids, &continuation, &policy).unwrap(),
            lm.extend(&mut plain(&lm, &ids, step), &continuation)
                .unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_smaller_budget_changes_what_a_continuation_costs() {
    let lm = tiny_llama();
    let ids = prompt();
    let continuation = [17, 99, 3, 42];
    let full = lm.extend(&mut plain(&lm, &ids, 8), &continuation).unwrap();
    for kind in PolicyKind::ALL {
        let evicted = surprisal_with_policy(&lm, &ids, &continuation, &policy(kind, 12)).unwrap();
        assert_eq!(evicted.len(), continuation.len());
        assert!(evicted.iter().all(|s| s.is_finite() && *s >= 0.0));
        assert_ne!(evicted, full, "{}", kind.name());
    }
}

#[test]
fn streaming_keeps_the_sinks_and_the_latest_positions_at_their_own_rotation() {
    let lm = tiny_llama();
    let ids = prompt();
    let policy = policy(PolicyKind::Streaming, 12);
    let mut read = kv_policy::read(&lm.model, &ids, &policy).unwrap();
    let kept: Vec<usize> = (0..4).chain(PROMPT_LEN - 8..PROMPT_LEN).collect();
    let c = &lm.model.config;
    for layer in 0..c.layers {
        for head in 0..c.kv_heads {
            assert_eq!(read.positions(layer, head), kept);
        }
    }
    assert_eq!(
        (read.cache.len(), read.cache.positions_read()),
        (12, PROMPT_LEN)
    );
    // Reading 8 tokens between evictions, it never held more than the budget and one step.
    assert_eq!(read.peak_rows, 12 + policy.step);
    let snapkv = kv_policy::read(&lm.model, &ids, &self::policy(PolicyKind::SnapKv, 12)).unwrap();
    assert_eq!((snapkv.peak_rows, snapkv.cache.len()), (PROMPT_LEN, 12));
    // The first layer's keys depend on their own token and position only: the kept rows are
    // the full cache's rows at the kept positions.
    let mut full = plain(&lm, &ids, policy.step);
    let (width, head_dim) = (c.kv_heads * c.head_dim, c.head_dim);
    for head in 0..c.kv_heads {
        assert_eq!(
            head_rows(
                read.cache.keys(0),
                width,
                head_dim,
                head,
                &(0..12).collect::<Vec<_>>()
            ),
            head_rows(full.keys(0), width, head_dim, head, &kept)
        );
    }
    // The next token is rotated at its original position, 40, not at its row, 12.
    lm.model.forward(&mut read.cache, &[9]).unwrap();
    lm.model.forward(&mut full, &[9]).unwrap();
    assert_eq!(
        &read.cache.keys(0)[12 * width..],
        &full.keys(0)[PROMPT_LEN * width..]
    );
    assert_eq!(read.cache.positions_read(), PROMPT_LEN + 1);
}

#[test]
fn h2o_keeps_the_recent_window_and_heavy_hitters_in_every_head() {
    let lm = tiny_llama();
    let ids = prompt();
    let read = kv_policy::read(&lm.model, &ids, &policy(PolicyKind::HeavyHitters, 12)).unwrap();
    let c = &lm.model.config;
    assert_eq!(read.cache.len(), 12);
    for layer in 0..c.layers {
        for head in 0..c.kv_heads {
            let positions = read.positions(layer, head);
            assert_eq!(positions.len(), 12);
            assert_eq!(
                positions[6..],
                (PROMPT_LEN - 6..PROMPT_LEN).collect::<Vec<_>>()[..]
            );
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        }
    }
    // Each KV head chooses its own heavy hitters.
    assert_ne!(read.positions(1, 0), read.positions(1, 1));
    // Answering reads on from the evicted cache.
    let answer = generate_with_policy(&lm, &ids, 4, &policy(PolicyKind::HeavyHitters, 12));
    assert_eq!(answer.unwrap().len(), 4);
}

#[test]
fn snapkv_keeps_the_observation_window_and_the_rows_as_read() {
    let lm = tiny_llama();
    let ids = prompt();
    let read = kv_policy::read(&lm.model, &ids, &policy(PolicyKind::SnapKv, 12)).unwrap();
    // SnapKV evicts once, after the whole prompt: every kept row is the full cache's row.
    let full = plain(&lm, &ids, PROMPT_LEN);
    let c = &lm.model.config;
    let (width, head_dim) = (c.kv_heads * c.head_dim, c.head_dim);
    let rows: Vec<usize> = (0..12).collect();
    for layer in 0..c.layers {
        for head in 0..c.kv_heads {
            let positions = read.positions(layer, head);
            assert_eq!(positions[8..], [36, 37, 38, 39]);
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
            for (read_rows, full_rows) in [
                (read.cache.keys(layer), full.keys(layer)),
                (read.cache.values(layer), full.values(layer)),
            ] {
                assert_eq!(
                    head_rows(read_rows, width, head_dim, head, &rows),
                    head_rows(full_rows, width, head_dim, head, &positions)
                );
            }
        }
    }
    assert_ne!(read.positions(0, 0), read.positions(0, 1));
    assert_eq!(
        read.cache.hidden(),
        &full.hidden()[(PROMPT_LEN - 12) * c.hidden..]
    );
}

#[test]
fn empty_prompts_and_budgets_without_room_are_refused() {
    let lm = tiny_llama();
    let error = kv_policy::read(&lm.model, &[], &KvPolicy::new(PolicyKind::SnapKv, 8));
    assert!(error.is_err());
    let error = kv_policy::read(
        &lm.model,
        &prompt(),
        &KvPolicy::new(PolicyKind::Streaming, 3),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("raise the budget"), "{error}");
}
