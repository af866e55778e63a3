//! Properties over random texts, budgets, protections and methods: the output is the input's kept
//! units joined by the input's own whitespace, protected text survives verbatim, the budget holds,
//! and nothing panics.

use abridge_core::segment::{Segmenter, Words};
use abridge_core::testing::{FakeClassifier, FakeScorer, WordCounter};
use abridge_core::{
    compress, compress_with, AutoConfig, Budget, CompressRequest, Compressed, Error,
    Llmlingua2Options, LlmlinguaOptions, LongLlmlinguaOptions, Method, Models, ProtectOptions,
    RankMethod, Unit,
};
use abridge_core::{BoxError, ModelToken, ScoringSession, TokenScorer};
use proptest::prelude::*;

/// A scorer with byte-level tokens, reported as the runtime does: a multi-byte character is one
/// token with the character's span followed by empty-span tokens at its end. Its context is tiny,
/// so sessions roll over all the time.
struct ByteScorer;

impl TokenScorer for ByteScorer {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        let mut tokens = Vec::new();
        for (at, c) in text.char_indices() {
            let end = at + c.len_utf8();
            for (i, byte) in text[at..end].bytes().enumerate() {
                let span = if i == 0 { at..end } else { end..end };
                tokens.push(ModelToken {
                    id: u32::from(byte),
                    span,
                });
            }
        }
        Ok(tokens)
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        Ok(Box::new(ByteSession(0)))
    }

    fn max_context(&self) -> usize {
        7
    }
}

struct ByteSession(usize);

impl ScoringSession for ByteSession {
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
        if self.0 + ids.len() > 7 {
            return Err("byte scorer: context full".into());
        }
        self.0 += ids.len();
        Ok(ids.iter().map(|id| (id % 7) as f32).collect())
    }

    fn truncate(&mut self, len: usize) {
        self.0 = self.0.min(len);
    }

    fn len(&self) -> usize {
        self.0
    }
}

const QUESTION: &str = "Which of these words matter?";

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,8}",
        2 => "[A-Z][a-z]{0,5}[.,!?;:]?",
        1 => "[0-9]{1,4}",
        1 => "[a-z]{1,3}-[0-9]{1,2}",
        1 => "[\u{4e00}-\u{4e30}]{1,3}[。，]?",
        1 => prop_oneof![Just("👍🏽"), Just("🚀"), Just("é"), Just("(x)")].prop_map(String::from),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(" "), 1 => Just("\n"), 1 => Just("\n\n"), 1 => Just("  "), 1 => Just("\t"), 1 => Just("")]
}

#[derive(Debug, Clone)]
struct Case {
    words: Vec<(&'static str, String)>,
    budget: Budget,
    unit: Unit,
    method: Method,
    force_words: Vec<usize>,
    force_reserve_digit: bool,
    keep_region: Option<(usize, usize)>,
    scores: Vec<(usize, f32)>,
    /// LLMLingua-2's classifier window, in tokens.
    window: usize,
}

fn case() -> impl Strategy<Value = Case> {
    let budget = prop_oneof![
        (0.01f64..=1.0).prop_map(Budget::Rate),
        (1usize..150).prop_map(Budget::TargetTokens),
    ];
    let unit = prop_oneof![
        Just(Unit::Token),
        Just(Unit::Word),
        Just(Unit::Phrase),
        Just(Unit::Sentence)
    ];
    let method = prop_oneof![
        Just(Method::SelectiveContext),
        (1usize..40).prop_map(|iterative_size| Method::Llmlingua(LlmlinguaOptions {
            iterative_size,
            ..Default::default()
        })),
        (any::<bool>(), any::<bool>()).prop_map(|(compat, drop_consecutive)| {
            Method::Llmlingua2(Llmlingua2Options {
                compat,
                drop_consecutive,
                ..Default::default()
            })
        }),
        (1usize..40, any::<bool>(), any::<bool>()).prop_map(
            |(iterative_size, condition_compare, bm25)| {
                Method::LongLlmlingua(LongLlmlinguaOptions {
                    iterative_size,
                    condition_compare,
                    rank_method: if bm25 {
                        RankMethod::Bm25
                    } else {
                        RankMethod::Longllmlingua
                    },
                    ..Default::default()
                })
            }
        ),
        Just(Method::Auto(AutoConfig::default())),
    ];
    (
        prop::collection::vec((separator(), word()), 1..160),
        budget,
        unit,
        method,
        prop::collection::vec(any::<usize>(), 0..3),
        any::<bool>(),
        prop::option::of((any::<usize>(), 1usize..6)),
        prop::collection::vec((any::<usize>(), 0.0f32..12.0), 0..20),
        1usize..30,
    )
        .prop_map(
            |(
                words,
                budget,
                unit,
                method,
                force_words,
                force_reserve_digit,
                keep_region,
                scores,
                window,
            )| Case {
                keep_region: keep_region.map(|(start, len)| {
                    let start = start % words.len();
                    (start, (start + len).min(words.len()))
                }),
                force_words: force_words.into_iter().map(|i| i % words.len()).collect(),
                scores: scores
                    .into_iter()
                    .map(|(i, s)| (i % words.len(), s))
                    .collect(),
                words,
                budget,
                unit,
                method,
                force_reserve_digit,
                window,
            },
        )
}

impl Case {
    /// The input text, with the keep region's tags, and the region's text without them.
    fn text(&self) -> (String, Option<String>) {
        let mut text = String::new();
        let mut region = None;
        for (i, (separator, word)) in self.words.iter().enumerate() {
            if i > 0 {
                text.push_str(separator);
            }
            match self.keep_region {
                Some((start, _)) if start == i => {
                    text.push_str("<abridge keep>");
                    region = Some(String::new());
                }
                _ => {}
            }
            if let Some(region) = region
                .as_mut()
                .filter(|_| self.keep_region.is_some_and(|(s, e)| i >= s && i < e))
            {
                if i > self.keep_region.unwrap().0 {
                    region.push_str(separator);
                }
                region.push_str(word);
            }
            text.push_str(word);
            if self.keep_region.is_some_and(|(_, end)| end == i + 1) {
                text.push_str("</abridge>");
            }
        }
        (text, region.map(|r| r.trim().to_string()))
    }

    fn request(&self, text: &str) -> CompressRequest {
        let mut request = CompressRequest::new(self.method.clone(), vec![text.to_string()]);
        request.budget = self.budget;
        request.unit = self.unit;
        request.protect = ProtectOptions {
            force_tokens: self
                .force_words
                .iter()
                .map(|&i| self.words[i].1.clone())
                .collect(),
            force_reserve_digit: self.force_reserve_digit,
            ..Default::default()
        };
        // LongLLMLingua compresses for a question (auto reads it when there is one).
        if matches!(self.method, Method::LongLlmlingua(_) | Method::Auto(_)) {
            request.question = QUESTION.into();
        }
        request
    }

    /// Compresses with the fake scorer, or for LLMLingua-2 a fake classifier with the same
    /// table scaled to probabilities.
    fn compress(&self, request: &CompressRequest) -> Result<Compressed, Error> {
        let classifier = self.scores.iter().fold(
            FakeClassifier::new().with_window(self.window),
            |c, &(i, s)| c.with(&self.words[i].1, s / 12.0),
        );
        compress_with(request, models(&self.scorer(), &classifier), None)
    }

    fn scorer(&self) -> FakeScorer {
        self.scores
            .iter()
            .fold(FakeScorer::new(), |scorer, &(i, s)| {
                scorer.with(&self.words[i].1, s)
            })
    }
}

/// The output must be the kept units' bodies in order, each preceded by whitespace that the input
/// has right there: the unit's own, or that of a unit dropped just before it.
fn assert_output_is_kept_units_with_input_whitespace(result: &Compressed) {
    let source = result.source.as_str();
    let mut rest = result.text.as_str();
    let mut candidates: Vec<&str> = Vec::new();
    let mut started = false;
    for span in &result.spans {
        let piece = &source[span.span.clone()];
        let body = piece.trim_start();
        let whitespace = &piece[..piece.len() - body.len()];
        candidates.push(whitespace);
        if body.is_empty() {
            // The whitespace tail: whatever is left must be whitespace the input had.
            if started {
                assert!(
                    candidates.contains(&rest),
                    "tail {rest:?} not from {candidates:?}"
                );
                rest = "";
            }
            continue;
        }
        if !span.kept {
            continue;
        }
        let separator_len = rest.len() - rest.trim_start().len();
        let separator = &rest[..separator_len];
        if started {
            assert!(
                candidates.contains(&separator),
                "separator {separator:?} not from {candidates:?}"
            );
        } else {
            let first = &source[result.spans[0].span.clone()];
            assert_eq!(separator, &first[..first.len() - first.trim_start().len()]);
        }
        rest = &rest[separator_len..];
        assert!(rest.starts_with(body), "expected {body:?} at {rest:?}");
        rest = &rest[body.len()..];
        candidates.clear();
        started = true;
    }
    assert!(rest.is_empty(), "output has extra text {rest:?}");
}

fn models<'a>(scorer: &'a dyn TokenScorer, classifier: &'a FakeClassifier) -> Models<'a> {
    Models {
        scorer: Some(scorer),
        counter: &WordCounter,
        embedder: None,
        classifier: Some(classifier),
        generator: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn compression_keeps_whole_units_protected_text_and_the_budget(case in case()) {
        let (text, region) = case.text();
        let request = case.request(&text);
        let result = case.compress(&request).unwrap();
        let classifies = matches!(case.method, Method::Llmlingua2(_) | Method::Auto(_));

        assert_output_is_kept_units_with_input_whitespace(&result);
        prop_assert!(!result.text.contains("abridge"));
        // LLMLingua-2 cuts force tokens out of the words they occur in.
        if case.unit != Unit::Token && !classifies {
            // Unit boundaries are word boundaries: never half a word.
            let word_starts: Vec<usize> = Words.segment(&result.source).iter().map(|w| w.start).collect();
            for span in &result.spans {
                prop_assert!(word_starts.contains(&span.span.start), "{span:?} starts inside a word");
            }
        }
        for span in result.spans.iter().filter(|s| s.protected) {
            prop_assert!(span.kept);
        }
        for token in &request.protect.force_tokens {
            prop_assert!(result.text.contains(token.as_str()), "force token {token:?} lost");
        }
        if let Some(region) = region.filter(|r| !r.is_empty()) {
            prop_assert!(result.text.contains(&region), "keep region {region:?} lost");
        }
        if case.force_reserve_digit {
            for word in Words.segment(&result.source) {
                let body = result.source[word].trim();
                if body.chars().any(char::is_numeric) {
                    prop_assert!(result.text.contains(body), "digit word {body:?} lost");
                }
            }
        }
        let target = result.target_tokens.unwrap();
        // LLMLingua-2's compat mode and drop_consecutive do not aim at the budget exactly; auto
        // keeps names whole, so its units may be several words long.
        let exact = match &case.method {
            Method::Llmlingua2(o) => !(o.compat || o.drop_consecutive),
            Method::Auto(_) => false,
            _ => true,
        };
        if matches!(case.unit, Unit::Word | Unit::Token) && result.protected_tokens <= target && exact {
            let expected = target.min(result.origin_tokens);
            let tolerance = (0.03 * target as f64).max(1.0);
            prop_assert!(
                result.compressed_tokens.abs_diff(expected) as f64 <= tolerance,
                "{} tokens for a target of {target} (origin {})",
                result.compressed_tokens,
                result.origin_tokens
            );
        }
    }

    #[test]
    fn arbitrary_text_never_panics(
        pieces in prop::collection::vec(
            prop_oneof![
                4 => any::<String>(),
                1 => Just("<abridge keep>".to_string()),
                1 => Just("<abridge rate=0.4>".to_string()),
                1 => Just("</abridge>".to_string()),
                1 => Just("```".to_string()),
                1 => Just("\n\n".to_string()),
            ],
            0..12,
        ),
        rate in 0.01f64..=1.0,
        unit in prop_oneof![Just(Unit::Token), Just(Unit::Word), Just(Unit::Phrase), Just(Unit::Sentence)],
        method in 0..5u8,
        byte_tokens in any::<bool>(),
    ) {
        let method = match method {
            0 => Method::Llmlingua(LlmlinguaOptions { iterative_size: 3, ..Default::default() }),
            1 => Method::Llmlingua2(Llmlingua2Options {
                compat: byte_tokens,
                drop_consecutive: true,
                ..Default::default()
            }),
            2 => Method::LongLlmlingua(LongLlmlinguaOptions {
                iterative_size: 3,
                use_sentence_level_filter: byte_tokens,
                ..Default::default()
            }),
            3 => Method::Auto(AutoConfig::default()),
            _ => Method::SelectiveContext,
        };
        let mut request = CompressRequest::new(method, vec![pieces.concat()]);
        request.question = QUESTION.into();
        request.budget = Budget::Rate(rate);
        request.unit = unit;
        request.protect.protect_code = true;
        request.protect.force_reserve_digit = true;
        let fake = FakeScorer::new().with_max_context(5);
        let scorer: &dyn TokenScorer = if byte_tokens { &ByteScorer } else { &fake };
        let classifier = FakeClassifier::new().with_window(3);
        match compress_with(&request, models(scorer, &classifier), None) {
            Ok(result) => assert_output_is_kept_units_with_input_whitespace(&result),
            Err(Error::InvalidInput(_) | Error::InvalidOption(_)) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

#[test]
fn several_demonstrations_hit_the_budget_too() {
    let contexts: Vec<String> = (0..6)
        .map(|d| {
            (0..60)
                .map(|w| "x".repeat(1 + (d * 5 + w * 3) % 9))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for rate in [0.2, 0.5, 0.8] {
        let mut request = CompressRequest::new(
            Method::Llmlingua(LlmlinguaOptions::default()),
            contexts.clone(),
        );
        request.budget = Budget::Rate(rate);
        let result = compress(&request, &FakeScorer::new(), &WordCounter, None).unwrap();
        let target = result.target_tokens.unwrap();
        assert!(
            result.compressed_tokens.abs_diff(target) as f64 <= 0.03 * target as f64,
            "rate {rate}: {} for {target}",
            result.compressed_tokens
        );
    }
}
