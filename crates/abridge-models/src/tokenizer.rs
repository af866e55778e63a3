//! The model's own tokenizer, built from the GGUF metadata (`tokenizer.ggml.*`), so a GGUF file
//! is all a user needs. Byte-level BPE (`tokenizer.ggml.model = gpt2`) with the pre-tokenizer
//! named by `tokenizer.ggml.pre`; ids match llama.cpp's for the same text.

use std::ops::Range;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

/// GGUF token types that are matched as whole special tokens in the text.
const TOKEN_TYPE_CONTROL: u64 = 3;
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

/// llama.cpp's regexes for the pre-tokenizers we know beyond GPT-2's own.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// One token of a text: its id and the byte range it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextToken {
    pub id: u32,
    pub span: Range<usize>,
}

pub struct GgufTokenizer {
    inner: Tokenizer,
    /// The bytes each id stands for (special tokens: their text).
    token_bytes: Vec<Vec<u8>>,
    /// Read before a document so its first token can be scored (see [`Self::document_start`]).
    document_start: u32,
    /// `known_byte[b]`: the vocabulary has a token for byte `b` alone. BPE silently drops the
    /// bytes it has none for (SmolLM2 lacks e.g. 0x04 and 0xF1, the lead byte of U+40000..).
    known_byte: [bool; 256],
    /// The tokens of U+FFFD, read for a text made only of bytes the vocabulary lacks.
    replacement: Vec<u32>,
}

impl GgufTokenizer {
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let model = gguf.require_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::Unsupported(format!(
                "tokenizer type `{model}` in {}: abridge reads byte-level BPE (`gpt2`) tokenizers, used by SmolLM2, Qwen2 and Llama 3",
                gguf.path.display()
            )));
        }
        let strings = |key: &str| -> Result<Vec<String>> {
            gguf.require(key)?
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
                .ok_or_else(|| gguf.wrong_type(key))
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| gguf.wrong_type("tokenizer.ggml.merges"))
            })
            .collect::<Result<Vec<_>>>()?;
        let types: Vec<u64> = match gguf.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(|t| t.as_u64()).collect())
                .ok_or_else(|| gguf.wrong_type("tokenizer.ggml.token_type"))?,
            None => vec![1; tokens.len()],
        };

        let mut vocab = Vocab::default();
        for (id, token) in tokens.iter().enumerate() {
            vocab.insert(token.clone(), id as u32);
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer(gguf)?));
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        let is_special = |id: usize| {
            matches!(
                types.get(id),
                Some(&TOKEN_TYPE_CONTROL) | Some(&TOKEN_TYPE_USER_DEFINED)
            )
        };
        let special: Vec<AddedToken> = (0..tokens.len())
            .filter(|&id| is_special(id))
            .map(|id| AddedToken::from(tokens[id].clone(), true))
            .collect();
        inner
            .add_special_tokens(special)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;

        let byte_of_char = byte_level_decoding_table();
        let token_bytes: Vec<Vec<u8>> = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| {
                if is_special(id) {
                    token.as_bytes().to_vec()
                } else {
                    token
                        .chars()
                        .map(|c| byte_of_char.get(c as usize).copied().flatten())
                        .collect::<Option<Vec<u8>>>()
                        .unwrap_or_else(|| token.as_bytes().to_vec())
                }
            })
            .collect();

        let find = |text: &str| tokens.iter().position(|t| t == text).map(|id| id as u32);
        let document_start = find("<|endoftext|>")
            .or_else(|| {
                gguf.get("tokenizer.ggml.bos_token_id")
                    .and_then(|v| v.as_u64())
                    .map(|v| v as u32)
            })
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "{} has neither <|endoftext|> nor a BOS token to start documents with",
                    gguf.path.display()
                ))
            })?;
        let mut known_byte = [false; 256];
        for (id, bytes) in token_bytes.iter().enumerate() {
            if let ([byte], false) = (bytes.as_slice(), is_special(id)) {
                known_byte[*byte as usize] = true;
            }
        }
        let mut tokenizer = Self {
            inner,
            token_bytes,
            document_start,
            known_byte,
            replacement: Vec::new(),
        };
        tokenizer.replacement = tokenizer
            .encode(char::REPLACEMENT_CHARACTER.encode_utf8(&mut [0; 4]))?
            .into_iter()
            .map(|t| t.id)
            .collect();
        Ok(tokenizer)
    }

    /// The token read before every document: `<|endoftext|>` (the separator these models saw
    /// between documents in pre-training) when the vocabulary has it, else the BOS token.
    /// SmolLM2 sets `add_bos_token = false`, so without it the first token had no context.
    pub fn document_start(&self) -> u32 {
        self.document_start
    }

    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// Tokenizes `text` (special tokens such as `<|im_start|>` are recognised). Any valid UTF-8
    /// tokenizes, and the spans tile the text.
    ///
    /// A span boundary that falls inside a multi-byte character (byte-level BPE can split
    /// one) is moved to the end of that character, so spans never cut UTF-8. Bytes the
    /// vocabulary has no token for are dropped by BPE (and its merges may then join the bytes on
    /// either side); they belong to the span of the token that ends after them, so they are
    /// scored with that neighbour. A text made only of such bytes reads as U+FFFD, "a character
    /// this model cannot represent".
    pub fn encode(&self, text: &str) -> Result<Vec<TextToken>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        if encoding.get_ids().is_empty() && !text.is_empty() {
            self.only_dropped_after(text, 0)?;
            let end = text.len();
            return Ok(self
                .replacement
                .iter()
                .enumerate()
                .map(|(i, &id)| TextToken {
                    id,
                    span: if i == 0 { 0..end } else { end..end },
                })
                .collect());
        }
        let mut tokens: Vec<TextToken> = Vec::with_capacity(encoding.get_ids().len());
        let mut at = 0;
        for &id in encoding.get_ids() {
            at = self.spell(text, at, self.bytes(id))?;
            let start = tokens.last().map_or(0, |t| t.span.end);
            tokens.push(TextToken {
                id,
                span: start..ceil_char_boundary(text, at).max(start),
            });
        }
        self.only_dropped_after(text, at)?;
        if let Some(last) = tokens.last_mut() {
            last.span.end = text.len();
        }
        Ok(tokens)
    }

    /// Where `bytes` end when spelled in `text` from `at`, passing over only bytes the vocabulary
    /// lacks. Anything else means the ids do not spell `text`: a bug, reported rather than scored
    /// wrongly.
    fn spell(&self, text: &str, mut at: usize, bytes: &[u8]) -> Result<usize> {
        for &byte in bytes {
            at = self.skip_dropped(text, at);
            if text.as_bytes().get(at) != Some(&byte) {
                return Err(misspelled(at));
            }
            at += 1;
        }
        Ok(at)
    }

    /// Checks that only bytes the vocabulary lacks follow `at`.
    fn only_dropped_after(&self, text: &str, at: usize) -> Result<()> {
        match self.skip_dropped(text, at) {
            end if end == text.len() => Ok(()),
            other => Err(misspelled(other)),
        }
    }

    fn skip_dropped(&self, text: &str, mut at: usize) -> usize {
        let bytes = text.as_bytes();
        while bytes.get(at).is_some_and(|&b| !self.known_byte[b as usize]) {
            at += 1;
        }
        at
    }

    /// The bytes of a token (ids outside the vocabulary have none).
    pub fn bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// The text of `ids`, with invalid UTF-8 (a partial character) replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.bytes(id)).copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn misspelled(at: usize) -> Error {
    Error::Tokenizer(format!(
        "the tokens do not spell the text at byte {at} (a bug in abridge's tokenizer)"
    ))
}

fn ceil_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

fn pre_tokenizer(gguf: &GgufFile) -> Result<PreTokenizerWrapper> {
    let pre = gguf
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let byte_level =
        |use_regex| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, use_regex));
    let split = |pattern: &str| -> Result<PreTokenizerWrapper> {
        Split::new(
            SplitPattern::Regex(pattern.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map(PreTokenizerWrapper::Split)
        .map_err(|e| Error::Tokenizer(e.to_string()))
    };
    Ok(match pre {
        "default" | "gpt2" => byte_level(true),
        "smollm" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            byte_level(true),
        ])),
        "qwen2" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            split(QWEN2_PATTERN)?,
            byte_level(false),
        ])),
        "llama3" | "llama-bpe" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            split(LLAMA3_PATTERN)?,
            byte_level(false),
        ])),
        other => {
            return Err(Error::Unsupported(format!(
                "pre-tokenizer `{other}` in {}: abridge knows smollm, qwen2, llama3 and gpt2",
                gguf.path.display()
            )))
        }
    })
}

/// GPT-2's byte-level alphabet inverted: `table[char] = Some(byte)`.
fn byte_level_decoding_table() -> Vec<Option<u8>> {
    let mut table = vec![None; 324];
    let mut next_unprintable = 256usize;
    for byte in 0..=255u8 {
        let printable = matches!(byte, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
        let c = if printable {
            byte as usize
        } else {
            next_unprintable += 1;
            next_unprintable - 1
        };
        table[c] = Some(byte);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_is_gpt2s() {
        let table = byte_level_decoding_table();
        assert_eq!(table['Ġ' as usize], Some(b' '));
        assert_eq!(table['Ċ' as usize], Some(b'\n'));
        assert_eq!(table['a' as usize], Some(b'a'));
        assert_eq!(table.iter().flatten().count(), 256);
    }

    #[test]
    fn boundaries_inside_a_character_move_to_its_end() {
        let text = "a€b";
        assert_eq!(ceil_char_boundary(text, 2), 4);
        assert_eq!(ceil_char_boundary(text, 4), 4);
    }
}
