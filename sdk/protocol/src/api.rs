//! The OpenAI-compatible surface: which endpoints and fields are accepted, with which limits, and the
//! error shape. The gateway and the proxy both check requests with [`parse_request`] and put them in
//! the one form every hop forwards with [`normalize_request`]: a stream always asks for usage
//! (`stream_options.include_usage`, so that the worker can sign a receipt), and the generation limit
//! is explicit and single (see [`ParsedRequest::max_tokens`]). A body already in that form is
//! forwarded byte for byte (the receipt hashes the exact bytes): the gateway normalises before it
//! hashes, so the proxy's normalisation leaves an honest gateway's body unchanged.

use serde_json::{Map, Value};

/// Endpoints that carry inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
}

impl Endpoint {
    /// Maps a request path to an endpoint.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/chat/completions" => Some(Endpoint::ChatCompletions),
            "/v1/completions" => Some(Endpoint::Completions),
            _ => None,
        }
    }

    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        }
    }

    fn allows_field(self, field: &str) -> bool {
        const COMMON: &[&str] = &[
            "model",
            "stream",
            "stream_options",
            "max_tokens",
            "temperature",
            "top_p",
            "n",
            "stop",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "seed",
            "user",
            "top_k",
            "min_p",
            "repetition_penalty",
        ];
        const CHAT: &[&str] = &[
            "messages",
            "max_completion_tokens",
            "top_logprobs",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "reasoning_effort",
        ];
        const COMPLETION: &[&str] = &["prompt", "echo", "suffix", "best_of"];
        let specific = match self {
            Endpoint::ChatCompletions => CHAT,
            Endpoint::Completions => COMPLETION,
        };
        specific.contains(&field) || COMMON.contains(&field)
    }
}

/// Limits applied to every inference request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest accepted body, bytes.
    pub max_body_bytes: usize,
    /// Largest `max_tokens` / `max_completion_tokens`.
    pub max_tokens: u64,
    /// Used for the cost reservation when a request sets no `max_tokens`.
    pub default_max_tokens: u64,
    /// Largest `n` (choices per request).
    pub max_n: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_body_bytes: 1 << 20,
            max_tokens: 32_768,
            default_max_tokens: 4096,
            max_n: 4,
        }
    }
}

/// What the path needs to know about a request (the body itself travels unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Requested model.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// The one effective generation limit per choice: `max_tokens` or `max_completion_tokens`
    /// (refused when both are given and differ), or the default when neither is.
    pub max_tokens: u64,
    /// Whether the body states the limit itself (`false`: [`ParsedRequest::max_tokens`] is the default).
    pub explicit_limit: bool,
    /// Generation bound used for the reservation: [`ParsedRequest::max_tokens`] times `n`.
    pub max_generated_tokens: u64,
}

/// Checks a body against the allowlist and limits.
pub fn parse_request(
    endpoint: Endpoint,
    body: &[u8],
    limits: &RequestLimits,
) -> Result<(ParsedRequest, Map<String, Value>), ApiError> {
    if body.len() > limits.max_body_bytes {
        return Err(ApiError::body_too_large(limits.max_body_bytes));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "request body must be a JSON object",
        ));
    };
    if let Some(bad) = obj.keys().find(|k| !endpoint.allows_field(k)) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedField,
            format!("field `{bad}` is not supported"),
        )
        .with_param(bad));
    }
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() && m.len() <= 256 => m.clone(),
        _ => {
            return Err(invalid(
                "model",
                "`model` must be a non-empty string of at most 256 bytes",
            ));
        }
    };
    match endpoint {
        Endpoint::ChatCompletions => match obj.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() && m.iter().all(Value::is_object) => {}
            _ => {
                return Err(invalid(
                    "messages",
                    "`messages` must be a non-empty array of objects",
                ));
            }
        },
        Endpoint::Completions => match obj.get("prompt") {
            Some(Value::String(_)) | Some(Value::Array(_)) => {}
            _ => return Err(invalid("prompt", "`prompt` must be a string or an array")),
        },
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        _ => return Err(invalid("stream", "`stream` must be a boolean")),
    };
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => o
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        _ => {
            return Err(invalid(
                "stream_options",
                "`stream_options` must be an object",
            ));
        }
    };
    let mut max_tokens = None;
    for field in ["max_tokens", "max_completion_tokens"] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 && n <= limits.max_tokens => match max_tokens {
                    // Engines honour `max_completion_tokens` over `max_tokens`: two different
                    // limits would reserve for one and run to the other.
                    Some(m) if m != n => {
                        return Err(invalid(
                            "max_completion_tokens",
                            "`max_tokens` and `max_completion_tokens` differ: send one limit",
                        ));
                    }
                    _ => max_tokens = Some(n),
                },
                _ => {
                    return Err(invalid(
                        field,
                        &format!(
                            "`{field}` must be an integer between 1 and {}",
                            limits.max_tokens
                        ),
                    ));
                }
            },
        }
    }
    let n = match obj.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= limits.max_n => n,
            _ => {
                return Err(invalid(
                    "n",
                    &format!("`n` must be an integer between 1 and {}", limits.max_n),
                ));
            }
        },
    };
    let per_choice = max_tokens.unwrap_or(limits.default_max_tokens.min(limits.max_tokens));
    let parsed = ParsedRequest {
        endpoint,
        model,
        stream,
        include_usage,
        max_tokens: per_choice,
        explicit_limit: max_tokens.is_some(),
        max_generated_tokens: per_choice.saturating_mul(n),
    };
    Ok((parsed, obj))
}

/// Checks a body ([`parse_request`]) and puts it in the form every hop forwards: a stream asks for
/// usage (`stream_options.include_usage: true`), and the generation limit is explicit: a body that
/// states none gets the default as `max_tokens` (which vLLM, SGLang and the built-in engine all
/// read); a body that states one, or both equal, keeps it ([`parse_request`] refuses two different
/// ones, since engines honour `max_completion_tokens` first). Returns the new body, or `None` when
/// `body` is already in that form and must be forwarded unchanged (the receipt then covers the
/// client's exact bytes). Normalising a normalised body changes nothing.
pub fn normalize_request(
    endpoint: Endpoint,
    body: &[u8],
    limits: &RequestLimits,
) -> Result<(ParsedRequest, Option<Vec<u8>>), ApiError> {
    let (parsed, mut obj) = parse_request(endpoint, body, limits)?;
    let mut changed = false;
    if parsed.stream
        && !matches!(
            obj.get("stream_options")
                .and_then(|o| o.get("include_usage")),
            Some(Value::Bool(true))
        )
    {
        let opts = obj
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if !opts.is_object() {
            // `null`: parse_request accepted it as "no options".
            *opts = Value::Object(Map::new());
        }
        if let Some(o) = opts.as_object_mut() {
            o.insert("include_usage".into(), Value::Bool(true));
        }
        changed = true;
    }
    if !parsed.explicit_limit {
        // `null` limits count as none; the default replaces them.
        obj.remove("max_completion_tokens");
        obj.insert("max_tokens".into(), Value::from(parsed.max_tokens));
        changed = true;
    }
    if !changed {
        return Ok((parsed, None));
    }
    let body = serde_json::to_vec(&obj).map_err(|e| {
        ApiError::new(
            ErrorCode::InternalError,
            format!("cannot write the request: {e}"),
        )
    })?;
    if body.len() > limits.max_body_bytes {
        return Err(ApiError::body_too_large(limits.max_body_bytes));
    }
    Ok((parsed, Some(body)))
}

fn invalid(param: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, message).with_param(param)
}

/// Stable error codes (the `code` field of OpenAI's error object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Body is not JSON or not an object.
    InvalidJson,
    /// A field outside the allowlist.
    UnsupportedField,
    /// A field with a bad type or value.
    InvalidField,
    /// Body above the size limit.
    BodyTooLarge,
    /// Missing or wrong bearer token.
    Unauthorized,
    /// The client has no escrow this proxy accepts.
    UnknownClient,
    /// The escrow of the wallet the client named is not bound to the client's TLS key.
    ClientKeyMismatch,
    /// The proxy cannot check a new client on chain right now (chain down or too many new clients).
    ChainUnavailable,
    /// The client's credit cannot cover the worst-case cost.
    InsufficientCredit,
    /// No worker serves the model.
    ModelNotFound,
    /// Workers serve the model, but none under the price cap with free capacity.
    NoWorkerAvailable,
    /// The price-cap header is malformed.
    InvalidPriceCap,
    /// Every tried worker failed before answering.
    UpstreamFailed,
    /// The request did not finish in time.
    Timeout,
    /// Unknown path.
    NotFound,
    /// Wrong method for the path.
    MethodNotAllowed,
    /// The daemon is draining for shutdown.
    ShuttingDown,
    /// A bug or a broken local store.
    InternalError,
}

impl ErrorCode {
    /// The stable string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnsupportedField => "unsupported_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownClient => "unknown_client",
            ErrorCode::ClientKeyMismatch => "client_key_mismatch",
            ErrorCode::ChainUnavailable => "chain_unavailable",
            ErrorCode::InsufficientCredit => "insufficient_credit",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::NoWorkerAvailable => "no_worker_available",
            ErrorCode::InvalidPriceCap => "invalid_price_cap",
            ErrorCode::UpstreamFailed => "upstream_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// The HTTP status that goes with it.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::UnsupportedField
            | ErrorCode::InvalidField
            | ErrorCode::InvalidPriceCap => 400,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::Unauthorized | ErrorCode::UnknownClient => 401,
            ErrorCode::ClientKeyMismatch => 403,
            ErrorCode::InsufficientCredit => 402,
            ErrorCode::ModelNotFound | ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::NoWorkerAvailable
            | ErrorCode::ShuttingDown
            | ErrorCode::ChainUnavailable => 503,
            ErrorCode::UpstreamFailed => 502,
            ErrorCode::Timeout => 504,
            ErrorCode::InternalError => 500,
        }
    }

    fn kind(self) -> &'static str {
        match self.status() {
            401 => "authentication_error",
            402 => "insufficient_quota",
            403 => "permission_error",
            404 => "not_found_error",
            400 | 405 | 413 => "invalid_request_error",
            _ => "server_error",
        }
    }
}

/// An error in OpenAI's shape: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// The offending field, when there is one.
    pub param: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            param: None,
        }
    }

    /// Names the offending field.
    pub fn with_param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    /// The body-size error.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("request body exceeds {limit} bytes"),
        )
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        let v = serde_json::json!({"error": {
            "message": self.message,
            "type": self.code.kind(),
            "param": self.param,
            "code": self.code.as_str(),
        }});
        v.to_string().into_bytes()
    }

    /// Reads the code back from an error body (used by the gateway to keep upstream codes).
    pub fn code_of(body: &[u8]) -> Option<String> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Some(v.pointer("/error/code")?.as_str()?.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ep: Endpoint, body: &str) -> Result<ParsedRequest, ErrorCode> {
        parse_request(ep, body.as_bytes(), &RequestLimits::default())
            .map(|(p, _)| p)
            .map_err(|e| e.code)
    }

    #[test]
    fn accepts_openai_fields_and_reads_what_the_path_needs() {
        let p = parse(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"n":2,
               "stream_options":{"include_usage":true},"max_tokens":50,"tools":[],"seed":1,
               "tool_choice":"auto","logprobs":true,"response_format":{"type":"json_object"}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                p.model.as_str(),
                p.stream,
                p.include_usage,
                p.max_generated_tokens
            ),
            ("m", true, true, 100)
        );
        let p = parse(Endpoint::Completions, r#"{"model":"m","prompt":"x"}"#).unwrap();
        assert_eq!(
            p.max_generated_tokens,
            RequestLimits::default().default_max_tokens
        );
    }

    #[test]
    fn refuses_bad_bodies_with_stable_codes() {
        let chat = Endpoint::ChatCompletions;
        assert_eq!(parse(chat, "{"), Err(ErrorCode::InvalidJson));
        assert_eq!(parse(chat, "[1]"), Err(ErrorCode::InvalidJson));
        assert_eq!(
            parse(chat, r#"{"model":"m","messages":[{}],"evil":1}"#),
            Err(ErrorCode::UnsupportedField)
        );
        assert_eq!(
            parse(chat, r#"{"messages":[{}]}"#),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            parse(chat, r#"{"model":"m","messages":[]}"#),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            parse(chat, r#"{"model":"m","messages":[{}],"max_tokens":0}"#),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            parse(chat, r#"{"model":"m","messages":[{}],"max_tokens":-1}"#),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            parse(chat, r#"{"model":"m","messages":[{}],"stream":"yes"}"#),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            parse(chat, r#"{"model":"m","messages":[{}],"n":99}"#),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            parse(
                Endpoint::Completions,
                r#"{"model":"m","prompt":"x","messages":[]}"#
            ),
            Err(ErrorCode::UnsupportedField)
        );
        let limits = RequestLimits {
            max_body_bytes: 8,
            ..Default::default()
        };
        let err = parse_request(chat, br#"{"model":"m"}"#, &limits).unwrap_err();
        assert_eq!(err.code, ErrorCode::BodyTooLarge);
    }

    #[test]
    fn one_effective_limit_and_conflicting_limits_are_refused() {
        let chat = Endpoint::ChatCompletions;
        let p = parse(
            chat,
            r#"{"model":"m","messages":[{}],"max_completion_tokens":7}"#,
        )
        .unwrap();
        assert_eq!((p.max_tokens, p.explicit_limit), (7, true));
        let p = parse(
            chat,
            r#"{"model":"m","messages":[{}],"max_tokens":7,"max_completion_tokens":7}"#,
        )
        .unwrap();
        assert_eq!(p.max_generated_tokens, 7);
        let err = parse_request(
            chat,
            br#"{"model":"m","messages":[{}],"max_tokens":1,"max_completion_tokens":32768}"#,
            &RequestLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidField);
        assert_eq!(err.param.as_deref(), Some("max_completion_tokens"));
        let p = parse(chat, r#"{"model":"m","messages":[{}],"n":2}"#).unwrap();
        assert_eq!(
            (p.max_tokens, p.explicit_limit, p.max_generated_tokens),
            (4096, false, 8192)
        );
    }

    #[test]
    fn normalisation_forces_usage_and_an_explicit_limit_and_is_idempotent() {
        let limits = RequestLimits {
            default_max_tokens: 64,
            ..Default::default()
        };
        let chat = Endpoint::ChatCompletions;
        let raw = br#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}"#;
        let (p, body) = normalize_request(chat, raw, &limits).unwrap();
        let body = body.expect("a stream without usage is rewritten");
        assert!(!p.include_usage, "parsed describes the body as received");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["max_tokens"], 64);
        assert!(v.get("max_completion_tokens").is_none());
        let (again, unchanged) = normalize_request(chat, &body, &limits).unwrap();
        assert!(unchanged.is_none(), "a normalised body is forwarded as is");
        assert!(again.include_usage && again.explicit_limit && again.max_tokens == 64);
        // `include_usage: false` and `stream_options: null` are overridden too.
        for raw in [
            &br#"{"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":false},"max_tokens":3,"max_completion_tokens":3}"#[..],
            &br#"{"model":"m","messages":[{}],"stream":true,"stream_options":null,"max_tokens":3,"max_completion_tokens":3}"#[..],
        ] {
            let (_, body) = normalize_request(chat, raw, &limits).unwrap();
            let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
            assert_eq!(v["stream_options"]["include_usage"], true);
        }
        // A non-stream gets no stream options; completions carry `max_tokens` only.
        let raw = br#"{"model":"m","prompt":"x","max_tokens":5}"#;
        assert!(
            normalize_request(Endpoint::Completions, raw, &limits)
                .unwrap()
                .1
                .is_none()
        );
        let raw = br#"{"model":"m","prompt":"x"}"#;
        let v: Value = serde_json::from_slice(
            &normalize_request(Endpoint::Completions, raw, &limits)
                .unwrap()
                .1
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v["max_tokens"], 64);
        assert!(v.get("stream_options").is_none() && v.get("max_completion_tokens").is_none());
    }

    #[test]
    fn errors_have_openai_shape() {
        let e = ApiError::new(ErrorCode::InsufficientCredit, "no").with_param("x");
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["error"]["code"], "insufficient_credit");
        assert_eq!(v["error"]["param"], "x");
        assert_eq!(e.status(), 402);
        assert_eq!(
            ApiError::code_of(&e.to_json()).as_deref(),
            Some("insufficient_credit")
        );
    }
}
