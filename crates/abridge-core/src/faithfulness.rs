//! The rewrite's faithfulness guard: every number, date and capitalised name a rewrite states
//! must occur in the text it was written from.
//!
//! Facts are checked by their atoms: each number (separators dropped, so "1,954.5" is "1954.5")
//! and each capitalised word. A rewrite may reorder a date ("13 April 2018" for "April 13, 2018")
//! but not change one of its parts; the price is that a recombination of atoms that all occur in
//! the source ("13 April 2019" when 2019 occurs elsewhere) passes. A capitalised word at a
//! sentence's start is a plain word when its lower-case form occurs in the source or it is a
//! function word ("The", "However"); anywhere else it must occur in the source as written.
//! Numbers spelled out ("five") are not checked. What is reported is the whole date, quantity or
//! name around an unsupported atom ([`crate::protect::entities::whole_ranges`]).

use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::protect::entities;

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)*").expect("the number pattern compiles"));

/// A capitalised word; an apostrophe ends it, so a possessive ("Müller's") is checked as the name.
static CAPITALISED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\p{Lu}[\p{L}\p{M}-]*").expect("the capitalised-word pattern compiles")
});

static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{M}]+").expect("the word pattern compiles"));

/// Words that are capitalised for grammar, never as a name.
const FUNCTION_WORDS: &[&str] = &[
    "A",
    "About",
    "According",
    "After",
    "Also",
    "Although",
    "An",
    "And",
    "As",
    "At",
    "Because",
    "Before",
    "Both",
    "But",
    "By",
    "During",
    "Each",
    "For",
    "From",
    "He",
    "Her",
    "Here",
    "His",
    "However",
    "I",
    "If",
    "In",
    "It",
    "Its",
    "No",
    "Of",
    "On",
    "Overall",
    "She",
    "So",
    "That",
    "The",
    "Their",
    "Then",
    "There",
    "These",
    "They",
    "This",
    "Those",
    "To",
    "We",
    "When",
    "While",
    "With",
    "Yes",
];

/// The atoms of a source text that a rewrite may state.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    numbers: HashSet<String>,
    capitalised: HashSet<String>,
    lower: HashSet<String>,
}

fn number_key(number: &str) -> String {
    number.chars().filter(|c| !matches!(c, ',')).collect()
}

impl Facts {
    /// The facts `source` states.
    pub fn of(source: &str) -> Self {
        Self {
            numbers: NUMBER
                .find_iter(source)
                .map(|m| number_key(m.as_str()))
                .collect(),
            capitalised: CAPITALISED
                .find_iter(source)
                .map(|m| m.as_str().to_string())
                .collect(),
            lower: WORD
                .find_iter(source)
                .map(|m| m.as_str().to_lowercase())
                .collect(),
        }
    }

    /// The spans of `sentence` (one sentence: its first word is taken as sentence-initial) that
    /// state a fact the source does not: sorted and disjoint, each a whole date, quantity or name
    /// where the atom lies in one.
    pub fn unsupported(&self, sentence: &str) -> Vec<Range<usize>> {
        let first_word = WORD.find(sentence).map(|m| m.start());
        let numbers = NUMBER
            .find_iter(sentence)
            .filter(|m| !self.numbers.contains(&number_key(m.as_str())))
            .map(|m| m.range());
        let names = CAPITALISED
            .find_iter(sentence)
            .filter(|m| {
                let word = m.as_str();
                let initial = first_word == Some(m.start());
                !(self.capitalised.contains(word)
                    || FUNCTION_WORDS.contains(&word)
                    || (initial && self.lower.contains(&word.to_lowercase())))
            })
            .map(|m| m.range());
        let atoms: Vec<Range<usize>> = numbers.chain(names).collect();
        if atoms.is_empty() {
            return atoms;
        }
        let whole = entities::whole_ranges(sentence);
        let spans = atoms
            .into_iter()
            .map(|atom| {
                whole
                    .iter()
                    .find(|w| w.start <= atom.start && atom.end <= w.end)
                    .cloned()
                    .unwrap_or(atom)
            })
            .collect();
        crate::protect::normalize(sentence, spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported<'s>(facts: &Facts, sentence: &'s str) -> Vec<&'s str> {
        facts
            .unsupported(sentence)
            .into_iter()
            .map(|r| &sentence[r])
            .collect()
    }

    #[test]
    fn facts_of_the_source_pass_and_invented_ones_are_reported_whole() {
        let facts = Facts::of(
            "Gerd Müller scored 68 goals for West Germany between 1966 and 1974. The line is \
             1,954.5 km long and opened on April 13, 2018.",
        );
        for supported in [
            "Müller's 68 goals came between 1966 and 1974.",
            "The line, 1954.5 km long, opened on 13 April 2018.",
            "Scored for West Germany.",
            "However, it opened in 2018.",
        ] {
            assert_eq!(
                unsupported(&facts, supported),
                Vec::<&str>::new(),
                "{supported}"
            );
        }
        assert_eq!(
            unsupported(&facts, "Gerd Müller scored 70 goals for Bayern Munich."),
            ["70", "Bayern Munich"]
        );
        assert_eq!(
            unsupported(&facts, "It opened on May 2, 2018 in Zorblax."),
            ["May 2, 2018", "Zorblax"]
        );
        // A word capitalised mid-sentence must be in the source as written.
        assert_eq!(unsupported(&facts, "Goals came in Line order."), ["Line"]);
        // A sentence-initial word whose lower-case form the source has is a plain word.
        assert_eq!(unsupported(&facts, "Goals: 68."), Vec::<&str>::new());
    }
}
