//! The runtime on the real default model (SmolLM2-135M-Instruct Q4_1).

mod common;

use abridge_core::TokenScorer;
use abridge_models::kernels::Activations;
use abridge_models::{LanguageModel, LoadOptions, WeightFormat};
use common::{max_abs_diff, sample_text, smollm2};

fn ids(lm: &LanguageModel, text: &str) -> Vec<u32> {
    lm.encode(text).unwrap().iter().map(|t| t.id).collect()
}

#[test]
fn prose_has_the_perplexity_expected_of_this_model() {
    let lm = smollm2();
    let ids = ids(lm, sample_text());
    let surprisal = lm.surprisal(&ids, &mut |_, _| {}).unwrap();
    assert_eq!(surprisal.len(), ids.len());
    let mean = surprisal.iter().map(|&s| f64::from(s)).sum::<f64>() / surprisal.len() as f64;
    let perplexity = mean.exp();
    assert!(
        (18.0..28.0).contains(&perplexity),
        "perplexity {perplexity}"
    );
    // Content words are more surprising than function words in the same text.
    let tokens = lm.encode(sample_text()).unwrap();
    let score_of = |word: &str| {
        tokens
            .iter()
            .zip(&surprisal)
            .find(|(t, _)| &sample_text()[t.span.clone()] == word)
            .map(|(_, &s)| s)
            .unwrap()
    };
    assert!(score_of(" herring") > 5.0 + score_of(" the"));
}

#[test]
fn scoring_in_pieces_equals_scoring_at_once() {
    let lm = smollm2();
    let ids = ids(lm, sample_text());
    let mut cache = lm.start().unwrap();
    let whole = lm.extend(&mut cache, &ids).unwrap();

    let mut session = lm.session().unwrap();
    let mut pieces = Vec::new();
    for piece in [&ids[..1], &ids[1..70], &ids[70..]] {
        pieces.extend(session.extend(piece).unwrap());
    }
    assert!(max_abs_diff(&whole, &pieces) < 1e-4);
    assert_eq!(session.len(), ids.len());
}

#[test]
fn truncating_the_session_forgets_what_followed() {
    let lm = smollm2();
    let (a, b, c) = (
        ids(lm, "The quay was built in 1240."),
        ids(lm, " Nobody remembers why."),
        ids(lm, " It still stands today."),
    );
    let mut session = lm.session().unwrap();
    session.extend(&a).unwrap();
    session.extend(&b).unwrap();
    session.truncate(a.len());
    assert_eq!(session.len(), a.len());
    let after_truncate = session.extend(&c).unwrap();

    let mut fresh = lm.session().unwrap();
    fresh.extend(&a).unwrap();
    let direct = fresh.extend(&c).unwrap();
    assert!(max_abs_diff(&after_truncate, &direct) < 1e-5);
}

#[test]
fn context_changes_the_scores() {
    let lm = smollm2();
    let question = ids(lm, "Which fish did Vellmouth live on? Herring.");
    let mut cold = lm.session().unwrap();
    let cold_scores = cold.extend(&question).unwrap();
    let mut warm = lm.session().unwrap();
    warm.extend(&ids(lm, sample_text())).unwrap();
    let warm_scores = warm.extend(&question).unwrap();
    let sum = |s: &[f32]| s.iter().sum::<f32>();
    assert!(sum(&warm_scores) < sum(&cold_scores) - 5.0);
}

#[test]
fn low_memory_mode_scores_the_same() {
    let path = abridge_models::fetch::default_model_path();
    let quantized = LanguageModel::load(
        &path,
        LoadOptions {
            weights: WeightFormat::Gguf,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert!(quantized.model.memory_bytes() * 3 < smollm2().model.memory_bytes());
    let ids = ids(
        smollm2(),
        "Rents in the centre have risen by roughly 40 percent in a decade.",
    );
    let mut a = smollm2().start().unwrap();
    let mut b = quantized.start().unwrap();
    let dense = smollm2().extend(&mut a, &ids).unwrap();
    let low = quantized.extend(&mut b, &ids).unwrap();
    assert!(max_abs_diff(&dense, &low) < 1e-3);
}

#[test]
fn tokenizer_round_trips_any_text() {
    let lm = smollm2();
    for text in [
        sample_text(),
        "  leading spaces, trailing newlines\n\n",
        "tabs\tand\r\nCRLF   runs",
        "digits 1234567890 and $3.50 on 2024-05-01",
        "Ελληνικά, кириллица, 中文字符, 日本語のテキスト, العربية",
        "emoji 👩‍👩‍👧‍👦 🎉 and a lone accent e\u{301}",
        "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
        "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
    ] {
        let tokens = lm.encode(text).unwrap();
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        assert_eq!(lm.tokenizer.decode(&ids), text);
        // Spans tile the text and never cut a character.
        let mut at = 0;
        for t in &tokens {
            assert_eq!(t.span.start, at, "{text:?}");
            assert!(text.is_char_boundary(t.span.end));
            at = t.span.end;
        }
        assert_eq!(at, text.len());
    }
    assert!(lm.encode("").unwrap().is_empty());
}

#[test]
fn smollm_pretokenizer_splits_digits_and_knows_chat_tokens() {
    let lm = smollm2();
    let tokens = lm.encode("2024").unwrap();
    assert_eq!(tokens.len(), 4);
    let chat = ids(lm, "<|im_start|>user");
    assert_eq!(chat[0], 1, "<|im_start|> is one special token");
    assert_eq!(lm.tokenizer.document_start(), 0, "<|endoftext|>");
}

#[test]
fn reading_past_the_context_is_an_error_not_a_panic() {
    let lm = smollm2();
    let mut cache = lm.start().unwrap();
    let too_many = vec![42u32; lm.max_tokens() + 1];
    let error = lm.extend(&mut cache, &too_many).unwrap_err().to_string();
    assert!(error.contains("context"), "{error}");
    let error = lm.extend(&mut cache, &[u32::MAX]).unwrap_err().to_string();
    assert!(error.contains("vocabulary"), "{error}");
}

#[test]
fn int8_weights_score_close_to_f32_in_under_half_the_memory() {
    let path = abridge_models::fetch::default_model_path();
    let int8 = LanguageModel::load(
        &path,
        LoadOptions {
            weights: WeightFormat::Int8(Activations::Int8),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert!(int8.model.memory_bytes() * 2 < smollm2().model.memory_bytes());
    let ids = ids(smollm2(), sample_text());
    let (mut a, mut b) = (smollm2().start().unwrap(), int8.start().unwrap());
    let exact = smollm2().extend(&mut a, &ids).unwrap();
    let approximate = int8.extend(&mut b, &ids).unwrap();
    let mean_difference = exact
        .iter()
        .zip(&approximate)
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / exact.len() as f32;
    // Measured 0.055 nats on this text (docs/PERFORMANCE.md); a broken kernel is off by nats.
    assert!(
        mean_difference < 0.12,
        "mean |Δ surprisal| {mean_difference}"
    );
    assert!(max_abs_diff(&exact, &approximate) < 1.5);
}

#[test]
fn long_inputs_are_scored_in_overlapping_windows() {
    let path = abridge_models::fetch::default_model_path();
    let limit = 64;
    let short = LanguageModel::load(
        &path,
        LoadOptions {
            context_limit: Some(limit),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let window = short.max_tokens();
    assert_eq!(window, limit - 1);
    let ids = ids(smollm2(), sample_text());
    assert!(ids.len() > 4 * window);
    let mut done = Vec::new();
    let windowed = short
        .surprisal(&ids, &mut |n, total| done.push((n, total)))
        .unwrap();
    assert_eq!(windowed.len(), ids.len());
    assert_eq!(done.last(), Some(&(ids.len(), ids.len())));

    // The first window is plain scoring; the second re-reads the last quarter-window as context.
    let mut cache = smollm2().start().unwrap();
    let first = smollm2().extend(&mut cache, &ids[..window]).unwrap();
    assert!(max_abs_diff(&windowed[..window], &first) < 1e-4);
    let overlap = window / 4;
    let mut cache = smollm2().start().unwrap();
    let second = smollm2()
        .extend(&mut cache, &ids[window - overlap..2 * window - overlap])
        .unwrap();
    assert!(max_abs_diff(&windowed[window..2 * window - overlap], &second[overlap..]) < 1e-4);
}
