//! Metric 2: what an *evaluator* LM (a different model from the compressor's scorer, e.g.
//! Qwen2.5-Coder-0.5B) still gets from the compressed prompt, read teacher-forced:
//! LL(answer | prompt) = −Σ surprisal of the answer's tokens after reading the prompt.
//!
//! Per case, the gain of a prompt over the closed-book prompt (instruction and question, no
//! context) is LL(answer | prompt) − LL(answer | closed book), in nats; a row's
//! G = Σ gain(compressed) / Σ gain(original) over its cases (1: the compressed prompt helps the
//! evaluator as much as the original; 0: no more than no context at all).
//!
//! The KV-cache baselines keep the prompt's text and evict the evaluator's cache while it reads
//! the prompt ([`Evaluator::answer_log_likelihood_with_kv_policy`]), at the same memory as a
//! prompt compressed to the rate.

use abridge_core::{BoxError, TokenScorer};
use abridge_models::generate::surprisal_with_policy;
use abridge_models::kv_policy::{KvPolicy, PolicyKind};
use abridge_models::LanguageModel;

use crate::generation::kv_budget;

/// An evaluator LM: it scores text, and can read a prompt under a KV-cache policy.
pub trait Evaluator: TokenScorer {
    /// [`answer_log_likelihood`] with `prompt` read under `policy`, whose cache keeps the
    /// document-start position and `rate` × the prompt's tokens.
    fn answer_log_likelihood_with_kv_policy(
        &self,
        prompt: &str,
        answer: &str,
        policy: PolicyKind,
        rate: f64,
    ) -> Result<f64, BoxError>;
}

impl Evaluator for LanguageModel {
    fn answer_log_likelihood_with_kv_policy(
        &self,
        prompt: &str,
        answer: &str,
        policy: PolicyKind,
        rate: f64,
    ) -> Result<f64, BoxError> {
        let (prompt_ids, answer_ids) = ids_of(self, prompt, answer)?;
        let mut ids = vec![self.tokenizer.document_start()];
        ids.extend(prompt_ids);
        let policy = KvPolicy::new(policy, kv_budget(ids.len(), ids.len() - 1, rate));
        let surprisal = surprisal_with_policy(self, &ids, &answer_ids, &policy)?;
        Ok(-surprisal.iter().map(|&s| f64::from(s)).sum::<f64>())
    }
}

/// The evaluator's tokens of `prompt` and of ` answer`, checked to fit its context together.
fn ids_of(
    evaluator: &dyn TokenScorer,
    prompt: &str,
    answer: &str,
) -> Result<(Vec<u32>, Vec<u32>), BoxError> {
    let ids = |text: &str| -> Result<Vec<u32>, BoxError> {
        Ok(evaluator
            .tokenize(text)?
            .into_iter()
            .map(|t| t.id)
            .collect())
    };
    if answer.trim().is_empty() {
        return Err("the answer is empty".into());
    }
    let prompt_ids = ids(prompt)?;
    let answer_ids = ids(&format!(" {}", answer.trim()))?;
    let total = prompt_ids.len() + answer_ids.len();
    if total > evaluator.max_context() {
        return Err(format!(
            "prompt and answer are {total} evaluator tokens, more than its context of {}: use shorter cases",
            evaluator.max_context()
        )
        .into());
    }
    Ok((prompt_ids, answer_ids))
}

/// `−Σ` surprisal (nats) of ` answer`'s tokens after `prompt` (which may be empty).
pub fn answer_log_likelihood(
    evaluator: &dyn TokenScorer,
    prompt: &str,
    answer: &str,
) -> Result<f64, BoxError> {
    let (prompt_ids, answer_ids) = ids_of(evaluator, prompt, answer)?;
    let mut session = evaluator.session()?;
    if !prompt_ids.is_empty() {
        session.extend(&prompt_ids)?;
    }
    let surprisal = session.extend(&answer_ids)?;
    Ok(-surprisal.iter().map(|&s| f64::from(s)).sum::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use abridge_core::testing::FakeScorer;

    #[test]
    fn the_likelihood_is_minus_the_answers_surprisal() {
        // The fake scores words by a table, whatever the context.
        let scorer = FakeScorer::new().with("Paris", 2.0).with("France", 0.5);
        let ll = answer_log_likelihood(&scorer, "Capital?", "Paris France").unwrap();
        assert_eq!(ll, -2.5);
        assert_eq!(answer_log_likelihood(&scorer, "", "Paris").unwrap(), -2.0);
        assert!(answer_log_likelihood(&scorer, "q", "  ").is_err());
        let small = FakeScorer::new().with_max_context(3);
        let error = answer_log_likelihood(&small, "a b c", "d")
            .unwrap_err()
            .to_string();
        assert!(error.contains("more than its context of 3"), "{error}");
    }
}
