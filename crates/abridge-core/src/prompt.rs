//! The prompt as one text: instruction, contexts and question joined by blank lines (LLMLingua's
//! layout), with `<abridge>` markup removed and the byte ranges of each part recorded.

use std::ops::Range;

use crate::protect::markup::{parse_markup, RegionKind};
use crate::{Error, Result};

/// Separator between the parts of a prompt, as in LLMLingua's output.
pub const PART_SEPARATOR: &str = "\n\n";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prompt {
    pub text: String,
    /// Each context's range in `text`, in the order given.
    pub contexts: Vec<Range<usize>>,
    /// Ranges kept verbatim: the instruction, the question and `<abridge keep>` regions.
    pub keep: Vec<Range<usize>>,
    /// `<abridge rate=r>` regions, in text order.
    pub rated: Vec<(Range<usize>, f64)>,
    /// Which contexts contain `<abridge keep>` regions (a coarse filter must not drop them).
    pub context_has_keep: Vec<bool>,
}

impl Prompt {
    /// Joins the parts; with `markup`, tags are parsed and removed (else left as plain text).
    pub fn assemble(
        instruction: &str,
        contexts: &[String],
        question: &str,
        markup: bool,
    ) -> Result<Self> {
        if contexts.iter().all(|c| c.trim().is_empty()) {
            return Err(Error::InvalidInput(
                if instruction.trim().is_empty() && question.trim().is_empty() {
                    "nothing to compress: the text is empty".into()
                } else {
                    "nothing to compress: give the text to compress as context; the instruction and question are kept as they are".into()
                },
            ));
        }
        if let Some(i) = contexts.iter().position(|c| c.trim().is_empty()) {
            return Err(Error::InvalidInput(format!(
                "context {} is empty: remove it or give it text",
                i + 1
            )));
        }
        let mut prompt = Prompt {
            text: String::new(),
            contexts: Vec::with_capacity(contexts.len()),
            keep: Vec::new(),
            rated: Vec::new(),
            context_has_keep: Vec::with_capacity(contexts.len()),
        };
        if !instruction.trim().is_empty() {
            let span = prompt.push(instruction, markup)?;
            prompt.keep.push(span);
        }
        for context in contexts {
            let keep_before = prompt.keep.len();
            let span = prompt.push(context, markup)?;
            prompt.contexts.push(span);
            prompt
                .context_has_keep
                .push(prompt.keep.len() > keep_before);
        }
        if !question.trim().is_empty() {
            let span = prompt.push(question, markup)?;
            prompt.keep.push(span);
        }
        prompt.keep.sort_by_key(|r| r.start);
        Ok(prompt)
    }

    /// Appends one part (after a separator) and returns its range.
    fn push(&mut self, part: &str, markup: bool) -> Result<Range<usize>> {
        if !self.text.is_empty() {
            self.text.push_str(PART_SEPARATOR);
        }
        let start = self.text.len();
        if !markup {
            self.text.push_str(part);
            return Ok(start..self.text.len());
        }
        let parsed = parse_markup(part)?;
        self.text.push_str(&parsed.text);
        for region in parsed.regions {
            let span = start + region.span.start..start + region.span.end;
            match region.kind {
                RegionKind::Keep => self.keep.push(span),
                RegionKind::Rate(rate) => self.rated.push((span, rate)),
            }
        }
        Ok(start..self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_join_with_blank_lines_and_markup_becomes_ranges() {
        let prompt = Prompt::assemble(
            "Answer briefly.",
            &[
                "Fact <abridge keep>one</abridge>.".into(),
                "<abridge rate=0.5>Fact two.</abridge>".into(),
            ],
            "Why?",
            true,
        )
        .unwrap();
        assert_eq!(
            prompt.text,
            "Answer briefly.\n\nFact one.\n\nFact two.\n\nWhy?"
        );
        let at = |s: &str| prompt.text.find(s).unwrap();
        assert_eq!(
            prompt.contexts,
            vec![
                at("Fact one")..at("Fact one") + 9,
                at("Fact two")..at("Fact two") + 9
            ]
        );
        assert_eq!(
            prompt.keep,
            vec![
                0..15,
                at("one")..at("one") + 3,
                at("Why?")..prompt.text.len()
            ]
        );
        assert_eq!(
            prompt.rated,
            vec![(at("Fact two")..at("Fact two") + 9, 0.5)]
        );
        assert_eq!(prompt.context_has_keep, vec![true, false]);
    }

    #[test]
    fn markup_can_be_left_as_text() {
        let prompt = Prompt::assemble("", &["<abridge keep>x".into()], "", false).unwrap();
        assert_eq!(prompt.text, "<abridge keep>x");
    }

    #[test]
    fn missing_or_empty_contexts_are_invalid_input() {
        let message =
            |instruction: &str, contexts: &[String], question: &str| match Prompt::assemble(
                instruction,
                contexts,
                question,
                true,
            ) {
                Err(Error::InvalidInput(message)) => message,
                other => panic!("expected InvalidInput, got {other:?}"),
            };
        assert!(message("", &[], "").contains("the text is empty"));
        assert!(message("", &[" \n".into()], "").contains("the text is empty"));
        assert!(message("", &[], "What is 2+2?").contains("give the text to compress as context"));
        assert!(message("", &["a".into(), "".into()], "").contains("context 2 is empty"));
    }
}
