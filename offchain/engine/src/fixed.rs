//! `FixedBackend`: a deterministic, zero-latency test and benchmark backend.
//!
//! It needs no model file. A token is a run of whitespace followed by a run of non-whitespace (a
//! "word"). The chat template joins the message contents with newlines; the reply echoes the prompt's
//! words in order, one word per token, then ends with an end-of-turn token. So a chat with the single
//! message `"hello world"` gets the reply `"hello world"`, 2 prompt tokens and 3 completion tokens
//! (two words and the end-of-turn token), whatever the sampling parameters. `max_tokens` truncates the
//! echo (finish_reason `length`). Other engineers use it for fast network tests and latency benches.

use crate::backend::{Backend, ChatMessage, ModelInfo, Prompt, SamplingParams, Session, TokenStep};
use crate::error::BackendError;

/// The fixed backend's default model id.
pub const FIXED_MODEL_ID: &str = "cocoon-fixed";

/// Deterministic echo backend (see the module docs).
#[derive(Debug, Clone)]
pub struct FixedBackend {
    info: ModelInfo,
}

impl FixedBackend {
    /// A fixed backend serving `model_id` with a context of 1 Mi tokens.
    pub fn new(model_id: impl Into<String>) -> Self {
        Self {
            info: ModelInfo {
                id: model_id.into(),
                context_length: 1 << 20,
                owned_by: "cocoon".to_owned(),
            },
        }
    }
}

impl Default for FixedBackend {
    fn default() -> Self {
        Self::new(FIXED_MODEL_ID)
    }
}

/// Byte ranges of the word tokens of `text`: each is leading whitespace plus a non-whitespace run;
/// trailing whitespace forms a last token of its own.
fn word_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= text.len() {
            return None;
        }
        let start = pos;
        let rest = &text[pos..];
        let after_space = rest
            .char_indices()
            .find(|(_, c)| !c.is_whitespace())
            .map_or(rest.len(), |(i, _)| i);
        let word = &rest[after_space..];
        let word_len = word
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
            .map_or(word.len(), |(i, _)| i);
        pos += after_space + word_len;
        Some((start, pos))
    })
}

impl Backend for FixedBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn render_chat(&self, messages: &[ChatMessage]) -> Result<String, BackendError> {
        Ok(messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, BackendError> {
        // Token ids are the words' ordinal positions: only the count matters to callers.
        Ok((0..word_spans(text).count())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect())
    }

    fn new_session(&self) -> Result<Box<dyn Session>, BackendError> {
        Ok(Box::new(EchoSession::default()))
    }

    fn is_compute_heavy(&self) -> bool {
        false
    }
}

/// Replays the prompt's words.
#[derive(Debug, Default)]
struct EchoSession {
    text: String,
    spans: Vec<(usize, usize)>,
    next: usize,
}

impl Session for EchoSession {
    fn start(&mut self, prompt: &Prompt, _sampling: &SamplingParams) -> Result<(), BackendError> {
        self.text.clear();
        self.text.push_str(&prompt.text);
        self.spans.clear();
        self.spans.extend(word_spans(&prompt.text));
        self.next = 0;
        Ok(())
    }

    fn next_token(&mut self, out: &mut Vec<u8>) -> Result<TokenStep, BackendError> {
        match self.spans.get(self.next) {
            Some(&(start, end)) => {
                self.next += 1;
                out.extend_from_slice(&self.text.as_bytes()[start..end]);
                Ok(TokenStep::Token)
            }
            None => Ok(TokenStep::End),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_leading_whitespace() {
        let text = "  hello wide\n world ";
        let words: Vec<&str> = word_spans(text).map(|(a, b)| &text[a..b]).collect();
        assert_eq!(words, vec!["  hello", " wide", "\n world", " "]);
        assert_eq!(words.concat(), text);
    }

    #[test]
    fn echo_reproduces_the_prompt() {
        let backend = FixedBackend::default();
        let text = backend
            .render_chat(&[ChatMessage {
                role: "user".into(),
                content: "héllo wörld".into(),
            }])
            .unwrap();
        let prompt = Prompt {
            tokens: backend.encode(&text).unwrap(),
            text,
        };
        assert_eq!(prompt.tokens.len(), 2);
        let mut session = backend.new_session().unwrap();
        session.start(&prompt, &SamplingParams::default()).unwrap();
        let mut out = Vec::new();
        assert_eq!(session.next_token(&mut out).unwrap(), TokenStep::Token);
        assert_eq!(session.next_token(&mut out).unwrap(), TokenStep::Token);
        assert_eq!(session.next_token(&mut out).unwrap(), TokenStep::End);
        assert_eq!(String::from_utf8(out).unwrap(), "héllo wörld");
    }
}
