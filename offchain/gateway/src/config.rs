//! Gateway configuration.

use cocoon_daemon::config::{ConfigError, Validate};
use serde::{Deserialize, Serialize};

/// Everything a client gateway needs (file + `COCOON_*` + `--set`, see `cocoon_daemon::config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where apps connect (plain HTTP/1.1 on loopback, OpenAI-compatible).
    pub listen: String,
    /// Admin endpoint: `/metrics`, `/healthz`, `/status`.
    pub admin_listen: String,
    /// The proxy's client listener, `host:port`.
    pub proxy: String,
    /// Expected proxy key, hex (empty: accept the proxy the attestation policy accepts).
    pub proxy_key: String,
    /// When set, apps must send `Authorization: Bearer <api_token>`.
    pub api_token: String,
    /// Highest worker coefficient accepted, thousandths; an app header may only lower it.
    pub max_coefficient: u32,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest `max_tokens`.
    pub max_tokens: u64,
    /// Largest `n`.
    pub max_n: u64,
    /// Whole-request timeout, ms.
    pub request_timeout_ms: u64,
    /// Refuse a non-streamed response whose receipt does not verify (streams are checked at the end
    /// and logged, since their bytes are already delivered).
    pub require_receipts: bool,
    /// Receipts kept in memory for `/cocoon/v1/receipts` (the proof bundle).
    pub receipts_kept: usize,
    /// Hex Ed25519 seed of the client key (development TLS; also the key the escrow is opened for).
    pub dev_key: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9402".into(),
            proxy: "127.0.0.1:9300".into(),
            proxy_key: String::new(),
            api_token: String::new(),
            max_coefficient: 4000,
            max_body_bytes: 1 << 20,
            max_tokens: 32_768,
            max_n: 4,
            request_timeout_ms: 600_000,
            require_receipts: true,
            receipts_kept: 1000,
            dev_key: String::new(),
        }
    }
}

impl GatewayConfig {
    /// The pinned proxy key, if any.
    pub fn proxy_key_bytes(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        if self.proxy_key.is_empty() {
            return Ok(None);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.proxy_key, &mut out).map_err(|e| ConfigError::Invalid {
            field: "proxy_key",
            message: format!("64 hex digits: {e}"),
        })?;
        Ok(Some(out))
    }
}

impl Validate for GatewayConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, m: &str| ConfigError::Invalid {
            field,
            message: m.to_owned(),
        };
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad("listen", "must be ip:port"));
        }
        if self.admin_listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad("admin_listen", "must be ip:port"));
        }
        if self.proxy.is_empty() || !self.proxy.contains(':') {
            return Err(bad("proxy", "must be host:port"));
        }
        self.proxy_key_bytes()?;
        if self.max_coefficient == 0 {
            return Err(bad("max_coefficient", "must be positive"));
        }
        if self.max_body_bytes < 64
            || self.max_tokens == 0
            || self.max_n == 0
            || self.request_timeout_ms == 0
        {
            return Err(bad(
                "max_body_bytes",
                "limits and timeouts must be positive",
            ));
        }
        if !self.dev_key.is_empty() && self.dev_key.len() != 64 {
            return Err(bad("dev_key", "64 hex digits"));
        }
        Ok(())
    }
}
