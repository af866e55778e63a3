//! Metric 3: generative accuracy. An answering LM (the evaluator, e.g. Qwen2.5-Coder-0.5B-Instruct)
//! reads the whole prompt as one user turn of its chat template and answers greedily; the answer
//! is scored against the gold aliases after SQuAD normalisation: `generated_exact` (the answer is
//! an alias) and `generated_match` (an alias occurs in the answer as whole words, so "It was Gerd
//! Müller." counts).
//!
//! The KV-cache baselines (`kv-streaming`, `kv-h2o`, `kv-snapkv`) answer from the *original*
//! prompt read under a policy of abridge-models' `kv_policy` that keeps [`kv_budget`] positions:
//! at rate R, the template's and R × the prompt's, the memory a prompt compressed to R takes.

use abridge_core::BoxError;
use abridge_models::chat::{chat_turn, reply, QWEN_SYSTEM};
use abridge_models::generate::generate_with_policy;
use abridge_models::kv_policy::{KvPolicy, PolicyKind};
use abridge_models::LanguageModel;

use crate::metrics::{contains_answer, normalize};

/// Tokens an answer may take: NQ and SQuAD answers are a few words, and the prompt asks for
/// the answer alone.
pub const MAX_ANSWER_TOKENS: usize = 24;

/// An answer from a KV cache read under a policy, and the cache positions it was read into.
#[derive(Debug, Clone, PartialEq)]
pub struct KvAnswer {
    pub answer: String,
    /// Positions the whole input (chat template and prompt) takes.
    pub prompt_positions: usize,
    /// Positions the cache kept of them.
    pub kept_positions: usize,
}

/// Answers a prompt.
pub trait Answerer {
    fn answer(&self, prompt: &str) -> Result<String, BoxError>;

    /// Answers `prompt` read under `policy` with the budget of a prompt compressed to `rate`.
    fn answer_with_kv_policy(
        &self,
        prompt: &str,
        policy: PolicyKind,
        rate: f64,
    ) -> Result<KvAnswer, BoxError>;
}

/// The cache positions a KV policy keeps at `rate` of a chat turn of `turn` tokens, `prompt` of
/// them the user's prompt: the template's (which a compressed prompt's turn keeps too) and
/// `rate` × the prompt's.
pub fn kv_budget(turn: usize, prompt: usize, rate: f64) -> usize {
    let template = turn.saturating_sub(prompt);
    (template + (rate * prompt as f64).round() as usize).min(turn)
}

/// A chat model answering greedily in at most `max_tokens` tokens.
pub struct ChatAnswerer<'m> {
    pub lm: &'m LanguageModel,
    pub max_tokens: usize,
}

impl ChatAnswerer<'_> {
    /// The prompt as one user turn after Qwen2.5's default system message, as [`reply`] reads it.
    fn chat_ids(&self, prompt: &str) -> Result<Vec<u32>, BoxError> {
        Ok(self
            .lm
            .encode(&chat_turn(QWEN_SYSTEM, prompt))?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }
}

impl Answerer for ChatAnswerer<'_> {
    /// The prompt as one user turn after Qwen2.5's default system message.
    fn answer(&self, prompt: &str) -> Result<String, BoxError> {
        reply(self.lm, QWEN_SYSTEM, prompt, self.max_tokens, &mut |_| {
            Ok(())
        })
    }

    fn answer_with_kv_policy(
        &self,
        prompt: &str,
        policy: PolicyKind,
        rate: f64,
    ) -> Result<KvAnswer, BoxError> {
        let ids = self.chat_ids(prompt)?;
        let budget = kv_budget(ids.len(), self.lm.tokenizer.encode(prompt)?.len(), rate);
        let policy = KvPolicy::new(policy, budget);
        let answer = generate_with_policy(self.lm, &ids, self.max_tokens, &policy)?;
        Ok(KvAnswer {
            answer: self.lm.tokenizer.decode(&answer).trim().to_string(),
            prompt_positions: ids.len(),
            kept_positions: budget,
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

    #[test]
    fn a_kv_budget_keeps_the_template_and_the_rate_of_the_prompt() {
        // A 130-token turn around a 100-token prompt: 30 template positions + 20 at 1/5.
        assert_eq!(kv_budget(130, 100, 0.2), 50);
        assert_eq!(kv_budget(130, 100, 1.0), 130);
        assert_eq!(kv_budget(130, 100, 1.0 / 3.0), 63);
    }
}
