//! Fuzz targets that run on stable Rust (issue #21, item 6): the markup parser, the protection
//! options and every segmenter take arbitrary text (seeded from the small committed corpus in
//! `tests/fuzz-corpus/`, then mutated) and must return a result or a clear error, never panic,
//! with their invariants intact. `cargo test` runs a short bounded pass; a long run sets
//! `ABRIDGE_FUZZ_CASES` (docs/RELIABILITY.md).

use std::ops::Range;

use abridge_core::protect::entities::{merge_whole, whole_ranges};
use abridge_core::protect::markup::parse_markup;
use abridge_core::segment::{split_oversized, Phrases, Segmenter, Sentences, Words};
use abridge_core::testing::WordCounter;
use abridge_core::ProtectOptions;
use proptest::prelude::*;

/// Cases per target: `ABRIDGE_FUZZ_CASES`, else a CI-sized default.
fn cases() -> u32 {
    std::env::var("ABRIDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-corpus");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A corpus entry with random edits: characters inserted, deleted or replaced, with a bias to
/// the markup's own characters so tags are often almost right.
fn fuzzed_text() -> impl Strategy<Value = String> {
    let seed = proptest::sample::select(corpus());
    let edit = (
        any::<prop::sample::Index>(),
        prop_oneof![
            3 => proptest::sample::select(
                &["<", ">", "</", "<abridge", "</abridge>", " keep", " rate=", "0.5", "=", "\"",
                  "`", "```", "\n", " ", "\u{0}", "\u{46fbb}", "é", "中", "\u{200D}"][..]
            ).prop_map(str::to_string),
            1 => any::<char>().prop_map(String::from),
            1 => Just(String::new()),
        ],
        0..3usize,
    );
    (seed, proptest::collection::vec(edit, 0..8)).prop_map(|(mut text, edits)| {
        for (at, insert, remove) in edits {
            let mut start = at.index(text.len() + 1);
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + remove).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(start..end, &insert);
        }
        text
    })
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![fuzzed_text(), any::<String>()]
}

fn assert_partition(text: &str, units: &[Range<usize>]) -> Result<(), TestCaseError> {
    let mut at = 0;
    for unit in units {
        prop_assert_eq!(unit.start, at);
        prop_assert!(unit.end > unit.start && text.is_char_boundary(unit.end));
        at = unit.end;
    }
    prop_assert_eq!(at, text.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn markup_parses_or_names_the_mistake(input in arbitrary_text()) {
        match parse_markup(&input) {
            Ok(markup) => {
                prop_assert!(markup.text.len() <= input.len());
                for region in &markup.regions {
                    prop_assert!(markup.text.get(region.span.clone()).is_some());
                }
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn segmenters_partition_any_text(text in arbitrary_text(), max in 1usize..6) {
        for units in [Words.segment(&text), Phrases.segment(&text), Sentences.segment(&text)] {
            assert_partition(&text, &units)?;
            let whole = whole_ranges(&text);
            prop_assert!(whole.windows(2).all(|pair| pair[0].end <= pair[1].start));
            assert_partition(&text, &merge_whole(units.clone(), &whole))?;
            let split = split_oversized(&text, units, max, &WordCounter);
            assert_partition(&text, &split)?;
        }
    }

    #[test]
    fn protection_options_protect_or_name_the_mistake(
        text in arbitrary_text(),
        force in proptest::collection::vec("\\PC{0,4}", 0..3),
        pattern in proptest::option::of("\\PC{0,6}"),
        digits in any::<bool>(),
        code in any::<bool>(),
    ) {
        let options = ProtectOptions {
            force_tokens: force,
            force_reserve_digit: digits,
            patterns: pattern.into_iter().collect(),
            protect_code: code,
            entities: false,
        };
        if let Ok(ranges) = options.protected_ranges(&text) {
            for range in ranges {
                prop_assert!(text.get(range).is_some());
            }
        }
    }
}
