//! Our runtime against the independent references in `scripts/reference/`: a float64 numpy
//! forward pass on gguf-py's dequantisation, and llama.cpp's tokenizer.

mod common;

use std::path::PathBuf;

use abridge_models::gguf::GgufFile;
use abridge_models::{LanguageModel, LoadOptions, WeightFormat};
use common::{max_abs_diff, smollm2};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn numbers<T: From<f32>>(value: &Value) -> Vec<T> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| T::from(v.as_f64().unwrap() as f32))
        .collect()
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// Checks every sequence of a reference file: ids of its text (if any) and log-probs.
fn check_sequences(lm: &LanguageModel, sequences: &Value, tolerance: f32) {
    for sequence in sequences.as_array().unwrap() {
        let expected_ids = ids(&sequence["ids"]);
        if let Some(text) = sequence["text"].as_str() {
            let ours: Vec<u32> = lm.encode(text).unwrap().iter().map(|t| t.id).collect();
            assert_eq!(ours, expected_ids, "{text:?}");
        }
        let expected: Vec<f32> = numbers(&sequence["logprobs"]);
        let mut cache = lm.start().unwrap();
        let ours: Vec<f32> = lm
            .extend(&mut cache, &expected_ids)
            .unwrap()
            .into_iter()
            .map(|s| -s)
            .collect();
        let diff = max_abs_diff(&ours, &expected);
        assert!(
            diff <= tolerance,
            "{:?}: max |Δ log p| = {diff}",
            sequence["text"]
        );
    }
}

#[test]
fn smollm2_log_probs_match_the_float64_reference() {
    let reference = json("smollm2_logprobs.json");
    assert_eq!(
        reference["model_sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    assert_eq!(
        reference["start_token_id"],
        smollm2().tokenizer.document_start()
    );
    check_sequences(smollm2(), &reference["texts"], 1e-3);
}

#[test]
fn smollm2_token_ids_equal_llama_cpp() {
    let reference = json("tokenizer_ids.json");
    for case in reference["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let tokens = smollm2().encode(text).unwrap();
        let ours: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        assert_eq!(ours, ids(&case["ids"]), "{text:?}");
        assert_eq!(smollm2().tokenizer.decode(&ours), text);
    }
}

fn tiny(name: &str) -> (LanguageModel, Value) {
    let reference = json(&format!("{name}.json"));
    let lm =
        LanguageModel::load(&fixture(&format!("{name}.gguf")), LoadOptions::default()).unwrap();
    (lm, reference)
}

#[test]
fn tiny_llama_matches_the_reference() {
    let (lm, reference) = tiny("tiny-llama");
    check_sequences(&lm, &reference["sequences"], 1e-4);
}

#[test]
fn tiny_qwen2_with_biases_and_untied_head_matches_the_reference() {
    let (lm, reference) = tiny("tiny-qwen2");
    check_sequences(&lm, &reference["sequences"], 1e-4);
    let low_memory = LanguageModel::load(
        &fixture("tiny-qwen2.gguf"),
        LoadOptions {
            weights: WeightFormat::Gguf,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    check_sequences(&low_memory, &reference["sequences"], 1e-4);
}

/// The portable kernel bodies (what a CPU without AVX2 runs) meet the same references. Other
/// tests of this binary may run on them meanwhile; they are as exact, so nothing else changes.
#[test]
fn portable_kernels_match_the_references_too() {
    abridge_models::kernels::force_portable(true);
    let reference = json("smollm2_logprobs.json");
    check_sequences(smollm2(), &reference["texts"], 1e-3);
    let (lm, reference) = tiny("tiny-qwen2");
    check_sequences(&lm, &reference["sequences"], 1e-4);
    abridge_models::kernels::force_portable(false);
}

/// Every tensor type in the tiny files (F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K) decodes
/// as gguf-py does (which matches ggml's own C code bit for bit).
#[test]
fn dequantisation_matches_gguf_py_for_every_type() {
    let mut types_seen = std::collections::BTreeSet::new();
    for name in ["tiny-llama", "tiny-qwen2"] {
        let reference = json(&format!("{name}.json"));
        let gguf = GgufFile::open(&fixture(&format!("{name}.gguf"))).unwrap();
        for (tensor, expected) in reference["dequant"].as_object().unwrap() {
            let info = &gguf.tensors[tensor];
            let mut values = vec![0f32; info.element_count()];
            info.dtype.dequantize(gguf.tensor_data(info), &mut values);
            let first: Vec<f32> = numbers(&expected["first8"]);
            assert_eq!(&values[..first.len()], &first[..], "{name} {tensor}");
            let strided: Vec<f32> = values.iter().step_by(97).take(64).copied().collect();
            assert_eq!(
                strided,
                numbers::<f32>(&expected["every97th"]),
                "{name} {tensor}"
            );
            let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
            let expected_sum = expected["sum"].as_f64().unwrap();
            assert!(
                (sum - expected_sum).abs() <= 1e-6 * expected["sum_abs"].as_f64().unwrap().max(1.0)
            );
            types_seen.insert(expected["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(types_seen.len(), 8, "{types_seen:?}");
}
