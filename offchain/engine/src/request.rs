//! Parsing and validating OpenAI request bodies into a [`GenerationRequest`].
//!
//! Parsing is done by hand over `serde_json::Value` so every rejection names the offending parameter.

use serde_json::{Map, Value};

use crate::backend::ChatMessage;
use crate::error::ApiError;

/// Which OpenAI route a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completion,
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PromptSource {
    /// Chat messages, rendered through the backend's chat template.
    Chat(Vec<ChatMessage>),
    /// A raw prompt text.
    Text(String),
}

/// A validated generation request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GenerationRequest {
    pub(crate) route: Route,
    pub(crate) model: Option<String>,
    pub(crate) prompt: PromptSource,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) temperature: f32,
    pub(crate) top_p: f32,
    pub(crate) seed: Option<u64>,
    pub(crate) stop: Vec<String>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
}

/// At most this many stop sequences, as in OpenAI's API.
const MAX_STOP_SEQUENCES: usize = 4;

impl GenerationRequest {
    /// Parses a request body for `route`.
    pub(crate) fn parse(route: Route, body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid_json(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(ApiError::invalid_json("request body must be a JSON object"));
        };
        reject_unsupported(&obj)?;
        let prompt = match route {
            Route::Chat => PromptSource::Chat(parse_messages(&obj)?),
            Route::Completion => PromptSource::Text(parse_prompt(&obj)?),
        };
        let model = match obj.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ApiError::invalid_parameter(
                    "model",
                    "'model' must be a string",
                ));
            }
        };
        let max_tokens = match (
            opt_u32(&obj, "max_completion_tokens")?,
            opt_u32(&obj, "max_tokens")?,
        ) {
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        if max_tokens == Some(0) {
            let param = if obj.contains_key("max_completion_tokens") {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            return Err(ApiError::invalid_parameter(
                param,
                format!("'{param}' must be at least 1"),
            ));
        }
        let temperature = opt_f64(&obj, "temperature")?.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid_parameter(
                "temperature",
                "'temperature' must be between 0 and 2",
            ));
        }
        let top_p = opt_f64(&obj, "top_p")?.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::invalid_parameter(
                "top_p",
                "'top_p' must be greater than 0 and at most 1",
            ));
        }
        let seed = match obj.get("seed") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Some(u),
                // Negative seeds are valid in OpenAI's API; reinterpret the bits.
                (None, Some(i)) => Some(u64::from_ne_bytes(i.to_ne_bytes())),
                _ => {
                    return Err(ApiError::invalid_parameter(
                        "seed",
                        "'seed' must be an integer",
                    ));
                }
            },
            Some(_) => {
                return Err(ApiError::invalid_parameter(
                    "seed",
                    "'seed' must be an integer",
                ));
            }
        };
        if let Some(n) = opt_u32(&obj, "n")?
            && n != 1
        {
            return Err(ApiError::unsupported_parameter(
                "n",
                "only n=1 is supported: send one request per choice",
            ));
        }
        let stop = parse_stop(&obj)?;
        let stream = opt_bool(&obj, "stream")?.unwrap_or(false);
        let include_usage = match obj.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(opts)) => opt_bool(opts, "include_usage")
                .map_err(|_| {
                    ApiError::invalid_parameter(
                        "stream_options.include_usage",
                        "'include_usage' must be a boolean",
                    )
                })?
                .unwrap_or(false),
            Some(_) => {
                return Err(ApiError::invalid_parameter(
                    "stream_options",
                    "'stream_options' must be an object",
                ));
            }
        };
        Ok(Self {
            route,
            model,
            prompt,
            max_tokens,
            temperature: temperature as f32,
            top_p: top_p as f32,
            seed,
            stop,
            stream,
            include_usage,
        })
    }
}

/// Parameters users send that this engine cannot honour: rejected rather than silently ignored.
fn reject_unsupported(obj: &Map<String, Value>) -> Result<(), ApiError> {
    let present = |k: &str| !matches!(obj.get(k), None | Some(Value::Null));
    for key in ["tools", "functions", "tool_choice", "function_call"] {
        if present(key) {
            return Err(ApiError::unsupported_parameter(
                key,
                format!("'{key}' is not supported by this engine"),
            ));
        }
    }
    if let Some(v) = obj.get("logprobs")
        && !matches!(v, Value::Null | Value::Bool(false))
    {
        return Err(ApiError::unsupported_parameter(
            "logprobs",
            "logprobs are not supported",
        ));
    }
    if let Some(v) = obj.get("logit_bias")
        && !matches!(v, Value::Null)
        && v.as_object().is_none_or(|m| !m.is_empty())
    {
        return Err(ApiError::unsupported_parameter(
            "logit_bias",
            "'logit_bias' is not supported",
        ));
    }
    for key in ["presence_penalty", "frequency_penalty"] {
        if let Some(v) = obj.get(key)
            && !matches!(v, Value::Null)
            && v.as_f64() != Some(0.0)
        {
            return Err(ApiError::unsupported_parameter(
                key,
                format!("'{key}' is not supported (only 0)"),
            ));
        }
    }
    if let Some(v) = obj.get("echo")
        && !matches!(v, Value::Null | Value::Bool(false))
    {
        return Err(ApiError::unsupported_parameter(
            "echo",
            "'echo' is not supported",
        ));
    }
    if let Some(v) = obj.get("best_of")
        && !matches!(v, Value::Null)
        && v.as_u64() != Some(1)
    {
        return Err(ApiError::unsupported_parameter(
            "best_of",
            "only best_of=1 is supported",
        ));
    }
    if let Some(v) = obj.get("suffix")
        && !matches!(v, Value::Null)
    {
        return Err(ApiError::unsupported_parameter(
            "suffix",
            "'suffix' is not supported",
        ));
    }
    if let Some(v) = obj.get("response_format")
        && !matches!(v, Value::Null)
        && v.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(ApiError::unsupported_parameter(
            "response_format",
            "only response_format {\"type\":\"text\"} is supported",
        ));
    }
    Ok(())
}

fn parse_messages(obj: &Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let Some(raw) = obj.get("messages") else {
        return Err(ApiError::missing_parameter("messages"));
    };
    let Value::Array(items) = raw else {
        return Err(ApiError::invalid_parameter(
            "messages",
            "'messages' must be an array",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::invalid_parameter(
            "messages",
            "'messages' must not be empty",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let param = format!("messages[{i}]");
            let Value::Object(m) = item else {
                return Err(ApiError::invalid_parameter(
                    &param,
                    "each message must be an object",
                ));
            };
            let role = match m.get("role") {
                Some(Value::String(r)) => r.clone(),
                Some(_) => {
                    return Err(ApiError::invalid_parameter(
                        &format!("{param}.role"),
                        "'role' must be a string",
                    ));
                }
                None => return Err(ApiError::missing_parameter(&format!("{param}.role"))),
            };
            if !matches!(
                role.as_str(),
                "system" | "developer" | "user" | "assistant" | "tool"
            ) {
                return Err(ApiError::invalid_parameter(
                    &format!("{param}.role"),
                    format!("unknown role '{role}'"),
                ));
            }
            let content = message_content(m.get("content"), &format!("{param}.content"))?;
            Ok(ChatMessage { role, content })
        })
        .collect()
}

/// Flattens `content` (a string or an array of text parts) to a string.
fn message_content(value: Option<&Value>, param: &str) -> Result<String, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (Some(kind), _) if kind != "text" => {
                        return Err(ApiError::unsupported_parameter(
                            param,
                            format!("content parts of type '{kind}' are not supported"),
                        ));
                    }
                    _ => {
                        return Err(ApiError::invalid_parameter(
                            param,
                            "each content part must be {\"type\":\"text\",\"text\":...}",
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(ApiError::invalid_parameter(
            param,
            "'content' must be a string or an array of text parts",
        )),
    }
}

fn parse_prompt(obj: &Map<String, Value>) -> Result<String, ApiError> {
    match obj.get("prompt") {
        None => Err(ApiError::missing_parameter("prompt")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            Ok(items[0].as_str().unwrap_or_default().to_owned())
        }
        Some(Value::Array(_)) => Err(ApiError::unsupported_parameter(
            "prompt",
            "'prompt' must be a string (or an array of exactly one string)",
        )),
        Some(_) => Err(ApiError::invalid_parameter(
            "prompt",
            "'prompt' must be a string",
        )),
    }
}

fn parse_stop(obj: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let stops = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "stop",
                        "'stop' must be a string or array of strings",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "stop",
                "'stop' must be a string or array of strings",
            ));
        }
    };
    if stops.len() > MAX_STOP_SEQUENCES {
        return Err(ApiError::invalid_parameter(
            "stop",
            format!("at most {MAX_STOP_SEQUENCES} stop sequences are allowed"),
        ));
    }
    if stops.iter().any(String::is_empty) {
        return Err(ApiError::invalid_parameter(
            "stop",
            "stop sequences must not be empty",
        ));
    }
    Ok(stops)
}

fn opt_u32(obj: &Map<String, Value>, key: &str) -> Result<Option<u32>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_parameter(key, format!("'{key}' must be a non-negative integer"))
            }),
    }
}

fn opt_f64(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_parameter(key, format!("'{key}' must be a number"))),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_parameter(
            key,
            format!("'{key}' must be a boolean"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_chat_request() {
        let body =
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],
            "max_completion_tokens":5,"max_tokens":9,"temperature":0,"seed":-1,"stop":"x",
            "stream":true,"stream_options":{"include_usage":true}}"#;
        let req = GenerationRequest::parse(Route::Chat, body).unwrap();
        assert_eq!(req.max_tokens, Some(5));
        assert_eq!(req.seed, Some(u64::MAX));
        assert_eq!(req.stop, vec!["x".to_owned()]);
        assert!(req.stream && req.include_usage);
        assert_eq!(
            req.prompt,
            PromptSource::Chat(vec![ChatMessage {
                role: "user".into(),
                content: "hi".into()
            }])
        );
    }

    #[test]
    fn names_the_offending_parameter() {
        let cases: [(&[u8], &str, &str); 6] = [
            (
                br#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
                "n",
                "unsupported_parameter",
            ),
            (
                br#"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
                "temperature",
                "invalid_parameter",
            ),
            (
                br#"{"messages":[{"role":"user","content":"x"}],"top_p":0}"#,
                "top_p",
                "invalid_parameter",
            ),
            (br#"{"messages":[]}"#, "messages", "invalid_parameter"),
            (
                br#"{"messages":[{"content":"x"}]}"#,
                "messages[0].role",
                "missing_parameter",
            ),
            (
                br#"{"messages":[{"role":"user","content":"x"}],"tools":[{}]}"#,
                "tools",
                "unsupported_parameter",
            ),
        ];
        for (body, param, code) in cases {
            let err = GenerationRequest::parse(Route::Chat, body).unwrap_err();
            assert_eq!(
                (err.param.as_deref(), err.code),
                (Some(param), code),
                "{err}"
            );
        }
    }

    #[test]
    fn completion_prompt_forms() {
        let ok = GenerationRequest::parse(Route::Completion, br#"{"prompt":["a b"]}"#).unwrap();
        assert_eq!(ok.prompt, PromptSource::Text("a b".into()));
        let err = GenerationRequest::parse(Route::Completion, br#"{"prompt":[1,2]}"#).unwrap_err();
        assert_eq!(err.code, "unsupported_parameter");
        let err = GenerationRequest::parse(Route::Completion, b"[1]").unwrap_err();
        assert_eq!(err.code, "invalid_json");
    }
}
