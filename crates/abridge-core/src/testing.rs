//! Deterministic stand-ins for the model traits, for unit tests of the algorithms.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::scoring::{
    Embedder, Generation, Generator, Interrupt, ModelToken, ScoringSession, TokenClassifier,
    TokenCounter, TokenScorer,
};
use crate::segment::is_cjk;
use crate::BoxError;

/// Tokenizes like a word-level model (a word with its leading whitespace is one token) and
/// scores each word by a fixed table, falling back to the word's length in characters.
///
/// Scores ignore context, so tests can predict exactly what a compressor keeps.
#[derive(Debug, Default)]
pub struct FakeScorer {
    surprisal: HashMap<String, f32>,
    max_context: Option<usize>,
    /// The surprisal of a word the session has already read, if context should matter.
    recall: Option<f32>,
    /// Token ids are indices into this table of the words seen so far.
    vocab: Mutex<Vec<String>>,
}

impl FakeScorer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the surprisal of a word (compared without its surrounding whitespace).
    pub fn with(mut self, word: &str, surprisal: f32) -> Self {
        self.surprisal.insert(word.to_string(), surprisal);
        self
    }

    /// Makes context matter: a word the session has already read (compared without
    /// whitespace) costs `surprisal`, like a model that has learnt to copy. Question-aware
    /// methods need this to see any effect of the question.
    pub fn with_recall(mut self, surprisal: f32) -> Self {
        self.recall = Some(surprisal);
        self
    }

    pub fn with_max_context(mut self, tokens: usize) -> Self {
        self.max_context = Some(tokens);
        self
    }

    fn id(&self, word: &str) -> u32 {
        let mut vocab = self.vocab.lock().expect("fake vocabulary poisoned");
        let id = vocab.iter().position(|w| w == word).unwrap_or_else(|| {
            vocab.push(word.to_string());
            vocab.len() - 1
        });
        id as u32
    }

    /// The surprisal of `id` after `context` (ids the session holds).
    fn score_id(&self, id: u32, context: &[u32]) -> f32 {
        let vocab = self.vocab.lock().expect("fake vocabulary poisoned");
        let word = vocab[id as usize].trim();
        if let Some(recall) = self.recall {
            if context.iter().any(|&c| vocab[c as usize].trim() == word) {
                return recall;
            }
        }
        self.surprisal
            .get(word)
            .copied()
            .unwrap_or(word.chars().count() as f32)
    }
}

/// Splits into tokens of `leading whitespace + non-whitespace run`; trailing whitespace is its own token.
fn word_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && in_word {
            spans.push(start..i);
            start = i;
            in_word = false;
        } else if !c.is_whitespace() {
            in_word = true;
        }
    }
    if start < text.len() {
        spans.push(start..text.len());
    }
    spans
}

impl TokenScorer for FakeScorer {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        Ok(word_spans(text)
            .into_iter()
            .map(|span| ModelToken {
                id: self.id(&text[span.clone()]),
                span,
            })
            .collect())
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        Ok(Box::new(FakeSession {
            scorer: self,
            ids: Vec::new(),
        }))
    }

    fn max_context(&self) -> usize {
        self.max_context.unwrap_or(usize::MAX)
    }
}

struct FakeSession<'a> {
    scorer: &'a FakeScorer,
    ids: Vec<u32>,
}

impl ScoringSession for FakeSession<'_> {
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
        if self.ids.len() + ids.len() > self.scorer.max_context() {
            return Err("fake scorer: context full".into());
        }
        let mut surprisals = Vec::with_capacity(ids.len());
        for &id in ids {
            surprisals.push(self.scorer.score_id(id, &self.ids));
            self.ids.push(id);
        }
        Ok(surprisals)
    }

    fn truncate(&mut self, len: usize) {
        self.ids.truncate(len);
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// A token classifier with fixed keep-probabilities. It tokenizes roughly like XLM-R: a run of
/// letters and digits is a token, every other non-space character is one, except that CJK
/// characters pair up (`我们很好` is `我们`, `很好`); spaces belong to no token. A token's
/// probability comes from a table, else 0.5.
#[derive(Debug, Default)]
pub struct FakeClassifier {
    probabilities: HashMap<String, f32>,
    window: Option<usize>,
}

impl FakeClassifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the keep-probability of a token.
    pub fn with(mut self, token: &str, probability: f32) -> Self {
        self.probabilities.insert(token.to_string(), probability);
        self
    }

    /// Sets the tokens per window (default: unlimited).
    pub fn with_window(mut self, tokens: usize) -> Self {
        self.window = Some(tokens);
        self
    }

    /// The byte ranges of the tokens of `text`.
    pub fn tokenize(text: &str) -> Vec<std::ops::Range<usize>> {
        let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
        let mut previous: Option<char> = None;
        for (i, c) in text.char_indices() {
            let joins = match (previous, spans.last()) {
                (Some(p), Some(last)) if last.end == i => {
                    (p.is_alphanumeric() && !is_cjk(p) && c.is_alphanumeric() && !is_cjk(c))
                        || (is_cjk(p) && is_cjk(c) && text[last.clone()].chars().count() == 1)
                }
                _ => false,
            };
            if c.is_whitespace() {
                previous = None;
                continue;
            }
            match spans.last_mut() {
                Some(last) if joins => last.end = i + c.len_utf8(),
                _ => spans.push(i..i + c.len_utf8()),
            }
            previous = Some(c);
        }
        spans
    }
}

impl TokenClassifier for FakeClassifier {
    fn keep_probabilities_until(
        &self,
        text: &str,
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<(std::ops::Range<usize>, f32)>, BoxError> {
        interrupt.check()?;
        Ok(Self::tokenize(text)
            .into_iter()
            .map(|span| {
                let p = self.probabilities.get(&text[span.clone()]).copied();
                (span, p.unwrap_or(0.5))
            })
            .collect())
    }

    fn window_tokens(&self) -> usize {
        self.window.unwrap_or(usize::MAX)
    }
}

/// Embeds a text as its normalised bag of words (lower-cased alphanumeric runs hashed into 64
/// dimensions), so texts sharing words are similar. The empty text is the zero vector.
#[derive(Debug, Default, Clone, Copy)]
pub struct FakeEmbedder;

impl Embedder for FakeEmbedder {
    fn embed_until(
        &self,
        texts: &[&str],
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<Vec<f32>>, BoxError> {
        interrupt.check()?;
        Ok(texts
            .iter()
            .map(|text| {
                let mut vector = vec![0.0f32; 64];
                for word in text
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                {
                    // FNV-1a: a stable hash, unlike std's randomised one.
                    let hash = word
                        .to_lowercase()
                        .bytes()
                        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
                        });
                    vector[(hash % 64) as usize] += 1.0;
                }
                let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    vector.iter_mut().for_each(|v| *v /= norm);
                }
                vector
            })
            .collect())
    }
}

/// A generator whose reply is a function of the request. Its tokens are whitespace-separated
/// words: the reply is cut to `max_new_tokens` of them, and `on_token` sees each.
pub struct FakeGenerator<F> {
    reply: F,
}

impl<F: Fn(&Generation) -> Result<String, BoxError>> FakeGenerator<F> {
    pub fn new(reply: F) -> Self {
        Self { reply }
    }
}

/// The document a `rewrite` request asks to rewrite (between `Document:` and the next blank line).
pub fn document_of<'a>(request: &Generation<'a>) -> &'a str {
    let user = request.user;
    let start = user
        .find("Document:\n")
        .map_or(0, |i| i + "Document:\n".len());
    let end = user[start..].find("\n\n").map_or(user.len(), |i| start + i);
    &user[start..end]
}

impl<F: Fn(&Generation) -> Result<String, BoxError>> Generator for FakeGenerator<F> {
    fn generate(
        &self,
        request: &Generation,
        on_token: &mut dyn FnMut(usize) -> Result<(), BoxError>,
    ) -> Result<String, BoxError> {
        let reply = (self.reply)(request)?;
        let words: Vec<&str> = reply
            .split_whitespace()
            .take(request.max_new_tokens)
            .collect();
        for n in 1..=words.len() {
            on_token(n)?;
        }
        Ok(words.join(" "))
    }

    fn name(&self) -> &str {
        "fake"
    }
}

/// Counts whitespace-separated words: a stand-in for a target-LLM tokenizer.
#[derive(Debug, Default, Clone, Copy)]
pub struct WordCounter;

impl TokenCounter for WordCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn name(&self) -> &str {
        "words"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_scorer_tokens_cover_the_text_and_scores_follow_the_table() {
        let scorer = FakeScorer::new().with("cat", 9.0);
        let text = "  the cat\n sat ";
        let tokens = scorer.tokenize(text).unwrap();
        let joined: String = tokens.iter().map(|t| &text[t.span.clone()]).collect();
        assert_eq!(joined, text);
        let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
        let mut session = scorer.session().unwrap();
        assert_eq!(session.extend(&ids).unwrap(), vec![3.0, 9.0, 3.0, 0.0]);
        assert_eq!(session.len(), 4);
        session.truncate(1);
        assert_eq!(session.len(), 1);
    }

    #[test]
    fn fake_classifier_tokens() {
        let text = "Hi, 2 cats 我们很好。";
        let tokens: Vec<&str> = FakeClassifier::tokenize(text)
            .into_iter()
            .map(|s| &text[s])
            .collect();
        assert_eq!(tokens, ["Hi", ",", "2", "cats", "我们", "很好", "。"]);
        let classifier = FakeClassifier::new().with("cats", 0.9);
        let probabilities = classifier.keep_probabilities("the cats").unwrap();
        assert_eq!(probabilities, vec![(0..3, 0.5), (4..8, 0.9)]);
    }
}
