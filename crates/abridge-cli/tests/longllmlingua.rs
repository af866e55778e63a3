//! `abridge compress --method longllmlingua` and `abridge recover` as a user runs them.

use std::path::PathBuf;

mod common;

use common::{abridge, stderr};

/// Writes `files` into a fresh directory under the system's temporary directory.
fn write_files(test: &str, files: &[(&str, &str)]) -> Vec<String> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("abridge-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    files
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect()
}

const DOCUMENTS: [&str; 3] = [
    "Bananas are among the most widely grown fruit crops and are rich in potassium. They grow in \
     tropical regions and are harvested green.",
    "The Nile is a major north-flowing river in northeastern Africa. It flows through Cairo, \
     Egypt's capital, before it empties into the Mediterranean Sea.",
    "Glaciers form where snow accumulates faster than it melts, and over centuries they carve \
     valleys and fjords into the landscape.",
];

#[test]
fn longllmlingua_ranks_the_relevant_document_first() {
    let files = write_files(
        "rank",
        &[
            ("a.txt", DOCUMENTS[0]),
            ("b.txt", DOCUMENTS[1]),
            ("c.txt", DOCUMENTS[2]),
        ],
    );
    let question = "Which river flows through Cairo?";
    let output = abridge(
        &[
            "compress",
            "--method",
            "longllmlingua",
            "--question",
            question,
            "--context-file",
            &files[0],
            "--context-file",
            &files[1],
            "--context-file",
            &files[2],
            "--rank-method",
            "bm25",
            "--rate",
            "0.5",
            "--json",
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let source = result["source"].as_str().unwrap();
    assert!(source.starts_with(DOCUMENTS[1]), "{source}");
    assert!(result["text"].as_str().unwrap().ends_with(question));
}

#[test]
fn longllmlingua_without_a_question_names_the_fix() {
    let files = write_files(
        "noquestion",
        &[("a.txt", DOCUMENTS[0]), ("b.txt", DOCUMENTS[1])],
    );
    let output = abridge(
        &[
            "compress",
            "--method",
            "longllmlingua",
            &files[0],
            "--context-file",
            &files[1],
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--question"),
        "{}",
        stderr(&output)
    );
    let output = abridge(
        &[
            "compress",
            "--method",
            "longllmlingua",
            "--question",
            "why?",
            &files[0],
            "--reorder",
            "random",
        ],
        None,
    );
    assert!(stderr(&output).contains("use original, sort or two_stage"));
}

#[test]
fn recover_restores_quoted_spans_from_standard_input() {
    let files = write_files(
        "recover",
        &[
            (
                "original.txt",
                "Candace also has an obvious crush on Griselda Blanco, but she was oblivious.",
            ),
            (
                "compressed.txt",
                "Candace has obvious crush Griselda Blanco, oblivious.",
            ),
        ],
    );
    let output = abridge(
        &[
            "recover",
            "--original",
            &files[0],
            "--compressed",
            &files[1],
            "-",
        ],
        Some(b"Answer: Candace has obvious crush Griselda Blanco."),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Answer: Candace also has an obvious crush on Griselda Blanco."
    );
}
