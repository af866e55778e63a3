//! Metric 3: generative accuracy. An answering LM (the evaluator, e.g. Qwen2.5-Coder-0.5B-Instruct)
//! reads the whole prompt as one user turn of its chat template and answers greedily; the answer
//! is scored against the gold aliases after SQuAD normalisation: `generated_exact` (the answer is
//! an alias) and `generated_match` (an alias occurs in the answer as whole words, so "It was Gerd
//! Müller." counts).

use abridge_core::BoxError;
use abridge_models::generate::generate;
use abridge_models::LanguageModel;

use crate::metrics::{contains_answer, normalize};

/// Tokens an answer may take: NQ and SQuAD answers are a few words, and the prompt asks for
/// the answer alone.
pub const MAX_ANSWER_TOKENS: usize = 24;

/// Answers a prompt.
pub trait Answerer {
    fn answer(&self, prompt: &str) -> Result<String, BoxError>;
}

/// A ChatML turn (the template of Qwen2.5 and SmolLM2), with Qwen2.5's default system message,
/// which its template inserts when none is given.
pub fn chat_turn(prompt: &str) -> String {
    format!(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful \
         assistant.<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    )
}

/// A chat model answering greedily in at most `max_tokens` tokens.
pub struct ChatAnswerer<'m> {
    pub lm: &'m LanguageModel,
    pub max_tokens: usize,
}

impl Answerer for ChatAnswerer<'_> {
    fn answer(&self, prompt: &str) -> Result<String, BoxError> {
        let ids: Vec<u32> = self
            .lm
            .tokenizer
            .encode(&chat_turn(prompt))?
            .into_iter()
            .map(|t| t.id)
            .collect();
        let answer = generate(self.lm, &ids, self.max_tokens)?;
        Ok(self.lm.tokenizer.decode(&answer).trim().to_string())
    }
}

/// `generated_exact` and `generated_match` (1 or 0) of `generated` against `answers`.
pub fn score(generated: &str, answers: &[String]) -> [(&'static str, f64); 2] {
    let exact = answers.iter().any(|a| normalize(a) == normalize(generated));
    let matched = contains_answer(generated, answers);
    [
        ("generated_exact", f64::from(u8::from(exact))),
        ("generated_match", f64::from(u8::from(matched))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_matches_exactly_or_as_whole_words() {
        let answers = vec!["Gerd Müller".to_string(), "Müller".to_string()];
        assert_eq!(score("gerd müller.", &answers).map(|m| m.1), [1.0, 1.0]);
        assert_eq!(
            score("It was Gerd Müller, in 1970.", &answers).map(|m| m.1),
            [0.0, 1.0]
        );
        assert_eq!(score("Müllerson", &answers).map(|m| m.1), [0.0, 0.0]);
        assert_eq!(score("", &answers).map(|m| m.1), [0.0, 0.0]);
    }

    #[test]
    fn the_prompt_is_one_user_turn_and_the_assistant_speaks_next() {
        let turn = chat_turn("Question: who?\nAnswer:");
        assert!(turn.contains("<|im_start|>user\nQuestion: who?\nAnswer:<|im_end|>\n"));
        assert!(turn.ends_with("<|im_start|>assistant\n"));
    }
}
