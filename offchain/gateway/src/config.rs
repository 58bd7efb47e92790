//! Gateway configuration.

use cocoon_daemon::chain_endpoint::{ChainEndpoint, parse_address};
use cocoon_daemon::config::{ConfigError, Validate};
use cocoon_daemon::serve::LimitsSection;
use cocoon_daemon::tls_config::TlsSection;
use serde::{Deserialize, Serialize};

/// The gateway's `[chain]` section: where to find the root contract, whose registered proxies and
/// proxy image allowlist the gateway trusts. An empty `root` means no chain (then `proxy` must be
/// set and only `tls.mode = "dev-insecure"` runs, since nothing lists the allowed proxy images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayChain {
    /// Where the chain is read (`api_url`, `api_key*`, `network`).
    #[serde(flatten)]
    pub endpoint: ChainEndpoint,
    /// The root contract's address.
    pub root: String,
    /// Use the proxy this operator wallet registered (empty: the first registered proxy).
    pub proxy_operator: String,
    /// The client's wallet, whose escrow with the proxy pays for requests. Sent to the proxy with
    /// every request (`x-cocoon-client-wallet`); the proxy binds this gateway's TLS key to it once
    /// the escrow's `client_key` is that key. Empty: the proxy admits this key only if it is
    /// already bound.
    pub wallet: String,
    /// How often the root's image allowlist is re-read, ms.
    pub allowlist_refresh_ms: u64,
    /// How old the allowlist may get while the chain cannot be read before the proxy is refused, ms.
    pub allowlist_max_stale_ms: u64,
}

impl Default for GatewayChain {
    fn default() -> Self {
        GatewayChain {
            endpoint: ChainEndpoint::default(),
            root: String::new(),
            proxy_operator: String::new(),
            wallet: String::new(),
            allowlist_refresh_ms: 60_000,
            allowlist_max_stale_ms: 600_000,
        }
    }
}

impl GatewayChain {
    /// True when a root is configured.
    pub fn enabled(&self) -> bool {
        !self.root.is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        self.endpoint.validate()?;
        parse_address("chain.root", &self.root)?;
        if !self.proxy_operator.is_empty() {
            parse_address("chain.proxy_operator", &self.proxy_operator)?;
        }
        if !self.wallet.is_empty() {
            parse_address("chain.wallet", &self.wallet)?;
        }
        if self.allowlist_refresh_ms == 0 || self.allowlist_max_stale_ms < self.allowlist_refresh_ms
        {
            return Err(ConfigError::Invalid {
                field: "chain.allowlist_refresh_ms",
                message: "intervals positive, max staleness at least the refresh".into(),
            });
        }
        Ok(())
    }
}

/// Everything a client gateway needs (file + `COCOON_*` + `--set`, see `cocoon_daemon::config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where apps connect (plain HTTP/1.1 on loopback, OpenAI-compatible).
    pub listen: String,
    /// Admin endpoint: `/metrics`, `/healthz`, `/status`.
    pub admin_listen: String,
    /// The proxy's client listener, `host:port` (empty: the one registered in the root).
    pub proxy: String,
    /// Expected proxy key, hex (empty: accept the proxy the attestation policy accepts).
    pub proxy_key: String,
    /// When set, apps must send `Authorization: Bearer <api_token>` (compared in constant time).
    pub api_token: String,
    /// Host names (or whole `host:port` values) served besides the listen address and `localhost`;
    /// any other `Host` is refused (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`https://app.example`, or `*`) allowed to call the gateway; a request with
    /// any other `Origin` header is refused. Empty: no web page may (apps and SDKs send no Origin).
    pub allowed_origins: Vec<String>,
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
    /// Largest non-streamed response collected from the proxy before it is verified, bytes (a
    /// larger one is refused with `upstream_failed`).
    pub max_response_bytes: usize,
    /// Limits of the app listener (`cocoon_daemon::serve::LimitsSection`).
    pub limits: LimitsSection,
    /// Refuse a non-streamed response whose receipt does not verify (streams are checked at the end
    /// and logged, since their bytes are already delivered).
    pub require_receipts: bool,
    /// Receipts kept in memory for `/cocoon/v1/receipts` (the proof bundle).
    pub receipts_kept: usize,
    /// Receipts journal: every kept receipt (with its bodies) is appended here and read back at start.
    /// Empty: receipts live in memory only and a restart loses them.
    pub receipts_path: String,
    /// When the journal passes this size it is rewritten with what is kept in memory.
    pub receipts_journal_max_bytes: u64,
    /// Hex Ed25519 seed of the client key (development; same as `tls.dev_key`, which wins).
    pub dev_key: String,
    /// TLS and attestation (`cocoon_daemon::tls_config`; checked when the binary builds its TLS).
    pub tls: TlsSection,
    /// The root contract the proxy is found in and checked against.
    pub chain: GatewayChain,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9402".into(),
            proxy: String::new(),
            proxy_key: String::new(),
            api_token: String::new(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_coefficient: 4000,
            max_body_bytes: 1 << 20,
            max_tokens: 32_768,
            max_n: 4,
            request_timeout_ms: 600_000,
            max_response_bytes: 64 << 20,
            limits: LimitsSection::default(),
            require_receipts: true,
            receipts_kept: 1000,
            receipts_path: String::new(),
            receipts_journal_max_bytes: 256 << 20,
            dev_key: String::new(),
            tls: TlsSection::default(),
            chain: GatewayChain::default(),
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
        if self.proxy.is_empty() && !self.chain.enabled() {
            return Err(bad(
                "proxy",
                "set proxy (host:port) or chain.root (to use a proxy registered there)",
            ));
        }
        if !self.proxy.is_empty() && !self.proxy.contains(':') {
            return Err(bad("proxy", "must be host:port"));
        }
        self.chain.validate()?;
        self.proxy_key_bytes()?;
        if self.max_coefficient == 0 {
            return Err(bad("max_coefficient", "must be positive"));
        }
        self.limits.validate()?;
        if self.max_response_bytes < 1024 {
            return Err(bad("max_response_bytes", "at least 1024"));
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
        if !self.receipts_path.is_empty() {
            let parent = std::path::Path::new(&self.receipts_path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if !parent.is_dir() {
                return Err(bad(
                    "receipts_path",
                    "its directory does not exist (the gateway creates the file, not directories)",
                ));
            }
        }
        if self.receipts_journal_max_bytes < 1 << 20 {
            return Err(bad("receipts_journal_max_bytes", "at least 1 MiB"));
        }
        if !self.dev_key.is_empty() && self.dev_key.len() != 64 {
            return Err(bad("dev_key", "64 hex digits"));
        }
        Ok(())
    }
}
