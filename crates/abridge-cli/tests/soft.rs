//! `abridge soft fit / compress / generate / score` on the tiny random llama fixture.

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

/// The random test adapter of `scripts/reference/compressor_reference.py` (a 500x adapter for
/// the tiny llama).
fn tiny_adapter() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../abridge-soft/tests/fixtures/tiny-compressor.safetensors"
    )
    .to_string()
}

#[test]
fn compress_then_generate_and_score_after_the_memory() {
    let llama = fixture("tiny-llama.gguf");
    let adapter = tiny_adapter();
    let memory = temp("memory.safetensors");
    let memory_path = memory.to_str().unwrap();
    let run = abridge(
        &[
            "soft",
            "compress",
            "--model",
            &llama,
            "--adapter",
            &adapter,
            "--json",
            "-o",
            memory_path,
            "fishermen",
        ],
        None,
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        (report["method"].as_str(), report["k"].as_u64()),
        (Some("500x"), Some(3))
    );
    assert!(report["text_tokens"].as_u64().unwrap() > 0, "{report}");

    let generate = abridge(
        &[
            "soft",
            "generate",
            "--soft",
            memory_path,
            "--model",
            &llama,
            "--regenerate",
            "--max-tokens",
            "4",
        ],
        None,
    );
    assert!(generate.status.success(), "{}", stderr(&generate));
    let score = |extra: &[&str]| {
        let mut args = vec![
            "soft",
            "score",
            "--soft",
            memory_path,
            "--model",
            &llama,
            "--json",
        ];
        args.extend_from_slice(extra);
        args.push("fishermen");
        let run = abridge(&args, None);
        assert!(run.status.success(), "{}", stderr(&run));
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        report["mean_nll"].as_f64().unwrap()
    };
    // [AE] and [LM] are different indicator vectors: the same text scores differently.
    let (regenerate, continue_) = (score(&["--regenerate"]), score(&[]));
    assert!(regenerate.is_finite() && continue_.is_finite());
    assert_ne!(regenerate, continue_);

    // The memory belongs to the tiny llama.
    let qwen = fixture("tiny-qwen2.gguf");
    let other = abridge(
        &[
            "soft",
            "score",
            "--soft",
            memory_path,
            "--model",
            &qwen,
            "fishermen",
        ],
        None,
    );
    assert!(stderr(&other).contains("was compressed for the model tiny-llama.gguf"));
    std::fs::remove_file(memory).unwrap();
}

#[test]
fn compress_refuses_bad_input_clearly() {
    let llama = fixture("tiny-llama.gguf");
    let adapter = tiny_adapter();
    let out = temp("never-written-memory.safetensors");
    let out = out.to_str().unwrap();
    let compress = |adapter: &str, options: &[&str]| {
        let mut args = vec![
            "soft",
            "compress",
            "--model",
            &llama,
            "--adapter",
            adapter,
            "-o",
            out,
        ];
        args.extend_from_slice(options);
        let run = abridge(&args, None);
        assert!(!run.status.success());
        stderr(&run)
    };
    assert!(compress(&adapter, &["--method", "icae", "text"]).contains("not icae"));
    assert!(compress(&adapter, &["  "]).contains("empty"));
    assert!(compress("/nonexistent/adapter.safetensors", &["text"]).contains("not found"));
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/soft/500x-k16.safetensors"
    );
    assert!(compress(shipped, &["text"]).contains("was trained on the model with sha256"));
    assert!(!std::path::Path::new(out).exists());

    let (soft, _) = fit_tiny("fitted-regenerate.safetensors", "fishermen", "1");
    let run = abridge(
        &[
            "soft",
            "generate",
            "--soft",
            soft.to_str().unwrap(),
            "--model",
            &llama,
            "--regenerate",
        ],
        None,
    );
    assert!(stderr(&run).contains("fitted soft prompt"));
    std::fs::remove_file(soft).unwrap();
}
