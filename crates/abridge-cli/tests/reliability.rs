//! The issue #21 repros through the binary: text the tokenizer used to refuse, results that used
//! to be empty or over the target without a word, and a corrupted model in `models list`.

mod common;

use std::process::Command;

use common::{abridge, stderr};
use serde_json::Value;

fn compress_json(stdin: &[u8], args: &[&str]) -> Value {
    let mut all = vec!["compress", "-", "--json"];
    all.extend_from_slice(args);
    let output = abridge(&all, Some(stdin));
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn characters_the_vocabulary_lacks_compress() {
    // U+0004 and U+46FBB (lead byte 0xF1) have no token in SmolLM2's vocabulary.
    for (text, method) in [
        (&b"a \x04 b"[..], "selective-context"),
        ("\u{46fbb}".as_bytes(), "llmlingua"),
    ] {
        let output = abridge(&["compress", "-", "--method", method], Some(text));
        assert!(output.status.success(), "{method}: {}", stderr(&output));
    }
}

#[test]
fn a_unit_larger_than_the_budget_is_split_not_dropped() {
    // One 3,000-character line without spaces, at rate 0.5.
    let line = "abcdefghij".repeat(300);
    for method in ["fast", "llmlingua"] {
        let result = compress_json(line.as_bytes(), &["--method", method]);
        let text = result["text"].as_str().unwrap();
        assert!(!text.is_empty(), "{method}: empty output");
        assert_eq!(result["budget_unreachable"], false, "{method}");
    }
    let result = compress_json(
        "hello 中文 world".as_bytes(),
        &["--method", "selective-context", "--rate", "0.5"],
    );
    assert!(
        !result["text"].as_str().unwrap().trim().is_empty(),
        "{result}"
    );
    let nuls = vec![0u8; 2000];
    let result = compress_json(&nuls, &["--method", "fast"]);
    assert!(!result["text"].as_str().unwrap().is_empty(), "{result}");
}

#[test]
fn an_unreachable_target_is_reported() {
    // A target of one token: the question alone (protected) is over it.
    let result = compress_json(
        b"The harbour was rebuilt in 1889 after the storm.",
        &[
            "--target-token",
            "1",
            "--question",
            "When was the harbour rebuilt?",
        ],
    );
    assert_eq!(result["budget_unreachable"], true, "{result}");
    assert!(result["budget_unreachable_reason"]
        .as_str()
        .unwrap()
        .contains("protected"));
}

#[test]
fn fast_never_ends_over_the_target() {
    // Before: 8 tokens for a target of 5, 7 for 4, 4 for 3, and nothing at all for 3 on the first.
    let cases = [
        (
            "Pneumonoultramicroscopic antidisestablishmentarianism floccinaucinihilipilification",
            5,
        ),
        (
            "Pneumonoultramicroscopic antidisestablishmentarianism floccinaucinihilipilification",
            3,
        ),
        (
            "GPT-4o-mini's tokenizer_config.json: {\"model_max_length\": 8192}",
            4,
        ),
        (
            "Unbelievably, Zürich's Bahnhofstrasse reconstruction finished.",
            3,
        ),
    ];
    for (text, target) in cases {
        let target_arg = target.to_string();
        let result = compress_json(
            text.as_bytes(),
            &["--method", "fast", "--target-token", &target_arg],
        );
        let kept = result["compressed_tokens"].as_u64().unwrap();
        assert!(
            kept <= target || result["protected_over_budget"] == true,
            "{kept} tokens for a target of {target}: {result}"
        );
        assert!(!result["text"].as_str().unwrap().is_empty(), "{result}");
    }
}

#[test]
fn models_list_reports_a_corrupted_model() {
    let original = abridge_models::fetch::default_model_path();
    let dir = std::env::temp_dir().join(format!("abridge-list-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = original.file_name().unwrap();
    let mut bytes = std::fs::read(&original).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4096] {
        *byte = !*byte;
    }
    std::fs::write(dir.join(name), bytes).unwrap();
    let mut marker = name.to_os_string();
    marker.push(".sha256");
    std::fs::copy(original.with_file_name(&marker), dir.join(&marker)).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(["models", "list"])
        .env("ABRIDGE_HOME", &dir)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&output.stdout);
    let line = listing
        .lines()
        .find(|l| l.starts_with("smollm2-135m"))
        .unwrap();
    assert!(line.contains("corrupted"), "{listing}");

    let input = dir.join("input.txt");
    std::fs::write(&input, "The harbour was rebuilt in 1889.").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_abridge"))
        .arg("compress")
        .arg(&input)
        .args(["--method", "selective-context", "--model"])
        .arg(dir.join(name))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("corrupted"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_without_spans_and_an_input_over_the_limit() {
    let result = compress_json(
        b"The harbour was rebuilt in 1889 after the storm.",
        &["--no-spans"],
    );
    assert!(result.get("spans").is_none() && result.get("source").is_none());
    assert!(result["text"].is_string());

    let huge = vec![b'a'; (16 << 20) + 1];
    let output = abridge(&["compress", "-", "--method", "fast"], Some(&huge));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("over 16 MiB"),
        "{}",
        stderr(&output)
    );
}
