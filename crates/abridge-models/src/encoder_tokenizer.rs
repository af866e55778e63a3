//! An encoder's Hugging Face `tokenizer.json` (WordPiece for BERT, SentencePiece-Unigram for
//! XLM-RoBERTa), giving each token its byte range in the text so scores map back to words.

use std::path::{Path, PathBuf};

use abridge_core::ModelToken;

use crate::error::{Error, Result};

/// A text whose tokenization certainly has a content token, used to find where the
/// tokenizer's post-processor puts its special tokens.
const PROBE: &str = "a";

pub struct EncoderTokenizer {
    pub path: PathBuf,
    inner: tokenizers::Tokenizer,
    /// Special tokens the checkpoint's template puts before a text (`[CLS]`, `<s>`).
    prefix: Vec<u32>,
    /// And after it (`[SEP]`, `</s>`).
    suffix: Vec<u32>,
}

impl EncoderTokenizer {
    pub fn from_file(path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| invalid(format!("cannot load the tokenizer: {e}")))?;
        // Files saved for training often fix a length (all-MiniLM-L6-v2's truncates and pads
        // to 128); we cut long inputs into windows ourselves and never pad.
        inner
            .with_truncation(None)
            .map_err(|e| invalid(e.to_string()))?;
        inner.with_padding(None);
        let probe = inner
            .encode(PROBE, true)
            .map_err(|e| invalid(format!("cannot tokenize {PROBE:?}: {e}")))?;
        let sequence_ids = probe.get_sequence_ids();
        let first = sequence_ids.iter().position(Option::is_some);
        let last = sequence_ids.iter().rposition(Option::is_some);
        let (Some(first), Some(last)) = (first, last) else {
            return Err(invalid(format!("{PROBE:?} tokenizes to no text token")));
        };
        let ids = probe.get_ids();
        Ok(Self {
            path: path.to_path_buf(),
            prefix: ids[..first].to_vec(),
            suffix: ids[last + 1..].to_vec(),
            inner,
        })
    }

    /// The tokens of `text` without special tokens, each with its byte range in `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<ModelToken>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding
            .get_ids()
            .iter()
            .zip(encoding.get_offsets())
            .map(|(&id, &(start, end))| ModelToken {
                id,
                span: start..end,
            })
            .collect())
    }

    /// `ids` framed by the checkpoint's special tokens, as the model was trained to read them.
    pub fn with_special_tokens(&self, ids: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(ids.len() + self.special_tokens());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(ids);
        out.extend_from_slice(&self.suffix);
        out
    }

    /// How many special tokens frame each sequence (2 for BERT and XLM-R).
    pub fn special_tokens(&self) -> usize {
        self.prefix.len() + self.suffix.len()
    }

    /// How many special tokens precede the text.
    pub fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The vocabulary string of `id` (e.g. `##ing`, `▁the`): word boundaries are read from it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
