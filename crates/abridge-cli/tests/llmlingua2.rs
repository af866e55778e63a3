//! `abridge compress --method llmlingua2` on the tiny random classifiers of abridge-models: their
//! outputs mean nothing, but they are deterministic, so behaviour can be asserted (budget,
//! protected spans, threshold monotonicity, compat against global selection, errors).

mod common;

use common::{abridge, stderr};
use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sample.txt");
const BERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../abridge-models/tests/fixtures/tiny-bert-tokcls"
);
const XLMR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../abridge-models/tests/fixtures/tiny-xlmr-tokcls"
);

fn compress_json(extra: &[&str], stdin: Option<&[u8]>) -> Value {
    let mut args = vec!["compress", "--method", "llmlingua2", "--json"];
    if stdin.is_some() {
        args.push("-");
    } else {
        args.push(SAMPLE);
    }
    args.extend_from_slice(extra);
    let output = abridge(&args, stdin);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn tokens(result: &Value, key: &str) -> u64 {
    result[key].as_u64().unwrap()
}

/// The bodies of the kept spans.
fn kept_words(result: &Value) -> Vec<String> {
    let source = result["source"].as_str().unwrap();
    result["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kept"].as_bool().unwrap())
        .map(|s| {
            let (start, end) = (
                s["span"]["start"].as_u64().unwrap(),
                s["span"]["end"].as_u64().unwrap(),
            );
            source[start as usize..end as usize].trim().to_string()
        })
        .collect()
}

#[test]
fn the_rate_is_met_and_every_word_has_a_keep_probability() {
    for model in [BERT, XLMR] {
        let result = compress_json(&["--model", model, "--rate", "0.4"], None);
        let target = tokens(&result, "target_tokens");
        let achieved = tokens(&result, "compressed_tokens");
        assert!(
            achieved.abs_diff(target) as f64 <= (0.03 * target as f64).max(1.0),
            "{achieved} for {target}"
        );
        for span in result["spans"].as_array().unwrap() {
            if let Some(p) = span["score"].as_f64() {
                assert!((0.0..=1.0).contains(&p), "{p}");
            }
        }
    }
}

#[test]
fn force_tokens_and_digits_survive() {
    let result = compress_json(
        &[
            "--model",
            BERT,
            "--rate",
            "0.2",
            "--force-token",
            ".",
            "--force-reserve-digit",
        ],
        None,
    );
    let source = result["source"].as_str().unwrap();
    let text = result["text"].as_str().unwrap();
    assert_eq!(text.matches('.').count(), source.matches('.').count());
    for word in source
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
    {
        assert!(text.contains(word.trim_end_matches('.')), "{word} lost");
    }
}

#[test]
fn a_higher_threshold_keeps_a_subset() {
    let mut previous: Option<Vec<bool>> = None;
    for threshold in ["0.0", "0.6", "0.75", "0.9", "1.0"] {
        let result = compress_json(&["--model", BERT, "--threshold", threshold], None);
        assert!(result["target_tokens"].is_null());
        let kept: Vec<bool> = result["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["kept"].as_bool().unwrap())
            .collect();
        if let Some(previous) = &previous {
            assert!(
                kept.iter()
                    .zip(previous)
                    .all(|(now, before)| !now || *before),
                "{threshold}"
            );
            assert!(kept.iter().filter(|k| **k).count() <= previous.iter().filter(|k| **k).count());
        }
        previous = Some(kept);
    }
    let all = compress_json(&["--model", BERT, "--threshold", "0"], None);
    assert_eq!(all["text"], all["source"]);
}

#[test]
fn compat_thresholds_chunks_and_differs_from_the_global_selection() {
    let global = compress_json(&["--model", BERT, "--rate", "0.3"], None);
    let compat = compress_json(
        &["--model", BERT, "--rate", "0.3", "--llmlingua2-compat"],
        None,
    );
    assert_ne!(global["text"], compat["text"]);
    // Compat keeps roughly the rate, by the reference's arithmetic.
    let rate = compat["rate"].as_f64().unwrap();
    assert!((0.2..0.4).contains(&rate), "{rate}");
    // Deterministic.
    let again = compress_json(
        &["--model", BERT, "--rate", "0.3", "--llmlingua2-compat"],
        None,
    );
    assert_eq!(compat["text"], again["text"]);
}

#[test]
fn drop_consecutive_removes_repeated_force_tokens() {
    let input = b"alpha | | | beta | gamma | | delta";
    let run = |drop: bool| {
        let mut args = vec!["--model", BERT, "--rate", "1", "--force-token", "|"];
        if drop {
            args.push("--drop-consecutive");
        }
        compress_json(&args, Some(input))["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(run(false), String::from_utf8_lossy(input));
    assert_eq!(run(true), "alpha | beta | gamma | delta");
}

#[test]
fn multilingual_text_and_several_contexts_with_a_question() {
    let second =
        std::env::temp_dir().join(format!("abridge-llmlingua2-{}.txt", std::process::id()));
    std::fs::write(
        &second,
        "Der Hafen wurde 1820 gebaut. 港口很古老。 🚢 Le port est ancien.",
    )
    .unwrap();
    let result = compress_json(
        &[
            "--model",
            XLMR,
            "--rate",
            "0.5",
            "--context-file",
            second.to_str().unwrap(),
            "--question",
            "When was the harbour built?",
            "--force-context-id",
            "1",
        ],
        Some("The harbour was built by fishermen.".as_bytes()),
    );
    std::fs::remove_file(&second).unwrap();
    let text = result["text"].as_str().unwrap();
    assert!(text.ends_with("When was the harbour built?"), "{text}");
    assert!(!kept_words(&result).is_empty());
}

#[test]
fn bad_models_and_options_name_the_fix() {
    let cases: [(&[&str], &str); 4] = [
        (&[], "pass --model DIR"),
        (
            &["--model", "/nonexistent/classifier"],
            "token-classification model not found",
        ),
        (&["--model", BERT, "--threshold", "1.5"], "[0, 1]"),
        (
            &["--model", BERT, "--question-weight", "2"],
            "--question-weight must be in [0, 1]",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["compress", SAMPLE, "--method", "llmlingua2"];
        args.extend_from_slice(extra);
        let output = abridge(&args, None);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains(message),
            "{extra:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn bench_times_a_classifier() {
    let output = abridge(
        &[
            "bench",
            "--classifier",
            BERT,
            "--lengths",
            "64",
            "--repeat",
            "1",
            "--pipeline",
            "--json",
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["tokens"], 64);
    assert!(record["tokens_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(record["pipelines"][0]["method"], "llmlingua2");
}
