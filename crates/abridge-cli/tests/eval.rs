//! `abridge eval` as a user runs it: bad input and missing data give errors that say what to do.

use std::process::{Command, Output};

fn abridge(args: &[&str], datasets: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(args)
        .env("ABRIDGE_DATASETS", datasets)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn empty_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("abridge-cli-eval-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_missing_dataset_names_the_fetch_command() {
    let output = abridge(
        &["eval", "--suite", "gsm8k", "--limit", "1"],
        &empty_dir("missing"),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("scripts/fetch-datasets.py gsm8k"),
        "{message}"
    );
}

#[test]
fn bad_options_are_rejected_with_the_fix() {
    let dir = empty_dir("options");
    for (args, expected) in [
        (
            &["eval", "--rates", "2"][..],
            "must be a fraction or decimal in (0, 1]",
        ),
        (
            &["eval", "--rates", "1/0"][..],
            "must be a fraction or decimal in (0, 1]",
        ),
        (
            &["eval", "--suite", "trivia"][..],
            "choose one of nq, squad",
        ),
        (
            &["eval", "--methods", "none,magic"][..],
            "unknown method `magic`",
        ),
        (&["eval", "--split", "train"][..], "choose dev or test"),
        (
            &["eval", "--quick", "--suite", "nq"][..],
            "cannot be used with",
        ),
    ] {
        let output = abridge(args, &dir);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
