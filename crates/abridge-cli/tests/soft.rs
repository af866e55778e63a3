//! `abridge soft fit / generate / score` on the tiny random llama fixture.

mod common;

use std::path::PathBuf;

use common::{abridge, stderr};

fn fixture(name: &str) -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../abridge-models/tests/fixtures/"
    )
    .to_string()
        + name
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("abridge-cli-soft-{}-{name}", std::process::id()))
}

/// Fits `text` on the tiny llama into a new file and returns its path.
fn fit_tiny(name: &str, text: &str, steps: &str) -> (PathBuf, serde_json::Value) {
    let output = temp(name);
    let llama = fixture("tiny-llama.gguf");
    let args = [
        "soft",
        "fit",
        "-",
        "--model",
        &llama,
        "--tokens",
        "4",
        "--steps",
        steps,
        "--lr",
        "0.1",
        "--init",
        "tokens",
        "--json",
        "-o",
        output.to_str().unwrap(),
    ];
    let run = abridge(&args, Some(text.as_bytes()));
    assert!(run.status.success(), "{}", stderr(&run));
    (output, serde_json::from_slice(&run.stdout).unwrap())
}

#[test]
fn fit_then_generate_regenerates_the_crammed_text() {
    let (soft, report) = fit_tiny("cram.safetensors", "fishermen", "100");
    assert_eq!(report["exact"], true, "{report}");
    assert_eq!(report["objective"], "cram");
    let llama = fixture("tiny-llama.gguf");
    let soft_path = soft.to_str().unwrap();
    let tokens = report["text_tokens"].to_string();
    let run = abridge(
        &[
            "soft",
            "generate",
            "--soft",
            soft_path,
            "--model",
            &llama,
            "--max-tokens",
            &tokens,
        ],
        None,
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(String::from_utf8(run.stdout).unwrap(), "fishermen\n");
    let run = abridge(
        &[
            "soft",
            "score",
            "--soft",
            soft_path,
            "--model",
            &llama,
            "--json",
            "fishermen",
        ],
        None,
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let score: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let mean_nll = score["mean_nll"].as_f64().unwrap();
    assert!((mean_nll - report["loss"].as_f64().unwrap()).abs() < 1e-3);
    std::fs::remove_file(soft).unwrap();
}

#[test]
fn a_soft_prompt_is_refused_by_another_model() {
    let (soft, _) = fit_tiny("mismatch.safetensors", "fishermen", "1");
    let qwen = fixture("tiny-qwen2.gguf");
    let run = abridge(
        &[
            "soft",
            "score",
            "--soft",
            soft.to_str().unwrap(),
            "--model",
            &qwen,
            "fishermen",
        ],
        None,
    );
    assert!(!run.status.success());
    let message = stderr(&run);
    assert!(
        message.contains("tiny-llama.gguf") && message.contains("tiny-qwen2.gguf"),
        "{message}"
    );
    std::fs::remove_file(soft).unwrap();
}

#[test]
fn bad_input_gets_a_clear_error() {
    let llama = fixture("tiny-llama.gguf");
    let out = temp("never-written.safetensors");
    let out = out.to_str().unwrap();
    let fit = |tokens: &str, steps: &str, stdin: &[u8]| {
        let args = [
            "soft", "fit", "-", "--model", &llama, "--tokens", tokens, "--steps", steps, "-o", out,
        ];
        stderr(&abridge(&args, Some(stdin)))
    };
    assert!(fit("0", "10", b"text").contains("--tokens"));
    assert!(fit("-1", "10", b"text").contains("--tokens"));
    assert!(fit("2", "0", b"text").contains("--steps"));
    assert!(fit("2", "10", b" \n").contains("empty"));
    let missing = abridge(
        &[
            "soft",
            "generate",
            "--soft",
            "/nonexistent/soft.safetensors",
            "--model",
            &llama,
        ],
        None,
    );
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("soft prompt not found"));
    let distill = abridge(
        &[
            "soft",
            "fit",
            "-",
            "--model",
            &llama,
            "--tokens",
            "2",
            "--steps",
            "5",
            "--objective",
            "distill",
            "-o",
            out,
        ],
        Some(b"text"),
    );
    assert!(
        stderr(&distill).contains("--queries"),
        "{}",
        stderr(&distill)
    );
}
