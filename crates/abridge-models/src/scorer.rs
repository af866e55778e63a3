//! A GGUF causal LM and its tokenizer as one [`TokenScorer`].

use std::path::{Path, PathBuf};

use abridge_core::{BoxError, ModelToken, ScoringSession, TokenScorer};

use crate::error::{Error, Result};
use crate::fetch;
use crate::gguf::GgufFile;
use crate::llama::{CausalLm, KvCache, LoadOptions};
use crate::tokenizer::{GgufTokenizer, TextToken};

/// Tokens of already-scored text re-read as context when a long input moves to a new window.
const WINDOW_OVERLAP_FRACTION: usize = 4;
/// Tokens fed per forward call while scoring, so progress can be reported.
const PROGRESS_STEP: usize = 256;

/// A scoring model loaded from a GGUF file.
pub struct LanguageModel {
    pub path: PathBuf,
    pub model: CausalLm,
    pub tokenizer: GgufTokenizer,
}

impl LanguageModel {
    /// Loads `path`, first checking it against the sha256 recorded at fetch unless
    /// `options.skip_verify`.
    pub fn load(path: &Path, options: LoadOptions) -> Result<Self> {
        if !options.skip_verify {
            fetch::verify(path)?;
        }
        let gguf = GgufFile::open(path)?;
        let model = CausalLm::load(&gguf, options)?;
        let tokenizer = GgufTokenizer::from_gguf(&gguf)?;
        if tokenizer.vocab_size() > model.config.vocab {
            return Err(Error::InvalidGguf {
                path: path.to_path_buf(),
                reason: format!(
                    "the tokenizer has {} tokens but the embedding only {}",
                    tokenizer.vocab_size(),
                    model.config.vocab
                ),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            model,
            tokenizer,
        })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<TextToken>> {
        self.tokenizer.encode(text)
    }

    /// Tokens a session can hold after its document-start token.
    pub fn max_tokens(&self) -> usize {
        self.model.config.context - 1
    }

    /// A cache holding just the document-start token.
    pub fn start(&self) -> Result<KvCache> {
        let mut cache = self.model.new_cache();
        self.model
            .forward(&mut cache, &[self.tokenizer.document_start()])?;
        Ok(cache)
    }

    /// Reads `ids` into `cache` and returns each one's surprisal (nats).
    pub fn extend(&self, cache: &mut KvCache, ids: &[u32]) -> Result<Vec<f32>> {
        let from = cache.len().checked_sub(1).ok_or_else(|| {
            Error::InvalidInput("a scoring cache must start with the document-start token".into())
        })?;
        self.model.forward(cache, ids)?;
        Ok(self
            .model
            .next_token_log_probs(cache, from, ids)
            .into_iter()
            .map(|lp| -lp)
            .collect())
    }

    /// Surprisal of every token of `ids`, however long: inputs beyond the context are scored in
    /// windows, each starting with the last quarter-context of tokens before it as context.
    /// `progress(done, total)` is called as tokens are scored.
    pub fn surprisal(
        &self,
        ids: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<f32>> {
        let window = self.max_tokens();
        let overlap = window / WINDOW_OVERLAP_FRACTION;
        let mut surprisal = Vec::with_capacity(ids.len());
        while surprisal.len() < ids.len() {
            let next = surprisal.len();
            let context_start = next.saturating_sub(overlap);
            let end = ids.len().min(context_start + window);
            let mut cache = self.start()?;
            self.model.forward(&mut cache, &ids[context_start..next])?;
            for chunk in ids[next..end].chunks(PROGRESS_STEP) {
                surprisal.extend(self.extend(&mut cache, chunk)?);
                progress(surprisal.len(), ids.len());
            }
        }
        Ok(surprisal)
    }
}

impl TokenScorer for LanguageModel {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        Ok(self
            .encode(text)?
            .into_iter()
            .map(|t| ModelToken {
                id: t.id,
                span: t.span,
            })
            .collect())
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        Ok(Box::new(Session {
            model: self,
            cache: self.start()?,
        }))
    }

    fn max_context(&self) -> usize {
        self.max_tokens()
    }
}

struct Session<'a> {
    model: &'a LanguageModel,
    cache: KvCache,
}

impl ScoringSession for Session<'_> {
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
        Ok(self.model.extend(&mut self.cache, ids)?)
    }

    fn truncate(&mut self, len: usize) {
        self.cache.truncate(len + 1);
    }

    fn len(&self) -> usize {
        self.cache.len() - 1
    }
}
