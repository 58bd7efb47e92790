//! Engine configuration, validated before anything is loaded or bound.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::EngineError;

/// Which backend serves requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The deterministic zero-latency echo backend ([`crate::FixedBackend`]); needs no model file.
    Fixed,
    /// A GGUF llama-family model on candle ([`crate::GgufBackend`]).
    #[default]
    Gguf,
}

impl std::str::FromStr for BackendKind {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fixed" => Ok(Self::Fixed),
            "gguf" => Ok(Self::Gguf),
            other => Err(EngineError::Config(format!(
                "unknown backend '{other}': expected 'fixed' or 'gguf'"
            ))),
        }
    }
}

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Which backend to run.
    pub backend: BackendKind,
    /// The GGUF file (required for [`BackendKind::Gguf`]).
    pub model_path: Option<PathBuf>,
    /// The model id clients send and `/v1/models` lists; default: the GGUF file stem, or
    /// [`crate::FIXED_MODEL_ID`] for the fixed backend.
    pub model_id: Option<String>,
    /// Compute threads for the GGUF backend (its own rayon pool); `None` = available cores.
    pub threads: Option<usize>,
    /// Concurrent generations; `None` = 2 for GGUF, 256 for fixed.
    pub slots: Option<usize>,
    /// Requests allowed to wait for a slot before new ones get 503 `engine_overloaded`;
    /// `None` = 64 for GGUF, 4096 for fixed.
    pub max_queued: Option<usize>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Caps the model's context length (prompt + completion tokens); `None` = the model's own.
    pub max_context: Option<usize>,
    /// Address the binary binds (`serve` takes an already bound listener instead).
    pub listen: SocketAddr,
}

/// Default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

impl EngineConfig {
    /// The fixed backend with defaults.
    pub fn fixed() -> Self {
        Self {
            backend: BackendKind::Fixed,
            model_path: None,
            model_id: None,
            threads: None,
            slots: None,
            max_queued: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_context: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// The GGUF backend on `model_path` with defaults.
    pub fn gguf(model_path: impl Into<PathBuf>) -> Self {
        Self {
            backend: BackendKind::Gguf,
            model_path: Some(model_path.into()),
            ..Self::fixed()
        }
    }

    /// Generation slots after defaults.
    pub fn effective_slots(&self) -> usize {
        self.slots.unwrap_or(match self.backend {
            BackendKind::Fixed => 256,
            BackendKind::Gguf => 2,
        })
    }

    /// Queue length after defaults.
    pub fn effective_max_queued(&self) -> usize {
        self.max_queued.unwrap_or(match self.backend {
            BackendKind::Fixed => 4096,
            BackendKind::Gguf => 64,
        })
    }

    /// Compute threads after defaults.
    pub fn effective_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// Checks the configuration without touching the network; the model file must exist.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |m: String| Err(EngineError::Config(m));
        if self.backend == BackendKind::Gguf {
            match &self.model_path {
                None => return bad("the gguf backend needs a model path (--model)".into()),
                Some(p) if !p.is_file() => {
                    return bad(format!("model file {} does not exist", p.display()));
                }
                Some(_) => {}
            }
        }
        if self.threads == Some(0) || self.threads.is_some_and(|t| t > 1024) {
            return bad("threads must be between 1 and 1024".into());
        }
        if self.slots == Some(0) || self.slots.is_some_and(|s| s > 65_536) {
            return bad("slots must be between 1 and 65536".into());
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > 1 << 30 {
            return bad("max body size must be between 1 KiB and 1 GiB".into());
        }
        if self.max_context.is_some_and(|c| c < 2) {
            return bad("max context must be at least 2 tokens".into());
        }
        if let Some(id) = &self.model_id
            && (id.is_empty() || id.len() > 256)
        {
            return bad("model id must be 1 to 256 characters".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_values() {
        assert!(EngineConfig::fixed().validate().is_ok());
        assert!(
            EngineConfig::gguf("/nonexistent/model.gguf")
                .validate()
                .is_err()
        );
        let zero_slots = EngineConfig {
            slots: Some(0),
            ..EngineConfig::fixed()
        };
        assert!(zero_slots.validate().is_err());
        let zero_threads = EngineConfig {
            threads: Some(0),
            ..EngineConfig::fixed()
        };
        assert!(zero_threads.validate().is_err());
        assert!("fixed".parse::<BackendKind>().is_ok());
        assert!("gpu".parse::<BackendKind>().is_err());
    }
}
