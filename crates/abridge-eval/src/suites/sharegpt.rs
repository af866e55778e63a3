//! ShareGPT: a chat history (every turn before the last user message) to compress before that
//! message. The metric is the ROUGE-1 recall of the assistant's actual reply against the
//! compressed history: a proxy for how much of what the reply drew on is still there.

use std::path::Path;

use super::{sample, take, Case, Reference, SuiteOptions};
use crate::data::{read_jsonl, Conversation};
use crate::error::Result;

/// Histories longer than this are left out to keep runs predictable.
pub const MAX_HISTORY_CHARS: usize = 12_000;

pub const INSTRUCTION: &str = "Continue the conversation.";

fn speaker(role: &str) -> &'static str {
    if role == "user" {
        "User"
    } else {
        "Assistant"
    }
}

/// The case of a conversation: its history up to the last user turn that has a reply.
fn case(conversation: Conversation) -> Option<Case> {
    let turns = &conversation.turns;
    let last = (1..turns.len().saturating_sub(1))
        .rev()
        .find(|&i| turns[i].role == "user" && turns[i + 1].role == "assistant")?;
    let history: Vec<String> = turns[..last]
        .iter()
        .map(|t| format!("{}: {}", speaker(&t.role), t.text))
        .collect();
    if history.iter().map(String::len).sum::<usize>() > MAX_HISTORY_CHARS {
        return None;
    }
    Some(Case {
        id: conversation.id,
        group: None,
        instruction: INSTRUCTION.to_string(),
        contexts: history,
        question: format!("User: {}\nAssistant:", turns[last].text),
        reference: Reference::Summary(turns[last + 1].text.clone()),
    })
}

pub fn cases(path: &Path, options: &SuiteOptions) -> Result<Vec<Case>> {
    let conversations = sample(
        read_jsonl::<Conversation>(path)?,
        |c| &c.id,
        options.split,
        options.seed,
    );
    take(
        conversations.into_iter().filter_map(case).collect(),
        options.limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Turn;

    fn turn(role: &str, text: &str) -> Turn {
        Turn {
            role: role.into(),
            text: text.into(),
        }
    }

    #[test]
    fn the_history_ends_before_the_last_answered_user_turn() {
        let conversation = Conversation {
            id: "c".into(),
            turns: vec![
                turn("user", "hi"),
                turn("assistant", "hello"),
                turn("user", "what is 2+2?"),
                turn("assistant", "4"),
                turn("user", "unanswered"),
            ],
        };
        let case = case(conversation).unwrap();
        assert_eq!(case.contexts, ["User: hi", "Assistant: hello"]);
        assert_eq!(case.question, "User: what is 2+2?\nAssistant:");
        assert_eq!(case.reference, Reference::Summary("4".into()));
    }

    #[test]
    fn a_conversation_without_history_gives_no_case() {
        let conversation = Conversation {
            id: "c".into(),
            turns: vec![turn("user", "hi"), turn("assistant", "hello")],
        };
        assert!(case(conversation).is_none());
    }
}
