//! `abridge compress --method fast` (abridge-fast, the shipped head on the real MiniLM): the
//! kept words on a fixed input, the budget, protected spans, and the error for `--model`.

mod common;

use common::{abridge, stderr};
use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sample.txt");

fn compress_json(extra: &[&str]) -> Value {
    let mut args = vec!["compress", "--method", "fast", "--json", SAMPLE];
    args.extend_from_slice(extra);
    let output = abridge(&args, None);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The first paragraph of the sample compressed to 1/3 with the shipped head (rerecord when the
/// head is retrained).
const KEPT_AT_A_THIRD: &str = "The harbour town Vellmouth grew around a single stone quay fishermen For most its lived herring: boats left catch salted long sheds that still line arrived joined customs two a small shipyard that built wooden";

fn tokens(result: &Value, key: &str) -> u64 {
    result[key].as_u64().unwrap()
}

#[test]
fn the_budget_is_met_and_the_output_is_recorded() {
    for rate in ["0.5", "0.2"] {
        let result = compress_json(&["--rate", rate]);
        let (target, achieved) = (
            tokens(&result, "target_tokens"),
            tokens(&result, "compressed_tokens"),
        );
        assert!(
            achieved.abs_diff(target) as f64 <= (0.03 * target as f64).max(1.0),
            "{achieved} for {target}"
        );
    }
    let first_paragraph = compress_json(&["--rate", "0.33"])["text"]
        .as_str()
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(first_paragraph, KEPT_AT_A_THIRD);
}

#[test]
fn force_tokens_and_digits_survive() {
    let result = compress_json(&[
        "--rate",
        "0.2",
        "--force-token",
        ",",
        "--force-reserve-digit",
    ]);
    let source = result["source"].as_str().unwrap();
    let text = result["text"].as_str().unwrap();
    assert_eq!(text.matches(',').count(), source.matches(',').count());
    for word in source
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
    {
        let word = word.trim_end_matches(['.', ',']);
        assert!(text.contains(word), "{word} lost");
    }
}

#[test]
fn a_model_folder_is_refused_with_the_fix() {
    let output = abridge(
        &[
            "compress", "--method", "fast", "--model", "/nowhere", SAMPLE,
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--method llmlingua2"),
        "{}",
        stderr(&output)
    );
}
