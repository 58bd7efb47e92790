//! Worker configuration.

use cocoon_daemon::config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// Everything a worker needs (file + `COCOON_*` + `--set`, see `cocoon_daemon::config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Proxies to dial, `host:port` of their worker listener.
    pub proxies: Vec<String>,
    /// Base URL of the OpenAI-compatible engine, e.g. `http://127.0.0.1:8000`.
    pub engine_url: String,
    /// The model name requests must ask for.
    pub model: String,
    /// SHA-256 of the model weights, hex (as allowed in the root contract).
    pub model_hash: String,
    /// Price coefficient, thousandths (1000 = base price).
    pub coefficient: u32,
    /// Concurrent requests accepted.
    pub capacity: u32,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Delay before redialing a proxy, ms.
    pub reconnect_ms: u64,
    /// Admin endpoint (`/metrics`, `/healthz`, `/status`), `host:port`.
    pub admin_listen: String,
    /// Hex Ed25519 seed of the worker key (development TLS only; RA-TLS generates keys in the TEE).
    pub dev_key: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            proxies: vec![],
            engine_url: "http://127.0.0.1:8000".into(),
            model: "smollm2-135m-instruct".into(),
            model_hash: "00".repeat(32),
            coefficient: 1000,
            capacity: 16,
            max_body_bytes: 1 << 20,
            reconnect_ms: 1000,
            admin_listen: "127.0.0.1:9102".into(),
            dev_key: String::new(),
        }
    }
}

impl WorkerConfig {
    /// The model hash as bytes.
    pub fn model_hash_bytes(&self) -> Result<[u8; 32], ConfigError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.model_hash, &mut out).map_err(|e| ConfigError::Invalid {
            field: "model_hash",
            message: format!("need 64 hex digits: {e}"),
        })?;
        Ok(out)
    }
}

impl Validate for WorkerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.proxies.is_empty() {
            return Err(ConfigError::Invalid {
                field: "proxies",
                message: "at least one proxy address".into(),
            });
        }
        if !(self.engine_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                field: "engine_url",
                message: "must be an http:// URL".into(),
            });
        }
        if self.model.is_empty() || self.model.len() > 256 {
            return Err(ConfigError::Invalid {
                field: "model",
                message: "1 to 256 bytes".into(),
            });
        }
        self.model_hash_bytes()?;
        if self.coefficient == 0 {
            return Err(ConfigError::Invalid {
                field: "coefficient",
                message: "must be positive".into(),
            });
        }
        if self.capacity == 0 {
            return Err(ConfigError::Invalid {
                field: "capacity",
                message: "must be positive".into(),
            });
        }
        if !self.dev_key.is_empty() && self.dev_key.len() != 64 {
            return Err(ConfigError::Invalid {
                field: "dev_key",
                message: "64 hex digits".into(),
            });
        }
        Ok(())
    }
}
