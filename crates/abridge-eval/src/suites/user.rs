//! The user's own QA data (`abridge eval --data FILE.jsonl`): one JSON object per line with
//! `question`, `answers` (a list of strings) and `documents` (a list of strings), optionally `id`.
//! Every line is a case, in file order (no dev/test split: the file is the user's to divide);
//! the documents are the contexts and the metrics are NQ's. A case whose documents hold none of
//! its answers stays in: the `none` row's "answer kept" then shows the share that do.

use std::path::Path;

use serde::Deserialize;

use super::{qa, take, Case, Reference, SuiteOptions};
use crate::data::read_jsonl_numbered;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
struct Line {
    id: Option<String>,
    question: String,
    answers: Vec<String>,
    documents: Vec<String>,
}

pub fn cases(path: &Path, options: &SuiteOptions) -> Result<Vec<Case>> {
    let lines = read_jsonl_numbered::<Line>(path)?;
    let mut cases = Vec::with_capacity(lines.len());
    for (number, line) in lines {
        let bad = |message: String| Error::Format {
            path: path.to_path_buf(),
            line: number,
            message,
        };
        if line.question.trim().is_empty() {
            return Err(bad("`question` is empty".into()));
        }
        if line.answers.iter().all(|a| a.trim().is_empty()) {
            return Err(bad("`answers` needs at least one non-empty string".into()));
        }
        if line.documents.iter().all(|d| d.trim().is_empty()) {
            return Err(bad("`documents` needs at least one non-empty string".into()));
        }
        cases.push(Case {
            id: line.id.unwrap_or_else(|| format!("line-{number}")),
            group: None,
            instruction: qa::INSTRUCTION.to_string(),
            contexts: line.documents,
            question: format!("Question: {}\nAnswer:", line.question),
            reference: Reference::Answers(line.answers),
        });
    }
    take(cases, options.limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases_of(text: &str) -> Result<Vec<Case>> {
        let dir = std::env::temp_dir().join(format!("abridge-user-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.jsonl", crate::rng::fnv1a(text.as_bytes())));
        std::fs::write(&path, text).unwrap();
        let result = cases(&path, &SuiteOptions::default());
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn each_line_is_a_qa_case_in_file_order() {
        let cases = cases_of(concat!(
            r#"{"question": "Who?", "answers": ["Ada"], "documents": ["Ada wrote it.", "Noise."], "id": "a"}"#,
            "\n\n",
            r#"{"question": "When?", "answers": ["1954", "in 1954"], "documents": ["Built in 1954."], "source": "extra fields are fine"}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].id, "a");
        assert_eq!(cases[0].contexts, ["Ada wrote it.", "Noise."]);
        assert_eq!(cases[0].question, "Question: Who?\nAnswer:");
        assert_eq!(cases[1].id, "line-3");
        assert_eq!(
            cases[1].reference,
            Reference::Answers(vec!["1954".into(), "in 1954".into()])
        );
    }

    #[test]
    fn malformed_lines_name_the_line_and_the_field() {
        let missing = cases_of("{\"question\": \"Q\", \"documents\": [\"d\"]}\n").unwrap_err();
        let text = missing.to_string();
        assert!(text.contains(":1:") && text.contains("answers"), "{text}");
        let wrong_type = cases_of(concat!(
            r#"{"question": "Q", "answers": ["a"], "documents": ["d"]}"#,
            "\n",
            r#"{"question": "Q", "answers": "a", "documents": ["d"]}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(wrong_type.contains(":2:"), "{wrong_type}");
        let empty = cases_of(r#"{"question": "Q", "answers": ["a"], "documents": []}"#)
            .unwrap_err()
            .to_string();
        assert!(empty.contains("`documents`"), "{empty}");
        let not_json = cases_of("question,answers\n").unwrap_err().to_string();
        assert!(not_json.contains(":1:"), "{not_json}");
    }
}
