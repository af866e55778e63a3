//! The one request model: [`CompressionOptions`], the options every front end takes (LLMLingua's
//! names, flat, each optional), turned once into a validated [`CompressionPlan`]: the library
//! request and the models it needs.
//!
//! The CLI's flags, the server's JSON and the Python keywords all map onto [`CompressionOptions`];
//! llmlingua's own calling conventions (`PromptCompressor.compress_prompt`'s arguments) are
//! translated in [`llmlingua_call`]. Errors name the wrong field ([`crate::OptionError`]), and each
//! front end words them in its own terms.

pub mod llmlingua_call;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Fix, OptionError};
use crate::methods::{AutoConfig, RewriteConfig};
use crate::prompt::PART_SEPARATOR;
use crate::{
    Budget, CompressRequest, ConditionInQuestion, ContextBudget, KeepSentences, Llmlingua2Options,
    LlmlinguaOptions, LongLlmlinguaOptions, Method, ProtectOptions, RankMethod, Reorder, Result,
    TokenCounter, Unit,
};

/// Compression options as front ends spell them: LLMLingua's names, every one optional (unset
/// means the method's default). Options of another method than the chosen one are an error, so
/// a misplaced option is never silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionOptions {
    /// `auto` (default), `selective-context`, `llmlingua`, `longllmlingua`, `llmlingua2`, `fast`
    /// or `rewrite` ([`MethodName`]).
    pub method: Option<String>,
    /// Kept/original target-LLM tokens, in (0, 1]. At most one of rate, target_token, threshold.
    pub rate: Option<f64>,
    /// Tokens of the whole compressed prompt, in the target tokenizer.
    pub target_token: Option<i64>,
    /// Keep units whose score is at least this (mean surprisal in nats; for llmlingua2 and fast
    /// a keep-probability).
    pub threshold: Option<f32>,
    /// token, word, phrase or sentence (Selective Context's `reduce_level` is accepted too).
    #[serde(alias = "reduce_level")]
    pub unit: Option<String>,
    pub force_tokens: Option<Vec<String>>,
    pub force_reserve_digit: Option<bool>,
    /// Regular expressions whose matches are kept.
    pub patterns: Option<Vec<String>>,
    pub protect_code: Option<bool>,
    /// Keep dates, numbers with units and names whole, each one unit (always on for `auto`).
    pub protect_entities: Option<bool>,
    /// Interpret `<abridge keep>` / `<abridge rate=R>` tags (default true).
    pub markup: Option<bool>,
    /// (Long)LLMLingua: model tokens per window.
    pub iterative_size: Option<usize>,
    /// (Long)LLMLingua: `+N` or `*K`.
    pub context_budget: Option<String>,
    pub use_context_level_filter: Option<bool>,
    /// (Long)LLMLingua: `false` keeps what the coarse stages keep word for word.
    pub use_token_level_filter: Option<bool>,
    pub force_context_ids: Option<Vec<usize>>,
    /// LongLLMLingua: longllmlingua, llmlingua, bm25, gzip or embedding (`sentbert`); for
    /// llmlingua2 and fast, how sentences are compared with the question (bm25 or embedding).
    pub rank_method: Option<String>,
    /// LongLLMLingua: none, before, after, before_condition or after_condition.
    pub condition_in_question: Option<String>,
    pub condition_compare: Option<bool>,
    /// LongLLMLingua: original, sort or two_stage.
    pub reorder_context: Option<String>,
    pub dynamic_context_compression_ratio: Option<f64>,
    pub use_sentence_level_filter: Option<bool>,
    pub keep_first_sentence: Option<usize>,
    pub keep_last_sentence: Option<usize>,
    pub keep_sentence_number: Option<usize>,
    pub token_budget_ratio: Option<f64>,
    pub add_instruction: Option<bool>,
    /// LLMLingua-2: the reference's per-chunk thresholds and rate arithmetic.
    pub llmlingua2_compat: Option<bool>,
    pub drop_consecutive: Option<bool>,
    /// LLMLingua-2: weight in [0, 1] of the question's relevance in a word's score.
    pub question_weight: Option<f32>,
    pub target_context: Option<usize>,
    pub context_level_rate: Option<f64>,
    pub context_level_target_token: Option<usize>,
    /// cl100k_base (default) or o200k_base: the budget's and the reported counts' tokenizer.
    pub target_tokenizer: Option<String>,
}

/// The methods front ends offer by name. `llmlingua2` and `fast` are the same method
/// ([`Method::Llmlingua2`]) over different classifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodName {
    Auto,
    SelectiveContext,
    Llmlingua,
    Longllmlingua,
    Llmlingua2,
    Fast,
    Rewrite,
}

impl MethodName {
    pub const ALL: [MethodName; 7] = [
        Self::Auto,
        Self::SelectiveContext,
        Self::Llmlingua,
        Self::Longllmlingua,
        Self::Llmlingua2,
        Self::Fast,
        Self::Rewrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::SelectiveContext => "selective-context",
            Self::Llmlingua => "llmlingua",
            Self::Longllmlingua => "longllmlingua",
            Self::Llmlingua2 => "llmlingua2",
            Self::Fast => "fast",
            Self::Rewrite => "rewrite",
        }
    }

    /// Whether the method uses a question (to rank, condition on or weigh relevance).
    pub fn reads_question(self) -> bool {
        matches!(
            self,
            Self::Auto | Self::Longllmlingua | Self::Llmlingua2 | Self::Fast | Self::Rewrite
        )
    }

    /// The token classifier the method reads, if any.
    pub fn classifier(self) -> Option<Classifier> {
        match self {
            // `rewrite` extracts with `auto`.
            Self::Auto | Self::Fast | Self::Rewrite => Some(Classifier::Fast),
            Self::Llmlingua2 => Some(Classifier::Checkpoint),
            Self::SelectiveContext | Self::Llmlingua | Self::Longllmlingua => None,
        }
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MethodName {
    type Err = OptionError;

    fn from_str(s: &str) -> std::result::Result<Self, OptionError> {
        let s = s.replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                OptionError::new(
                    "method",
                    format!("`{s}` is not a method: use auto, selective-context, llmlingua, longllmlingua, llmlingua2, fast or rewrite"),
                    Fix::Example("auto".into()),
                )
            })
    }
}

/// Which token classifier a method reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classifier {
    /// abridge-fast's (MiniLM's first layers and the packaged head).
    Fast,
    /// A *ForTokenClassification checkpoint the caller names (an LLMLingua-2 model).
    Checkpoint,
}

/// Whether a request reads a sentence embedder (all-MiniLM-L6-v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedderUse {
    No,
    /// Used when installed; without it question relevance falls back to BM25 (front ends say
    /// so in a log line).
    IfInstalled,
    /// The request cannot run without it.
    Required,
}

/// The models a request reads besides the target LLM's token counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// A causal LM ([`crate::TokenScorer`]).
    pub scorer: bool,
    pub classifier: Option<Classifier>,
    pub embedder: EmbedderUse,
    /// An instruction model that writes ([`crate::Generator`], `rewrite`).
    pub generator: bool,
}

/// A validated request and what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressionPlan {
    pub method: MethodName,
    pub request: CompressRequest,
    pub needs: Needs,
}

impl CompressionPlan {
    /// For a caller that gives the question to read it but keeps it out of the output (the
    /// proxy's last user turn, sent in its own message): a rate then applies to the rest, and
    /// the target makes room for the question, which the output still ends with (take it off
    /// with [`crate::Compressed::text_without`]).
    pub fn set_question_aside(&mut self, counter: &dyn TokenCounter) {
        let request = &mut self.request;
        if request.question.trim().is_empty() {
            return;
        }
        if let Budget::Rate(rate) = request.budget {
            let mut parts: Vec<&str> = Vec::new();
            if !request.instruction.trim().is_empty() {
                parts.push(&request.instruction);
            }
            parts.extend(request.contexts.iter().map(String::as_str));
            let rest = counter.count(&parts.join(PART_SEPARATOR));
            let question = counter.count(&request.question) + counter.count(PART_SEPARATOR);
            let target = ((rate * rest as f64).round() as usize).max(1) + question;
            request.budget = Budget::TargetTokens(target);
        }
    }
}

/// The options each method takes besides the common ones (budget, unit, protection, markup,
/// target tokenizer), by field name.
fn owners(field: &str) -> &'static [MethodName] {
    use MethodName::*;
    match field {
        "iterative_size" | "context_budget" | "use_token_level_filter" => {
            &[Llmlingua, Longllmlingua]
        }
        "use_context_level_filter" | "force_context_ids" => {
            &[Llmlingua, Longllmlingua, Llmlingua2, Fast]
        }
        "rank_method" => &[Longllmlingua, Llmlingua2, Fast],
        "condition_in_question"
        | "condition_compare"
        | "reorder_context"
        | "dynamic_context_compression_ratio"
        | "use_sentence_level_filter"
        | "keep_first_sentence"
        | "keep_last_sentence"
        | "keep_sentence_number"
        | "token_budget_ratio"
        | "add_instruction" => &[Longllmlingua],
        "llmlingua2_compat"
        | "drop_consecutive"
        | "question_weight"
        | "target_context"
        | "context_level_rate"
        | "context_level_target_token" => &[Llmlingua2, Fast],
        _ => &ALL_METHODS,
    }
}

const ALL_METHODS: [MethodName; 7] = MethodName::ALL;

/// The most text, in bytes, the CLI (per file or standard input) and the Python package (per
/// call: instruction, contexts and question together) compress at once: about four million
/// tokens, minutes of work. Past it, split the text. HTTP has its own limit, the server's
/// configurable `limits.max_body_bytes` (8 MiB by default).
pub const MAX_INPUT_BYTES: usize = 16 << 20;

/// The smallest `iterative_size` a request may ask for. Every window is a model call, so tiny
/// windows multiply the work (1 took 51 s on a 1.3 kB text, 32 takes about as long as
/// llmlingua's default of 200); the reference sets no floor, and its users pass 100 or 200.
pub const MIN_ITERATIVE_SIZE: usize = 32;

/// `value` parsed with the type's own parser, a failure reported against `field`.
pub(crate) fn parse_field<T>(field: &'static str, value: &str) -> Result<T>
where
    T: FromStr<Err = crate::Error>,
{
    value.parse::<T>().map_err(|e| {
        let problem = match e {
            crate::Error::InvalidInput(message) => message,
            other => other.to_string(),
        };
        OptionError::new(field, format!("is wrong: {problem}"), Fix::None).into()
    })
}

/// [`parse_field`] of an optional value.
fn parse<T>(field: &'static str, value: &Option<String>) -> Result<Option<T>>
where
    T: FromStr<Err = crate::Error>,
{
    value.as_deref().map(|s| parse_field(field, s)).transpose()
}

/// LLMLingua's rankers that we have, by LLMLingua's names too (`sentbert` is a sentence
/// embedder, ours all-MiniLM-L6-v2); the hosted ones are refused with the alternatives.
pub fn parse_rank_method(name: &str) -> Result<RankMethod> {
    match name {
        "sentbert" => Ok(RankMethod::Embedding),
        "openai" | "bge" | "bge_reranker" | "bge_llmembedder" | "jinza" | "voyageai" | "cohere" => {
            Err(OptionError::new(
                "rank_method",
                format!("`{name}` is not available in abridge (it needs a hosted API or a model we do not ship)"),
                Fix::Text("use longllmlingua, llmlingua, bm25, gzip or embedding (sentbert, all-MiniLM-L6-v2)".into()),
            )
            .into())
        }
        other => parse_field("rank_method", other),
    }
}

macro_rules! overlay {
    ($top:expr, $under:expr, $budget:expr; $($field:ident),* ; $($budget_field:ident),*) => {
        CompressionOptions {
            $($field: $top.$field.clone().or_else(|| $under.$field.clone()),)*
            $($budget_field: $budget.$budget_field,)*
        }
    };
}

impl CompressionOptions {
    /// These options, with `defaults` wherever they say nothing. The budget is taken as a whole:
    /// a request's `target_token` replaces the default `rate` rather than conflicting with it.
    pub fn over(&self, defaults: &Self) -> Self {
        let has_budget =
            self.rate.is_some() || self.target_token.is_some() || self.threshold.is_some();
        let budget = if has_budget { self } else { defaults };
        overlay!(self, defaults, budget;
            method, unit, force_tokens, force_reserve_digit, patterns, protect_code,
            protect_entities, markup, iterative_size, context_budget, use_context_level_filter,
            use_token_level_filter, force_context_ids, rank_method, condition_in_question,
            condition_compare, reorder_context, dynamic_context_compression_ratio,
            use_sentence_level_filter, keep_first_sentence, keep_last_sentence,
            keep_sentence_number, token_budget_ratio, add_instruction, llmlingua2_compat,
            drop_consecutive, question_weight, target_context, context_level_rate,
            context_level_target_token, target_tokenizer;
            rate, target_token, threshold)
    }

    /// The method these options name (`auto` when none).
    pub fn method_name(&self) -> Result<MethodName> {
        match &self.method {
            Some(name) => Ok(name.parse::<MethodName>()?),
            None => Ok(MethodName::Auto),
        }
    }

    /// The method-specific options that are set, by name.
    fn given(&self) -> Vec<&'static str> {
        let set = [
            ("iterative_size", self.iterative_size.is_some()),
            ("context_budget", self.context_budget.is_some()),
            (
                "use_context_level_filter",
                self.use_context_level_filter.is_some(),
            ),
            (
                "use_token_level_filter",
                self.use_token_level_filter.is_some(),
            ),
            ("force_context_ids", self.force_context_ids.is_some()),
            ("rank_method", self.rank_method.is_some()),
            (
                "condition_in_question",
                self.condition_in_question.is_some(),
            ),
            ("condition_compare", self.condition_compare.is_some()),
            ("reorder_context", self.reorder_context.is_some()),
            (
                "dynamic_context_compression_ratio",
                self.dynamic_context_compression_ratio.is_some(),
            ),
            (
                "use_sentence_level_filter",
                self.use_sentence_level_filter.is_some(),
            ),
            ("keep_first_sentence", self.keep_first_sentence.is_some()),
            ("keep_last_sentence", self.keep_last_sentence.is_some()),
            ("keep_sentence_number", self.keep_sentence_number.is_some()),
            ("token_budget_ratio", self.token_budget_ratio.is_some()),
            ("add_instruction", self.add_instruction.is_some()),
            ("llmlingua2_compat", self.llmlingua2_compat.is_some()),
            ("drop_consecutive", self.drop_consecutive.is_some()),
            ("question_weight", self.question_weight.is_some()),
            ("target_context", self.target_context.is_some()),
            ("context_level_rate", self.context_level_rate.is_some()),
            (
                "context_level_target_token",
                self.context_level_target_token.is_some(),
            ),
        ];
        set.into_iter()
            .filter(|(_, given)| *given)
            .map(|(name, _)| name)
            .collect()
    }

    /// The validated plan for compressing `contexts` between `instruction` and `question`.
    pub fn plan(
        &self,
        instruction: String,
        contexts: Vec<String>,
        question: String,
    ) -> Result<CompressionPlan> {
        let name = self.method_name()?;
        if let Some(field) = self
            .given()
            .into_iter()
            .find(|f| !owners(f).contains(&name))
        {
            let owner = owners(field)[0];
            return Err(OptionError::new(
                field,
                format!("is an option of {owner}, not {name}"),
                Fix::RemoveOrUse(owner.name()),
            )
            .into());
        }
        if let Some(size) = self
            .iterative_size
            .filter(|&size| size < MIN_ITERATIVE_SIZE)
        {
            return Err(OptionError::new(
                "iterative_size",
                format!("must be at least {MIN_ITERATIVE_SIZE} model tokens (each window is one model call), got {size}"),
                Fix::Example("200".into()),
            )
            .into());
        }
        if matches!(name, MethodName::Auto | MethodName::Rewrite)
            && self.protect_entities == Some(false)
        {
            return Err(OptionError::new(
                "protect_entities",
                format!("is always on for {name} (it is part of what auto does)"),
                Fix::RemoveOrUse("fast"),
            )
            .into());
        }
        let has_question = !question.trim().is_empty();
        let auto_embedder = match has_question {
            true => EmbedderUse::IfInstalled,
            false => EmbedderUse::No,
        };
        let (method, embedder) = match name {
            MethodName::Auto => (Method::Auto(AutoConfig::default()), auto_embedder),
            MethodName::Rewrite => (Method::Rewrite(RewriteConfig::default()), auto_embedder),
            MethodName::SelectiveContext => (Method::SelectiveContext, EmbedderUse::No),
            MethodName::Llmlingua => (Method::Llmlingua(self.llmlingua()?), EmbedderUse::No),
            MethodName::Longllmlingua => {
                let options = self.longllmlingua()?;
                let embedder = match options.rank_method {
                    RankMethod::Embedding => EmbedderUse::Required,
                    _ => EmbedderUse::No,
                };
                (Method::LongLlmlingua(options), embedder)
            }
            MethodName::Llmlingua2 | MethodName::Fast => {
                let relevance = match &self.rank_method {
                    Some(rank) => parse_rank_method(rank)?,
                    None => RankMethod::Bm25,
                };
                let embedder = match relevance {
                    RankMethod::Embedding if has_question => EmbedderUse::Required,
                    RankMethod::Embedding | RankMethod::Bm25 => EmbedderUse::No,
                    other => {
                        return Err(OptionError::new(
                            "rank_method",
                            format!(
                                "`{}` cannot compare sentences with the question for {name}",
                                other.name()
                            ),
                            Fix::Text("use bm25 (the default) or embedding".into()),
                        )
                        .into())
                    }
                };
                (Method::Llmlingua2(self.llmlingua2()), embedder)
            }
        };
        let mut request = CompressRequest::new(method, contexts);
        request.budget = Budget::from_options(self.rate, self.target_token, self.threshold)?;
        if let Some(unit) = parse::<Unit>("unit", &self.unit)? {
            request.unit = unit;
        }
        request.instruction = instruction;
        request.question = question;
        request.markup = self.markup.unwrap_or(true);
        request.protect = ProtectOptions {
            force_tokens: self.force_tokens.clone().unwrap_or_default(),
            force_reserve_digit: self.force_reserve_digit.unwrap_or(false),
            patterns: self.patterns.clone().unwrap_or_default(),
            protect_code: self.protect_code.unwrap_or(false),
            entities: self.protect_entities.unwrap_or(false),
        };
        request.validate()?;
        Ok(CompressionPlan {
            method: name,
            needs: Needs {
                scorer: name.classifier().is_none(),
                classifier: name.classifier(),
                embedder,
                generator: name == MethodName::Rewrite,
            },
            request,
        })
    }

    fn llmlingua(&self) -> Result<LlmlinguaOptions> {
        let defaults = LlmlinguaOptions::default();
        Ok(LlmlinguaOptions {
            iterative_size: self.iterative_size.unwrap_or(defaults.iterative_size),
            context_budget: parse::<ContextBudget>("context_budget", &self.context_budget)?
                .unwrap_or(defaults.context_budget),
            use_context_level_filter: self
                .use_context_level_filter
                .unwrap_or(defaults.use_context_level_filter),
            force_context_ids: self.force_context_ids.clone().unwrap_or_default(),
            use_token_level_filter: self
                .use_token_level_filter
                .unwrap_or(defaults.use_token_level_filter),
        })
    }

    /// LongLLMLingua from the paper's setting, with what these options change.
    fn longllmlingua(&self) -> Result<LongLlmlinguaOptions> {
        let paper = LongLlmlinguaOptions::paper();
        let keep = KeepSentences {
            keep_first_sentence: self.keep_first_sentence.unwrap_or(0),
            keep_last_sentence: self.keep_last_sentence.unwrap_or(0),
            keep_sentence_number: self.keep_sentence_number.unwrap_or(0),
        };
        Ok(LongLlmlinguaOptions {
            rank_method: match &self.rank_method {
                Some(name) => parse_rank_method(name)?,
                None => paper.rank_method,
            },
            condition_in_question: parse::<ConditionInQuestion>(
                "condition_in_question",
                &self.condition_in_question,
            )?
            .unwrap_or(paper.condition_in_question),
            condition_compare: self.condition_compare.unwrap_or(paper.condition_compare),
            reorder_context: parse::<Reorder>("reorder_context", &self.reorder_context)?
                .unwrap_or(paper.reorder_context),
            dynamic_context_compression_ratio: self
                .dynamic_context_compression_ratio
                .unwrap_or(paper.dynamic_context_compression_ratio),
            context_budget: parse::<ContextBudget>("context_budget", &self.context_budget)?
                .unwrap_or(paper.context_budget),
            iterative_size: self.iterative_size.unwrap_or(paper.iterative_size),
            use_context_level_filter: self
                .use_context_level_filter
                .unwrap_or(paper.use_context_level_filter),
            force_context_ids: self.force_context_ids.clone().unwrap_or_default(),
            use_sentence_level_filter: self
                .use_sentence_level_filter
                .unwrap_or(paper.use_sentence_level_filter),
            keep_sentences: keep,
            token_budget_ratio: self.token_budget_ratio.unwrap_or(paper.token_budget_ratio),
            add_instruction: self.add_instruction.unwrap_or(paper.add_instruction),
            use_token_level_filter: self
                .use_token_level_filter
                .unwrap_or(paper.use_token_level_filter),
        })
    }

    /// LLMLingua-2's options; its context filter is on unless turned off (llmlingua's
    /// `compress_prompt_llmlingua2` default).
    fn llmlingua2(&self) -> Llmlingua2Options {
        let defaults = Llmlingua2Options::default();
        Llmlingua2Options {
            compat: self.llmlingua2_compat.unwrap_or(defaults.compat),
            drop_consecutive: self.drop_consecutive.unwrap_or(defaults.drop_consecutive),
            use_context_level_filter: self.use_context_level_filter.unwrap_or(true),
            force_context_ids: self.force_context_ids.clone().unwrap_or_default(),
            target_context: self.target_context,
            context_level_rate: self.context_level_rate,
            context_level_target_token: self.context_level_target_token,
            question_weight: self.question_weight.unwrap_or(defaults.question_weight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Wording};

    fn plan(json: &str, question: &str) -> Result<CompressionPlan> {
        let options: CompressionOptions = serde_json::from_str(json).unwrap();
        options.plan(String::new(), vec!["text".into()], question.into())
    }

    fn option_error(json: &str) -> OptionError {
        match plan(json, "") {
            Err(Error::InvalidOption(error)) => *error,
            other => panic!("{json}: expected an option error, got {other:?}"),
        }
    }

    /// A front end's wording, to check that errors are worded through it.
    struct Flags;

    impl Wording for Flags {
        fn name(&self, field: &str) -> String {
            format!("--{}", field.replace('_', "-"))
        }
        fn setting(&self, field: &str, value: &str) -> String {
            format!("{} {value}", self.name(field))
        }
    }

    #[test]
    fn auto_is_the_default_and_reads_the_embedder_only_for_a_question() {
        let without = plan("{}", "").unwrap();
        assert_eq!(without.method, MethodName::Auto);
        assert_eq!(without.request.method, Method::Auto(AutoConfig::TUNED));
        assert_eq!(
            without.needs,
            Needs {
                scorer: false,
                classifier: Some(Classifier::Fast),
                embedder: EmbedderUse::No,
                generator: false,
            }
        );
        let with = plan("{}", "Why?").unwrap();
        assert_eq!(with.needs.embedder, EmbedderUse::IfInstalled);
    }

    #[test]
    fn each_method_gets_its_options_and_its_models() {
        let long = plan(
            r#"{"method": "longllmlingua", "rank_method": "sentbert", "reorder_context": "two_stage",
                "keep_first_sentence": 1, "use_token_level_filter": false}"#,
            "Why?",
        )
        .unwrap();
        let Method::LongLlmlingua(options) = &long.request.method else {
            panic!("{:?}", long.request.method)
        };
        assert_eq!(options.rank_method, RankMethod::Embedding);
        assert_eq!(options.reorder_context, Reorder::TwoStage);
        assert_eq!(options.keep_sentences.keep_first_sentence, 1);
        assert!(!options.use_token_level_filter);
        // LongLLMLingua and LLMLingua keep or drop phrases unless a unit is named.
        assert_eq!(long.request.unit, Unit::Phrase);
        assert_eq!(long.needs.embedder, EmbedderUse::Required);
        assert!(long.needs.scorer && long.needs.classifier.is_none());

        let fast = plan(r#"{"method": "fast", "question_weight": 0.2}"#, "Why?").unwrap();
        let Method::Llmlingua2(options) = &fast.request.method else {
            panic!("{:?}", fast.request.method)
        };
        assert_eq!(options.question_weight, 0.2);
        assert!(options.use_context_level_filter);
        assert_eq!(fast.needs.classifier, Some(Classifier::Fast));
        assert_eq!(fast.needs.embedder, EmbedderUse::No);

        let checkpoint = plan(
            r#"{"method": "llmlingua2", "rank_method": "embedding"}"#,
            "Why?",
        );
        assert_eq!(
            checkpoint.unwrap().needs.classifier,
            Some(Classifier::Checkpoint)
        );
        let selective = plan(r#"{"method": "selective_context", "unit": "sent"}"#, "").unwrap();
        assert_eq!(selective.request.method, Method::SelectiveContext);
        assert_eq!(selective.request.unit, Unit::Sentence);

        let rewrite = plan(r#"{"method": "rewrite", "rate": 0.2}"#, "Why?").unwrap();
        assert_eq!(
            rewrite.request.method,
            Method::Rewrite(RewriteConfig::default())
        );
        assert_eq!(
            rewrite.needs,
            Needs {
                scorer: false,
                classifier: Some(Classifier::Fast),
                embedder: EmbedderUse::IfInstalled,
                generator: true,
            }
        );
    }

    #[test]
    fn errors_name_the_field_and_the_fix_in_the_front_ends_terms() {
        let misplaced = option_error(r#"{"method": "fast", "iterative_size": 100}"#);
        assert_eq!(misplaced.field, "iterative_size");
        assert_eq!(
            misplaced.describe(&Flags),
            "--iterative-size is an option of llmlingua, not fast: remove it or pass --method llmlingua"
        );
        let rate = option_error(r#"{"rate": 1.5}"#);
        assert_eq!(
            rate.describe(&Flags),
            "--rate must be in (0, 1] (kept/original tokens), got 1.5: pass e.g. --rate 0.5"
        );
        assert_eq!(
            rate.to_string(),
            "rate must be in (0, 1] (kept/original tokens), got 1.5: pass e.g. rate = 0.5"
        );
        for (json, field, says) in [
            (r#"{"method": "gzip"}"#, "method", "`gzip` is not a method"),
            (
                r#"{"unit": "paragraph"}"#,
                "unit",
                "unknown unit `paragraph`",
            ),
            (
                r#"{"method": "llmlingua", "context_budget": "100"}"#,
                "context_budget",
                "`+N` or `*K`",
            ),
            (
                r#"{"method": "longllmlingua", "rank_method": "cohere"}"#,
                "rank_method",
                "not available in abridge",
            ),
            (
                r#"{"method": "fast", "rank_method": "gzip"}"#,
                "rank_method",
                "cannot compare sentences",
            ),
            (
                r#"{"protect_entities": false}"#,
                "protect_entities",
                "always on for auto",
            ),
            (
                r#"{"method": "llmlingua", "force_context_ids": [3]}"#,
                "force_context_ids",
                "no such context",
            ),
            (r#"{"method": "longllmlingua"}"#, "question", "is missing"),
            (
                r#"{"method": "llmlingua", "iterative_size": 1}"#,
                "iterative_size",
                "must be at least 32 model tokens",
            ),
        ] {
            let error = option_error(json);
            assert_eq!(error.field, field, "{json}");
            assert!(error.to_string().contains(says), "{json}: {error}");
        }
    }

    #[test]
    fn iterative_size_has_a_floor_that_llmlingua_callers_do_not_reach() {
        for size in [MIN_ITERATIVE_SIZE, 100, 200] {
            let json = format!(r#"{{"method": "longllmlingua", "iterative_size": {size}}}"#);
            assert!(plan(&json, "Why?").is_ok(), "{json}");
        }
        let small = format!(
            r#"{{"method": "llmlingua", "iterative_size": {}}}"#,
            MIN_ITERATIVE_SIZE - 1
        );
        assert_eq!(
            option_error(&small).describe(&Flags),
            "--iterative-size must be at least 32 model tokens (each window is one model call), got 31: pass e.g. --iterative-size 200"
        );
    }

    #[test]
    fn request_options_lie_over_the_defaults_and_budgets_do_not_mix() {
        let defaults: CompressionOptions =
            serde_json::from_str(r#"{"method": "selective-context", "rate": 0.3, "unit": "word"}"#)
                .unwrap();
        let request: CompressionOptions = serde_json::from_str(r#"{"target_token": 50}"#).unwrap();
        let merged = request.over(&defaults);
        assert_eq!(merged.method.as_deref(), Some("selective-context"));
        assert_eq!(merged.unit.as_deref(), Some("word"));
        assert_eq!((merged.rate, merged.target_token), (None, Some(50)));
        assert_eq!(
            CompressionOptions::default().over(&defaults).rate,
            Some(0.3)
        );
    }
}
