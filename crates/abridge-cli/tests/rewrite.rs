//! `abridge compress --method rewrite` with the real Qwen2.5-Coder-0.5B-Instruct (installed by
//! scripts/fetch-evaluator.py) on the sample text: the budget, the report, the guard's promise,
//! and the errors for a missing model and misplaced flags.

mod common;

use std::process::Command;

use common::{abridge, stderr};
use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sample.txt");
const QUESTION: &str = "When did the railway arrive in Vellmouth?";

#[test]
fn a_question_gets_a_faithful_rewrite_within_the_target() {
    let output = abridge(
        &[
            "compress",
            "--method",
            "rewrite",
            "--question",
            QUESTION,
            "--context-file",
            SAMPLE,
            "--target-token",
            "60",
            "--json",
            "--no-spans",
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = result["text"].as_str().unwrap();
    assert!(
        result["compressed_tokens"].as_u64().unwrap() <= 60,
        "{result}"
    );
    assert!(text.ends_with(&format!("\n\n{QUESTION}")), "{text}");
    let rewrite = &result["rewrite"];
    assert_eq!(
        rewrite["generator"],
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    );
    // The extract had twice the target, and the rewrite is what remains besides the question.
    let extract_tokens = rewrite["extract_tokens"].as_u64().unwrap();
    assert!(extract_tokens > 60 && extract_tokens <= 120, "{rewrite}");
    assert!(rewrite["rewrite_tokens"].as_u64().unwrap() > 0, "{rewrite}");
    assert!(rewrite["unsupported_spans"].is_array());
    // Every number in the result is one the sample states.
    let sample = std::fs::read_to_string(SAMPLE).unwrap();
    for number in text
        .split(|c: char| !c.is_ascii_digit() && c != ',')
        .map(|n| n.trim_matches(','))
        .filter(|n| !n.is_empty())
    {
        assert!(
            sample.contains(number),
            "{number} is not in the sample: {text}"
        );
    }
}

#[test]
fn a_missing_model_names_the_fetch_script_and_flags_need_the_method() {
    let empty = std::env::temp_dir().join(format!("abridge-rewrite-test-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    // abridge-fast (the extract) is found, the default rewriter is not.
    let output = Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(["compress", "--method", "rewrite", "--rate", "0.3", SAMPLE])
        .env("ABRIDGE_HOME", &empty)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("scripts/fetch-evaluator.py"), "{message}");
    assert!(message.contains("--rewrite-model"), "{message}");

    let output = abridge(
        &[
            "compress",
            "--rewrite-model",
            "/nonexistent/model.gguf",
            SAMPLE,
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("options of --method rewrite"),
        "{}",
        stderr(&output)
    );
}
