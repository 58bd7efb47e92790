//! The backend abstraction: what the HTTP layer needs from a model.
//!
//! A [`Backend`] renders chat prompts, counts prompt tokens and hands out [`Session`]s. A session owns
//! the per-generation state (for the GGUF backend: the KV cache), so the server keeps one session per
//! generation slot and reuses it across requests.

use crate::error::BackendError;

/// One chat message after the HTTP layer has flattened its content to text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The message text.
    pub content: String,
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax); otherwise logits are divided by it before softmax.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability mass reaches `top_p`.
    pub top_p: f32,
    /// Seed of the sampler's random generator; the same seed gives the same tokens.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// A tokenised prompt together with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The prompt text after the chat template (if any) was applied.
    pub text: String,
    /// Its tokens; `tokens.len()` is the reported `prompt_tokens`.
    pub tokens: Vec<u32>,
}

/// What one decoding step produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStep {
    /// A regular token; its bytes were appended to the output buffer.
    Token,
    /// An end-of-generation token (counted as a completion token, contributes no text).
    End,
}

/// Static facts about the served model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The id clients pass as `model` and `/v1/models` lists.
    pub id: String,
    /// Maximum prompt + completion tokens per request.
    pub context_length: usize,
    /// `owned_by` in `/v1/models`.
    pub owned_by: String,
}

/// A model the engine can serve.
pub trait Backend: Send + Sync + 'static {
    /// The served model's id and limits.
    fn info(&self) -> &ModelInfo;

    /// Renders chat messages into the prompt text, ending with the assistant turn's opening.
    fn render_chat(&self, messages: &[ChatMessage]) -> Result<String, BackendError>;

    /// Tokenises a prompt text (special tokens written in the text are recognised).
    fn encode(&self, text: &str) -> Result<Vec<u32>, BackendError>;

    /// Creates per-generation state; the server keeps one per slot and reuses it.
    fn new_session(&self) -> Result<Box<dyn Session>, BackendError>;

    /// True when a decoding step costs real compute, so generation must run off the async runtime.
    /// Zero-latency backends return false and are driven inline.
    fn is_compute_heavy(&self) -> bool;

    /// Whether the backend can serve now; `/health` answers 503 while it is false (a backend that
    /// lost its device would say so; the test engine does on demand). Called once per health check.
    fn healthy(&self) -> bool {
        true
    }
}

/// Per-generation decoding state.
pub trait Session: Send {
    /// Starts a new generation for `prompt`, discarding any previous state.
    fn start(&mut self, prompt: &Prompt, sampling: &SamplingParams) -> Result<(), BackendError>;

    /// Produces the next token, appending the bytes it contributes to the text to `out`.
    fn next_token(&mut self, out: &mut Vec<u8>) -> Result<TokenStep, BackendError>;
}
