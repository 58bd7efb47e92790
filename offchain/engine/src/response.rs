//! OpenAI response bodies and SSE chunks.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::ApiError;
use crate::generate::Outcome;
use crate::request::Route;

/// Token counts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: usize,
    pub(crate) completion_tokens: usize,
    pub(crate) total_tokens: usize,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Choice<'a> {
    ChatChunk {
        index: u32,
        delta: Delta<'a>,
        logprobs: Option<()>,
        finish_reason: Option<&'static str>,
    },
    Chat {
        index: u32,
        message: Message<'a>,
        logprobs: Option<()>,
        finish_reason: &'static str,
    },
    Text {
        index: u32,
        text: &'a str,
        logprobs: Option<()>,
        finish_reason: Option<&'static str>,
    },
}

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

/// Formats every body of one response: shared id, timestamp and model.
#[derive(Debug, Clone)]
pub(crate) struct Responder {
    route: Route,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
}

impl Responder {
    pub(crate) fn new(route: Route, id: String, model: String, include_usage: bool) -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            route,
            id,
            created,
            model,
            include_usage,
        }
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.route, chunk) {
            (Route::Chat, true) => "chat.completion.chunk",
            (Route::Chat, false) => "chat.completion",
            (Route::Completion, _) => "text_completion",
        }
    }

    fn body<'a>(&'a self, chunk: bool, choices: Vec<Choice<'a>>, usage: Option<Usage>) -> Body<'a> {
        Body {
            id: &self.id,
            object: self.object(chunk),
            created: self.created,
            model: &self.model,
            choices,
            // Streams announce `"usage": null` on every chunk when usage was asked for.
            usage: if chunk && !self.include_usage {
                None
            } else {
                Some(usage)
            },
        }
    }

    fn sse(out: &mut BytesMut, body: &impl Serialize) {
        out.put_slice(b"data: ");
        // Serialising these plain structs cannot fail.
        let _ = serde_json::to_writer(out.writer(), body);
        out.put_slice(b"\n\n");
    }

    fn text_chunk<'a>(&self, text: Option<&'a str>, finish: Option<&'static str>) -> Choice<'a> {
        match self.route {
            Route::Chat => Choice::ChatChunk {
                index: 0,
                delta: Delta {
                    role: None,
                    content: text,
                },
                logprobs: None,
                finish_reason: finish,
            },
            Route::Completion => Choice::Text {
                index: 0,
                text: text.unwrap_or(""),
                logprobs: None,
                finish_reason: finish,
            },
        }
    }

    /// The opening chunk (chat only: announces the assistant role); empty for completions.
    pub(crate) fn sse_start(&self, out: &mut BytesMut) {
        if self.route == Route::Chat {
            let choice = Choice::ChatChunk {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: Some(""),
                },
                logprobs: None,
                finish_reason: None,
            };
            Self::sse(out, &self.body(true, vec![choice], None));
        }
    }

    /// One text delta.
    pub(crate) fn sse_piece(&self, out: &mut BytesMut, piece: &str) {
        Self::sse(
            out,
            &self.body(true, vec![self.text_chunk(Some(piece), None)], None),
        );
    }

    /// The final chunk with `finish_reason`, the usage chunk if asked for, and `[DONE]`.
    pub(crate) fn sse_finish(&self, out: &mut BytesMut, outcome: &Outcome, usage: Usage) {
        let finish = Some(outcome.finish_reason.as_str());
        let last = match self.route {
            Route::Chat => self.text_chunk(None, finish),
            Route::Completion => self.text_chunk(Some(""), finish),
        };
        Self::sse(out, &self.body(true, vec![last], None));
        if self.include_usage {
            Self::sse(out, &self.body(true, Vec::new(), Some(usage)));
        }
        out.put_slice(b"data: [DONE]\n\n");
    }

    /// An error after the stream started, followed by `[DONE]`.
    pub(crate) fn sse_error(out: &mut BytesMut, err: &ApiError) {
        Self::sse(out, &err.to_json());
        out.put_slice(b"data: [DONE]\n\n");
    }

    /// The whole non-streamed response.
    pub(crate) fn full(&self, text: &str, outcome: &Outcome, usage: Usage) -> Bytes {
        let finish = outcome.finish_reason.as_str();
        let choice = match self.route {
            Route::Chat => Choice::Chat {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: text,
                },
                logprobs: None,
                finish_reason: finish,
            },
            Route::Completion => Choice::Text {
                index: 0,
                text,
                logprobs: None,
                finish_reason: Some(finish),
            },
        };
        let body = Body {
            id: &self.id,
            object: self.object(false),
            created: self.created,
            model: &self.model,
            choices: vec![choice],
            usage: Some(Some(usage)),
        };
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }
}
