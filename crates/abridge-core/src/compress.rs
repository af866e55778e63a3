//! The entry point: a [`CompressRequest`] in, a [`Compressed`] prompt out.

use std::ops::Range;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::budget::{Budget, Target};
use crate::methods::rewrite::{self, Rewrite};
use crate::methods::{llmlingua2, Decision, Method, Scoring, Stage};
use crate::prompt::Prompt;
use crate::protect::{entities, normalize, ProtectOptions};
use crate::render::{render, LabeledSpan};
use crate::score::{Meter, Progress};
use crate::segment::{
    split_oversized, units_from_tokens, Phrases, Segmenter, Sentences, Unit, Words,
};
use crate::select::{select, unreachable_reason, Plan};
use crate::{
    Embedder, Error, Generator, ModelToken, Result, TokenClassifier, TokenCounter, TokenScorer,
};

/// What to compress and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompressRequest {
    pub method: Method,
    pub budget: Budget,
    /// Kept verbatim, before the contexts.
    pub instruction: String,
    /// The text to compress: one document, or several (LLMLingua's demonstrations).
    pub contexts: Vec<String>,
    /// Kept verbatim, after the contexts.
    pub question: String,
    pub protect: ProtectOptions,
    /// What is kept or dropped as a whole.
    pub unit: Unit,
    /// Interpret `<abridge keep>` / `<abridge rate=r>` tags (else they are plain text).
    pub markup: bool,
}

impl CompressRequest {
    /// A request with the method's default unit, the default budget (`rate` 0.5), no
    /// instruction or question, no extra protection, and markup on.
    pub fn new(method: Method, contexts: Vec<String>) -> Self {
        Self {
            unit: method.default_unit(),
            method,
            budget: Budget::default(),
            instruction: String::new(),
            contexts,
            question: String::new(),
            protect: ProtectOptions::default(),
            markup: true,
        }
    }

    /// Checks the budget and the method's options against the prompt, before any work.
    pub fn validate(&self) -> Result<()> {
        self.budget.validate()?;
        self.method.stages().validate(self)
    }
}

/// Seconds spent, in total and inside the scorer (tokenizing and scoring).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub model_seconds: f64,
    pub total_seconds: f64,
}

/// A compressed prompt, its label map and its numbers. Token counts are in the target LLM's
/// tokenizer ([`Compressed::tokenizer`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compressed {
    pub text: String,
    /// The prompt that was compressed: parts joined by blank lines, markup removed. The label
    /// map's spans index into it.
    pub source: String,
    /// Every unit of `source`, in order, with what happened to it.
    pub spans: Vec<LabeledSpan>,
    /// Each context's byte range in `source`, in the order of `source`.
    pub contexts: Vec<Range<usize>>,
    pub origin_tokens: usize,
    pub compressed_tokens: usize,
    /// The token target the budget set (none for a threshold budget).
    pub target_tokens: Option<usize>,
    /// Tokens of the protected text alone.
    pub protected_tokens: usize,
    /// The protected text alone exceeds the target; it was kept anyway.
    pub protected_over_budget: bool,
    /// The target could not be met in a way the caller must know about (protected text over it,
    /// or nothing could be kept); [`Compressed::budget_unreachable_reason`] says why.
    #[serde(default)]
    pub budget_unreachable: bool,
    #[serde(default)]
    pub budget_unreachable_reason: Option<String>,
    /// `origin_tokens / compressed_tokens` (the "3.3x" of LLMLingua; an empty result counts as 1
    /// token).
    pub ratio: f64,
    /// `compressed_tokens / origin_tokens`.
    pub rate: f64,
    /// The target LLM's tokenizer, e.g. `cl100k_base`.
    pub tokenizer: String,
    pub timings: Timings,
    /// What the `rewrite` method's rewrite step did (its extract, generation and repairs); none
    /// for the other methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
}

impl Compressed {
    /// The compressed text without the `question` it ends with (rendered verbatim last), for a
    /// caller that keeps the question elsewhere; the text itself when it does not end with it.
    pub fn text_without(&self, question: &str) -> &str {
        match question.trim() {
            "" => &self.text,
            question => self
                .text
                .trim_end()
                .strip_suffix(question)
                .map_or(self.text.as_str(), str::trim_end),
        }
    }
}

/// The models a compression may use.
#[derive(Clone, Copy)]
pub struct Models<'a> {
    /// The scoring model (causal LM surprisal), for every method but LLMLingua-2.
    pub scorer: Option<&'a dyn TokenScorer>,
    /// The target LLM's tokenizer, for budgets and reported counts.
    pub counter: &'a dyn TokenCounter,
    /// A sentence embedder, for LongLLMLingua's `embedding` ranker and question-aware
    /// LLMLingua-2 (which falls back to BM25 without one).
    pub embedder: Option<&'a dyn Embedder>,
    /// The token classifier LLMLingua-2 needs.
    pub classifier: Option<&'a dyn TokenClassifier>,
    /// The instruction model the `rewrite` method writes with.
    pub generator: Option<&'a dyn Generator>,
}

/// Compresses a prompt. Bad input or options are [`crate::Error::InvalidInput`] with a message
/// that names the fix; the scorer's failures are [`crate::Error::Model`]. `progress`, if given,
/// is called with (model tokens scored, model tokens to score) as scoring advances.
pub fn compress(
    request: &CompressRequest,
    scorer: &dyn TokenScorer,
    counter: &dyn TokenCounter,
    progress: Option<Progress>,
) -> Result<Compressed> {
    compress_with(
        request,
        Models {
            scorer: Some(scorer),
            counter,
            embedder: None,
            classifier: None,
            generator: None,
        },
        progress,
    )
}

/// [`compress`] with every model a method may use (an embedder for LongLLMLingua's `embedding`
/// ranker, a generator for `rewrite`).
pub fn compress_with(
    request: &CompressRequest,
    models: Models,
    progress: Option<Progress>,
) -> Result<Compressed> {
    match &request.method {
        // Its extract is a whole compression, so it runs around the pipeline, not inside it.
        Method::Rewrite(config) => rewrite::compress(request, config, models, progress),
        _ => pipeline(request, models, progress),
    }
}

/// The pipeline every method but `rewrite` is a composition of (see the module documentation of
/// [`crate::methods`]).
pub(crate) fn pipeline(
    request: &CompressRequest,
    models: Models,
    progress: Option<Progress>,
) -> Result<Compressed> {
    let started = Instant::now();
    request.validate()?;
    let method = request.method.stages();
    let counter = models.counter;
    // Checked before any work, so a missing model is reported first.
    let classifier = match method.classifies() {
        true => Some(models.classifier.ok_or_else(|| {
            Error::InvalidInput(
                "this method reads a token classifier, and none was loaded: pass a *ForTokenClassification model folder for llmlingua2, or install abridge-fast's with `abridge models fetch`".into(),
            )
        })?),
        false => {
            models.scorer.ok_or_else(|| {
                Error::InvalidInput(
                    "this method needs a scoring language model: pass one (a GGUF file)".into(),
                )
            })?;
            None
        }
    };
    let prompt = Prompt::assemble(
        &request.instruction,
        &request.contexts,
        &request.question,
        request.markup,
    )?;
    let mut meter = Meter::new(progress);
    // Counted on the prompt as given: the coarse stage may reorder the documents.
    let origin_tokens = counter.count(&prompt.text);
    let target = request.budget.target(origin_tokens);
    let mut stage = Stage::new(request, target, models, &mut meter);
    let arrangement = method.arrange(&mut stage, &prompt)?;
    let prompt = match arrangement.is_identity() {
        true => prompt,
        false => Prompt::assemble(
            &request.instruction,
            &arrangement.arrange(&request.contexts),
            &request.question,
            request.markup,
        )?,
    };
    let text = prompt.text.as_str();
    let classified = match classifier {
        Some(classifier) => llmlingua2::classify(&prompt, classifier, stage.meter)?,
        None => Vec::new(),
    };
    let protect = method.protect(&request.protect);
    let mut protected = protect.protected_ranges(text)?;
    protected.extend(prompt.keep.iter().cloned());
    let protected = normalize(text, protected);

    let prompt_tokens = match classifier {
        // A classifier's tokens (ids are not needed).
        Some(_) => classified
            .iter()
            .flatten()
            .map(|(span, _)| ModelToken {
                id: 0,
                span: span.clone(),
            })
            .collect(),
        None if request.unit == Unit::Token || method.reads_prompt_tokens() => {
            stage.meter.tokenize(stage.scorer(), text)?
        }
        None => Vec::new(),
    };
    let units = match request.unit {
        Unit::Token => units_from_tokens(text, &prompt_tokens),
        Unit::Word if classifier.is_some() => llmlingua2::words(
            text,
            &classified.concat(),
            &protect.force_token_ranges(text)?,
        ),
        Unit::Word => Words.segment(text),
        Unit::Phrase => Phrases.segment(text),
        Unit::Sentence => Sentences.segment(text),
    };
    let units = match protect.entities {
        true => entities::merge_whole(units, &entities::whole_ranges(text)),
        false => units,
    };
    let units = match target {
        Target::Tokens(tokens) => split_oversized(text, units, tokens, counter),
        Target::Threshold(_) => units,
    };
    let mut plan = Plan::new(text, units, &protected, &prompt.rated);
    let scoring = Scoring {
        prompt: &prompt,
        arrangement: &arrangement,
        classified: &classified,
        prompt_tokens: &prompt_tokens,
    };
    let decision = method.score(&mut stage, &scoring, &mut plan)?;
    meter.finish();

    let (scores, kept) = match decision {
        Decision::Select { scores, preferred } => {
            let kept = select(text, &plan, &scores, preferred.as_deref(), target, counter);
            (scores, kept)
        }
        Decision::Kept { scores, kept } => (scores, kept),
    };
    let compressed = render(text, &plan.units, &kept);
    let compressed_tokens = counter.count(&compressed);
    let protected_units = plan.kept_by_role();
    let protected_tokens = counter.count(&render(text, &plan.units, &protected_units));
    let target_tokens = match target {
        Target::Tokens(tokens) => Some(tokens),
        Target::Threshold(_) => None,
    };
    let spans = plan
        .units
        .iter()
        .enumerate()
        .map(|(i, span)| LabeledSpan {
            span: span.clone(),
            kept: kept[i],
            protected: protected_units[i],
            score: scores[i],
        })
        .collect();
    let unreachable = unreachable_reason(text, &compressed, target, protected_tokens);
    Ok(Compressed {
        budget_unreachable: unreachable.is_some(),
        budget_unreachable_reason: unreachable,
        text: compressed,
        source: prompt.text.clone(),
        spans,
        contexts: prompt.contexts.clone(),
        origin_tokens,
        compressed_tokens,
        target_tokens,
        protected_tokens,
        protected_over_budget: target_tokens.is_some_and(|target| protected_tokens > target),
        ratio: origin_tokens as f64 / compressed_tokens.max(1) as f64,
        rate: compressed_tokens as f64 / origin_tokens.max(1) as f64,
        tokenizer: counter.name().to_string(),
        timings: Timings {
            model_seconds: meter.model_time.as_secs_f64(),
            total_seconds: started.elapsed().as_secs_f64(),
        },
        rewrite: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeScorer, WordCounter};
    use crate::LlmlinguaOptions;

    #[test]
    fn requests_and_results_round_trip_through_json() {
        let mut request = CompressRequest::new(
            Method::Llmlingua(LlmlinguaOptions::default()),
            vec!["one two three".into()],
        );
        request.budget = Budget::TargetTokens(2);
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["method"]["name"], "llmlingua");
        assert_eq!(json["method"]["context_budget"]["add"], 100.0);
        assert_eq!(json["budget"]["target_tokens"], 2);
        assert_eq!(json["unit"], "phrase");
        assert_eq!(
            serde_json::from_value::<CompressRequest>(json).unwrap(),
            request
        );

        let result = compress(&request, &FakeScorer::new(), &WordCounter, None).unwrap();
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["text"], "one three");
        assert_eq!(json["spans"][0]["span"]["end"], 3);
        assert_eq!(json["origin_tokens"], 3);
    }
}
