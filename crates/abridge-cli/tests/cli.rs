//! The `abridge` binary as a user runs it: outputs, exit codes and error messages.

mod common;

use common::{abridge, stderr};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sample.txt");

#[test]
fn score_json_reports_every_token_and_the_perplexity() {
    let output = abridge(&["score", SAMPLE, "--json", "--threads", "1"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let tokens = report["tokens"].as_array().unwrap();
    assert!(tokens.len() > 250);
    let text: String = tokens.iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert_eq!(text, std::fs::read_to_string(SAMPLE).unwrap());
    assert!(tokens
        .iter()
        .all(|t| t["id"].is_u64() && t["surprisal"].as_f64().unwrap() >= 0.0));
    let perplexity = report["perplexity"].as_f64().unwrap();
    assert!((18.0..28.0).contains(&perplexity), "{perplexity}");
}

#[test]
fn score_reads_standard_input_and_prints_a_table() {
    let output = abridge(&["score", "-"], Some(b"The quay was built by fishermen."));
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("\" fishermen\""), "{stdout}");
    assert!(stdout.lines().last().unwrap().contains("perplexity"));
}

#[test]
fn bench_prints_a_json_record_per_length() {
    let output = abridge(
        &[
            "bench",
            "--lengths",
            "32,16",
            "--repeat",
            "1",
            "--json",
            "--compare-portable",
            "--documents",
            "3",
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (lengths, rag): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.get("tokens").is_some());
    assert_eq!(lengths.len(), 2);
    assert_eq!(lengths[0]["tokens"], 16);
    assert_eq!(lengths[1]["tokens"], 32);
    assert!(lengths
        .iter()
        .all(|r| r["tokens_per_second"].as_f64().unwrap() > 0.0
            && r["portable_tokens_per_second"].as_f64().unwrap() > 0.0));
    // One record per method, LongLLMLingua once per ranker (auto and embedding too: the models
    // fetch installs abridge-fast and MiniLM), each compressed to about a third.
    let methods: Vec<&str> = rag.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "auto",
            "llmlingua",
            "selective-context",
            "longllmlingua",
            "longllmlingua-bm25",
            "longllmlingua-embedding"
        ]
    );
    for r in &rag {
        let (origin, compressed) = (
            r["origin_tokens"].as_f64().unwrap(),
            r["compressed_tokens"].as_f64().unwrap(),
        );
        assert!((compressed / origin - 1.0 / 3.0).abs() < 0.05, "{r}");
    }
    // What each makes the scoring LM read: nothing for auto, one pass for Selective Context,
    // and LongLLMLingua's own ranker reads every document once more than BM25's.
    let read = |method: &str| {
        let record = rag.iter().find(|r| r["method"] == method).unwrap();
        record["model_tokens_read"].as_u64().unwrap()
    };
    let input = rag[0]["model_tokens_input"].as_u64().unwrap();
    assert_eq!(read("auto"), 0);
    assert!(read("selective-context") >= input.saturating_sub(40));
    assert!(read("longllmlingua") > read("longllmlingua-bm25") + input / 2);
}

/// The answering model of the compression-against-eviction table: the evaluator that
/// scripts/fetch-evaluator.py installs (scripts/test.sh runs it).
fn evaluator() -> String {
    abridge_models::fetch::models_dir()
        .join("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        .display()
        .to_string()
}

#[test]
fn bench_compares_compression_with_kv_eviction_at_equal_memory() {
    let output = abridge(
        &[
            "bench",
            "--lengths",
            "16",
            "--repeat",
            "1",
            "--json",
            "--documents",
            "2",
            "--kv-answerer",
            &evaluator(),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let reads: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r.get("peak_positions").is_some())
        .collect();
    let methods: Vec<&str> = reads
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    let per_rate = ["auto", "kv-streaming", "kv-h2o", "kv-snapkv"];
    let expected: Vec<&str> = std::iter::once("whole")
        .chain(per_rate.iter().copied().cycle().take(12))
        .collect();
    assert_eq!(methods, expected);
    let whole = reads[0]["prompt_tokens"].as_u64().unwrap();
    let field = |r: &serde_json::Value, name: &str| r[name].as_u64().unwrap();
    for rate in reads[1..].chunks(4) {
        let (auto, kv) = (&rate[0], &rate[1..]);
        // Compression reads fewer tokens; every policy reads them all and ends at its budget,
        // about what the compressed prompt takes.
        assert!(field(auto, "prompt_tokens") < whole, "{auto}");
        for policy in kv {
            assert_eq!(field(policy, "prompt_tokens"), whole, "{policy}");
            let budget = field(policy, "final_positions");
            assert!(budget < whole, "{policy}");
            let peak = field(policy, "peak_positions");
            match policy["method"].as_str().unwrap() {
                // SnapKV evicts once the prompt is read: it needs the whole prompt's memory.
                "kv-snapkv" => assert_eq!(peak, whole, "{policy}"),
                // The others evict every 32 tokens.
                _ => assert!(peak > budget && peak <= budget + 32, "{policy}"),
            }
        }
    }
}

#[test]
fn empty_input_is_refused() {
    let output = abridge(&["score", "-"], Some(b"  \n"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("empty"), "{}", stderr(&output));
}

#[test]
fn invalid_utf8_is_refused_with_its_offset() {
    let output = abridge(&["score", "-"], Some(b"caf\xe9 au lait"));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("not valid UTF-8") && message.contains("offset 3"),
        "{message}"
    );
}

#[test]
fn a_missing_model_names_the_fix() {
    let output = abridge(&["score", SAMPLE, "--model", "/nonexistent/x.gguf"], None);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("model file not found") && message.contains("abridge models fetch"),
        "{message}"
    );
}

#[test]
fn a_missing_input_file_is_named() {
    let output = abridge(&["score", "/nonexistent/input.txt"], None);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("/nonexistent/input.txt"));
}

#[test]
fn unknown_options_and_zero_threads_are_refused() {
    let output = abridge(&["score", SAMPLE, "--no-such-option"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--no-such-option"));
    let output = abridge(&["score", SAMPLE, "--threads", "0"], None);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--threads"));
}

#[test]
fn help_lists_the_commands() {
    let output = abridge(&["--help"], None);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for command in ["score", "bench", "models"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn models_list_shows_the_default_model_installed() {
    let output = abridge(&["models", "list"], None);
    assert!(output.status.success());
    let listing = String::from_utf8(output.stdout).unwrap();
    assert!(
        listing.contains("smollm2-135m") && listing.contains("installed"),
        "{listing}"
    );
}

#[test]
fn compress_json_hits_the_rate_and_labels_every_span() {
    let output = abridge(&["compress", SAMPLE, "--rate", "0.5", "--json"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let origin = result["origin_tokens"].as_f64().unwrap();
    let compressed = result["compressed_tokens"].as_f64().unwrap();
    assert!(
        (compressed - origin / 2.0).abs() <= 0.03 * origin / 2.0,
        "{compressed}/{origin}"
    );
    assert_eq!(result["tokenizer"], "cl100k_base");
    let source = result["source"].as_str().unwrap();
    let covered: usize = result["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["span"]["end"].as_u64().unwrap() - s["span"]["start"].as_u64().unwrap())
        .sum::<u64>() as usize;
    assert_eq!(covered, source.len());
}

#[test]
fn compress_show_marks_dropped_text_and_keeps_forced_tokens() {
    let output = abridge(
        &[
            "compress",
            SAMPLE,
            "--method",
            "selective-context",
            "--rate",
            "0.3",
            "--show",
            "--force-token",
            "Vellmouth",
            "--force-reserve-digit",
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(shown.contains("[-"), "{shown}");
    let unmarked = shown.replace("[-", "").replace("-]", "");
    assert_eq!(
        unmarked.trim_end(),
        std::fs::read_to_string(SAMPLE).unwrap().trim_end()
    );
    // Forced words and numbers are never inside a dropped span.
    for kept in ["Vellmouth", "1871,", "180,000", "40"] {
        for dropped in shown
            .split("[-")
            .skip(1)
            .map(|s| s.split("-]").next().unwrap())
        {
            assert!(
                !dropped.split_whitespace().any(|w| w == kept),
                "{kept} dropped"
            );
        }
    }
    assert!(stderr(&output).contains("cl100k_base tokens"));
}

#[test]
fn compress_refuses_bad_budgets_with_the_fix() {
    for (args, expected) in [
        (vec!["--rate", "0"], "rate must be in (0, 1]"),
        (vec!["--rate", "1.5"], "rate must be in (0, 1]"),
        (vec!["--target-token", "-5"], "target"),
        (vec!["--target-token", "0"], "target"),
        (
            vec!["--rate", "0.5", "--target-token", "10"],
            "cannot be used with",
        ),
        (vec!["--method", "magic"], "invalid value 'magic'"),
        (vec!["--unit", "paragraph"], "unknown unit"),
        (
            vec!["--target-tokenizer", "gpt2"],
            "cl100k_base or o200k_base",
        ),
        (
            vec!["--method", "llmlingua", "--context-budget", "__import__('os')"],
            "--context-budget is wrong: context_budget `__import__('os')` must be `+N` or `*K`",
        ),
        (
            vec!["--context-budget", "+100"],
            "--context-budget is an option of llmlingua, not auto: remove it or pass --method llmlingua",
        ),
        (vec!["--protect-regex", "(unclosed"], "regex"),
    ] {
        let mut all = vec!["compress", SAMPLE];
        all.extend(args.iter().copied());
        let output = abridge(&all, None);
        assert!(!output.status.success(), "{args:?} succeeded");
        let message = stderr(&output);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
}

#[test]
fn compress_needs_something_to_compress() {
    let output = abridge(&["compress", "--question", "What?"], None);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nothing to compress"),
        "{}",
        stderr(&output)
    );
}
