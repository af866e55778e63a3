//! Runs every method at every rate on every case, and aggregates the metrics with bootstrap
//! intervals.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Instant;

use abridge_models::kv_policy::PolicyKind;

use abridge_core::{
    compress_with, AutoConfig, Budget, CompressRequest, Embedder, Generator, Llmlingua2Options,
    LlmlinguaOptions, LongLlmlinguaOptions, Method, RankMethod, RewriteConfig, TokenClassifier,
    TokenCounter, TokenScorer, Unit,
};
use serde::{Deserialize, Serialize};

use crate::baselines::{assemble, context_text, Baseline, Output};
use crate::cache::CachingScorer;
use crate::error::{Error, Result};
use crate::evaluator::{answer_log_likelihood, Evaluator};
use crate::generation::{self, Answerer};
use crate::metrics::{contains_answer, number_retention, rouge1_recall, rouge_l_recall};
use crate::rng::Rng;
use crate::stats::{bootstrap, bootstrap_ratio, Estimate};
use crate::suites::{Case, Group, Reference};

/// A method under evaluation: a baseline or an abridge method with the unit it keeps or drops.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalMethod {
    /// The original prompt (rate 1).
    None,
    /// No contexts at all (rate 0: the instruction and question alone).
    ClosedBook,
    Baseline(Baseline),
    Abridge {
        method: Method,
        unit: Unit,
        /// The method reads the sentence embedder (all-MiniLM-L6-v2): LongLLMLingua's
        /// `embedding` ranker, or abridge-fast's question relevance by cosine instead of BM25.
        /// Only such methods are given it, so one run can compare both.
        embedder: bool,
    },
    /// The original prompt, which the answering LM reads into a KV cache under a policy that
    /// keeps the memory of a prompt compressed to the rate (`crate::generation::kv_budget`):
    /// attention optimisation instead of compression. Measured by generated answers and, with an
    /// evaluator, by the likelihood gain of the original prompt read under the same policy.
    KvPolicy(PolicyKind),
    /// `auto+kv-<policy>`, compress then evict, at the same memory: `auto` keeps
    /// [`COMPRESS_THEN_EVICT_SHARE`] × the rate of the prompt's tokens, and the policy keeps the
    /// compressed prompt's cache positions down to the rate of the original's.
    CompressThenEvict(PolicyKind),
}

/// How much of an `auto+kv-<policy>` row's rate the text keeps after compression: twice the final
/// memory, so compression and eviction each halve what the other leaves.
pub const COMPRESS_THEN_EVICT_SHARE: f64 = 2.0;

impl EvalMethod {
    pub const NAMES: &'static str =
        "none, head, tail, random, selective-context, llmlingua, longllmlingua";

    /// LLMLingua-2's selection with the run's token classifier (abridge-fast's): `auto` is the
    /// default method of every front end (question-aware, entities protected, see
    /// `abridge_core::methods::auto`), `fast` reads the classifier alone (question weight 0,
    /// like its teacher Selective Context), `fast-question` mixes in the question's relevance
    /// (LLMLingua-2's default weight 0.5).
    /// Not in [`Self::all`]: they need the classifier loaded.
    ///
    /// `fast-question-embedding` takes the relevance from MiniLM cosines instead of BM25, and
    /// parameters after a colon tune it: `:w=0.8` (question weight), `:ctx=0.5` (LLMLingua-2's
    /// context-level filter keeps that share of the contexts), e.g.
    /// `fast-question-embedding-phrase:w=0.8:ctx=0.6`.
    pub const CLASSIFIER_NAMES: &'static str =
        "auto, rewrite, fast, fast-question, fast-question-embedding";

    /// The prompt without its contexts; not in [`Self::all`] (it says what the model knows
    /// without them: the floor of the evaluator's metrics).
    pub const CLOSED_BOOK: &'static str = "closed-book";

    /// KV-cache eviction baselines: `kv-<policy>`, not in [`Self::all`] (they need an answering
    /// LM).
    pub const KV_NAMES: &'static str = "kv-streaming, kv-h2o, kv-snapkv";

    /// LongLLMLingua with another coarse ranker: `longllmlingua-<ranker>`, not in [`Self::all`].
    pub const RANKED_NAMES: &'static str = "longllmlingua-llmlingua, longllmlingua-bm25, \
                                            longllmlingua-gzip, longllmlingua-embedding";

    /// An abridge method with its default unit.
    fn abridge(method: Method) -> Self {
        let unit = method.default_unit();
        // `auto` reads MiniLM when it is installed (the CLI's default), so eval gives it the
        // embedder; LongLLMLingua only with its `embedding` ranker.
        let embedder = match &method {
            Method::LongLlmlingua(o) => o.rank_method == RankMethod::Embedding,
            Method::Auto(_) | Method::Rewrite(_) => true,
            _ => false,
        };
        Self::Abridge {
            method,
            unit,
            embedder,
        }
    }

    /// The method's name, with `-<unit>` appended where the unit is not the method's default
    /// (`longllmlingua-word`, `longllmlingua-bm25-token`, `selective-context-sentence`).
    pub fn name(&self) -> String {
        let (method, unit) = match self {
            Self::None => return "none".into(),
            Self::ClosedBook => return Self::CLOSED_BOOK.into(),
            Self::Baseline(Baseline::Head) => return "head".into(),
            Self::Baseline(Baseline::Tail) => return "tail".into(),
            Self::Baseline(Baseline::Random) => return "random".into(),
            Self::KvPolicy(policy) => return format!("kv-{}", policy.name()),
            Self::CompressThenEvict(policy) => return format!("auto+kv-{}", policy.name()),
            Self::Abridge { method, unit, .. } => (method, *unit),
        };
        let name = match method {
            Method::Auto(_) => "auto",
            Method::Rewrite(_) => "rewrite",
            Method::SelectiveContext => "selective-context",
            Method::Llmlingua(_) => "llmlingua",
            Method::LongLlmlingua(options) => match options.rank_method {
                RankMethod::Longllmlingua => "longllmlingua",
                RankMethod::Llmlingua => "longllmlingua-llmlingua",
                RankMethod::Bm25 => "longllmlingua-bm25",
                RankMethod::Gzip => "longllmlingua-gzip",
                RankMethod::Embedding => "longllmlingua-embedding",
            },
            Method::Llmlingua2(options) => match options.question_weight == 0.0 {
                true => "fast",
                false if self.needs_embedder() => "fast-question-embedding",
                false => "fast-question",
            },
        };
        let mut name = if unit == method.default_unit() {
            name.to_string()
        } else {
            format!("{name}-{}", unit.name())
        };
        if let Method::Llmlingua2(options) = method {
            let defaults = Llmlingua2Options::default();
            if options.question_weight != 0.0 && options.question_weight != defaults.question_weight
            {
                name.push_str(&format!(":w={}", options.question_weight));
            }
            if let Some(rate) = options.context_level_rate {
                name.push_str(&format!(":ctx={rate}"));
            }
        }
        name
    }

    /// The one rate of a method that takes none: 1 for the original, 0 for the closed book.
    pub fn fixed_rate(&self) -> Option<f64> {
        match self {
            Self::None => Some(1.0),
            Self::ClosedBook => Some(0.0),
            _ => None,
        }
    }

    /// Reads the sentence embedder (`longllmlingua-embedding`, and `auto`'s question relevance).
    pub fn needs_embedder(&self) -> bool {
        matches!(
            self,
            Self::Abridge { embedder: true, .. } | Self::CompressThenEvict(_)
        )
    }

    /// Reads the token classifier (`auto`, `rewrite`, `fast`, `fast-question`).
    pub fn needs_classifier(&self) -> bool {
        matches!(
            self,
            Self::Abridge {
                method: Method::Llmlingua2(_) | Method::Auto(_) | Method::Rewrite(_),
                ..
            } | Self::CompressThenEvict(_)
        )
    }

    /// Every baseline and method, in report order.
    pub fn all() -> Vec<Self> {
        Self::NAMES
            .split(", ")
            .map(|name| name.parse().expect("listed names parse"))
            .collect()
    }

    /// The method without a unit suffix.
    fn parse_method(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Self::None,
            Self::CLOSED_BOOK => Self::ClosedBook,
            "head" => Self::Baseline(Baseline::Head),
            "tail" => Self::Baseline(Baseline::Tail),
            "random" => Self::Baseline(Baseline::Random),
            "auto" => Self::abridge(Method::Auto(AutoConfig::default())),
            "rewrite" => Self::abridge(Method::Rewrite(RewriteConfig::default())),
            "selective-context" => Self::abridge(Method::SelectiveContext),
            "llmlingua" => Self::abridge(Method::Llmlingua(LlmlinguaOptions::default())),
            "longllmlingua" => {
                Self::abridge(Method::LongLlmlingua(LongLlmlinguaOptions::default()))
            }
            "fast" => Self::abridge(Method::Llmlingua2(Llmlingua2Options {
                question_weight: 0.0,
                ..Llmlingua2Options::default()
            })),
            "fast-question" => Self::abridge(Method::Llmlingua2(Llmlingua2Options::default())),
            "fast-question-embedding" => {
                let method = Method::Llmlingua2(Llmlingua2Options::default());
                Self::Abridge {
                    unit: method.default_unit(),
                    method,
                    embedder: true,
                }
            }
            other => {
                let policy = |name: &str| {
                    name.strip_prefix("kv-")
                        .and_then(|policy| policy.parse::<PolicyKind>().ok())
                };
                if let Some(policy) = policy(other) {
                    return Ok(Self::KvPolicy(policy));
                }
                if let Some(policy) = other.strip_prefix("auto+").and_then(policy) {
                    return Ok(Self::CompressThenEvict(policy));
                }
                match other
                    .strip_prefix("longllmlingua-")
                    .and_then(|ranker| ranker.parse::<RankMethod>().ok())
                {
                    Some(rank_method) => {
                        Self::abridge(Method::LongLlmlingua(LongLlmlinguaOptions {
                            rank_method,
                            ..LongLlmlinguaOptions::default()
                        }))
                    }
                    None => {
                        return Err(Error::InvalidOption(format!(
                            "unknown method `{other}`: choose from {}, {}, {}, {} (the last two \
                             take :w=W and :ctx=R), or the KV-cache baselines {} (compress first: \
                             auto+kv-<policy>); an abridge \
                             method takes a unit suffix too (-token, -word, -phrase, -sentence), \
                             e.g. longllmlingua-word",
                            Self::NAMES,
                            Self::CLOSED_BOOK,
                            Self::RANKED_NAMES,
                            Self::CLASSIFIER_NAMES,
                            Self::KV_NAMES
                        )))
                    }
                }
            }
        })
    }
}

impl EvalMethod {
    /// Applies `w=W` / `ctx=R` (colon-separated) to a question-aware abridge-fast method; `full`
    /// is the whole name, for errors.
    fn with_parameters(mut self, parameters: &str, full: &str) -> Result<Self> {
        let Self::Abridge {
            method: Method::Llmlingua2(options),
            ..
        } = &mut self
        else {
            return Err(Error::InvalidOption(format!(
                "`{full}`: only fast-question and fast-question-embedding take parameters"
            )));
        };
        if options.question_weight == 0.0 {
            return Err(Error::InvalidOption(format!(
                "`{full}`: `fast` ignores the question; use fast-question:w=W"
            )));
        }
        for parameter in parameters.split(':') {
            let bad = || {
                Error::InvalidOption(format!(
                    "`{full}`: parameter `{parameter}` must be w=W (question weight in (0, 1]) or \
                     ctx=R (share of contexts kept, in (0, 1])"
                ))
            };
            let (key, value) = parameter.split_once('=').ok_or_else(bad)?;
            let value: f64 = value.trim().parse().map_err(|_| bad())?;
            if !(value > 0.0 && value <= 1.0) {
                return Err(bad());
            }
            match key.trim() {
                "w" => options.question_weight = value as f32,
                "ctx" => {
                    options.use_context_level_filter = true;
                    options.context_level_rate = Some(value);
                }
                _ => return Err(bad()),
            }
        }
        Ok(self)
    }
}

impl FromStr for EvalMethod {
    type Err = Error;

    /// A method name, optionally followed by `-<unit>` (`longllmlingua-bm25-phrase`) and, for
    /// `fast-question*`, parameters (`:w=0.8:ctx=0.5`).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some((base, parameters)) = s.split_once(':') {
            return base.parse::<Self>()?.with_parameters(parameters, s);
        }
        let suffixed = Unit::ALL.into_iter().find_map(|unit| {
            let method = s.strip_suffix(unit.name())?.strip_suffix('-')?;
            Some((method, unit))
        });
        match suffixed {
            Some((method, unit)) => match Self::parse_method(method)? {
                Self::Abridge {
                    method, embedder, ..
                } => Ok(Self::Abridge {
                    method,
                    unit,
                    embedder,
                }),
                _ => Err(Error::InvalidOption(format!(
                    "`{method}` is a baseline: it drops words and takes no unit (`{s}`)"
                ))),
            },
            None => Self::parse_method(s),
        }
    }
}

/// One method at one rate on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub group: Option<Group>,
    pub method: String,
    /// The requested rate (1 for `none`).
    pub rate: f64,
    /// In the target LLM's tokens; for the `kv-*` baselines, in the answering LM's cache
    /// positions (the whole chat turn, and those kept).
    pub origin_tokens: usize,
    pub compressed_tokens: usize,
    pub target_tokens: usize,
    /// The instruction and question alone exceed the target (then no method can meet it).
    pub protected_over_budget: bool,
    /// `achieved_rate` and the suite's metrics, each in [0, 1].
    pub metrics: BTreeMap<String, f64>,
    /// Time to compress (the evaluator's reading not included).
    pub seconds: f64,
    /// The compressed prompt, to read where a method wins or fails.
    pub prompt: String,
    /// The answering LM's answer to the prompt (metric 3), if one was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
}

/// The metrics of one output.
pub fn measure(case: &Case, output: &Output) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    if let Some(repaired) = output.repaired {
        metrics.insert("rewrite_repaired".into(), f64::from(u8::from(repaired)));
    }
    metrics.insert(
        "achieved_rate".to_string(),
        output.compressed_tokens as f64 / output.origin_tokens.max(1) as f64,
    );
    match &case.reference {
        Reference::Answers(answers) => {
            metrics.insert(
                "answer_kept".into(),
                f64::from(u8::from(contains_answer(&output.context, answers))),
            );
        }
        Reference::Numbers => {
            let original = case.contexts.join("\n\n");
            metrics.insert(
                "numbers_kept".into(),
                number_retention(&original, &output.context),
            );
        }
        Reference::Summary(reference) => {
            metrics.insert(
                "rouge1_recall".into(),
                rouge1_recall(reference, &output.context),
            );
            metrics.insert(
                "rougeL_recall".into(),
                rouge_l_recall(reference, &output.context),
            );
        }
    }
    metrics
}

/// The models of a run: the compressors' scorer and, optionally, an evaluator LM, with the names
/// the report gives them, the sentence embedder of `longllmlingua-embedding`, the token
/// classifier of `fast` (abridge-fast's) and, optionally, an answering LM (metric 3).
#[derive(Clone, Copy)]
pub struct Models<'m> {
    pub scorer: &'m dyn TokenScorer,
    pub scorer_name: &'m str,
    pub evaluator: Option<&'m dyn Evaluator>,
    pub evaluator_name: Option<&'m str>,
    pub embedder: Option<&'m dyn Embedder>,
    pub classifier: Option<&'m dyn TokenClassifier>,
    pub answerer: Option<&'m dyn Answerer>,
    /// The instruction model of `rewrite`.
    pub generator: Option<&'m dyn Generator>,
}

/// The models an abridge method may read.
struct Readers<'a> {
    scorer: &'a dyn TokenScorer,
    embedder: Option<&'a dyn Embedder>,
    classifier: Option<&'a dyn TokenClassifier>,
    generator: Option<&'a dyn Generator>,
}

fn run_abridge(
    case: &Case,
    method: &Method,
    unit: Unit,
    rate: f64,
    readers: &Readers,
    counter: &dyn TokenCounter,
) -> abridge_core::Result<Output> {
    let mut request = CompressRequest::new(method.clone(), case.contexts.clone());
    request.instruction = case.instruction.clone();
    request.question = case.question.clone();
    request.budget = Budget::Rate(rate);
    request.markup = false;
    request.unit = unit;
    let models = abridge_core::Models {
        scorer: Some(readers.scorer),
        counter,
        embedder: readers.embedder,
        classifier: readers.classifier,
        generator: readers.generator,
    };
    let compressed = compress_with(&request, models, None)?;
    let (source, region) = assemble(case);
    // A rewrite's label map is its extract's, so its context is read off the text.
    let context = if compressed.source == source && compressed.rewrite.is_none() {
        let units: Vec<_> = compressed.spans.iter().map(|s| s.span.clone()).collect();
        let kept: Vec<bool> = compressed.spans.iter().map(|s| s.kept).collect();
        context_text(&source, &units, &kept, &region)
    } else {
        // A method that reorders the contexts (LongLLMLingua): the compressed prompt still starts
        // with the instruction and ends with the question, verbatim.
        let text = compressed.text.trim();
        let text = text
            .strip_prefix(case.instruction.trim())
            .and_then(|t| t.strip_suffix(case.question.trim()))
            .ok_or_else(|| {
                abridge_core::Error::InvalidInput(
                    "the compressed prompt does not keep the instruction and question verbatim"
                        .into(),
                )
            })?;
        text.trim().to_string()
    };
    Ok(Output {
        context,
        target_tokens: compressed.target_tokens.unwrap_or(compressed.origin_tokens),
        prompt: compressed.text,
        origin_tokens: compressed.origin_tokens,
        compressed_tokens: compressed.compressed_tokens,
        protected_over_budget: compressed.protected_over_budget,
        repaired: compressed
            .rewrite
            .as_ref()
            .map(|r| !r.unsupported_spans.is_empty()),
    })
}

/// Checks rates and methods before any work is done.
pub fn validate(methods: &[EvalMethod], rates: &[f64]) -> Result<()> {
    if methods.is_empty() {
        return Err(Error::InvalidOption(format!(
            "no methods given: choose from {}",
            EvalMethod::NAMES
        )));
    }
    let compressing = methods.iter().any(|m| m.fixed_rate().is_none());
    if compressing && rates.is_empty() {
        return Err(Error::InvalidOption(
            "no rates given: pass e.g. --rates 1/2,1/3".into(),
        ));
    }
    if let Some(bad) = rates.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
        return Err(Error::InvalidOption(format!(
            "rate {bad} is not in (0, 1]: a rate is kept/original tokens, e.g. 1/2 or 0.33"
        )));
    }
    Ok(())
}

/// `case` without its contexts.
fn closed_book(case: &Case) -> Case {
    Case {
        contexts: Vec::new(),
        ..case.clone()
    }
}

/// The evaluator's answer likelihoods of one case (see [`crate::evaluator`]).
struct Likelihoods<'e> {
    evaluator: CachingScorer<'e>,
    /// The same evaluator uncached, for prompts read under a KV policy.
    kv_evaluator: &'e dyn Evaluator,
    answer: String,
    closed_book: f64,
    original: f64,
}

impl<'e> Likelihoods<'e> {
    /// For cases with gold answers; none for other references.
    fn of(case: &Case, kv_evaluator: &'e dyn Evaluator) -> Result<Option<Self>> {
        let Reference::Answers(answers) = &case.reference else {
            return Ok(None);
        };
        let evaluator = CachingScorer::new(kv_evaluator);
        let (closed_prompt, _) = assemble(&closed_book(case));
        let (prompt, _) = assemble(case);
        let ll = |prompt: &str| {
            answer_log_likelihood(&evaluator, prompt, &answers[0]).map_err(|e| Error::Evaluator {
                case: case.id.clone(),
                message: e.to_string(),
            })
        };
        let (closed_book, original) = (ll(&closed_prompt)?, ll(&prompt)?);
        Ok(Some(Self {
            answer: answers[0].clone(),
            closed_book,
            original,
            evaluator,
            kv_evaluator,
        }))
    }

    /// `ll_gain_nats` of `prompt` (read under `kv`'s policy at its rate, if given) and
    /// `ll_gain_nats_original`, both over the closed book.
    fn measure(
        &self,
        case: &Case,
        prompt: &str,
        kv: Option<(PolicyKind, f64)>,
        metrics: &mut BTreeMap<String, f64>,
    ) -> Result<()> {
        let ll = match kv {
            None => answer_log_likelihood(&self.evaluator, prompt, &self.answer),
            Some((policy, rate)) => self.kv_evaluator.answer_log_likelihood_with_kv_policy(
                prompt,
                &self.answer,
                policy,
                rate,
            ),
        }
        .map_err(|e| Error::Evaluator {
            case: case.id.clone(),
            message: e.to_string(),
        })?;
        metrics.insert("ll_gain_nats".into(), ll - self.closed_book);
        metrics.insert(
            "ll_gain_nats_original".into(),
            self.original - self.closed_book,
        );
        Ok(())
    }
}

/// Runs `methods` × `rates` on every case; `on_result` sees each result as it is made. With an
/// evaluator in `models`, cases with gold answers also get the teacher-forced likelihood metrics.
pub fn evaluate(
    cases: &[Case],
    methods: &[EvalMethod],
    rates: &[f64],
    seed: u64,
    models: Models<'_>,
    counter: &dyn TokenCounter,
    on_result: &mut dyn FnMut(&CaseResult),
) -> Result<Vec<CaseResult>> {
    validate(methods, rates)?;
    let Models {
        scorer,
        evaluator,
        embedder,
        classifier,
        answerer,
        generator,
        ..
    } = models;
    if let Some(kv) = methods.iter().find(|m| {
        matches!(
            m,
            EvalMethod::KvPolicy(_) | EvalMethod::CompressThenEvict(_)
        )
    }) {
        let kv = kv.name();
        if answerer.is_none() && evaluator.is_none() {
            return Err(Error::InvalidOption(format!(
                "`{kv}` evicts a model's KV cache while it reads the prompt: pass --generate \
                 MODEL (generated answers) or --evaluator MODEL (likelihood gain)"
            )));
        }
        if cases
            .iter()
            .any(|c| !matches!(c.reference, Reference::Answers(_)))
        {
            return Err(Error::InvalidOption(format!(
                "`{kv}` is measured by generated answers: use a suite with gold answers (nq, \
                 squad, niah, or --data)"
            )));
        }
    }
    let mut results = Vec::new();
    for case in cases {
        let scorer = CachingScorer::new(scorer);
        let likelihoods = match evaluator {
            Some(evaluator) => Likelihoods::of(case, evaluator)?,
            None => None,
        };
        for method in methods {
            let fixed = method.fixed_rate().map(|rate| [rate]);
            let method_rates = fixed.as_ref().map_or(rates, |rate| &rate[..]);
            for &rate in method_rates {
                let started = Instant::now();
                let mut output = match method {
                    // A KV policy reads the whole prompt; its cache, not its text, is cut.
                    EvalMethod::None | EvalMethod::KvPolicy(_) => {
                        let (prompt, _) = assemble(case);
                        let tokens = counter.count(&prompt);
                        Output {
                            prompt,
                            context: case.contexts.join("\n\n"),
                            origin_tokens: tokens,
                            compressed_tokens: tokens,
                            target_tokens: tokens,
                            protected_over_budget: false,
                            repaired: None,
                        }
                    }
                    EvalMethod::ClosedBook => {
                        let (prompt, _) = assemble(&closed_book(case));
                        let tokens = counter.count(&prompt);
                        Output {
                            origin_tokens: counter.count(&assemble(case).0),
                            prompt,
                            context: String::new(),
                            compressed_tokens: tokens,
                            target_tokens: tokens,
                            protected_over_budget: false,
                            repaired: None,
                        }
                    }
                    EvalMethod::Baseline(baseline) => baseline.compress(case, rate, seed, counter),
                    EvalMethod::Abridge { .. } | EvalMethod::CompressThenEvict(_) => {
                        let auto;
                        let (m, unit, reads_embedder, rate) = match method {
                            EvalMethod::Abridge {
                                method,
                                unit,
                                embedder,
                            } => (method, *unit, *embedder, rate),
                            _ => {
                                auto = Method::Auto(AutoConfig::default());
                                let rate = (rate * COMPRESS_THEN_EVICT_SHARE).min(1.0);
                                (&auto, auto.default_unit(), true, rate)
                            }
                        };
                        run_abridge(
                            case,
                            m,
                            unit,
                            rate,
                            &Readers {
                                scorer: &scorer,
                                embedder: embedder.filter(|_| reads_embedder),
                                classifier,
                                generator,
                            },
                            counter,
                        )
                        .map_err(|source| Error::Compress {
                            case: case.id.clone(),
                            method: method.name(),
                            rate,
                            source,
                        })?
                    }
                };
                let seconds = started.elapsed().as_secs_f64();
                // The prompt's share of the original, in target tokens (1 for a KV policy's).
                let text_share = output.compressed_tokens as f64 / output.origin_tokens as f64;
                // The policy, and the rate of the (compressed) prompt's positions it keeps.
                let kv_policy = match method {
                    EvalMethod::KvPolicy(policy) => Some((*policy, rate)),
                    EvalMethod::CompressThenEvict(policy) => Some((
                        *policy,
                        (rate * output.origin_tokens as f64 / output.compressed_tokens as f64)
                            .min(1.0),
                    )),
                    _ => None,
                };
                // The text metrics read the prompt's text, which a KV policy leaves whole: its rows
                // have the likelihood and generated answers only (and a compressed prompt's text
                // metrics before eviction).
                let mut metrics = match method {
                    EvalMethod::KvPolicy(_) => BTreeMap::new(),
                    _ => measure(case, &output),
                };
                if let Some((_, kv_rate)) = kv_policy {
                    // The share of the original the cache keeps by the budget's rule; an answer
                    // below replaces it by the positions the answering LM actually kept.
                    metrics.insert("achieved_rate".into(), text_share * kv_rate);
                }
                if let Some(likelihoods) = &likelihoods {
                    likelihoods.measure(case, &output.prompt, kv_policy, &mut metrics)?;
                }
                let generated = match (answerer, &case.reference) {
                    (Some(answerer), Reference::Answers(answers)) => {
                        let evaluator_error = |e: abridge_core::BoxError| Error::Evaluator {
                            case: case.id.clone(),
                            message: e.to_string(),
                        };
                        let generated = match kv_policy {
                            None => answerer.answer(&output.prompt).map_err(evaluator_error)?,
                            Some((policy, kv_rate)) => {
                                let read = answerer
                                    .answer_with_kv_policy(&output.prompt, policy, kv_rate)
                                    .map_err(evaluator_error)?;
                                // Counted in the answering LM's cache positions (of the
                                // compressed prompt, for compress-then-evict).
                                output.origin_tokens = read.prompt_positions;
                                output.compressed_tokens = read.kept_positions;
                                output.target_tokens = read.kept_positions;
                                metrics.insert(
                                    "achieved_rate".into(),
                                    text_share * read.kept_positions as f64
                                        / read.prompt_positions as f64,
                                );
                                read.answer
                            }
                        };
                        for (name, value) in generation::score(&generated, answers) {
                            metrics.insert(name.into(), value);
                        }
                        Some(generated)
                    }
                    _ => None,
                };
                let result = CaseResult {
                    id: case.id.clone(),
                    group: case.group.clone(),
                    method: method.name(),
                    rate,
                    origin_tokens: output.origin_tokens,
                    compressed_tokens: output.compressed_tokens,
                    target_tokens: output.target_tokens,
                    protected_over_budget: output.protected_over_budget,
                    metrics,
                    seconds,
                    prompt: output.prompt,
                    generated,
                };
                on_result(&result);
                results.push(result);
            }
        }
    }
    Ok(results)
}

/// One line of the report: a method at a rate, over all cases or one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub method: String,
    pub rate: f64,
    /// None: all cases.
    pub group: Option<Group>,
    pub n: usize,
    pub metrics: BTreeMap<String, Estimate>,
    /// The largest `compressed / target − 1` over cases whose verbatim parts fit the target.
    pub max_over_budget: f64,
    /// Cases whose instruction and question alone exceed the target.
    pub protected_over_budget: usize,
    pub mean_seconds: f64,
}

/// Aggregates results per method × rate (and per group, where cases have groups), in the order
/// first seen, each metric with a 95% bootstrap interval of `resamples` resamples.
pub fn summarize(results: &[CaseResult], resamples: usize, seed: u64) -> Vec<Row> {
    let mut keys: Vec<(String, u64, Option<Group>)> = Vec::new();
    let groups = results
        .iter()
        .filter_map(|r| r.group.clone().map(|g| (r, Some(g))));
    for (r, group) in results.iter().map(|r| (r, None)).chain(groups) {
        let key = (r.method.clone(), r.rate.to_bits(), group);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(method, rate_bits, group)| {
            let rate = f64::from_bits(rate_bits);
            let members: Vec<&CaseResult> = results
                .iter()
                .filter(|r| {
                    r.method == method
                        && r.rate.to_bits() == rate_bits
                        && (group.is_none() || r.group == group)
                })
                .collect();
            let label = group.as_ref().map(Group::label);
            let mut rng = Rng::new(seed, &format!("{method}@{rate}:{label:?}"));
            let values = |name: &str| -> Option<Vec<f64>> {
                members
                    .iter()
                    .map(|r| r.metrics.get(name).copied())
                    .collect()
            };
            let mut metrics: BTreeMap<String, Estimate> = members[0]
                .metrics
                .keys()
                .filter_map(|name| {
                    let values = values(name)?;
                    Some((name.clone(), bootstrap(&values, resamples, &mut rng)))
                })
                .collect();
            if let (Some(gain), Some(original)) =
                (values("ll_gain_nats"), values("ll_gain_nats_original"))
            {
                let ratio = bootstrap_ratio(&gain, &original, resamples, &mut rng);
                metrics.insert("ll_gain".into(), ratio);
            }
            Row {
                n: members.len(),
                max_over_budget: members
                    .iter()
                    .filter(|r| !r.protected_over_budget)
                    .map(|r| r.compressed_tokens as f64 / r.target_tokens.max(1) as f64 - 1.0)
                    .fold(f64::NEG_INFINITY, f64::max),
                protected_over_budget: members.iter().filter(|r| r.protected_over_budget).count(),
                mean_seconds: members.iter().map(|r| r.seconds).sum::<f64>() / members.len() as f64,
                method,
                rate,
                group,
                metrics,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_name_parses_back_to_itself() {
        let ranked = EvalMethod::RANKED_NAMES.split(',').map(str::trim);
        let classifier = EvalMethod::CLASSIFIER_NAMES.split(", ");
        let kv = EvalMethod::KV_NAMES.split(", ");
        for name in EvalMethod::NAMES
            .split(", ")
            .chain(ranked)
            .chain(classifier)
            .chain(kv)
            .chain([EvalMethod::CLOSED_BOOK])
        {
            let method: EvalMethod = name.parse().unwrap();
            assert_eq!(method.name(), name);
        }
        let error = "longllmlingua-magic".parse::<EvalMethod>().unwrap_err();
        assert!(error.to_string().contains("longllmlingua-bm25"), "{error}");
    }

    /// Answers with the prompt's last context word, or "unknown" without contexts; under a KV
    /// policy, a word cache that keeps the last `rate` of the prompt's words answers with the
    /// first context word it kept.
    struct LastWord;

    impl crate::generation::Answerer for LastWord {
        fn answer(&self, prompt: &str) -> std::result::Result<String, abridge_core::BoxError> {
            let parts: Vec<&str> = prompt.split(crate::baselines::PART_SEPARATOR).collect();
            Ok(match parts.as_slice() {
                [_, context, _] => context.split_whitespace().last().unwrap_or("").into(),
                _ => "unknown".into(),
            })
        }

        fn answer_with_kv_policy(
            &self,
            prompt: &str,
            _policy: PolicyKind,
            rate: f64,
        ) -> std::result::Result<crate::generation::KvAnswer, abridge_core::BoxError> {
            let words: Vec<&str> = prompt.split_whitespace().collect();
            let kept = crate::generation::kv_budget(words.len(), words.len(), rate);
            Ok(crate::generation::KvAnswer {
                answer: words[words.len() - kept].into(),
                prompt_positions: words.len(),
                kept_positions: kept,
            })
        }
    }

    /// One gold passage, answered "Paris".
    fn capital_case() -> Case {
        Case {
            id: "c".into(),
            group: None,
            instruction: "Answer.".into(),
            contexts: vec!["the capital of France is Paris".into()],
            question: "Question: capital?".into(),
            reference: Reference::Answers(vec!["Paris".into()]),
        }
    }

    fn answered_by_last_word(scorer: &abridge_core::testing::FakeScorer) -> Models<'_> {
        Models {
            scorer,
            scorer_name: "fake",
            evaluator: None,
            evaluator_name: None,
            embedder: None,
            classifier: None,
            answerer: Some(&LastWord),
            generator: None,
        }
    }

    #[test]
    fn generated_answers_are_scored_and_the_closed_book_has_no_contexts() {
        use abridge_core::testing::{FakeScorer, WordCounter};
        let case = capital_case();
        let scorer = FakeScorer::new();
        let models = answered_by_last_word(&scorer);
        let methods: Vec<EvalMethod> = ["closed-book", "none", "head"]
            .iter()
            .map(|m| m.parse().unwrap())
            .collect();
        let results = evaluate(
            &[case],
            &methods,
            &[0.6],
            0,
            models,
            &WordCounter,
            &mut |_| {},
        )
        .unwrap();
        let by = |m: &str| results.iter().find(|r| r.method == m).unwrap();
        let closed = by("closed-book");
        assert_eq!(closed.rate, 0.0);
        assert_eq!(closed.prompt, "Answer.\n\nQuestion: capital?");
        assert_eq!(closed.generated.as_deref(), Some("unknown"));
        assert_eq!(closed.metrics["generated_match"], 0.0);
        let original = by("none");
        assert_eq!(original.generated.as_deref(), Some("Paris"));
        assert_eq!(original.metrics["generated_exact"], 1.0);
        // Head truncation at 0.6 of 10 words keeps the instruction, question and 2 context words.
        let head = by("head");
        assert_eq!(head.generated.as_deref(), Some("capital"));
        assert_eq!(head.metrics["generated_match"], 0.0);
    }

    #[test]
    fn kv_baselines_answer_from_the_whole_prompt_at_the_rates_budget() {
        use abridge_core::testing::{FakeScorer, WordCounter};
        let case = capital_case();
        let scorer = FakeScorer::new();
        let mut models = answered_by_last_word(&scorer);
        let methods: Vec<EvalMethod> = EvalMethod::KV_NAMES
            .split(", ")
            .map(|m| m.parse().unwrap())
            .collect();
        assert_eq!(methods[1], EvalMethod::KvPolicy(PolicyKind::HeavyHitters));
        let run = |models: Models, cases: &[Case]| {
            evaluate(
                cases,
                &methods,
                &[0.3],
                0,
                models,
                &WordCounter,
                &mut |_| {},
            )
        };
        let results = run(models, std::slice::from_ref(&case)).unwrap();
        assert_eq!(results.len(), 3);
        // 9 words at 0.3: the cache keeps the last 3, "Paris Question: capital?".
        let h2o = &results[1];
        assert_eq!(h2o.method, "kv-h2o");
        assert_eq!(h2o.prompt, assemble(&case).0);
        assert_eq!(h2o.generated.as_deref(), Some("Paris"));
        assert_eq!(
            (h2o.origin_tokens, h2o.compressed_tokens, h2o.target_tokens),
            (9, 3, 3)
        );
        assert_eq!(h2o.metrics["achieved_rate"], 1.0 / 3.0);
        assert_eq!(h2o.metrics["generated_match"], 1.0);
        assert!(!h2o.metrics.contains_key("answer_kept"));

        let numbers = Case {
            reference: Reference::Numbers,
            ..case.clone()
        };
        let error = run(models, &[numbers]).unwrap_err().to_string();
        assert!(error.contains("gold answers"), "{error}");
        models.answerer = None;
        let error = run(models, &[case]).unwrap_err().to_string();
        assert!(
            error.contains("--generate MODEL") && error.contains("--evaluator MODEL"),
            "{error}"
        );
    }

    /// The fake scorer as an evaluator whose KV policy keeps the prompt's last words.
    impl Evaluator for abridge_core::testing::FakeScorer {
        fn answer_log_likelihood_with_kv_policy(
            &self,
            prompt: &str,
            answer: &str,
            _policy: PolicyKind,
            rate: f64,
        ) -> std::result::Result<f64, abridge_core::BoxError> {
            let words: Vec<&str> = prompt.split_whitespace().collect();
            let kept = crate::generation::kv_budget(words.len(), words.len(), rate);
            answer_log_likelihood(self, &words[words.len() - kept..].join(" "), answer)
        }
    }

    #[test]
    fn kv_baselines_get_the_likelihood_gain_of_what_their_cache_keeps() {
        use abridge_core::testing::{FakeScorer, WordCounter};
        let case = capital_case();
        let scorer = FakeScorer::new();
        // "Paris" costs 5 nats, or 1 once read.
        let evaluator = FakeScorer::new().with("Paris", 5.0).with_recall(1.0);
        // Without an answering LM: the evaluator alone measures the KV rows.
        let models = Models {
            evaluator: Some(&evaluator),
            answerer: None,
            ..answered_by_last_word(&scorer)
        };
        let methods = ["none", "kv-streaming"].map(|m| m.parse().unwrap());
        let results = evaluate(
            std::slice::from_ref(&case),
            &methods,
            &[0.3, 0.1],
            0,
            models,
            &WordCounter,
            &mut |_| {},
        )
        .unwrap();
        assert!(results.iter().all(|r| r.generated.is_none()));
        let kv = results.iter().find(|r| r.method == "kv-streaming").unwrap();
        assert_eq!(kv.metrics["achieved_rate"], 0.3);
        let gain = |method: &str, rate: f64| {
            let result = results
                .iter()
                .find(|r| r.method == method && r.rate == rate)
                .unwrap();
            (
                result.metrics["ll_gain_nats"],
                result.metrics["ll_gain_nats_original"],
            )
        };
        assert_eq!(gain("none", 1.0), (4.0, 4.0));
        // At 0.3 of 9 words the cache keeps "Paris Question: capital?"; at 0.1, "capital?".
        assert_eq!(gain("kv-streaming", 0.3), (4.0, 4.0));
        assert_eq!(gain("kv-streaming", 0.1), (0.0, 4.0));
    }

    #[test]
    fn compress_then_evict_compresses_to_twice_the_rate_then_evicts_to_the_rate() {
        use abridge_core::testing::{FakeClassifier, FakeScorer, WordCounter};
        let method: EvalMethod = "auto+kv-h2o".parse().unwrap();
        assert_eq!(
            method,
            EvalMethod::CompressThenEvict(PolicyKind::HeavyHitters)
        );
        assert_eq!(method.name(), "auto+kv-h2o");
        assert!(method.needs_classifier() && method.needs_embedder());
        assert!("auto+kv-magic".parse::<EvalMethod>().is_err());

        let case = Case {
            contexts: vec!["the old capital city of France is still Paris".into()],
            ..capital_case()
        };
        let scorer = FakeScorer::new();
        let classifier = FakeClassifier::new()
            .with("the", 0.1)
            .with("is", 0.1)
            .with("of", 0.1)
            .with("old", 0.2)
            .with("still", 0.2)
            .with("Paris", 0.9);
        let models = Models {
            classifier: Some(&classifier),
            ..answered_by_last_word(&scorer)
        };
        let results = evaluate(
            std::slice::from_ref(&case),
            &[method],
            &[0.3],
            0,
            models,
            &WordCounter,
            &mut |_| {},
        )
        .unwrap();
        let [result] = results.as_slice() else {
            panic!("{results:?}")
        };
        // The prompt is `auto`'s at 0.6 of the original's 12 words (7 words), which the answering
        // LM then reads under the policy down to 0.3 × 12 ≈ 4 of its 7 positions: the fake
        // answers with the first word its cache kept.
        assert_ne!(result.prompt, assemble(&case).0);
        assert_eq!(
            result.prompt,
            "Answer.\n\ncapital city France Paris\n\nQuestion: capital?"
        );
        assert_eq!(result.metrics["answer_kept"], 1.0);
        assert_eq!((result.origin_tokens, result.compressed_tokens), (7, 4));
        assert_eq!(result.generated.as_deref(), Some("France"));
        let achieved = result.metrics["achieved_rate"];
        assert!((achieved - 1.0 / 3.0).abs() < 1e-9, "{achieved}");
    }

    #[test]
    fn a_unit_suffix_sets_the_unit_and_names_it_unless_it_is_the_default() {
        let method: EvalMethod = "longllmlingua-bm25-word".parse().unwrap();
        let EvalMethod::Abridge {
            method: m, unit, ..
        } = &method
        else {
            panic!("{method:?}")
        };
        assert_eq!(*unit, Unit::Word);
        assert!(matches!(m, Method::LongLlmlingua(o) if o.rank_method == RankMethod::Bm25));
        assert_eq!(method.name(), "longllmlingua-bm25-word");
        for unit in Unit::ALL {
            let name = format!("longllmlingua-{}", unit.name());
            let method: EvalMethod = name.parse().unwrap();
            let expected = if unit == Unit::Phrase {
                "longllmlingua"
            } else {
                &name
            };
            assert_eq!(method.name(), expected);
        }
        // The phrase is the default of Selective Context and the LLMLinguas: the suffix then
        // names nothing new.
        for (name, default) in [
            ("selective-context-phrase", "selective-context"),
            ("llmlingua-phrase", "llmlingua"),
        ] {
            assert_eq!(name.parse::<EvalMethod>().unwrap().name(), default);
        }
        assert_eq!(
            "fast-phrase".parse::<EvalMethod>().unwrap().name(),
            "fast-phrase"
        );
        let baseline = "random-phrase".parse::<EvalMethod>().unwrap_err();
        assert!(baseline.to_string().contains("takes no unit"), "{baseline}");
        let unknown = "longllmlingua-clause".parse::<EvalMethod>().unwrap_err();
        assert!(unknown.to_string().contains("-phrase"), "{unknown}");
    }

    #[test]
    fn fast_question_parameters_set_the_options_and_round_trip_through_the_name() {
        let name = "fast-question-embedding-phrase:w=0.8:ctx=0.6";
        let method: EvalMethod = name.parse().unwrap();
        let EvalMethod::Abridge {
            method: Method::Llmlingua2(options),
            unit,
            embedder,
        } = &method
        else {
            panic!("{method:?}")
        };
        assert_eq!((*unit, *embedder), (Unit::Phrase, true));
        assert_eq!(options.question_weight, 0.8);
        assert_eq!(options.context_level_rate, Some(0.6));
        assert!(options.use_context_level_filter);
        assert_eq!(method.name(), name);
        assert_eq!(method.name().parse::<EvalMethod>().unwrap(), method);
        let bm25: EvalMethod = "fast-question:w=0.7".parse().unwrap();
        assert!(!bm25.needs_embedder());
        assert_eq!(bm25.name(), "fast-question:w=0.7");
        for bad in [
            "fast:w=0.5",
            "llmlingua:w=0.5",
            "fast-question:w=2",
            "fast-question:k=1",
        ] {
            let error = bad.parse::<EvalMethod>().unwrap_err().to_string();
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }
}
