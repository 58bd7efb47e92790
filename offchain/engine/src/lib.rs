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
mod gguf;
mod request;
mod response;
mod server;

use std::sync::Arc;

pub use backend::{Backend, ChatMessage, ModelInfo, Prompt, SamplingParams, Session, TokenStep};
pub use config::{
    BackendKind, DEFAULT_MAX_BODY_BYTES, DEFAULT_MODEL_FILE, EngineConfig, MODEL_PATH_ENV,
    ModelSearch, locate_model,
};
pub use error::{ApiError, BackendError, EngineError};
pub use fixed::{FIXED_MODEL_ID, FixedBackend};
pub use gguf::{BpeTokenizer, ChatTemplate, GgufBackend, Sampler};
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
        BackendKind::Gguf => {
            let path = config
                .model_path
                .clone()
                .ok_or_else(|| EngineError::Config("the gguf backend needs a model path".into()))?;
            let requested = config.effective_threads();
            let actual = std::env::var("CANDLE_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(candle_core::utils::get_num_threads);
            if requested != actual {
                tracing::warn!(
                    requested,
                    actual,
                    "candle's compute pool is process-wide and sized by CANDLE_NUM_THREADS; \
                     the binary sets it from --threads, in-process callers must set it themselves"
                );
            }
            let (id, max_context) = (config.model_id.clone(), config.max_context);
            let backend =
                tokio::task::spawn_blocking(move || GgufBackend::load(&path, id, max_context))
                    .await
                    .map_err(|e| {
                        EngineError::Config(format!("model loading task failed: {e}"))
                    })??;
            tracing::info!(model = %backend.info().id, context = backend.info().context_length, "model loaded");
            Ok(Arc::new(backend))
        }
    }
}
