//! Needle in a haystack: one sentence carrying a random 7-digit number, inserted at a depth of
//! 0%, 25%, 50%, 75% or 100% into Paul Graham essays cut to a length in cl100k tokens (the
//! haystack of the NIAH test, RULER and LongLLMLingua). The metric asks whether the number
//! survives, per length × depth cell.

use std::path::Path;

use super::{Case, Group, Reference, SuiteOptions};
use crate::data::{read_jsonl, Essay, Split};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The default needle depths, in percent.
pub const DEPTHS: [u32; 5] = [0, 25, 50, 75, 100];

/// Cases per length × depth cell when no limit is given.
pub const DEFAULT_PER_CELL: usize = 10;

const CITIES: [&str; 12] = [
    "Chicago",
    "Yangon",
    "Antananarivo",
    "Colombo",
    "Almaty",
    "Sydney",
    "Lisbon",
    "Montevideo",
    "Tbilisi",
    "Reykjavik",
    "Nairobi",
    "Osaka",
];

pub const INSTRUCTION: &str = "Answer the question based on the text below.";

pub fn cases(
    path: &Path,
    options: &SuiteOptions,
    count: &dyn Fn(&str) -> usize,
) -> Result<Vec<Case>> {
    let essays = read_jsonl::<Essay>(path)?;
    if essays.is_empty() {
        return Err(Error::InvalidOption(format!(
            "{} has no essays",
            path.display()
        )));
    }
    if let Some(&bad) = options.niah_lengths.iter().find(|&&l| l < 100) {
        return Err(Error::InvalidOption(format!(
            "haystack length {bad} is too short: give lengths of at least 100 tokens, e.g. 1000,2000"
        )));
    }
    if let Some(&bad) = options.niah_depths.iter().find(|&&d| d > 100) {
        return Err(Error::InvalidOption(format!(
            "needle depth {bad}% is past the end: give depths in 0..=100, e.g. 0,50,100"
        )));
    }
    let per_cell = match options.limit {
        Some(0) => return Err(Error::InvalidOption("--limit must be at least 1".into())),
        Some(n) => n,
        None => DEFAULT_PER_CELL,
    };
    let mut cases = Vec::new();
    for &length in &options.niah_lengths {
        for &depth in &options.niah_depths {
            let mut found = 0;
            for variant in 0.. {
                if found == per_cell {
                    break;
                }
                let id = format!("niah-{length}-{depth}-{variant}");
                if Split::of(&id) != options.split {
                    continue;
                }
                found += 1;
                cases.push(case(&essays, id, length, depth, options.seed, count));
            }
        }
    }
    Ok(cases)
}

/// Byte offsets just after each sentence end (`. `, `? `, `! ` or a line break) of `text`.
fn sentence_ends(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    (1..bytes.len())
        .filter(|&i| {
            bytes[i - 1] == b'\n'
                || (matches!(bytes[i - 1], b'.' | b'?' | b'!') && bytes[i].is_ascii_whitespace())
        })
        .collect()
}

fn case(
    essays: &[Essay],
    id: String,
    length: usize,
    depth: u32,
    seed: u64,
    count: &dyn Fn(&str) -> usize,
) -> Case {
    let mut rng = Rng::new(seed, &id);
    let city = CITIES[rng.below(CITIES.len())];
    let number = 1_000_000 + rng.below(9_000_000);
    let needle = format!("The special magic number for {city} is: {number}.");
    let budget = length.saturating_sub(count(&needle));

    // Essays in order from a random one, until the haystack is long enough.
    let first = rng.below(essays.len());
    let mut haystack = String::new();
    for k in 0..essays.len() {
        if !haystack.is_empty() {
            haystack.push_str("\n\n");
        }
        haystack.push_str(&essays[(first + k) % essays.len()].text);
        if count(&haystack) > budget {
            break;
        }
    }
    // Cut at the last sentence end that fits the budget.
    let ends = sentence_ends(&haystack);
    let fits = ends.partition_point(|&end| count(&haystack[..end]) <= budget);
    let cut = if fits == 0 {
        haystack.len()
    } else {
        ends[fits - 1]
    };
    haystack.truncate(cut);
    let haystack = haystack.trim_end();

    // Insert at the first sentence end at or after the depth.
    let at = if depth == 0 {
        0
    } else {
        let wanted = haystack.len() * depth as usize / 100;
        sentence_ends(haystack)
            .into_iter()
            .find(|&end| end >= wanted)
            .unwrap_or(haystack.len())
    };
    let (before, after) = haystack.split_at(at);
    let context = [before.trim_end(), needle.as_str(), after.trim_start()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Case {
        id,
        group: Some(Group {
            row: format!("{length} tokens"),
            column: format!("depth {depth}%"),
        }),
        instruction: INSTRUCTION.to_string(),
        contexts: vec![context],
        question: format!(
            "Question: What is the special magic number for {city} mentioned in the text?\nAnswer:"
        ),
        reference: Reference::Answers(vec![number.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn essays() -> Vec<Essay> {
        (0..3)
            .map(|e| Essay {
                id: format!("e{e}"),
                text: (0..100)
                    .map(|s| format!("Essay {e} sentence {s} is here."))
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect()
    }

    #[test]
    fn the_needle_sits_at_its_depth_in_a_haystack_of_the_length() {
        for depth in DEPTHS {
            let case = case(
                &essays(),
                format!("niah-300-{depth}-0"),
                300,
                depth,
                5,
                &words,
            );
            let context = &case.contexts[0];
            let Reference::Answers(answers) = &case.reference else {
                panic!("needle cases have answers")
            };
            let at = context.find(&answers[0]).unwrap() as f64 / context.len() as f64;
            assert!(
                (at - depth as f64 / 100.0).abs() < 0.05,
                "depth {depth}: at {at}"
            );
            let length = words(context);
            assert!((290..=300).contains(&length), "{length}");
            assert!(context.contains("The special magic number for "));
        }
    }

    #[test]
    fn cells_hold_the_requested_number_of_split_cases() {
        let dir = std::env::temp_dir().join(format!("abridge-niah-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("essays.jsonl");
        let lines: Vec<String> = essays()
            .iter()
            .map(|e| format!("{{\"id\":\"{}\",\"text\":\"{}\"}}", e.id, e.text))
            .collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let options = SuiteOptions {
            limit: Some(2),
            niah_lengths: vec![200, 400],
            ..SuiteOptions::default()
        };
        let cases = cases(&path, &options, &words).unwrap();
        assert_eq!(cases.len(), 2 * DEPTHS.len() * 2);
        assert!(cases.iter().all(|c| Split::of(&c.id) == Split::Test));
        let two_depths = SuiteOptions {
            niah_depths: vec![0, 100],
            ..options.clone()
        };
        let grid = super::cases(&path, &two_depths, &words).unwrap();
        assert_eq!(grid.len(), 2 * 2 * 2);
        assert_eq!(
            grid.last().unwrap().group.as_ref().unwrap().label(),
            "400 tokens, depth 100%"
        );
        let deep = SuiteOptions {
            niah_depths: vec![101],
            ..options.clone()
        };
        assert!(super::cases(&path, &deep, &words)
            .unwrap_err()
            .to_string()
            .contains("past the end"));
        let short = SuiteOptions {
            niah_lengths: vec![50],
            ..options
        };
        assert!(super::cases(&path, &short, &words)
            .unwrap_err()
            .to_string()
            .contains("too short"));
    }
}
