//! The scoring stage's contracts. Compressors see models only through these traits.

use std::ops::Range;

use crate::BoxError;

/// One token of the scoring model, located in the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelToken {
    pub id: u32,
    /// Byte range in the tokenized text; the spans of a text's tokens tile it. Byte-level BPE can
    /// split a multi-byte character across tokens: a boundary inside a character is moved to the
    /// character's end, so ranges never cut UTF-8 (a token wholly inside one gets an empty range).
    pub span: Range<usize>,
}

/// A causal language model that measures how surprising each token is.
///
/// Surprisal is `-ln p(token | everything before it)` in nats. Scoring is incremental: a
/// [`ScoringSession`] keeps the model state (a KV cache) of what it has read, so a compressor can
/// score a new window conditioned on an already-compressed prefix without re-reading it.
pub trait TokenScorer {
    /// Splits `text` into model tokens. Concatenating the spans gives back the whole text.
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError>;

    /// Starts an empty session. Its first token is scored after the model's document-start
    /// token, so every token of the text gets a surprisal.
    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError>;

    /// The most tokens one session can hold (the model's context length).
    fn max_context(&self) -> usize;
}

/// A scorer's state after reading some tokens.
pub trait ScoringSession {
    /// Reads `ids` after what the session already holds and returns the surprisal of each.
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError>;

    /// Forgets every token after the first `len`, so another continuation can be scored.
    fn truncate(&mut self, len: usize);

    /// How many tokens the session holds (not counting the document-start token).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counts tokens in the *target* LLM's tokenizer (the one the user pays for), e.g. cl100k_base.
pub trait TokenCounter {
    fn count(&self, text: &str) -> usize;

    /// The tokenizer's name, as reported to users (e.g. `cl100k_base`).
    fn name(&self) -> &str;
}

/// Asked between slices of a long model computation (a classifier's windows, an embedder's
/// batches) whether to go on: a server stops a compression whose client has gone. An error ends
/// the computation and is returned as it is.
pub trait Interrupt {
    fn check(&self) -> Result<(), BoxError>;
}

/// Never interrupts: for callers that wait for every result.
pub struct Uninterrupted;

impl Interrupt for Uninterrupted {
    fn check(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A token classifier that gives each token a probability of being kept (LLMLingua-2 style).
pub trait TokenClassifier {
    /// Keep-probabilities of the tokens of `text`, each with its byte range.
    fn keep_probabilities(&self, text: &str) -> Result<Vec<(Range<usize>, f32)>, BoxError> {
        self.keep_probabilities_until(text, &Uninterrupted)
    }

    /// [`Self::keep_probabilities`], asking `interrupt` before each slice of a long text.
    fn keep_probabilities_until(
        &self,
        text: &str,
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<(Range<usize>, f32)>, BoxError>;

    /// Text tokens the classifier reads in one window (LLMLingua-2's compat mode thresholds
    /// chunks of this size).
    fn window_tokens(&self) -> usize;
}

/// A sentence embedder (e.g. all-MiniLM-L6-v2): one unit-length vector per text.
pub trait Embedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        self.embed_until(texts, &Uninterrupted)
    }

    /// [`Self::embed`], asking `interrupt` before each batch of texts.
    fn embed_until(
        &self,
        texts: &[&str],
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<Vec<f32>>, BoxError>;
}

/// What a [`Generator`] is asked: a system message, one user turn, and the most tokens (its
/// own) it may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation<'a> {
    pub system: &'a str,
    pub user: &'a str,
    pub max_new_tokens: usize,
}

/// An instruction model that writes text (the `rewrite` method's rewriter): a local chat model
/// or a hosted endpoint.
pub trait Generator {
    /// Its reply to `request`, in at most `request.max_new_tokens` tokens. `on_token(n)` is called
    /// as tokens are written (`n` so far; a generator that cannot stream calls it once at the
    /// end); an error from it stops the generation and is returned, so a caller can cancel.
    fn generate(
        &self,
        request: &Generation,
        on_token: &mut dyn FnMut(usize) -> Result<(), BoxError>,
    ) -> Result<String, BoxError>;

    /// What generates, for reports: a model file's name, an endpoint's model.
    fn name(&self) -> &str;
}
