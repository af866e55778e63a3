//! `auto`: the default method, a composition of existing stages.
//!
//! - With a question: LLMLingua-2's word selection over abridge-fast's classifier, each word's
//!   score mixed with its sentence's relevance to the question (MiniLM embeddings when an
//!   [`crate::Embedder`] is given, else BM25) by [`AutoConfig::question_weight`];
//! - without one: the classifier alone (question weight 0);
//! - dates, numbers with units and names kept whole, one unit each, never cut
//!   ([`crate::protect::entities`]).
//!
//! Every tunable is in [`AutoConfig`], so a tuning run changes one place.

use serde::{Deserialize, Serialize};

use super::{Decision, Llmlingua2Options, Scoring, Stage, Stages};
use crate::protect::ProtectOptions;
use crate::select::Plan;
use crate::{CompressRequest, Result};

/// The choices `auto` makes, tuned on the dev split of the packaged suites (docs/QUALITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoConfig {
    /// Weight in [0, 1] of the question's relevance in a word's score when there is a question.
    /// 0.9 from the dev splits of NQ and SQuAD (0.5 / 0.7 / 0.9 compared; the best mean answer
    /// retention over both at 1/3, 1/5 and 1/10: NQ preferred 0.7 by 2–4 points, SQuAD 0.9 by
    /// 1–14; docs/QUALITY.md).
    pub question_weight: f32,
    /// Keep dates, numbers with units and names whole, one unit each
    /// ([`crate::protect::entities`]).
    pub protect_entities: bool,
}

impl AutoConfig {
    /// The values `auto` uses.
    pub const TUNED: Self = Self {
        question_weight: 0.9,
        protect_entities: true,
    };

    /// LLMLingua-2's options for a prompt with (or without) `question`.
    fn llmlingua2(&self, question: &str) -> Llmlingua2Options {
        let question_weight = match question.trim().is_empty() {
            true => 0.0,
            false => self.question_weight,
        };
        Llmlingua2Options {
            question_weight,
            ..Llmlingua2Options::default()
        }
    }
}

impl Default for AutoConfig {
    fn default() -> Self {
        Self::TUNED
    }
}

impl Stages for AutoConfig {
    fn validate(&self, request: &CompressRequest) -> Result<()> {
        self.llmlingua2(&request.question).validate(request)
    }

    fn classifies(&self) -> bool {
        true
    }

    fn protect(&self, requested: &ProtectOptions) -> ProtectOptions {
        ProtectOptions {
            entities: requested.entities || self.protect_entities,
            ..requested.clone()
        }
    }

    fn score(&self, stage: &mut Stage, input: &Scoring, plan: &mut Plan) -> Result<Decision> {
        self.llmlingua2(&stage.request.question)
            .score(stage, input, plan)
    }
}
