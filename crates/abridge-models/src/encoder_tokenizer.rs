//! An encoder's Hugging Face `tokenizer.json` (WordPiece for BERT, SentencePiece-Unigram for
//! XLM-RoBERTa), giving each token its byte range in the text so scores map back to words.

use std::path::{Path, PathBuf};

use abridge_core::ModelToken;

use crate::error::{Error, Result};

/// A text whose tokenization certainly has a content token, used to find where the
/// tokenizer's post-processor puts its special tokens.
const PROBE: &str = "a";

/// Bytes of text tokenized at once (see [`EncoderTokenizer::encode_in_pieces`]).
const PIECE_BYTES: usize = 1 << 16;

/// Where a piece of `text` that should end near `at` ends: before the first lone space between
/// two other characters at or after `at`, else at the text's end. Neither BERT's nor XLM-R's
/// tokenizer joins characters across such a space (BERT splits at it; XLM-R starts a new `▁`
/// piece with it) nor normalises it with its neighbours, so the pieces tokenize as the whole
/// text does. A text without one (CJK prose, a long run without spaces) is read whole.
fn piece_end(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let other = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace());
    (at.max(1)..bytes.len())
        .find(|&i| {
            bytes[i] == b' '
                && other(text[..i].chars().next_back())
                && other(text[i + 1..].chars().next())
        })
        .unwrap_or(bytes.len())
}

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
        self.encode_in_pieces(text, PIECE_BYTES)
    }

    /// [`Self::encode`], tokenizing pieces of about `piece_bytes` one at a time: the tokenizer's
    /// working memory is about a hundred times its input (590 MB for 5 MB of text at once).
    fn encode_in_pieces(&self, text: &str, piece_bytes: usize) -> Result<Vec<ModelToken>> {
        let mut tokens = Vec::new();
        let mut start = 0;
        while start < text.len() {
            let end = piece_end(text, start.saturating_add(piece_bytes));
            let encoding = self
                .inner
                .encode(&text[start..end], false)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            tokens.extend(encoding.get_ids().iter().zip(encoding.get_offsets()).map(
                |(&id, &(from, to))| ModelToken {
                    id,
                    span: start + from..start + to,
                },
            ));
            start = end;
        }
        Ok(tokens)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_tokenize_as_the_whole_text_does() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let tricky =
            "Héllo  wörld,\tthe café's naïve 東京 tower\u{a0}x y\r\nz  a\u{3000}b — don't \
                      stop   here. 1,234.5 e\u{301} ﬁne ＡＢＣ x\u{200d}y <s> [CLS] end ";
        let text = tricky.repeat(12);
        for family in ["tiny-bert-tokcls", "tiny-xlmr-tokcls"] {
            let tokenizer =
                EncoderTokenizer::from_file(&fixtures.join(family).join("tokenizer.json")).unwrap();
            let whole = tokenizer.encode_in_pieces(&text, usize::MAX).unwrap();
            assert!(whole.len() > 100, "{family}");
            for piece_bytes in [1, 5, 64, 700] {
                let pieces = tokenizer.encode_in_pieces(&text, piece_bytes).unwrap();
                assert_eq!(pieces, whole, "{family}, pieces of {piece_bytes} bytes");
            }
            assert!(tokenizer.encode_in_pieces("", 1).unwrap().is_empty());
        }
    }

    #[test]
    fn pieces_end_before_a_lone_space_between_two_characters() {
        assert_eq!(piece_end("ab cd", 0), 2);
        assert_eq!(piece_end("ab cd", 3), 5);
        assert_eq!(piece_end("a  b c", 0), 4);
        assert_eq!(piece_end("a\n b", 0), 4);
        assert_eq!(piece_end("é é", 1), 2);
        assert_eq!(piece_end("abc", usize::MAX), 3);
    }
}
