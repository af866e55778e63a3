//! LLMLingua end to end with the fake scorer: the coarse filter, the session protocol of the
//! iterative pass, and the budget.

use std::cell::RefCell;
use std::collections::HashMap;

use abridge_core::testing::{FakeScorer, WordCounter};
use abridge_core::{
    compress, BoxError, Budget, CompressRequest, Compressed, ContextBudget, LlmlinguaOptions,
    Method, ModelToken, ScoringSession, TokenScorer, Unit,
};

fn request(contexts: &[&str], budget: Budget, options: LlmlinguaOptions) -> CompressRequest {
    let mut request = CompressRequest::new(
        Method::Llmlingua(options),
        contexts.iter().map(|c| c.to_string()).collect(),
    );
    request.budget = budget;
    // These tests follow single words through the iterative pass (the reference's granularity,
    // rounded to words), not the default phrase unit.
    request.unit = Unit::Word;
    request
}

fn run(request: &CompressRequest, scorer: &dyn TokenScorer) -> Compressed {
    compress(request, scorer, &WordCounter, None).unwrap()
}

/// Wraps the fake scorer and logs what its sessions are asked to do, in token text.
struct Recording {
    inner: FakeScorer,
    text_of: RefCell<HashMap<u32, String>>,
    log: RefCell<Vec<String>>,
}

impl Recording {
    fn new(inner: FakeScorer) -> Self {
        Self {
            inner,
            text_of: RefCell::default(),
            log: RefCell::default(),
        }
    }
}

impl TokenScorer for Recording {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        let tokens = self.inner.tokenize(text)?;
        for token in &tokens {
            self.text_of
                .borrow_mut()
                .insert(token.id, text[token.span.clone()].to_string());
        }
        Ok(tokens)
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        self.log.borrow_mut().push("new".into());
        Ok(Box::new(RecordingSession {
            inner: self.inner.session()?,
            scorer: self,
        }))
    }

    fn max_context(&self) -> usize {
        self.inner.max_context()
    }
}

struct RecordingSession<'a> {
    inner: Box<dyn ScoringSession + 'a>,
    scorer: &'a Recording,
}

impl ScoringSession for RecordingSession<'_> {
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
        let text: String = ids
            .iter()
            .map(|id| self.scorer.text_of.borrow()[id].clone())
            .collect();
        self.scorer.log.borrow_mut().push(format!("extend {text}"));
        self.inner.extend(ids)
    }

    fn truncate(&mut self, len: usize) {
        self.scorer.log.borrow_mut().push(format!("truncate {len}"));
        self.inner.truncate(len);
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

#[test]
fn each_window_is_scored_after_the_compressed_prefix_only() {
    let scorer = Recording::new(FakeScorer::new());
    let options = LlmlinguaOptions {
        iterative_size: 3,
        ..Default::default()
    };
    // Fake scores are word lengths: alpha 5, beta 4, gamma 5 | delta 5, epsilon 7, zeta 4.
    let text = "alpha beta gamma delta epsilon zeta";
    let result = run(&request(&[text], Budget::TargetTokens(4), options), &scorer);
    assert_eq!(result.text, "alpha gamma delta epsilon");
    assert_eq!(
        scorer.log.into_inner(),
        vec![
            "new",
            "extend alpha beta gamma",
            // Back to the (empty) compressed prefix; the next read starts with the window's
            // kept words, without " beta".
            "truncate 0",
            "extend alpha gamma delta epsilon zeta",
            "truncate 2",
        ]
    );
}

fn demonstrations() -> (FakeScorer, [&'static str; 3]) {
    let scorer = FakeScorer::new()
        .with("low", 1.0)
        .with("mid", 3.0)
        .with("high", 9.0);
    (scorer, ["low low low", "mid mid mid", "high high high"])
}

#[test]
fn budget_controller_keeps_high_perplexity_demonstrations_in_original_order() {
    let (scorer, contexts) = demonstrations();
    let options = LlmlinguaOptions {
        context_budget: ContextBudget::Add(0.0),
        ..Default::default()
    };
    let mut request = request(&contexts, Budget::TargetTokens(6), options);
    request.instruction = "Instr.".into();
    request.question = "Q?".into();
    // 4 tokens are left for contexts: "high" (3) is taken, then "mid" crosses the budget and is
    // included; "low" is dropped whole. The windows keep the 4 best words.
    let result = run(&request, &scorer);
    assert_eq!(result.text, "Instr.\n\nmid\n\nhigh high high\n\nQ?");
    assert_eq!(result.compressed_tokens, 6);
    let low: Vec<_> = result
        .spans
        .iter()
        .filter(|s| result.source[s.span.clone()].trim() == "low")
        .collect();
    assert_eq!(low.len(), 3);
    assert!(low.iter().all(|s| !s.kept && s.score.is_none()), "{low:?}");
}

#[test]
fn without_the_token_level_filter_kept_demonstrations_stay_whole() {
    let (scorer, contexts) = demonstrations();
    let options = LlmlinguaOptions {
        context_budget: ContextBudget::Add(0.0),
        use_token_level_filter: false,
        ..Default::default()
    };
    let mut request = request(&contexts, Budget::TargetTokens(6), options);
    request.instruction = "Instr.".into();
    request.question = "Q?".into();
    // The same coarse decision as above, but "mid mid mid" is not cut to fit: only whole
    // demonstrations go, so the result may exceed the target.
    let result = run(&request, &scorer);
    assert_eq!(result.text, "Instr.\n\nmid mid mid\n\nhigh high high\n\nQ?");
    assert!(result.compressed_tokens > 6);
}

#[test]
fn forced_and_marked_demonstrations_pass_the_budget_controller() {
    let (scorer, contexts) = demonstrations();
    let options = LlmlinguaOptions {
        context_budget: ContextBudget::Add(0.0),
        force_context_ids: vec![0],
        ..Default::default()
    };
    let mut forced = request(&contexts, Budget::TargetTokens(6), options.clone());
    forced.instruction = "Instr.".into();
    forced.question = "Q?".into();
    assert_eq!(
        run(&forced, &scorer).text,
        "Instr.\n\nlow\n\nhigh high high\n\nQ?"
    );

    let marked_contexts = [
        "<abridge keep>low</abridge> low low",
        contexts[1],
        contexts[2],
    ];
    let mut marked = request(
        &marked_contexts,
        Budget::TargetTokens(6),
        LlmlinguaOptions {
            force_context_ids: vec![],
            ..options
        },
    );
    marked.instruction = "Instr.".into();
    marked.question = "Q?".into();
    assert_eq!(
        run(&marked, &scorer).text,
        "Instr.\n\nlow\n\nhigh high high\n\nQ?"
    );
}

#[test]
fn coarse_filter_is_off_for_a_single_context_and_on_request() {
    let (scorer, contexts) = demonstrations();
    let options = LlmlinguaOptions {
        use_context_level_filter: false,
        ..Default::default()
    };
    let result = run(
        &request(&contexts, Budget::TargetTokens(5), options),
        &scorer,
    );
    assert_eq!(result.text, "mid mid\n\nhigh high high");
}

/// A deterministic pseudo-random text of `words` words of 1–12 letters.
fn prose(words: usize, seed: u64) -> String {
    let mut state = seed;
    (0..words)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (state >> 33) as usize % 12;
            let letter = (b'a' + (state >> 45) as u8 % 26) as char;
            letter.to_string().repeat(len)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn achieved_size_hits_the_target_within_three_percent() {
    let scorer = FakeScorer::new();
    for (words, rate, iterative_size) in [(300, 0.5, 200), (400, 0.33, 50), (1000, 0.2, 64)] {
        let text = prose(words, words as u64);
        let options = LlmlinguaOptions {
            iterative_size,
            ..Default::default()
        };
        let result = run(&request(&[&text], Budget::Rate(rate), options), &scorer);
        let target = result.target_tokens.unwrap();
        let error = result.compressed_tokens.abs_diff(target) as f64;
        assert!(
            error <= (0.03 * target as f64).max(1.0),
            "{words} words at rate {rate}: {} tokens for a target of {target}",
            result.compressed_tokens
        );
    }
}

#[test]
fn windows_roll_past_a_short_model_context() {
    let scorer = FakeScorer::new().with_max_context(16);
    let text = prose(200, 7);
    let options = LlmlinguaOptions {
        iterative_size: 10,
        ..Default::default()
    };
    let result = run(&request(&[&text], Budget::Rate(0.5), options), &scorer);
    assert_eq!(result.compressed_tokens, 100);
}

#[test]
fn threshold_budget_keeps_words_at_or_above_it() {
    let options = LlmlinguaOptions {
        iterative_size: 2,
        ..Default::default()
    };
    let result = run(
        &request(&["a bb ccccc dddddd e"], Budget::Threshold(5.0), options),
        &FakeScorer::new(),
    );
    assert_eq!(result.text, "ccccc dddddd");
}

#[test]
fn region_rates_hold_inside_llmlingua() {
    let text = "plain words stay <abridge rate=0.5>one two three four five six</abridge>";
    let request = request(&[text], Budget::Rate(1.0), LlmlinguaOptions::default());
    let result = run(&request, &FakeScorer::new());
    // Rate 1 keeps all plain text; the region keeps 3 of its 6 words (the longest, "three" 5,
    // "four" 4, "five" 4), whatever the overall budget.
    assert_eq!(result.text, "plain words stay three four five");
}
