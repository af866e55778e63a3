//! Trained compressors (ICAE, 500xCompressor, GIST) on the tiny random llama, with the random
//! adapter of `scripts/reference/compressor_reference.py`:
//!
//! - the encoder's slots and KV prefix and the three decoders' logits equal those of
//!   `scripts/soft/train_icae.py`'s own model on a fixed input;
//! - 500x and GIST decoding from the extracted prefix equals a naive forward over the whole
//!   sequence with explicit positions, attention mask and per-position adapters, and GIST's
//!   decoder really is the adapted model;
//! - compressed files round-trip and refuse another model; bad inputs are refused.

use std::path::PathBuf;

use abridge_models::lora::QvLora;
use abridge_models::{LanguageModel, LoadOptions};
use abridge_soft::compressor::MAX_TEXT_TOKENS;
use abridge_soft::{Adapter, CompressedPrompt, Compressor, Error, Memory, Method, ModelId, Task};
use serde_json::Value;

fn tiny_llama() -> (LanguageModel, ModelId) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../abridge-models/tests/fixtures/tiny-llama.gguf");
    let lm = LanguageModel::load(&path, LoadOptions::default()).unwrap();
    (lm, ModelId::of_file(&path).unwrap())
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture_path("compressor-reference.json")).unwrap(),
    )
    .unwrap()
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// A JSON matrix, row-major.
fn flat(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The test adapter, as `method`.
fn compressor(lm: &LanguageModel, model: &ModelId, method: Method) -> Compressor {
    let path = fixture_path("tiny-compressor.safetensors");
    let mut adapter = Adapter::load(&path, &lm.model.config).unwrap();
    adapter.check_model(&path, model).unwrap();
    adapter.method = method;
    let sha256 = abridge_models::fetch::sha256_file(&path).unwrap();
    Compressor::new(adapter, sha256, lm)
}

/// Logits at the indicator and every one of `ids` after `prompt`'s memory (`task`'s
/// indicator), decoded as the prompt's method says.
fn decoder_logits(
    lm: &LanguageModel,
    prompt: &CompressedPrompt,
    adapter: Option<&Compressor>,
    task: Task,
    ids: &[u32],
) -> Vec<f32> {
    let lora = prompt.decoder_lora(adapter).unwrap();
    let mut cache = prompt.decoder_cache(lm, task, lora).unwrap();
    let first = cache.len() - 1;
    lm.model.forward_with_lora(&mut cache, ids, lora).unwrap();
    (first..cache.len())
        .flat_map(|position| lm.model.next_token_logits(&cache, position))
        .collect()
}

const TOLERANCE: f32 = 1e-4;

#[test]
fn encoder_and_decoders_match_the_trainer() {
    let (lm, model) = tiny_llama();
    let reference = reference();
    let (text, ids) = (ids(&reference["text"]), ids(&reference["ids"]));

    let icae = compressor(&lm, &model, Method::Icae);
    let prompt = icae.compress(&lm, &model, &text).unwrap();
    let Memory::Slots(slots) = &prompt.memory else {
        panic!("ICAE gives slots")
    };
    let diff = max_diff(slots, &flat(&reference["icae_slots"]));
    assert!(diff < TOLERANCE, "ICAE slots differ by {diff}");
    let logits = decoder_logits(&lm, &prompt, None, Task::Regenerate, &ids);
    let diff = max_diff(&logits, &flat(&reference["icae_logits"]));
    assert!(diff < TOLERANCE, "ICAE decoder logits differ by {diff}");

    for (method, key) in [
        (Method::KvPrefix, "kv_prefix_logits"),
        (Method::Gist, "gist_logits"),
    ] {
        let adapter = compressor(&lm, &model, method);
        let prompt = adapter.compress(&lm, &model, &text).unwrap();
        let Memory::KvPrefix(cache) = &prompt.memory else {
            panic!("{method} gives a KV prefix")
        };
        assert_eq!(cache.len(), adapter.adapter.k);
        for layer in 0..lm.model.config.layers {
            for (mine, theirs) in [
                (cache.keys(layer), &reference["prefix_keys"][layer]),
                (cache.values(layer), &reference["prefix_values"][layer]),
            ] {
                let diff = max_diff(mine, &flat(theirs));
                assert!(
                    diff < TOLERANCE,
                    "{method} layer {layer} prefix differs by {diff}"
                );
            }
        }
        let logits = decoder_logits(&lm, &prompt, Some(&adapter), Task::Regenerate, &ids);
        let diff = max_diff(&logits, &flat(&reference[key]));
        assert!(diff < TOLERANCE, "{method} decoder logits differ by {diff}");
    }
}

/// Naive llama over `rows` (input vectors) at explicit `positions`: row i attends to row j
/// when `sees(i, j)`, and its query/value projections carry `lora` when `adapted[i]`. Returns
/// the logits of every row. Nothing is cached or chunked; the projections are the model's own
/// matrices and rotation, the rest is written out here.
fn naive_logits(
    lm: &LanguageModel,
    rows: &[f32],
    positions: &[usize],
    sees: &dyn Fn(usize, usize) -> bool,
    adapted: &[bool],
    lora: &[QvLora],
) -> Vec<f32> {
    let c = &lm.model.config;
    let (d, hd) = (c.hidden, c.head_dim);
    let (qw, kvw) = (c.heads * hd, c.kv_heads * hd);
    let n = positions.len();
    let rms = |x: &[f32], w: &[f32]| -> Vec<f32> {
        let mean = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        let s = 1.0 / (mean + c.rms_eps).sqrt();
        x.iter().zip(w).map(|(v, w)| v * s * w).collect()
    };
    let project = |m: &abridge_models::matrix::Matrix, x: &[f32], out: usize| {
        let mut y = vec![0f32; out];
        m.forward(x, 1, &mut y, 1);
        y
    };
    let mut x = rows.to_vec();
    for (i, layer) in lm.model.layers().iter().enumerate() {
        let (mut q, mut k, mut v) = (vec![], vec![], vec![]);
        for r in 0..n {
            let h = rms(&x[r * d..(r + 1) * d], &layer.attn_norm);
            let mut qr = project(&layer.q.weight, &h, qw);
            let mut kr = project(&layer.k.weight, &h, kvw);
            let mut vr = project(&layer.v.weight, &h, kvw);
            if adapted[r] {
                lora[i].q.add_forward(&h, 1, &mut qr, 1);
                lora[i].v.add_forward(&h, 1, &mut vr, 1);
            }
            lm.model.rope().apply(&mut qr, qw, hd, positions[r]);
            lm.model.rope().apply(&mut kr, kvw, hd, positions[r]);
            q.push(qr);
            k.push(kr);
            v.push(vr);
        }
        let group = c.heads / c.kv_heads;
        for r in 0..n {
            let mut attended = vec![0f32; qw];
            for head in 0..c.heads {
                let kv = (head / group) * hd;
                let qh = &q[r][head * hd..(head + 1) * hd];
                let visible: Vec<usize> = (0..n).filter(|&j| sees(r, j)).collect();
                let scores: Vec<f32> = visible
                    .iter()
                    .map(|&j| {
                        qh.iter()
                            .zip(&k[j][kv..kv + hd])
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                            / (hd as f32).sqrt()
                    })
                    .collect();
                let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let weights: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
                let total: f32 = weights.iter().sum();
                for (&j, w) in visible.iter().zip(&weights) {
                    for t in 0..hd {
                        attended[head * hd + t] += w / total * v[j][kv + t];
                    }
                }
            }
            let out = project(&layer.output, &attended, d);
            x[r * d..(r + 1) * d]
                .iter_mut()
                .zip(&out)
                .for_each(|(a, b)| *a += b);
            let h = rms(&x[r * d..(r + 1) * d], &layer.ffn_norm);
            let gate = project(&layer.gate, &h, c.ffn);
            let up = project(&layer.up, &h, c.ffn);
            let act: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = project(&layer.down, &act, d);
            x[r * d..(r + 1) * d]
                .iter_mut()
                .zip(&down)
                .for_each(|(a, b)| *a += b);
        }
    }
    (0..n)
        .flat_map(|r| {
            let h = rms(&x[r * d..(r + 1) * d], lm.model.output_norm());
            project(lm.model.lm_head(), &h, c.vocab)
        })
        .collect()
}

#[test]
fn prefix_decoding_equals_a_naive_masked_forward() {
    let (lm, model) = tiny_llama();
    let reference = reference();
    let (text, ids) = (ids(&reference["text"]), ids(&reference["ids"]));
    let d = lm.model.config.hidden;
    let mut logits_of = Vec::new();
    for method in [Method::KvPrefix, Method::Gist] {
        let adapter = compressor(&lm, &model, method);
        let k = adapter.adapter.k;
        let (l, t) = (text.len(), ids.len() + 1);
        // One sequence: text (0..L), memory (L..L+k), then [AE; ids] at positions k...
        let embed = |tokens: &[u32]| -> Vec<f32> {
            let mut rows = vec![0f32; tokens.len() * d];
            for (row, &id) in rows.chunks_exact_mut(d).zip(tokens) {
                lm.model.embedding().row(id as usize, row);
            }
            rows
        };
        let weights = &adapter.adapter.weights;
        let rows = [
            embed(&text),
            weights.memory.clone(),
            weights.ae_token.clone(),
            embed(&ids),
        ]
        .concat();
        let positions: Vec<usize> = (0..l + k).chain(k..k + t).collect();
        let encoder = l + k;
        // The encoder is causal; the decoder sees the memory positions and itself, causally.
        let sees = |i: usize, j: usize| {
            if i < encoder {
                j <= i
            } else {
                (l..encoder).contains(&j) || (encoder..=i).contains(&j)
            }
        };
        let adapted: Vec<bool> = (0..encoder + t)
            .map(|i| i < encoder || method == Method::Gist)
            .collect();
        let naive = naive_logits(&lm, &rows, &positions, &sees, &adapted, adapter.lora());
        let naive_decoder = &naive[encoder * lm.model.config.vocab..];

        let prompt = adapter.compress(&lm, &model, &text).unwrap();
        let logits = decoder_logits(&lm, &prompt, Some(&adapter), Task::Regenerate, &ids);
        let diff = max_diff(&logits, naive_decoder);
        assert!(
            diff < TOLERANCE,
            "{method}: prefix decoding differs from the naive forward by {diff}"
        );
        logits_of.push(logits);
    }
    // GIST's decoder is the adapted model: on the same adapter its logits are not 500x's.
    let diff = max_diff(&logits_of[0], &logits_of[1]);
    assert!(
        diff > 0.1,
        "GIST decodes like 500x (max logit difference {diff})"
    );
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("abridge-compressor-{}-{name}", std::process::id()))
}

#[test]
fn compressed_files_round_trip_and_refuse_another_model() {
    let (lm, model) = tiny_llama();
    let reference = reference();
    let (text, ids) = (ids(&reference["text"]), ids(&reference["ids"]));
    for method in [Method::Icae, Method::KvPrefix, Method::Gist] {
        let adapter = compressor(&lm, &model, method);
        let prompt = adapter.compress(&lm, &model, &text).unwrap();
        let path = temp(&format!("{method}.safetensors"));
        prompt.save(&path).unwrap();
        let loaded = CompressedPrompt::load(&path, &lm, &model);
        let other = ModelId {
            file: "other.gguf".into(),
            sha256: "0".repeat(64),
        };
        let refused = CompressedPrompt::load(&path, &lm, &other);
        std::fs::remove_file(&path).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(
            (
                loaded.method,
                loaded.k,
                loaded.text_tokens,
                &loaded.adapter_sha256
            ),
            (method, prompt.k, text.len(), &adapter.sha256)
        );
        for task in [Task::Regenerate, Task::Continue] {
            assert_eq!(
                decoder_logits(&lm, &loaded, Some(&adapter), task, &ids),
                decoder_logits(&lm, &prompt, Some(&adapter), task, &ids),
                "{method} {task:?}"
            );
        }
        assert!(
            matches!(refused, Err(Error::CompressedModelMismatch { .. })),
            "{method}: a file for another model must be refused"
        );
    }
}

#[test]
fn bad_inputs_are_refused() {
    let (lm, model) = tiny_llama();
    let adapter_path = fixture_path("tiny-compressor.safetensors");
    let other = ModelId {
        file: "other.gguf".into(),
        sha256: "0".repeat(64),
    };
    assert!(matches!(
        Compressor::open(&adapter_path, &lm, &other),
        Err(Error::AdapterModelMismatch { .. })
    ));
    // The shipped SmolLM2 adapter on the tiny model: named as another model's, not as a shape.
    let shipped =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/soft/500x-k16.safetensors");
    assert!(matches!(
        Compressor::open(&shipped, &lm, &model),
        Err(Error::AdapterModelMismatch { .. })
    ));
    assert!(matches!(
        Compressor::open(&temp("missing.safetensors"), &lm, &model),
        Err(Error::AdapterNotFound { .. })
    ));
    let adapter = Compressor::open(&adapter_path, &lm, &model).unwrap();
    assert!(matches!(
        adapter.compress(&lm, &model, &[]),
        Err(Error::InvalidInput(_))
    ));
    let long = vec![5u32; MAX_TEXT_TOKENS + 1];
    assert!(matches!(
        adapter.compress(&lm, &model, &long),
        Err(Error::InvalidInput(_))
    ));
    // A GIST memory cannot be decoded without its adapter, nor with another one.
    let gist = compressor(&lm, &model, Method::Gist);
    let prompt = gist.compress(&lm, &model, &[5, 17, 42]).unwrap();
    assert!(prompt.decoder_lora(None).is_err());
    assert!(
        prompt.decoder_lora(Some(&adapter)).is_err(),
        "a 500x adapter is not GIST's"
    );
    assert!(prompt.decoder_lora(Some(&gist)).unwrap().is_some());
}

#[test]
fn evaluation_runs_on_the_tiny_model_and_its_baselines_agree() {
    use abridge_soft::compressor_eval::{baselines, score, Setting, Window};
    let (lm, model) = tiny_llama();
    let texts: Vec<Window> = [("a", 5u32), ("a", 40), ("b", 90)]
        .iter()
        .map(|&(document, first)| Window {
            document: document.into(),
            ids: (first..first + 12).collect(),
        })
        .collect();
    let setting = Setting {
        length: 8,
        continuation: 4,
        regenerate: true,
    };
    // Keeping the last k >= L tokens is the full text.
    let plain = baselines(&lm, &texts, setting, 8, &mut || {}).unwrap();
    assert_eq!(plain.truncated, plain.full);
    assert!(plain.none.is_finite() && plain.none > 1.0);
    let adapter = compressor(&lm, &model, Method::KvPrefix);
    let mut calls = 0;
    let scores = score(&lm, &model, &adapter, &texts, setting, &mut || calls += 1).unwrap();
    assert_eq!(calls, 2 * texts.len());
    assert!(scores.memory.is_finite() && scores.mismatched.is_finite());
    assert_ne!(scores.memory, scores.mismatched);
    let accuracy = scores.token_accuracy.unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    let one_document: Vec<Window> = texts
        .iter()
        .map(|w| Window {
            document: "a".into(),
            ..w.clone()
        })
        .collect();
    assert!(score(&lm, &model, &adapter, &one_document, setting, &mut || {}).is_err());
}
