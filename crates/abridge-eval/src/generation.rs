//! Metric 3: generative accuracy. An answering LM (the evaluator, e.g. Qwen2.5-Coder-0.5B-Instruct)
//! reads the whole prompt as one user turn of its chat template and answers greedily; the answer
//! is scored against the gold aliases after SQuAD normalisation: `generated_exact` (the answer is
//! an alias) and `generated_match` (an alias occurs in the answer as whole words, so "It was Gerd
//! Müller." counts).

use abridge_core::BoxError;
use abridge_models::chat::{reply, QWEN_SYSTEM};
use abridge_models::LanguageModel;

use crate::metrics::{contains_answer, normalize};

/// Tokens an answer may take: NQ and SQuAD answers are a few words, and the prompt asks for
/// the answer alone.
pub const MAX_ANSWER_TOKENS: usize = 24;

/// Answers a prompt.
pub trait Answerer {
    fn answer(&self, prompt: &str) -> Result<String, BoxError>;
}

/// A chat model answering greedily in at most `max_tokens` tokens.
pub struct ChatAnswerer<'m> {
    pub lm: &'m LanguageModel,
    pub max_tokens: usize,
}

impl Answerer for ChatAnswerer<'_> {
    /// The prompt as one user turn after Qwen2.5's default system message.
    fn answer(&self, prompt: &str) -> Result<String, BoxError> {
        reply(self.lm, QWEN_SYSTEM, prompt, self.max_tokens, &mut |_| {
            Ok(())
        })
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
}
