//! Fitting, saving and using soft prompts on the tiny random llama fixture.

use std::path::{Path, PathBuf};

use abridge_models::{LanguageModel, LoadOptions};
use abridge_soft::{fit, prefix, Error, FitOptions, Init, ModelId, Objective, SoftPrompt};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../abridge-models/tests/fixtures")
        .join(name)
}

fn tiny_llama() -> (LanguageModel, ModelId) {
    let path = fixture("tiny-llama.gguf");
    let lm = LanguageModel::load(&path, LoadOptions::default()).unwrap();
    (lm, ModelId::of_file(&path).unwrap())
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("abridge-soft-{}-{name}", std::process::id()))
}

const TEXT: &str = "The harbour town of Vellmouth";
/// Short enough for 4 vectors on the tiny random model (its tokens are nearly bytes).
const SHORT_TEXT: &str = "fishermen";

fn cram_options() -> FitOptions {
    FitOptions {
        tokens: 4,
        steps: 100,
        lr: 0.1,
        ..FitOptions::default()
    }
}

#[test]
fn cram_fit_regenerates_the_text_exactly() {
    let (lm, id) = tiny_llama();
    let mut losses = Vec::new();
    let fitted = fit(&lm, id, SHORT_TEXT, &cram_options(), &mut |p| {
        losses.push(p.loss)
    })
    .unwrap();
    assert!(fitted.exact, "losses {losses:?}");
    assert!(fitted.soft.fit.steps < 100 && losses.len() == fitted.soft.fit.steps);
    assert!(losses.last().unwrap() < &losses[0]);
    let ids: Vec<u32> = lm
        .encode(SHORT_TEXT)
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    let regenerated = prefix::generate(&lm, &fitted.soft, &[], ids.len()).unwrap();
    assert_eq!(lm.tokenizer.decode(&regenerated), SHORT_TEXT);
    // Scoring with the soft prompt agrees with the fit's loss.
    let log_likelihood = prefix::log_likelihoods(&lm, &fitted.soft, &ids).unwrap();
    let nll = -log_likelihood.iter().map(|&v| f64::from(v)).sum::<f64>() / ids.len() as f64;
    assert!(
        (nll - fitted.soft.fit.loss).abs() < 1e-3,
        "{nll} {}",
        fitted.soft.fit.loss
    );
}

#[test]
fn the_same_seed_gives_the_same_soft_prompt() {
    let (lm, id) = tiny_llama();
    let options = FitOptions {
        steps: 5,
        init: Init::Random,
        seed: 7,
        ..cram_options()
    };
    let run = || {
        fit(&lm, id.clone(), TEXT, &options, &mut |_| {})
            .unwrap()
            .soft
    };
    assert_eq!(run(), run());
    let other = FitOptions {
        seed: 8,
        ..options.clone()
    };
    assert_ne!(
        fit(&lm, id.clone(), TEXT, &other, &mut |_| {})
            .unwrap()
            .soft,
        run()
    );
}

#[test]
fn distill_lowers_the_kl_to_the_hard_prompt() {
    let (lm, id) = tiny_llama();
    let options = FitOptions {
        tokens: 2,
        steps: 30,
        lr: 0.05,
        objective: Objective::Distill,
        queries: vec!["Where is it?".into(), "Who built it?".into()],
        answer_tokens: 6,
        ..FitOptions::default()
    };
    let mut losses = Vec::new();
    let fitted = fit(&lm, id, TEXT, &options, &mut |p| losses.push(p.loss)).unwrap();
    assert!(!fitted.exact);
    assert!(fitted.soft.fit.loss < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn save_and_load_round_trip_and_refuse_another_model() {
    let (lm, id) = tiny_llama();
    let options = FitOptions {
        steps: 2,
        ..cram_options()
    };
    let soft = fit(&lm, id.clone(), TEXT, &options, &mut |_| {})
        .unwrap()
        .soft;
    let path = temp("round-trip.safetensors");
    soft.save(&path).unwrap();
    let loaded = SoftPrompt::load(&path).unwrap();
    assert_eq!(loaded, soft);
    loaded.check_model(&path, &id).unwrap();
    let qwen = ModelId::of_file(&fixture("tiny-qwen2.gguf")).unwrap();
    let refused = loaded.check_model(&path, &qwen).unwrap_err();
    let message = refused.to_string();
    assert!(matches!(refused, Error::ModelMismatch { .. }));
    assert!(
        message.contains("tiny-llama.gguf") && message.contains("tiny-qwen2.gguf"),
        "{message}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn broken_or_missing_files_are_refused_clearly() {
    let missing = SoftPrompt::load(Path::new("/nonexistent/soft.safetensors")).unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    let path = temp("garbage.safetensors");
    std::fs::write(&path, b"not a soft prompt").unwrap();
    assert!(matches!(
        SoftPrompt::load(&path),
        Err(Error::InvalidFile { .. })
    ));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn bad_options_are_refused() {
    let (lm, id) = tiny_llama();
    let cases = [
        (
            FitOptions {
                tokens: 0,
                ..cram_options()
            },
            TEXT,
            "--tokens",
        ),
        (
            FitOptions {
                steps: 0,
                ..cram_options()
            },
            TEXT,
            "--steps",
        ),
        (
            FitOptions {
                lr: -1.0,
                ..cram_options()
            },
            TEXT,
            "--lr",
        ),
        (cram_options(), "", "empty"),
        (
            FitOptions {
                objective: Objective::Distill,
                ..cram_options()
            },
            TEXT,
            "--queries",
        ),
    ];
    for (options, text, expected) in cases {
        let error = fit(&lm, id.clone(), text, &options, &mut |_| {}).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
}
