//! The differentiable pass against the runtime (tiny random llama and qwen2 fixtures, and the
//! real SmolLM2-135M), and its backward pass against finite differences (tiny fixtures).

use std::path::PathBuf;

use abridge_models::kernels::target_log_prob;
use abridge_models::{fetch, LanguageModel, LoadOptions};
use abridge_soft::differentiable::Differentiable;
use abridge_soft::loss::{head_loss, Targets};

fn tiny(name: &str) -> LanguageModel {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../abridge-models/tests/fixtures")
        .join(format!("{name}.gguf"));
    LanguageModel::load(&path, LoadOptions::default()).unwrap()
}

const TEXT: &str = "The quay was built by fishermen in 1871.";

/// Token embeddings fed as input vectors give the runtime's log-probabilities.
fn check_forward_parity(lm: &LanguageModel) {
    let mut ids = vec![lm.tokenizer.document_start()];
    ids.extend(lm.encode(TEXT).unwrap().iter().map(|t| t.id));
    let diff = Differentiable::new(&lm.model);
    let trace = diff.forward(diff.embed(&ids).unwrap()).unwrap();
    let (d, vocab) = (lm.model.config.hidden, lm.model.config.vocab);
    let mut logits = vec![0f32; trace.rows * vocab];
    lm.model
        .lm_head()
        .forward(&trace.hidden, trace.rows, &mut logits, 1);
    let ours: Vec<f32> = logits
        .chunks_exact(vocab)
        .zip(&ids[1..])
        .map(|(row, &id)| target_log_prob(row, id as usize))
        .collect();
    let mut cache = lm.model.new_cache();
    lm.model.forward(&mut cache, &ids).unwrap();
    let runtime = lm.model.next_token_log_probs(&cache, 0, &ids[1..]);
    let max_diff = ours
        .iter()
        .zip(&runtime)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-4, "max |Δ log p| = {max_diff}");
    assert_eq!(trace.hidden.len(), ids.len() * d);
}

#[test]
fn forward_equals_the_runtime_on_tiny_llama() {
    check_forward_parity(&tiny("tiny-llama"));
}

#[test]
fn forward_equals_the_runtime_on_tiny_qwen2() {
    check_forward_parity(&tiny("tiny-qwen2"));
}

#[test]
fn forward_equals_the_runtime_on_smollm2() {
    let path = fetch::default_model_path();
    let lm = LanguageModel::load(&path, LoadOptions::default()).unwrap_or_else(|e| {
        panic!("{e}\n(the tests need the default model: run scripts/fetch-models.sh)")
    });
    check_forward_parity(&lm);
}

/// Mean NLL of the text given `soft` (k vectors), and its gradient with respect to `soft`.
fn loss_and_gradient(lm: &LanguageModel, soft: &[f32], ids: &[u32]) -> (f64, Vec<f32>) {
    let diff = Differentiable::new(&lm.model);
    let mut x = soft.to_vec();
    x.extend(diff.embed(&ids[..ids.len() - 1]).unwrap());
    let trace = diff.forward(x).unwrap();
    let k = soft.len() / lm.model.config.hidden;
    let targets = Targets::Tokens(ids.to_vec());
    let weight = 1.0 / ids.len() as f32;
    let head = head_loss(&lm.model, &trace.hidden, k - 1, &targets, weight);
    let dx = diff.backward(&trace, &head.d_hidden);
    (head.sum / ids.len() as f64, dx[..soft.len()].to_vec())
}

/// Central differences along random directions and along the largest gradient coordinates.
fn check_gradient(lm: &LanguageModel) {
    let d = lm.model.config.hidden;
    let k = 3;
    let ids: Vec<u32> = lm.encode(TEXT).unwrap().iter().map(|t| t.id).collect();
    let noise = |i: usize, salt: f32| ((i as f32 * 12.9898 + salt).sin() * 43758.547).fract();
    let soft: Vec<f32> = (0..k * d).map(|i| noise(i, 1.0) * 0.5).collect();
    let (_, gradient) = loss_and_gradient(lm, &soft, &ids);
    let along = |direction: &[f32], eps: f32| {
        let shifted = |sign: f32| -> Vec<f32> {
            soft.iter()
                .zip(direction)
                .map(|(s, u)| s + sign * eps * u)
                .collect()
        };
        let (plus, _) = loss_and_gradient(lm, &shifted(1.0), &ids);
        let (minus, _) = loss_and_gradient(lm, &shifted(-1.0), &ids);
        (plus - minus) / (2.0 * f64::from(eps))
    };
    let mut directions: Vec<Vec<f32>> = (0..3)
        .map(|salt| {
            let u: Vec<f32> = (0..k * d).map(|i| noise(i, 7.0 + salt as f32)).collect();
            let norm = u.iter().map(|v| v * v).sum::<f32>().sqrt();
            u.iter().map(|v| v / norm).collect()
        })
        .collect();
    let mut order: Vec<usize> = (0..k * d).collect();
    order.sort_by(|&a, &b| gradient[b].abs().total_cmp(&gradient[a].abs()));
    for &i in &order[..3] {
        let mut unit = vec![0f32; k * d];
        unit[i] = 1.0;
        directions.push(unit);
    }
    for direction in &directions {
        let analytic: f64 = gradient
            .iter()
            .zip(direction)
            .map(|(g, u)| f64::from(g * u))
            .sum();
        let numeric = along(direction, 1e-2);
        let error = (analytic - numeric).abs() / analytic.abs().max(1e-3);
        assert!(
            error < 5e-3,
            "analytic {analytic:.6e} vs finite difference {numeric:.6e}"
        );
    }
}

#[test]
fn gradient_matches_finite_differences_on_tiny_llama() {
    check_gradient(&tiny("tiny-llama"));
}

#[test]
fn gradient_matches_finite_differences_on_tiny_qwen2() {
    check_gradient(&tiny("tiny-qwen2"));
}
