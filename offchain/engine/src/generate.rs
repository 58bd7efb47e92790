//! The decoding loop shared by every backend: token limit, end-of-generation, stop sequences and
//! incremental detokenisation that only ever emits whole UTF-8 characters.

use crate::backend::{Prompt, SamplingParams, Session, TokenStep};
use crate::error::BackendError;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model produced an end-of-generation token or a stop sequence matched.
    Stop,
    /// `max_tokens` (or the context) was reached.
    Length,
    /// The consumer went away; nothing more is sent.
    Cancelled,
}

impl FinishReason {
    /// The OpenAI `finish_reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The result of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Tokens the model produced, including a final end-of-generation token.
    pub completion_tokens: usize,
}

/// Turns a byte stream into text pieces that never split a character and never leak a stop sequence.
struct TextAssembler<'a> {
    pending: Vec<u8>,
    held: String,
    stops: &'a [String],
}

impl<'a> TextAssembler<'a> {
    fn new(stops: &'a [String]) -> Self {
        Self {
            pending: Vec::with_capacity(16),
            held: String::new(),
            stops,
        }
    }

    /// Moves the complete characters of `pending` into `held`; invalid sequences become U+FFFD.
    fn absorb(&mut self, flush: bool) {
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    self.held.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = start + e.valid_up_to();
                    // Safe by construction: from_utf8 validated exactly these bytes.
                    self.held
                        .push_str(std::str::from_utf8(&self.pending[start..valid]).unwrap_or(""));
                    match e.error_len() {
                        Some(bad) => {
                            self.held.push(char::REPLACEMENT_CHARACTER);
                            start = valid + bad;
                        }
                        None if flush => {
                            self.held.push(char::REPLACEMENT_CHARACTER);
                            start = self.pending.len();
                            break;
                        }
                        None => {
                            start = valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
    }

    /// Returns text that is safe to emit now and whether a stop sequence matched.
    fn take(&mut self, flush: bool) -> (String, bool) {
        self.absorb(flush);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.held.truncate(at);
            return (std::mem::take(&mut self.held), true);
        }
        if flush || self.stops.is_empty() {
            return (std::mem::take(&mut self.held), false);
        }
        // Keep back the longest tail that could still grow into a stop sequence.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let rest = self.held.split_off(keep);
        (std::mem::replace(&mut self.held, rest), false)
    }
}

/// Runs one generation. `emit` receives each non-empty text piece and returns false to cancel.
pub fn run(
    session: &mut dyn Session,
    prompt: &Prompt,
    sampling: &SamplingParams,
    max_tokens: usize,
    stops: &[String],
    emit: &mut dyn FnMut(&str) -> bool,
) -> Result<Outcome, BackendError> {
    session.start(prompt, sampling)?;
    let mut text = TextAssembler::new(stops);
    let mut produced = 0;
    let finish_reason = loop {
        if produced >= max_tokens {
            let (piece, _) = text.take(true);
            if !piece.is_empty() && !emit(&piece) {
                break FinishReason::Cancelled;
            }
            break FinishReason::Length;
        }
        let step = session.next_token(&mut text.pending)?;
        produced += 1;
        let end = step == TokenStep::End;
        let (piece, stopped) = text.take(end);
        if !piece.is_empty() && !emit(&piece) {
            break FinishReason::Cancelled;
        }
        if end || stopped {
            break FinishReason::Stop;
        }
    };
    Ok(Outcome {
        finish_reason,
        completion_tokens: produced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays fixed byte chunks, then ends.
    struct Replay(Vec<Vec<u8>>, usize);

    impl Session for Replay {
        fn start(&mut self, _: &Prompt, _: &SamplingParams) -> Result<(), BackendError> {
            self.1 = 0;
            Ok(())
        }
        fn next_token(&mut self, out: &mut Vec<u8>) -> Result<TokenStep, BackendError> {
            let i = self.1;
            self.1 += 1;
            match self.0.get(i) {
                Some(b) => {
                    out.extend_from_slice(b);
                    Ok(TokenStep::Token)
                }
                None => Ok(TokenStep::End),
            }
        }
    }

    fn collect(chunks: &[&[u8]], max: usize, stops: &[&str]) -> (Vec<String>, Outcome) {
        let mut s = Replay(chunks.iter().map(|c| c.to_vec()).collect(), 0);
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut pieces = Vec::new();
        let prompt = Prompt {
            text: String::new(),
            tokens: vec![],
        };
        let out = run(
            &mut s,
            &prompt,
            &SamplingParams::default(),
            max,
            &stops,
            &mut |p| {
                pieces.push(p.to_owned());
                true
            },
        )
        .unwrap();
        (pieces, out)
    }

    #[test]
    fn never_splits_a_character() {
        let euro = "€".as_bytes();
        let (pieces, out) = collect(&[b"a", &euro[..1], &euro[1..2], &euro[2..], b"b"], 99, &[]);
        assert_eq!(pieces, vec!["a", "€", "b"]);
        assert_eq!(
            out,
            Outcome {
                finish_reason: FinishReason::Stop,
                completion_tokens: 6
            }
        );
    }

    #[test]
    fn stop_sequence_spanning_tokens_is_not_emitted() {
        let (pieces, out) = collect(&[b"hello ", b"wo", b"rld", b" more"], 99, &["world"]);
        assert_eq!(pieces.concat(), "hello ");
        assert_eq!(out.finish_reason, FinishReason::Stop);
        assert_eq!(out.completion_tokens, 3);
    }

    #[test]
    fn held_back_prefix_is_released_when_it_diverges_or_at_the_limit() {
        let (pieces, out) = collect(&[b"ab", b"wx", b"wo"], 3, &["world"]);
        assert_eq!(pieces.concat(), "abwxwo");
        assert_eq!(
            out,
            Outcome {
                finish_reason: FinishReason::Length,
                completion_tokens: 3
            }
        );
    }

    #[test]
    fn truncated_character_at_the_end_becomes_a_replacement() {
        let (pieces, _) = collect(&[b"x\xe2\x82"], 99, &[]);
        assert_eq!(pieces.concat(), "x\u{fffd}");
    }
}
