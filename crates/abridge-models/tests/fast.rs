//! abridge-fast with the shipped head on the real all-MiniLM-L6-v2: recorded outputs on fixed
//! inputs, the head applied by hand, and what it learned from its teacher.

use std::path::PathBuf;
use std::sync::OnceLock;

use abridge_core::{TokenClassifier, Uninterrupted};
use abridge_models::fast::sigmoid;
use abridge_models::FastClassifier;
use serde::{Deserialize, Serialize};

const TOLERANCE: f32 = 1e-4;

/// Fixed inputs: prose, a question, numbers, non-ASCII text, and one longer than a window.
fn inputs() -> Vec<String> {
    vec![
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.".into(),
        "Q: How many apples does Natalia sell in May if she sold 48 in April?".into(),
        "Zürich's old town — Altstadt — lies on both banks of the Limmat.".into(),
        "The committee met on Tuesday. ".repeat(120),
    ]
}

#[derive(Serialize, Deserialize)]
struct Recorded {
    text: String,
    /// Each token's byte range and keep-probability.
    tokens: Vec<(usize, usize, f32)>,
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fast-probabilities.json")
}

fn fast() -> &'static FastClassifier {
    static MODEL: OnceLock<FastClassifier> = OnceLock::new();
    MODEL.get_or_init(|| {
        FastClassifier::load_default().unwrap_or_else(|e| {
            panic!("{e}\n(the tests need all-MiniLM-L6-v2: run scripts/fetch-models.sh)")
        })
    })
}

/// `ABRIDGE_RECORD=1` rewrites the fixture (after retraining the head).
#[test]
fn shipped_head_reproduces_recorded_probabilities() {
    let texts = inputs();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got: Vec<Recorded> = fast()
        .keep_probabilities_of(&refs, &Uninterrupted)
        .unwrap()
        .into_iter()
        .zip(&texts)
        .map(|(tokens, text)| Recorded {
            text: text.clone(),
            tokens: tokens
                .into_iter()
                .map(|(span, p)| (span.start, span.end, p))
                .collect(),
        })
        .collect();
    if std::env::var_os("ABRIDGE_RECORD").is_some() {
        std::fs::write(fixture(), serde_json::to_string(&got).unwrap()).unwrap();
    }
    let want: Vec<Recorded> =
        serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    assert_eq!(got.len(), want.len());
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(got.text, want.text);
        assert_eq!(got.tokens.len(), want.tokens.len(), "{:?}", want.text);
        for (g, w) in got.tokens.iter().zip(&want.tokens) {
            assert_eq!((g.0, g.1), (w.0, w.1));
            assert!(
                (g.2 - w.2).abs() < TOLERANCE,
                "{:?} at {:?}: {g:?} vs {w:?}",
                want.text,
                w
            );
        }
    }
    // The long text is read in several windows and still gets every token.
    assert!(got[3].tokens.len() > fast().window_tokens());
}

#[test]
fn keep_probabilities_are_the_head_over_the_hidden_states() {
    let model = fast();
    let text = "Marie Curie won the Nobel Prize in Physics in 1903.";
    let (tokens, states) = model.hidden_states(&[text]).unwrap().pop().unwrap();
    let d = model.head.input;
    let probabilities = model.keep_probabilities(text).unwrap();
    assert_eq!(probabilities.len(), tokens.len());
    for ((token, x), (span, p)) in tokens
        .iter()
        .zip(states.chunks_exact(d))
        .zip(&probabilities)
    {
        assert_eq!(&token.span, span);
        // The head by hand: standardise, ReLU layer, sigmoid.
        let z: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v - model.head.mean[i]) * model.head.scale[i])
            .collect();
        let mut logit = model.head.b2;
        for j in 0..model.head.hidden {
            let row = &model.head.w1[j * d..(j + 1) * d];
            let a: f32 = row.iter().zip(&z).map(|(w, z)| w * z).sum::<f32>() + model.head.b1[j];
            logit += model.head.w2[j] * a.max(0.0);
        }
        assert!((sigmoid(logit) - p).abs() < 1e-5);
    }
    assert!(model.keep_probabilities("").unwrap().is_empty());
}

#[test]
fn names_score_above_function_words() {
    // What the teacher taught: surprising words (names) carry information, function words little.
    // (Digits it taught the other way: docs/QUALITY.md, GSM8K.)
    let text =
        "In 1969 the astronaut Neil Armstrong was the first of the crew to walk on the Moon.";
    let probabilities = fast().keep_probabilities(text).unwrap();
    let mean = |words: &[&str]| {
        let ps: Vec<f32> = probabilities
            .iter()
            .filter(|(span, _)| words.contains(&&text[span.clone()]))
            .map(|(_, p)| *p)
            .collect();
        assert!(!ps.is_empty(), "{words:?}");
        ps.iter().sum::<f32>() / ps.len() as f32
    };
    let content = mean(&["Armstrong", "Moon", "astronaut"]);
    let function = mean(&["the", "of", "to", "was"]);
    assert!(content > function + 0.1, "{content} vs {function}");
}
