//! Proxy configuration.

use cocoon_daemon::config::{ConfigError, Validate, invalid};
use cocoon_daemon::serve::LimitsSection;
use cocoon_daemon::tls_config::TlsSection;
use cocoon_protocol::RequestLimits;
use serde::{Deserialize, Serialize};

pub use crate::chain_config::ChainSection;

/// Everything a proxy needs (file + `COCOON_*` + `--set`, see `cocoon_daemon::config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where client gateways connect (mutual TLS, HTTP/2).
    pub client_listen: String,
    /// Where workers dial in (mutual TLS; the proxy is the HTTP/2 client).
    pub worker_listen: String,
    /// Admin endpoint: `/metrics`, `/healthz`, `/status`.
    pub admin_listen: String,
    /// The redb ledger file.
    pub store_path: String,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest `max_tokens`.
    pub max_tokens: u64,
    /// Generation bound reserved for requests without `max_tokens`.
    pub default_max_tokens: u64,
    /// Largest `n`.
    pub max_n: u64,
    /// Coefficient cap when the client sends none, thousandths.
    pub default_max_coefficient: u32,
    /// Whole-request timeout, ms: a worker still answering then is cut and nobody pays (a client
    /// header may ask for less, which ends only the client's side; see docs/protocol.md "Charging rule").
    pub request_timeout_ms: u64,
    /// Workers tried before giving up on a request (failures before the first byte).
    pub max_attempts: u32,
    /// Settle a client's charges once unsettled charges reach this share of its credit, basis points.
    pub charge_threshold_bps: u32,
    /// Pay a worker once its unpaid earnings reach this, nanoTON.
    pub payout_threshold_nano: u64,
    /// How long a worker that took a pushed payout voucher (and claims itself) has to claim it before
    /// the proxy submits it to the vault itself, ms.
    pub payout_self_submit_after_ms: u64,
    /// How often the store marker is committed on chain, ms.
    pub marker_interval_ms: u64,
    /// How often every escrow with unsettled charges and every worker due a payout is looked at
    /// (also right after start), ms. An escrow seen closing is settled at that look, so this plus the
    /// chain refresh must stay well below the escrows' close delay.
    pub settle_interval_ms: u64,
    /// An escrow whose unsettled charges did not change for this long is settled whatever its
    /// threshold, ms.
    pub settle_idle_ms: u64,
    /// How often workers' announcements (coefficient, capacity) are refreshed, ms.
    pub announce_poll_ms: u64,
    /// Longest wait for a worker's announcement (at connect and at each poll), ms; a worker that
    /// does not answer in time is disconnected.
    pub announce_timeout_ms: u64,
    /// Minimum success rate of a worker with 5+ recent responses, thousandths (only the worker's
    /// own faults count; see `registry`).
    pub min_success_milli: u64,
    /// Half-life of a worker's success and fault counts, ms: old results fade.
    pub health_half_life_ms: u64,
    /// How often a worker skipped for its success rate is given one request again, ms.
    pub probe_interval_ms: u64,
    /// Largest announced capacity the proxy believes (and ranks workers by).
    pub max_worker_capacity: u32,
    /// Limits of the client and worker listeners (`cocoon_daemon::serve::LimitsSection`).
    pub limits: LimitsSection,
    /// Hex Ed25519 seed of the proxy key (development; same as `tls.dev_key`, which wins).
    pub dev_key: String,
    /// TLS and attestation (`cocoon_daemon::tls_config`).
    pub tls: TlsSection,
    /// The chain: root, operator wallet, refresh and binding policy.
    pub chain: ChainSection,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            client_listen: "127.0.0.1:9300".into(),
            worker_listen: "127.0.0.1:9301".into(),
            admin_listen: "127.0.0.1:9302".into(),
            store_path: "cocoon-proxy.redb".into(),
            max_body_bytes: 1 << 20,
            max_tokens: 32_768,
            default_max_tokens: 4096,
            max_n: 4,
            default_max_coefficient: 4000,
            request_timeout_ms: 600_000,
            max_attempts: 3,
            charge_threshold_bps: 5000,
            payout_threshold_nano: 10_000_000_000,
            payout_self_submit_after_ms: 120_000,
            marker_interval_ms: 60_000,
            settle_interval_ms: 30_000,
            settle_idle_ms: 3_600_000,
            announce_poll_ms: 2000,
            announce_timeout_ms: 10_000,
            min_success_milli: 500,
            health_half_life_ms: 60_000,
            probe_interval_ms: 5_000,
            max_worker_capacity: 1024,
            limits: LimitsSection::default(),
            dev_key: String::new(),
            tls: TlsSection::default(),
            chain: ChainSection::default(),
        }
    }
}

impl ProxyConfig {
    /// Request limits derived from the config.
    pub fn limits(&self) -> RequestLimits {
        RequestLimits {
            max_body_bytes: self.max_body_bytes,
            max_tokens: self.max_tokens,
            default_max_tokens: self.default_max_tokens,
            max_n: self.max_n,
        }
    }
}

impl Validate for ProxyConfig {
    /// Everything, including the `[tls]` and `[chain]` sections the binary builds from.
    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_serving()?;
        self.tls.validate()?;
        self.chain.validate()
    }
}

impl ProxyConfig {
    /// The serving settings only (listeners, store, limits, thresholds): what [`crate::start`]
    /// checks, since it is handed its TLS and chain already built.
    pub fn validate_serving(&self) -> Result<(), ConfigError> {
        for (field, addr) in [
            ("client_listen", &self.client_listen),
            ("worker_listen", &self.worker_listen),
            ("admin_listen", &self.admin_listen),
        ] {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(field, "must be ip:port"));
            }
        }
        if self.store_path.is_empty() {
            return Err(invalid("store_path", "must not be empty"));
        }
        if self.max_body_bytes < 64 {
            return Err(invalid("max_body_bytes", "at least 64"));
        }
        if self.max_tokens == 0
            || self.default_max_tokens == 0
            || self.default_max_tokens > self.max_tokens
        {
            return Err(invalid("default_max_tokens", "between 1 and max_tokens"));
        }
        if self.max_n == 0 {
            return Err(invalid("max_n", "at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "at least 1"));
        }
        if self.charge_threshold_bps == 0 || self.charge_threshold_bps > 10_000 {
            return Err(invalid("charge_threshold_bps", "between 1 and 10000"));
        }
        if self.request_timeout_ms == 0
            || self.marker_interval_ms == 0
            || self.settle_interval_ms == 0
            || self.announce_poll_ms == 0
        {
            return Err(invalid(
                "request_timeout_ms",
                "timeouts and intervals must be positive",
            ));
        }
        if self.announce_timeout_ms == 0
            || self.health_half_life_ms == 0
            || self.probe_interval_ms == 0
        {
            return Err(invalid(
                "announce_timeout_ms",
                "announce_timeout_ms, health_half_life_ms and probe_interval_ms must be positive",
            ));
        }
        if self.max_worker_capacity == 0 {
            return Err(invalid("max_worker_capacity", "at least 1"));
        }
        self.limits.validate()?;
        if self.min_success_milli > 1000 {
            return Err(invalid("min_success_milli", "at most 1000"));
        }
        if !self.dev_key.is_empty() && self.dev_key.len() != 64 {
            return Err(invalid("dev_key", "64 hex digits"));
        }
        Ok(())
    }
}
