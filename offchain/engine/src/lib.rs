//! Built-in CPU inference engine: an OpenAI-compatible HTTP server over candle serving GGUF models.
//!
//! In-process use (tests of other crates):
//!
//! ```no_run
//! # async fn demo() -> Result<(), cocoon_engine::EngineError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(cocoon_engine::EngineError::Listen)?;
//! let engine = cocoon_engine::serve(cocoon_engine::EngineConfig::fixed(), listener).await?;
//! println!("{}", engine.url());
//! engine.shutdown().await;
//! # Ok(()) }
//! ```

mod backend;
mod config;
mod error;
mod fixed;
pub mod generate;
mod request;
mod response;
mod server;

use std::sync::Arc;

pub use backend::{Backend, ChatMessage, ModelInfo, Prompt, SamplingParams, Session, TokenStep};
pub use config::{BackendKind, DEFAULT_MAX_BODY_BYTES, EngineConfig};
pub use error::{ApiError, BackendError, EngineError};
pub use fixed::{FIXED_MODEL_ID, FixedBackend};
pub use server::{EngineHandle, ServerOptions, serve_backend};

/// Validates `config`, loads its backend and serves it on `listener`.
pub async fn serve(
    config: EngineConfig,
    listener: tokio::net::TcpListener,
) -> Result<EngineHandle, EngineError> {
    config.validate()?;
    let backend = load_backend(&config).await?;
    serve_backend(backend, server_options(&config), listener)
}

/// Validates `config`, loads its backend, then binds `config.listen` and serves.
pub async fn start(config: EngineConfig) -> Result<EngineHandle, EngineError> {
    config.validate()?;
    let backend = load_backend(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(EngineError::Listen)?;
    serve_backend(backend, server_options(&config), listener)
}

/// The HTTP limits `config` asks for.
pub fn server_options(config: &EngineConfig) -> ServerOptions {
    ServerOptions {
        slots: config.effective_slots(),
        max_queued: config.effective_max_queued(),
        max_body_bytes: config.max_body_bytes,
    }
}

/// Builds the configured backend (loading a GGUF model runs on a blocking thread).
pub async fn load_backend(config: &EngineConfig) -> Result<Arc<dyn Backend>, EngineError> {
    match config.backend {
        BackendKind::Fixed => Ok(Arc::new(FixedBackend::new(
            config
                .model_id
                .clone()
                .unwrap_or_else(|| FIXED_MODEL_ID.to_owned()),
        ))),
        BackendKind::Gguf => Err(EngineError::Config(
            "the gguf backend is not available in this build yet".into(),
        )),
    }
}
