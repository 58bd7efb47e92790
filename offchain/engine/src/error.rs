//! Error types: backend failures, startup failures and OpenAI-shaped HTTP errors.

use std::path::PathBuf;

use http::StatusCode;

/// A failure inside a backend (model loading, tokenising, decoding).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The model file could not be read.
    #[error("cannot read model file {path}: {source}")]
    ModelIo {
        /// The model path from the configuration.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The GGUF file is malformed or describes an unsupported model.
    #[error("unsupported or malformed model: {0}")]
    Model(String),
    /// The tensor library failed.
    #[error("tensor computation failed: {0}")]
    Compute(String),
    /// The chat template failed to render these messages.
    #[error("chat template failed: {0}")]
    Template(String),
}

/// A failure to start the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid; nothing was bound.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The backend failed to load.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Binding or inspecting the listening socket failed.
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
}

/// An error returned to an HTTP client as `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI error type (`invalid_request_error`, `server_error`, ...).
    pub kind: &'static str,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The offending request parameter, if any.
    pub param: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        Self {
            status,
            kind,
            code,
            message,
            param: None,
        }
    }

    /// Attaches the offending parameter's name.
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// 400 `invalid_json`: the body is not the JSON object this route expects.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            message.into(),
        )
    }

    /// 400 `invalid_parameter`: a parameter has a wrong type or value.
    pub fn invalid_parameter(param: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_parameter",
            message.into(),
        )
        .with_param(param)
    }

    /// 400 `missing_parameter`: a required parameter is absent.
    pub fn missing_parameter(param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "missing_parameter",
            format!("missing required parameter '{param}'"),
        )
        .with_param(param)
    }

    /// 400 `unsupported_parameter`: a valid OpenAI parameter this engine does not implement.
    pub fn unsupported_parameter(param: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "unsupported_parameter",
            message.into(),
        )
        .with_param(param)
    }

    /// 400 `context_length_exceeded`: the prompt does not fit the model's context.
    pub fn context_length_exceeded(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "context_length_exceeded",
            message.into(),
        )
        .with_param("messages")
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(requested: &str, served: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("model '{requested}' is not served here; this engine serves '{served}'"),
        )
        .with_param("model")
    }

    /// 404 `not_found`: unknown route.
    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("no route for {path}"),
        )
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed(method: &http::Method, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            format!("method {method} is not allowed on {path}"),
        )
    }

    /// 413 `request_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }

    /// 503 `engine_overloaded`: every slot is busy and the wait queue is full.
    pub fn overloaded(slots: usize, queued: usize) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "engine_overloaded",
            format!(
                "all {slots} generation slots are busy and {queued} requests are already waiting; retry later"
            ),
        )
    }

    /// 503 `shutting_down`.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "shutting_down",
            "the engine is shutting down".to_owned(),
        )
    }

    /// 503 `unhealthy`: the backend reports it cannot serve.
    pub fn unhealthy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "unhealthy",
            "the engine's backend is unhealthy".to_owned(),
        )
    }

    /// 500 `internal_error`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message.into(),
        )
    }

    /// The JSON body `{"error":{...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::Template(msg) => Self::invalid_parameter(
                "messages",
                format!("the chat template rejected the messages: {msg}"),
            ),
            other => Self::internal(other.to_string()),
        }
    }
}
