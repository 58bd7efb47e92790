//! Worker configuration.

use cocoon_daemon::config::{ConfigError, Validate};
use cocoon_daemon::serve::LimitsSection;
use cocoon_daemon::tls_config::TlsSection;
use serde::{Deserialize, Serialize};

pub use crate::chain_config::ChainSection;

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
    /// The weights file the engine serves (e.g. the GGUF). When set it is hashed at start and must
    /// equal `model_hash`; required in `tls.mode = "tdx"`.
    pub model_path: String,
    /// Price coefficient, thousandths (1000 = base price).
    pub coefficient: u32,
    /// Concurrent requests accepted.
    pub capacity: u32,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest non-streamed engine response, bytes: the worker holds it whole to read its usage;
    /// a larger one is cut with an error, without a receipt (nothing is charged).
    pub max_response_bytes: usize,
    /// Limits of the connections the worker serves proxies on (`cocoon_daemon::serve::LimitsSection`:
    /// TLS handshake and body-read timeouts, HTTP/2 streams per connection).
    pub limits: LimitsSection,
    /// Delay before redialing a proxy, ms.
    pub reconnect_ms: u64,
    /// Admin endpoint (`/metrics`, `/healthz`, `/status`), `host:port`.
    pub admin_listen: String,
    /// Hex Ed25519 seed of the worker key (development TLS only; RA-TLS generates keys in the TEE).
    pub dev_key: String,
    /// Engine health check interval, ms (0 = no health checks).
    pub health_interval_ms: u64,
    /// Timeout of one health check, ms.
    pub health_timeout_ms: u64,
    /// Consecutive failed health checks after which the worker leaves rotation.
    pub health_failures: u32,
    /// Path of the engine's health endpoint (vLLM, SGLang and the built-in engine: `/health`).
    pub health_path: String,
    /// TLS and attestation (`[tls]`, shared by every daemon).
    pub tls: TlsSection,
    /// Chain checks and payout claims (`[chain]`; empty `root` = no chain, development only).
    pub chain: ChainSection,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            proxies: vec![],
            engine_url: "http://127.0.0.1:8000".into(),
            model: "smollm2-135m-instruct".into(),
            model_hash: "00".repeat(32),
            model_path: String::new(),
            coefficient: 1000,
            capacity: 16,
            max_body_bytes: 1 << 20,
            max_response_bytes: 64 << 20,
            limits: LimitsSection::default(),
            reconnect_ms: 1000,
            admin_listen: "127.0.0.1:9102".into(),
            dev_key: String::new(),
            health_interval_ms: 5_000,
            health_timeout_ms: 2_000,
            health_failures: 3,
            health_path: "/health".into(),
            tls: TlsSection::default(),
            chain: ChainSection::default(),
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
        self.limits.validate()?;
        if self.max_response_bytes < 1024 {
            return Err(ConfigError::Invalid {
                field: "max_response_bytes",
                message: "at least 1024".into(),
            });
        }
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
        if self.health_interval_ms > 0 {
            if self.health_failures == 0 {
                return Err(ConfigError::Invalid {
                    field: "health_failures",
                    message: "must be positive when health checks are on".into(),
                });
            }
            if self.health_timeout_ms == 0 {
                return Err(ConfigError::Invalid {
                    field: "health_timeout_ms",
                    message: "must be positive when health checks are on".into(),
                });
            }
            if !self.health_path.starts_with('/') {
                return Err(ConfigError::Invalid {
                    field: "health_path",
                    message: "must start with /".into(),
                });
            }
        }
        self.chain.validate()?;
        if !self.dev_key.is_empty() && self.dev_key.len() != 64 {
            return Err(ConfigError::Invalid {
                field: "dev_key",
                message: "64 hex digits".into(),
            });
        }
        Ok(())
    }
}
