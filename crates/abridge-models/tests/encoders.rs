//! The BERT / XLM-RoBERTa encoder runtime against scripts/reference/encoder_reference.py (a
//! numpy forward pass, itself checked against transformers and sentence-transformers): random
//! checkpoints of both LLMLingua-2 architectures, and the real all-MiniLM-L6-v2.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use abridge_core::{Embedder, TokenClassifier, Uninterrupted};
use abridge_models::token_classifier::keep_probability;
use abridge_models::{Error, SentenceEncoder, TokenClassificationModel};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct TextReference {
    text: String,
    ids: Vec<u32>,
    offsets: Vec<[usize; 2]>,
    #[serde(default)]
    logits: Vec<Vec<f32>>,
    #[serde(default)]
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct Framed {
    input_ids: Vec<Vec<u32>>,
    logits: Vec<Vec<Vec<f32>>>,
}

#[derive(Deserialize)]
struct Reference {
    capacity: usize,
    texts: Vec<TextReference>,
    framed: Option<Framed>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference(path: &Path) -> Reference {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_tokenizer(encode: impl Fn(&str) -> Vec<abridge_core::ModelToken>, r: &Reference) {
    for text in &r.texts {
        let tokens = encode(&text.text);
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        let offsets: Vec<[usize; 2]> = tokens.iter().map(|t| [t.span.start, t.span.end]).collect();
        assert_eq!(ids, text.ids, "{:?}", text.text);
        assert_eq!(offsets, text.offsets, "{:?}", text.text);
    }
}

fn check_classifier(name: &str) {
    let dir = fixtures().join(name);
    let model = TokenClassificationModel::load(&dir).unwrap();
    let r = reference(&dir.join("reference.json"));
    assert_eq!(model.window_tokens(), r.capacity);
    check_tokenizer(|text| model.tokenizer.encode(text).unwrap(), &r);

    // Every text in one batch: short ones, the empty one and one over 512 tokens (windows).
    let texts: Vec<&str> = r.texts.iter().map(|t| t.text.as_str()).collect();
    assert!(r.texts.iter().any(|t| t.ids.len() > 512));
    let results = model.token_logits(&texts, &Uninterrupted).unwrap();
    for (got, want) in results.iter().zip(&r.texts) {
        assert_eq!(got.tokens.len(), want.ids.len());
        let want_logits: Vec<f32> = want.logits.concat();
        let diff = max_abs_diff(&got.logits, &want_logits);
        assert!(diff < TOLERANCE, "{name} {:?}: {diff}", want.text);
    }

    // Complete inputs with their special tokens, through the raw entry point.
    let framed = r.framed.as_ref().unwrap();
    let ids: Vec<&[u32]> = framed.input_ids.iter().map(Vec::as_slice).collect();
    for (got, want) in model
        .logits_for_ids(&ids)
        .unwrap()
        .iter()
        .zip(&framed.logits)
    {
        assert!(max_abs_diff(got, &want.concat()) < TOLERANCE);
    }

    // The trait: one text at a time, spans and softmax of the same logits.
    let text = &r.texts[1];
    let probabilities = model.keep_probabilities(&text.text).unwrap();
    assert_eq!(probabilities.len(), text.ids.len());
    for ((span, p), (offsets, logits)) in probabilities
        .iter()
        .zip(text.offsets.iter().zip(&text.logits))
    {
        assert_eq!([span.start, span.end], *offsets);
        assert!((p - keep_probability(logits)).abs() < 1e-5);
        assert!((0.0..=1.0).contains(p));
    }
    assert!(model.keep_probabilities("").unwrap().is_empty());
}

#[test]
fn tiny_bert_token_classifier_matches_the_reference() {
    check_classifier("tiny-bert-tokcls");
}

#[test]
fn tiny_xlm_roberta_token_classifier_matches_the_reference() {
    check_classifier("tiny-xlmr-tokcls");
}

#[test]
fn bad_inputs_are_errors() {
    let model = TokenClassificationModel::load(&fixtures().join("tiny-bert-tokcls")).unwrap();
    let too_long = vec![5u32; 513];
    assert!(matches!(
        model.logits_for_ids(&[&too_long]),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        model.logits_for_ids(&[&[2, 100_000, 3]]),
        Err(Error::InvalidInput(_))
    ));
    assert!(model.logits_for_ids(&[&[]]).unwrap()[0].is_empty());
    assert!(model.token_logits(&[], &Uninterrupted).unwrap().is_empty());
}

#[test]
fn missing_models_say_what_to_do() {
    let missing = Path::new("/nonexistent/abridge-model");
    let err = TokenClassificationModel::load(missing).err().unwrap();
    assert!(matches!(err, Error::ClassifierNotFound { .. }), "{err}");
    assert!(err.to_string().contains("--model"));
    let err = SentenceEncoder::load(missing).err().unwrap();
    assert!(matches!(err, Error::ModelNotFound { .. }), "{err}");
    assert!(err.to_string().contains("abridge models fetch"));
    // A folder without weights names the missing file.
    let err = SentenceEncoder::load(&fixtures()).err().unwrap();
    assert!(err.to_string().contains("config.json"), "{err}");
}

fn minilm() -> &'static SentenceEncoder {
    static MODEL: OnceLock<SentenceEncoder> = OnceLock::new();
    MODEL.get_or_init(|| {
        SentenceEncoder::load_default().unwrap_or_else(|e| {
            panic!("{e}\n(the tests need all-MiniLM-L6-v2: run scripts/fetch-models.sh)")
        })
    })
}

#[test]
fn minilm_matches_sentence_transformers() {
    let model = minilm();
    let r = reference(&fixtures().join("minilm-reference.json"));
    check_tokenizer(|text| model.tokenizer.encode(text).unwrap(), &r);
    let texts: Vec<&str> = r.texts.iter().map(|t| t.text.as_str()).collect();
    assert!(texts.contains(&"") && r.texts.iter().any(|t| t.ids.len() > 512));
    let embeddings = model.embed(&texts).unwrap();
    for (got, want) in embeddings.iter().zip(&r.texts) {
        let diff = max_abs_diff(got, &want.embedding);
        assert!(diff < TOLERANCE, "{:?}: {diff}", want.text);
        let norm: f32 = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    assert!(model.embed(&[]).unwrap().is_empty());
}

#[test]
fn minilm_ranks_paraphrases_above_unrelated_sentences() {
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let e = minilm()
        .embed(&[
            "A man is playing a guitar on the stage.",
            "Someone performs music with a guitar in front of an audience.",
            "The stock market fell sharply after the interest rate announcement.",
            "Shares dropped steeply when the central bank raised rates.",
        ])
        .unwrap();
    let (music, finance) = (cosine(&e[0], &e[1]), cosine(&e[2], &e[3]));
    for unrelated in [
        cosine(&e[0], &e[2]),
        cosine(&e[0], &e[3]),
        cosine(&e[1], &e[2]),
        cosine(&e[1], &e[3]),
    ] {
        assert!(music > unrelated + 0.3 && finance > unrelated + 0.3);
    }
}
