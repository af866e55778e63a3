//! Token counts in the target LLM's tokenizer (what the user pays for), via tiktoken.

use std::str::FromStr;

use abridge_core::TokenCounter;
use tiktoken_rs::CoreBPE;

use crate::error::Error;

/// Target-LLM tokenizers we count with; the rank files are embedded, so this works offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetTokenizer {
    /// GPT-3.5/GPT-4 (what LLMLingua reports).
    #[default]
    Cl100kBase,
    /// GPT-4o and later.
    O200kBase,
}

impl TargetTokenizer {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cl100kBase => "cl100k_base",
            Self::O200kBase => "o200k_base",
        }
    }
}

impl FromStr for TargetTokenizer {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cl100k_base" | "cl100k" => Ok(Self::Cl100kBase),
            "o200k_base" | "o200k" => Ok(Self::O200kBase),
            other => Err(Error::InvalidInput(format!(
                "unknown target tokenizer `{other}`: use cl100k_base or o200k_base"
            ))),
        }
    }
}

/// Counts with tiktoken. Special-token text such as `<|endoftext|>` counts as ordinary text.
pub struct TiktokenCounter {
    tokenizer: TargetTokenizer,
    bpe: &'static CoreBPE,
}

impl TiktokenCounter {
    pub fn new(tokenizer: TargetTokenizer) -> Self {
        let bpe = match tokenizer {
            TargetTokenizer::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
            TargetTokenizer::O200kBase => tiktoken_rs::o200k_base_singleton(),
        };
        Self { tokenizer, bpe }
    }
}

impl TokenCounter for TiktokenCounter {
    fn count(&self, text: &str) -> usize {
        self.bpe.encode_ordinary(text).len()
    }

    fn name(&self) -> &str {
        self.tokenizer.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_tiktoken() {
        // "Hello" "," " world" "!" " " "123" "45": both split digit runs into groups of three.
        let text = "Hello, world! 12345";
        assert_eq!(
            TiktokenCounter::new(TargetTokenizer::Cl100kBase).count(text),
            7
        );
        assert_eq!(
            TiktokenCounter::new(TargetTokenizer::O200kBase).count(text),
            7
        );
        assert_eq!(
            TiktokenCounter::new(TargetTokenizer::Cl100kBase).count(""),
            0
        );
    }
}
