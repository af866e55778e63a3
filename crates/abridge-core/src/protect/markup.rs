//! Inline markup: `<abridge keep>…</abridge>` and `<abridge rate=0.3>…</abridge>`.
//!
//! The tags are removed before anything else sees the text; the regions they enclose are reported
//! as byte ranges into the text without tags. Regions do not nest. Anything that looks like a tag
//! but is not a well-formed one is an error, so a typo never silently leaks markup into a prompt.

use std::ops::Range;

use crate::{Error, Result};

/// How a marked region is compressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegionKind {
    /// Kept verbatim.
    Keep,
    /// Compressed to its own rate (kept/original), independent of the overall budget.
    Rate(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Byte range in [`Markup::text`].
    pub span: Range<usize>,
    pub kind: RegionKind,
}

/// Text with its tags removed, and the regions they marked.
#[derive(Debug, Clone, PartialEq)]
pub struct Markup {
    pub text: String,
    pub regions: Vec<Region>,
}

const OPEN: &str = "<abridge";
const CLOSE: &str = "</abridge>";

/// Removes `<abridge …>` tags from `input` and returns the regions they enclosed.
pub fn parse_markup(input: &str) -> Result<Markup> {
    let mut text = String::with_capacity(input.len());
    let mut regions = Vec::new();
    let mut open: Option<(usize, RegionKind, usize)> = None;
    let mut rest_start = 0;
    while let Some(found) = find_tag(input, rest_start) {
        text.push_str(&input[rest_start..found]);
        let tail = &input[found..];
        if tail.starts_with("</") {
            if !tail.starts_with(CLOSE) {
                return Err(malformed(
                    input,
                    found,
                    "a closing tag must be exactly `</abridge>`",
                ));
            }
            let Some((start, kind, _)) = open.take() else {
                return Err(malformed(
                    input,
                    found,
                    "`</abridge>` has no opening `<abridge …>` tag",
                ));
            };
            regions.push(Region {
                span: start..text.len(),
                kind,
            });
            rest_start = found + CLOSE.len();
        } else {
            let Some(end) = tail.find('>') else {
                return Err(malformed(
                    input,
                    found,
                    "the `<abridge` tag is not closed with `>`",
                ));
            };
            if let Some((_, _, opened_at)) = open {
                return Err(malformed(
                    input,
                    found,
                    &format!(
                        "`<abridge>` tags do not nest; the one opened on line {} is still open",
                        line_of(input, opened_at)
                    ),
                ));
            }
            let kind = parse_attributes(&tail[OPEN.len()..end])
                .map_err(|message| malformed(input, found, &message))?;
            open = Some((text.len(), kind, found));
            rest_start = found + end + 1;
        }
    }
    if let Some((_, _, opened_at)) = open {
        return Err(malformed(
            input,
            opened_at,
            "this `<abridge …>` tag is never closed with `</abridge>`",
        ));
    }
    text.push_str(&input[rest_start..]);
    Ok(Markup { text, regions })
}

/// The next `<abridge` or `</abridge` at or after `from` that is a whole tag name (`<abridged>`
/// is ordinary text).
fn find_tag(input: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = input[at..].find('<') {
        let found = at + offset;
        let tail = &input[found..];
        let name_end = if tail.starts_with("</abridge") {
            Some(found + "</abridge".len())
        } else if tail.starts_with(OPEN) {
            Some(found + OPEN.len())
        } else {
            None
        };
        let after_name = name_end.map(|end| input[end..].chars().next());
        if let Some(next) = after_name {
            if next.is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '-') {
                return Some(found);
            }
        }
        at = found + 1;
    }
    None
}

fn parse_attributes(attributes: &str) -> std::result::Result<RegionKind, String> {
    let attributes = attributes.trim();
    if attributes == "keep" {
        return Ok(RegionKind::Keep);
    }
    if let Some(value) = attributes.strip_prefix("rate=") {
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        return match value.parse::<f64>() {
            Ok(rate) if rate > 0.0 && rate <= 1.0 => Ok(RegionKind::Rate(rate)),
            _ => Err(format!(
                "`rate={value}` must be a number in (0, 1], e.g. `<abridge rate=0.3>`"
            )),
        };
    }
    Err(format!(
        "unknown attribute `{attributes}`: use `<abridge keep>` or `<abridge rate=0.3>`"
    ))
}

fn line_of(input: &str, at: usize) -> usize {
    input[..at].matches('\n').count() + 1
}

fn malformed(input: &str, at: usize, message: &str) -> Error {
    Error::InvalidInput(format!(
        "malformed <abridge> markup on line {}: {message}",
        line_of(input, at)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_removed_and_regions_reported() {
        let markup = parse_markup(
            "Keep <abridge keep>this part</abridge> and <abridge rate=0.3>squeeze that</abridge>.",
        )
        .unwrap();
        assert_eq!(markup.text, "Keep this part and squeeze that.");
        assert_eq!(
            markup.regions,
            vec![
                Region {
                    span: 5..14,
                    kind: RegionKind::Keep
                },
                Region {
                    span: 19..31,
                    kind: RegionKind::Rate(0.3)
                },
            ]
        );
    }

    #[test]
    fn text_without_tags_and_lookalikes_is_unchanged() {
        let markup = parse_markup("a <abridged> b <b>c</b>").unwrap();
        assert_eq!(markup.text, "a <abridged> b <b>c</b>");
        assert!(markup.regions.is_empty());
    }

    #[test]
    fn malformed_markup_is_invalid_input_naming_the_line() {
        for (input, expected) in [
            ("x</abridge>", "line 1: `</abridge>` has no opening"),
            (
                "a\n<abridge keep>b",
                "line 2: this `<abridge …>` tag is never closed",
            ),
            (
                "<abridge keep><abridge keep>a</abridge></abridge>",
                "do not nest",
            ),
            (
                "<abridge rate=1.5>a</abridge>",
                "`rate=1.5` must be a number in (0, 1]",
            ),
            ("<abridge rate=0>a</abridge>", "must be a number in (0, 1]"),
            ("<abridge drop>a</abridge>", "unknown attribute `drop`"),
            ("<abridge keep", "not closed with `>`"),
            ("<abridge keep>a</abridge >", "exactly `</abridge>`"),
        ] {
            match parse_markup(input) {
                Err(Error::InvalidInput(message)) => {
                    assert!(message.contains(expected), "{input:?}: {message}")
                }
                other => panic!("{input:?}: expected InvalidInput, got {other:?}"),
            }
        }
    }
}
