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
    let run = abridge(
        &[
            "soft", "eval", "--soft", soft_path, "--model", &llama, "--json", "-",
        ],
        Some(b"fishermen"),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let eval: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(eval["agreement"], 1.0, "{eval}");
    assert!((eval["loss"].as_f64().unwrap() - mean_nll).abs() < 1e-3);
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
    // Prompts come from files: a process that exits early would close a stdin pipe mid-write.
    let (text, blank) = (temp("prompt.txt"), temp("blank.txt"));
    std::fs::write(&text, "text").unwrap();
    std::fs::write(&blank, " \n").unwrap();
    let fit = |prompt: &PathBuf, options: &[&str]| {
        let mut args = vec![
            "soft",
            "fit",
            prompt.to_str().unwrap(),
            "--model",
            &llama,
            "-o",
            out,
        ];
        args.extend_from_slice(options);
        stderr(&abridge(&args, None))
    };
    assert!(fit(&text, &["--tokens", "0", "--steps", "10"]).contains("--tokens"));
    assert!(fit(&text, &["--tokens", "-1", "--steps", "10"]).contains("--tokens"));
    assert!(fit(&text, &["--tokens", "2", "--steps", "0"]).contains("--steps"));
    assert!(fit(&blank, &["--tokens", "2", "--steps", "10"]).contains("empty"));
    let distill = fit(
        &text,
        &["--tokens", "2", "--steps", "5", "--objective", "distill"],
    );
    assert!(distill.contains("--queries"), "{distill}");
    std::fs::remove_file(text).unwrap();
    std::fs::remove_file(blank).unwrap();
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
}
