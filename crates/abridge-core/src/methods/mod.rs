//! Compression methods: each a composition of the pipeline's stages.
//!
//! A compression runs *segment → protect → score/classify → coarse stages → select → render*
//! (`compress.rs`). A method is a [`Stages`] implementation: which model it reads, what it adds
//! to the protection, how it arranges whole documents before the prompt is laid out, and how it
//! scores the planned units (running its coarse and fine stages) and decides what selection does.
//! A new method is one file with its options and their [`Stages`], plus its line in
//! [`Method::stages`].

pub mod auto;
pub mod llmlingua;
pub mod llmlingua2;
pub mod longllmlingua;
pub mod rewrite;
pub mod selective_context;

use std::ops::Range;

use serde::{Deserialize, Serialize};

pub use auto::AutoConfig;
pub use llmlingua::{ContextBudget, LlmlinguaOptions};
pub use llmlingua2::Llmlingua2Options;
pub use longllmlingua::{ConditionInQuestion, LongLlmlinguaOptions};
pub use rewrite::{Rewrite, RewriteConfig, UnsupportedSpan};

use crate::budget::Target;
use crate::coarse::Arrangement;
use crate::prompt::Prompt;
use crate::protect::ProtectOptions;
use crate::score::Meter;
use crate::segment::Unit;
use crate::select::Plan;
use crate::{
    CompressRequest, Embedder, ModelToken, Result, TokenClassifier, TokenCounter, TokenScorer,
};

/// The compression method and its own options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Method {
    /// The default: abridge-fast's classifier, question-aware when there is a question, with
    /// dates, numbers and names protected (see [`auto`]). Needs abridge-fast's classifier.
    Auto(AutoConfig),
    /// Selective Context: drop the least informative units.
    SelectiveContext,
    /// LLMLingua: coarse demonstration filter, then iterative token-level compression.
    Llmlingua(LlmlinguaOptions),
    /// LongLLMLingua: rank documents for the question, keep and arrange the relevant ones, then
    /// question-aware token-level compression. Needs a question.
    #[serde(rename = "longllmlingua")]
    LongLlmlingua(LongLlmlinguaOptions),
    /// LLMLingua-2: keep the words a token classifier gives the highest keep-probability.
    /// Needs a classifier.
    Llmlingua2(Llmlingua2Options),
    /// Extract with `auto` at twice the target, then rewrite the extract into concise prose with
    /// an instruction model, facts checked against the source (see [`rewrite`]). Needs
    /// abridge-fast's classifier and a [`crate::Generator`].
    Rewrite(RewriteConfig),
}

/// A method's stages (see the module documentation).
pub(crate) trait Stages {
    /// Checks the method's options against the request, before any work.
    fn validate(&self, request: &CompressRequest) -> Result<()>;

    /// Reads a token classifier instead of a scoring language model.
    fn classifies(&self) -> bool {
        false
    }

    /// The protection the method applies: the request's, by default.
    fn protect(&self, requested: &ProtectOptions) -> ProtectOptions {
        requested.clone()
    }

    /// Scores the prompt's own model tokens (besides the token unit, which always needs them).
    fn reads_prompt_tokens(&self) -> bool {
        false
    }

    /// The coarse stage over whole documents, before the prompt is laid out: which are kept and
    /// in what order. By default all, as given.
    fn arrange(&self, stage: &mut Stage, prompt: &Prompt) -> Result<Arrangement> {
        let _ = stage;
        Ok(Arrangement::identity(prompt.contexts.len()))
    }

    /// Scores the units of `plan` (its coarse stages may exclude units) and says how to select.
    fn score(&self, stage: &mut Stage, input: &Scoring, plan: &mut Plan) -> Result<Decision>;
}

/// The models, budget and progress every stage reads.
pub(crate) struct Stage<'a, 'm> {
    pub request: &'a CompressRequest,
    pub target: Target,
    /// Present for every method that does not classify (checked before any work).
    scorer: Option<&'a dyn TokenScorer>,
    pub counter: &'a dyn TokenCounter,
    pub embedder: Option<&'a dyn Embedder>,
    pub classifier: Option<&'a dyn TokenClassifier>,
    pub meter: &'a mut Meter<'m>,
}

impl<'a, 'm> Stage<'a, 'm> {
    pub fn new(
        request: &'a CompressRequest,
        target: Target,
        models: crate::Models<'a>,
        meter: &'a mut Meter<'m>,
    ) -> Self {
        Self {
            request,
            target,
            scorer: models.scorer,
            counter: models.counter,
            embedder: models.embedder,
            classifier: models.classifier,
            meter,
        }
    }

    /// The scoring model, which `compress` checked for before any work.
    pub fn scorer(&self) -> &'a dyn TokenScorer {
        self.scorer
            .expect("compress checks that a method that does not classify has a scorer")
    }
}

/// What scoring reads besides the plan: the prompt as laid out after the coarse arrangement.
pub(crate) struct Scoring<'a> {
    pub prompt: &'a Prompt,
    pub arrangement: &'a Arrangement,
    /// Each context's classifier tokens (byte range in the prompt, keep-probability), for a
    /// method that classifies.
    pub classified: &'a [Vec<(Range<usize>, f32)>],
    /// The prompt's model tokens, when read.
    pub prompt_tokens: &'a [ModelToken],
}

/// How the kept units are chosen once scored.
pub(crate) enum Decision {
    /// The global selection (`select.rs`) by score, preferring the units the fine stage kept.
    Select {
        scores: Vec<Option<f32>>,
        preferred: Option<Vec<bool>>,
    },
    /// The method chose the kept units itself.
    Kept {
        scores: Vec<Option<f32>>,
        kept: Vec<bool>,
    },
}

impl Decision {
    /// Only the coarse stages drop text (`use_token_level_filter = false`): every unit they left
    /// is kept, none scored.
    pub(crate) fn coarse_only(plan: &Plan) -> Self {
        Self::Kept {
            scores: vec![None; plan.units.len()],
            kept: plan.not_excluded(),
        }
    }
}

impl Method {
    /// The method's stages: its registration.
    pub(crate) fn stages(&self) -> &dyn Stages {
        match self {
            Self::Auto(config) => config,
            Self::SelectiveContext => &selective_context::SelectiveContext,
            Self::Llmlingua(options) => options,
            Self::LongLlmlingua(options) => options,
            Self::Llmlingua2(options) => options,
            // Its stages are its extract's; the rewrite runs after them (`rewrite::compress`).
            Self::Rewrite(config) => &config.extract,
        }
    }

    /// The unit a method keeps or drops whole unless the request names one. Selective Context's
    /// default `reduce_level` is `phrase`. LLMLingua and LongLLMLingua drop tokens in the
    /// reference; whole phrases keep a multi-word answer or a number with its noun together and
    /// raise their answer retention on NQ (on a small SQuAD test sample LongLLMLingua lost a
    /// little: docs/QUALITY.md), so they default to the phrase too (`word` is the closest to the
    /// reference). The classifier methods keep words.
    pub fn default_unit(&self) -> Unit {
        match self {
            Self::SelectiveContext | Self::Llmlingua(_) | Self::LongLlmlingua(_) => Unit::Phrase,
            Self::Auto(_) | Self::Llmlingua2(_) | Self::Rewrite(_) => Unit::Word,
        }
    }
}
