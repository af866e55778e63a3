//! Dates, quantities and names: spans that are only worth keeping whole.
//!
//! A word rule (`force_reserve_digit`) keeps "13," of "April 13, 2018" and may drop "April";
//! these rules work on spans instead. Dates ("April 13, 2018", "13 April 2018", "2018-04-13"),
//! numbers with their units ("1,954.5 km", "$3.2 million", "45%") and capitalised multi-word
//! names ("Kessler Yard", "New York City") each become one unit, so they survive as one piece or
//! not at all ([`merge_whole`]). They are not protected (always kept): on NQ's dev split,
//! protecting every number of every passage took the budget from the answer (answer kept at 1/5
//! fell from 0.89 to 0.70, at 1/10 from 0.47 to 0.09; docs/QUALITY.md).

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

const MONTH: &str = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?";

/// Units a number carries with it; a word after a number that is not one of them stays a word
/// of its own ("1954 at" is not a quantity).
/// (Single letters that are also words, like "a" or "in", are left out.)
const UNITS: &str = r"(?:%|percent|per cent|km/h|km|kilometres|kilometers|metres|meters|cm|mm|m|mi|miles?|ft|feet|foot|inches|kg|kilograms|grams|mg|g|lbs?|pounds|tons?|tonnes?|litres|liters|ml|mph|°C|°F|°|degrees|hours?|hrs?|minutes?|seconds?|ms|days?|weeks?|months?|years?|yrs?|million|billion|trillion|thousand|hundred|bn|dollars|euros|people|votes|GB|MB|KB|TB|GHz|MHz|Hz|kW|MW)";

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    let day = r"\d{1,2}(?:st|nd|rd|th)?";
    Regex::new(&format!(
        r"\b(?:{MONTH}\s+{day}(?:,?\s+\d{{4}})?|{day}\s+(?:of\s+)?{MONTH}(?:,?\s+\d{{4}})?|{MONTH}\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})\b"
    ))
    .expect("the date pattern compiles")
});

static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"[$€£¥]?\d+(?:[.,]\d+)*(?:\s?{UNITS}(?:\b|$)|%)?"))
        .expect("the quantity pattern compiles")
});

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\p{Lu}[\p{L}\p{M}'’-]*(?:[ \t]+\p{Lu}[\p{L}\p{M}'’-]*)+")
        .expect("the name pattern compiles")
});

/// Dates and quantities in `text` (possibly overlapping).
fn date_and_quantity_ranges(text: &str) -> Vec<Range<usize>> {
    DATE.find_iter(text)
        .chain(QUANTITY.find_iter(text))
        .map(|m| m.range())
        .collect()
}

/// Capitalised multi-word names in `text`.
fn name_ranges(text: &str) -> Vec<Range<usize>> {
    NAME.find_iter(text).map(|m| m.range()).collect()
}

/// The dates, quantities and names of `text`, each to be kept or dropped whole: sorted,
/// disjoint (overlaps merged) and trimmed, as [`merge_whole`] takes them.
pub fn whole_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = date_and_quantity_ranges(text);
    ranges.extend(name_ranges(text));
    crate::protect::normalize(text, ranges)
}

/// `units` with the units each of `whole` (sorted, disjoint) overlaps joined into one, so the
/// span is kept or dropped as one piece. The result still partitions the text.
pub fn merge_whole(units: Vec<Range<usize>>, whole: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(units.len());
    let mut spans = whole.iter().peekable();
    let mut joining: Option<&Range<usize>> = None;
    for unit in units {
        while spans.peek().is_some_and(|s| s.end <= unit.start) {
            spans.next();
        }
        let inside = spans
            .peek()
            .copied()
            .filter(|s| s.start < unit.end && unit.start < s.end);
        match (joining, inside, merged.last_mut()) {
            (Some(current), Some(span), Some(last)) if current == span => last.end = unit.end,
            _ => merged.push(unit),
        }
        joining = inside;
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Segmenter, Words};

    fn found(ranges: Vec<Range<usize>>, text: &str) -> Vec<String> {
        let mut pieces: Vec<String> = crate::protect::normalize(text, ranges)
            .into_iter()
            .map(|r| text[r].to_string())
            .collect();
        pieces.dedup();
        pieces
    }

    #[test]
    fn dates_and_quantities_are_found_as_spans() {
        let text = "Opened on April 13, 2018 (or 13 April 2018, 2018-04-13), the line is \
                    1,954.5 km long, cost $3.2 million and carries 45% of freight since 1954 at the yard.";
        assert_eq!(
            found(date_and_quantity_ranges(text), text),
            [
                "April 13, 2018",
                "13 April 2018",
                "2018-04-13",
                "1,954.5 km",
                "$3.2 million",
                "45%",
                "1954"
            ]
        );
    }

    #[test]
    fn a_month_word_alone_is_not_a_date_and_a_number_does_not_take_the_next_word() {
        let text = "You may see 12 cats at 3 in May.";
        assert_eq!(found(date_and_quantity_ranges(text), text), ["12", "3"]);
    }

    #[test]
    fn names_are_multi_word_capitalised_runs() {
        let text = "The ferry Marisol was built at the Kessler Yard in New York City.";
        let names: Vec<&str> = name_ranges(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(names, ["Kessler Yard", "New York City"]);
    }

    #[test]
    fn whole_spans_become_one_unit_and_units_still_partition_the_text() {
        let text = "built at the Kessler Yard in New York City today";
        let units = merge_whole(Words.segment(text), &whole_ranges(text));
        let pieces: Vec<&str> = units.iter().map(|u| &text[u.clone()]).collect();
        assert_eq!(
            pieces,
            [
                "built",
                " at",
                " the",
                " Kessler Yard",
                " in",
                " New York City",
                " today"
            ]
        );
        assert_eq!(pieces.concat(), text);
        let text = "opened on April 13, 2018 for 1,954.5 km of track";
        let units = merge_whole(Words.segment(text), &whole_ranges(text));
        let pieces: Vec<&str> = units.iter().map(|u| &text[u.clone()]).collect();
        assert_eq!(
            pieces,
            [
                "opened",
                " on",
                " April 13, 2018",
                " for",
                " 1,954.5 km",
                " of",
                " track"
            ]
        );
    }
}
