//! `rewrite`: extract, then rewrite (the survey's third hard-prompt family).
//!
//! 1. Extract: `auto`'s selection at [`RewriteConfig::extract_factor`] times the final target
//!    (capped at the original), so the rewriter reads the relevant part of the prompt only.
//! 2. Rewrite: a [`Generator`] (an instruction model) turns the extract into concise prose that
//!    answers the question, or without one keeps its facts, in a bounded number of tokens.
//! 3. Guard ([`crate::faithfulness`]): a generated sentence that states a number, date or name
//!    the source lacks is replaced by the extract's most similar sentence, or dropped; each such
//!    span is reported ([`Rewrite::unsupported_spans`]).
//! 4. Budget: whole sentences are kept in order while the prompt (instruction and question
//!    included) stays within the target in the target LLM's tokens; if none fits, the first is
//!    cut at a word.
//! 5. Protected text (force tokens, patterns, `<abridge keep>`) the rewrite lost is put back with
//!    the extract's sentence that holds it, over the budget if need be, as every method keeps it.
//! 6. Fill: small models stop well short of the budget (half of it on the NQ dev pilot,
//!    docs/QUALITY.md), so what is left is filled with the extract's sentences the rewrite does
//!    not already cover, most relevant to the question first (`auto`'s sentence relevance,
//!    [`crate::rank::relevance`]), and when that leaves more than [`BUDGET_TOLERANCE`] of the
//!    target unused, the next one cut at a word ([`Rewrite::fill`]).
//!
//! Where it differs from RECOMP's abstractive compressor and CompAct: no trained compressor (any
//! instruction model, prompted), an extractive step first so a small model reads a short input,
//! and faithfulness enforced after generation rather than hoped for from training.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::AutoConfig;
use crate::budget::{Budget, Target};
use crate::compress::{pipeline, Timings};
use crate::error::{Fix, OptionError};
use crate::faithfulness::Facts;
use crate::prompt::{Prompt, PART_SEPARATOR};
use crate::rank::{self, bm25};
use crate::render::render;
use crate::score::Progress;
use crate::segment::{Segmenter, Sentences, Words};
use crate::select::{longest_fitting, unreachable_reason};
use crate::{
    CompressRequest, Compressed, Embedder, Error, Generation, Generator, Method, Models, Result,
    TokenCounter,
};

/// How far under the target a result may end (the issue's ±3%) before the fill cuts a sentence
/// at a word to come closer.
const BUDGET_TOLERANCE: f64 = 0.03;

/// The share of an extract sentence's terms that the rewrite must hold for the sentence to count
/// as covered and be left out of the fill. High, because a paraphrase that drops the one detail
/// the question asks for should not keep that detail out; not 1, so a rewrite that copies a
/// sentence with a word changed does not bring it back twice. Not tuned.
const COVERED_SHARE: f64 = 0.8;

/// The choices `rewrite` makes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RewriteConfig {
    /// The extract's selection.
    pub extract: AutoConfig,
    /// The extract's budget as a multiple of the final target (capped at the original): loose
    /// enough that the rewriter sees the answer's surroundings, tight enough for a small model.
    pub extract_factor: f64,
}

impl Default for RewriteConfig {
    fn default() -> Self {
        Self {
            extract: AutoConfig::TUNED,
            extract_factor: 2.0,
        }
    }
}

/// What the rewrite step did, beside the compressed prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rewrite {
    /// The generator's name.
    pub generator: String,
    /// The contexts as extracted (what the generator read).
    pub extract: String,
    pub extract_tokens: usize,
    /// What the generator wrote, before the guard and the budget.
    pub generated: String,
    /// The rewrite as the result holds it, before the fill: the generated sentences the guard
    /// and the budget kept, the guard's replacements and restored protected text.
    pub rewritten: String,
    /// Tokens of [`Rewrite::rewritten`] (target tokenizer).
    pub rewrite_tokens: usize,
    /// The extract's sentences appended after the rewrite to use the budget it left, most
    /// relevant first; the last may be cut at a word. Empty when the rewrite filled the budget.
    pub fill: String,
    /// Tokens of [`Rewrite::fill`] (target tokenizer).
    pub fill_tokens: usize,
    /// Facts the generation stated that the source does not, with what became of their sentence.
    pub unsupported_spans: Vec<UnsupportedSpan>,
    /// Generated sentences left out because the budget could not hold them.
    pub sentences_over_budget: usize,
    /// Protected text the rewrite lost, put back from the extract.
    pub restored_protected: Vec<String>,
}

/// A number, date or name the generator stated that the source does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsupportedSpan {
    pub text: String,
    /// The generated sentence it was in.
    pub sentence: String,
    /// The extract's sentence that took its place; none when it was dropped.
    pub replaced_by: Option<String>,
}

/// One sentence of the rewrite: generated, or taken from the extract.
struct Piece {
    text: String,
    /// The unsupported spans whose sentence this replaced (to mark dropped if it is cut).
    replaces: Vec<usize>,
}

/// Compresses with `rewrite`: the extract is a whole `auto` compression, so this runs before
/// and around the pipeline rather than as its stages.
pub(crate) fn compress(
    request: &CompressRequest,
    config: &RewriteConfig,
    models: Models,
    progress: Option<Progress>,
) -> Result<Compressed> {
    let started = Instant::now();
    request.validate()?;
    let generator = models.generator.ok_or_else(|| {
        Error::InvalidInput(
            "the rewrite method needs a generator (an instruction model that writes the rewrite), and none was loaded: pass a local GGUF chat model or an OpenAI-compatible endpoint".into(),
        )
    })?;
    let counter = models.counter;
    let prompt = Prompt::assemble(
        &request.instruction,
        &request.contexts,
        &request.question,
        request.markup,
    )?;
    let origin_tokens = counter.count(&prompt.text);
    let target = match request.budget.target(origin_tokens) {
        Target::Tokens(tokens) => tokens,
        Target::Threshold(_) => {
            return Err(OptionError::new(
                "threshold",
                "does not apply to rewrite (a rewrite has no unit scores to threshold)",
                Fix::Text("give a rate or a target_token instead".into()),
            )
            .into())
        }
    };

    let extract_target = ((target as f64 * config.extract_factor).ceil() as usize)
        .clamp(target, origin_tokens.max(target));
    let mut extract_request = request.clone();
    extract_request.method = Method::Auto(config.extract);
    extract_request.budget = Budget::TargetTokens(extract_target);
    let extracted = pipeline(&extract_request, models, progress)?;
    let extract = contexts_of(&extracted);
    let (instruction, question) = around_contexts(&extracted);

    let layout = Layout {
        instruction,
        question,
        counter,
    };
    let body_budget = target.saturating_sub(layout.tokens(""));
    let generation_started = Instant::now();
    let generated = generate(generator, &extract, question, body_budget, progress)?;
    let generation_time = generation_started.elapsed();

    let facts = Facts::of(&extracted.source);
    let extract_sentences: Vec<&str> = sentences(&extract)
        .into_iter()
        .filter(|s| facts.unsupported(s).is_empty())
        .collect();
    let (mut pieces, mut unsupported_spans) = guard(&generated, &facts, &extract_sentences);
    if pieces.is_empty() {
        // Nothing usable was written: the extract stands in, cut to the budget like a rewrite.
        pieces = extract_sentences
            .iter()
            .map(|s| Piece {
                text: s.to_string(),
                replaces: Vec::new(),
            })
            .collect();
    }
    let (mut body, cut) = layout.fit(&pieces, target);
    for i in cut.iter().flat_map(|&p| &pieces[p].replaces) {
        unsupported_spans[*i].replaced_by = None;
    }

    let mut restored_protected = Vec::new();
    for protected in protected_texts(&extracted) {
        if body.contains(&protected) {
            continue;
        }
        let sentence = extract_sentences
            .iter()
            .find(|s| s.contains(&protected))
            .map_or(protected.as_str(), |s| *s);
        body = join(&body, sentence);
        restored_protected.push(protected);
    }

    let fill = layout.fill(&body, &extract_sentences, question, models.embedder, target)?;
    let text = layout.text(&join(&body, &fill));
    let compressed_tokens = counter.count(&text);
    let rewrite = Rewrite {
        generator: generator.name().to_string(),
        extract_tokens: counter.count(&extract),
        extract,
        generated,
        rewrite_tokens: counter.count(&body),
        rewritten: body,
        fill_tokens: counter.count(&fill),
        fill,
        unsupported_spans,
        sentences_over_budget: cut.len(),
        restored_protected,
    };
    let unreachable = unreachable_reason(
        &extracted.source,
        &text,
        Target::Tokens(target),
        extracted.protected_tokens,
    );
    Ok(Compressed {
        budget_unreachable: unreachable.is_some(),
        budget_unreachable_reason: unreachable,
        ratio: origin_tokens as f64 / compressed_tokens.max(1) as f64,
        rate: compressed_tokens as f64 / origin_tokens.max(1) as f64,
        text,
        origin_tokens,
        compressed_tokens,
        target_tokens: Some(target),
        protected_over_budget: extracted.protected_tokens > target
            || (compressed_tokens > target && !rewrite.restored_protected.is_empty()),
        timings: Timings {
            model_seconds: extracted.timings.model_seconds + generation_time.as_secs_f64(),
            total_seconds: started.elapsed().as_secs_f64(),
        },
        rewrite: Some(rewrite),
        ..extracted
    })
}

/// The instruction for the generator: answer-focused prose for a question, else a summary that
/// keeps the facts; both ask for the document's own names, numbers and dates.
fn instruction(extract: &str, question: &str, words: usize) -> (String, String) {
    let system = "You shorten documents for another assistant. Use only what the document \
                  states; copy names, numbers and dates exactly as written; add nothing."
        .to_string();
    let user = match question.trim() {
        "" => format!(
            "Document:\n{extract}\n\nSummarise the document in at most {words} words of plain \
             prose, keeping its key facts (names, numbers, dates) exactly as written."
        ),
        question => format!(
            "Document:\n{extract}\n\nQuestion: {question}\n\nIn at most {words} words of plain \
             prose, write what the document says that answers the question, keeping the names, \
             numbers and dates the answer needs exactly as written. Do not answer from memory."
        ),
    };
    (system, user)
}

/// Runs the generator on the extract, reporting its tokens through `progress`.
fn generate(
    generator: &dyn Generator,
    extract: &str,
    question: &str,
    body_budget: usize,
    progress: Option<Progress>,
) -> Result<String> {
    if body_budget == 0 {
        return Ok(String::new());
    }
    // About 0.75 English words per token; the generator's tokens are allowed a margin over the
    // target tokenizer's (Qwen2 writes digits one token each), and the cut enforces the budget.
    let words = (body_budget * 3 / 4).max(1);
    let max_new_tokens = body_budget + body_budget / 2 + 8;
    let (system, user) = instruction(extract, question, words);
    let request = Generation {
        system: &system,
        user: &user,
        max_new_tokens,
    };
    let mut on_token = |n: usize| -> std::result::Result<(), crate::BoxError> {
        if let Some(progress) = progress {
            progress(n.min(max_new_tokens), max_new_tokens);
        }
        Ok(())
    };
    generator
        .generate(&request, &mut on_token)
        .map(|text| text.trim().to_string())
        .map_err(|error| {
            Error::Model(
                format!(
                    "the rewrite's generator ({}) failed: {error}",
                    generator.name()
                )
                .into(),
            )
        })
}

/// The generated sentences, repeats left out, with unsupported ones replaced by the extract's
/// most similar supported sentence (each used once, and never one the rewrite already holds) or
/// dropped.
fn guard(
    generated: &str,
    facts: &Facts,
    extract_sentences: &[&str],
) -> (Vec<Piece>, Vec<UnsupportedSpan>) {
    let written = sentences(generated);
    let mut used: Vec<bool> = extract_sentences
        .iter()
        .map(|s| written.contains(s))
        .collect();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut spans = Vec::new();
    for sentence in written {
        // Small models repeat themselves; a repeat adds nothing.
        if pieces.iter().any(|p| p.text == sentence) {
            continue;
        }
        let unsupported = facts.unsupported(sentence);
        if unsupported.is_empty() {
            pieces.push(Piece {
                text: sentence.to_string(),
                replaces: Vec::new(),
            });
            continue;
        }
        let replacement = most_similar(sentence, extract_sentences, &used);
        let first = spans.len();
        for span in unsupported {
            spans.push(UnsupportedSpan {
                text: sentence[span].to_string(),
                sentence: sentence.to_string(),
                replaced_by: replacement.map(|i| extract_sentences[i].to_string()),
            });
        }
        if let Some(i) = replacement {
            used[i] = true;
            pieces.push(Piece {
                text: extract_sentences[i].to_string(),
                replaces: (first..spans.len()).collect(),
            });
        }
    }
    (pieces, spans)
}

/// The unused candidate most similar to `sentence` (the highest BM25 score with the sentence as
/// the query), if any shares a term with it.
fn most_similar(sentence: &str, candidates: &[&str], used: &[bool]) -> Option<usize> {
    let scores = bm25::scores(candidates, sentence);
    rank::order(&scores, true)
        .into_iter()
        .find(|r| !used[r.index] && r.score > 0.0)
        .map(|r| r.index)
}

/// The trimmed sentences of `text`.
fn sentences(text: &str) -> Vec<&str> {
    Sentences
        .segment(text)
        .into_iter()
        .map(|r| text[r].trim())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `body` and `sentence` as one paragraph.
fn join(body: &str, sentence: &str) -> String {
    match (body.is_empty(), sentence.is_empty()) {
        (true, _) => sentence.to_string(),
        (_, true) => body.to_string(),
        _ => format!("{body} {sentence}"),
    }
}

/// The prompt around the rewritten contexts: the instruction before, the question after.
struct Layout<'a> {
    instruction: &'a str,
    question: &'a str,
    counter: &'a dyn TokenCounter,
}

impl Layout<'_> {
    fn text(&self, body: &str) -> String {
        [self.instruction, body, self.question]
            .into_iter()
            .filter(|part| !part.trim().is_empty())
            .collect::<Vec<_>>()
            .join(PART_SEPARATOR)
    }

    fn tokens(&self, body: &str) -> usize {
        self.counter.count(&self.text(body))
    }

    /// The pieces that fit `target` in order (a piece that does not fit is skipped, a later
    /// shorter one may still fit), and the skipped ones. When none fits, the first cut at the
    /// last word that fits.
    fn fit(&self, pieces: &[Piece], target: usize) -> (String, Vec<usize>) {
        let mut body = String::new();
        let mut cut = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let candidate = join(&body, &piece.text);
            if self.tokens(&candidate) <= target {
                body = candidate;
            } else {
                cut.push(i);
            }
        }
        if body.is_empty() {
            if let Some(first) = pieces.first() {
                body = self.word_prefix("", &first.text, target);
            }
        }
        (body, cut)
    }

    /// The text to append to `body` to use what it leaves of `target`: the `candidates` (the
    /// extract's sentences) that `body` does not cover, most relevant to `question` first (in
    /// their order without one), each that fits; then, when more than [`BUDGET_TOLERANCE`] of
    /// the target is still unused, the most relevant one left cut at the last word that fits.
    fn fill(
        &self,
        body: &str,
        candidates: &[&str],
        question: &str,
        embedder: Option<&dyn Embedder>,
        target: usize,
    ) -> Result<String> {
        let held: HashSet<String> = bm25::terms(body).into_iter().collect();
        let uncovered: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|sentence| !covered(sentence, &held))
            .collect();
        let relevance = match question.trim() {
            "" => vec![0.0; uncovered.len()],
            question => rank::relevance(&uncovered, question, embedder)?,
        };
        let mut fill = String::new();
        let mut left_out = None;
        for ranked in rank::order(&relevance, true) {
            let candidate = join(&fill, uncovered[ranked.index]);
            if self.tokens(&join(body, &candidate)) <= target {
                fill = candidate;
            } else {
                left_out.get_or_insert(uncovered[ranked.index]);
            }
        }
        let floor = target as f64 * (1.0 - BUDGET_TOLERANCE);
        if let Some(sentence) = left_out {
            if (self.tokens(&join(body, &fill)) as f64) < floor {
                let prefix = self.word_prefix(&join(body, &fill), sentence, target);
                fill = join(&fill, &prefix);
            }
        }
        Ok(fill)
    }

    /// The longest prefix of whole words of `sentence` that fits `target` after `body`.
    fn word_prefix(&self, body: &str, sentence: &str, target: usize) -> String {
        let ends: Vec<usize> = Words.segment(sentence).iter().map(|w| w.end).collect();
        let prefix = |n: usize| match n {
            0 => "",
            n => sentence[..ends[n - 1]].trim(),
        };
        // Token counts grow with the prefix.
        let words = longest_fitting(ends.len(), |n| {
            self.tokens(&join(body, prefix(n))) <= target
        });
        prefix(words).to_string()
    }
}

/// Whether `held` (the terms of a text) holds at least [`COVERED_SHARE`] of `sentence`'s
/// distinct terms.
fn covered(sentence: &str, held: &HashSet<String>) -> bool {
    let terms: HashSet<String> = bm25::terms(sentence).into_iter().collect();
    let shared = terms.iter().filter(|term| held.contains(*term)).count();
    shared as f64 >= COVERED_SHARE * terms.len() as f64
}

/// Whether `unit` is part of `context`: its text starts inside it. (A unit carries the
/// whitespace before it, so a context's first unit starts in the separator before the context,
/// and the question's first unit may start inside the last context's trailing newline.)
fn in_context(source: &str, context: &Range<usize>, unit: &Range<usize>) -> bool {
    let whole = &source[unit.clone()];
    let text_start = unit.end - whole.trim_start().len();
    context.contains(&text_start)
}

/// The extracted contexts as text, joined as the prompt joins them.
fn contexts_of(extracted: &Compressed) -> String {
    extracted
        .contexts
        .iter()
        .map(|context| {
            let spans: Vec<_> = extracted
                .spans
                .iter()
                .filter(|s| in_context(&extracted.source, context, &s.span))
                .collect();
            let units: Vec<Range<usize>> = spans.iter().map(|s| s.span.clone()).collect();
            let kept: Vec<bool> = spans.iter().map(|s| s.kept).collect();
            render(&extracted.source, &units, &kept).trim().to_string()
        })
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join(PART_SEPARATOR)
}

/// The instruction (before the first context) and the question (after the last), as laid out.
fn around_contexts(extracted: &Compressed) -> (&str, &str) {
    let source = extracted.source.as_str();
    match (extracted.contexts.first(), extracted.contexts.last()) {
        (Some(first), Some(last)) => (source[..first.start].trim(), source[last.end..].trim()),
        _ => ("", ""),
    }
}

/// The protected text inside the contexts (runs of protected units), which the rewrite must keep.
fn protected_texts(extracted: &Compressed) -> Vec<String> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for span in &extracted.spans {
        let inside = extracted
            .contexts
            .iter()
            .any(|context| in_context(&extracted.source, context, &span.span));
        if !(span.protected && inside) || extracted.source[span.span.clone()].trim().is_empty() {
            continue;
        }
        match runs.last_mut() {
            Some(run) if extracted.source[run.end..span.span.start].trim().is_empty() => {
                run.end = span.span.end
            }
            _ => runs.push(span.span.clone()),
        }
    }
    runs.into_iter()
        .map(|r| extracted.source[r].trim().to_string())
        .collect()
}
