//! `KmsConfig`: the key service's config file, layered as every daemon's (file, `COCOON_*`,
//! `--set`).

use cocoon_daemon::chain_endpoint::{ChainEndpoint, parse_address};
use cocoon_daemon::config::{ConfigError, Validate, invalid};
use cocoon_daemon::tls_config::{KeySource, TlsSection};
use cocoon_ton::TonAddress;
use serde::{Deserialize, Serialize};

/// `[chain]` of the key service: where the chain is and which root governs the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KmsChain {
    /// `api_url`, `api_key*`, `network`.
    #[serde(flatten)]
    pub endpoint: ChainEndpoint,
    /// The root contract (its allowlists decide who gets keys; keys are derived under it).
    pub root: String,
    /// How often the root's image allowlist is re-read, ms.
    pub allowlist_refresh_ms: u64,
    /// How old the allowlist may get while the chain cannot be read before peers are refused, ms.
    pub allowlist_max_stale_ms: u64,
}

impl Default for KmsChain {
    fn default() -> Self {
        KmsChain {
            endpoint: ChainEndpoint::default(),
            root: String::new(),
            allowlist_refresh_ms: 60_000,
            allowlist_max_stale_ms: 600_000,
        }
    }
}

/// The key service's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KmsConfig {
    /// Where TDs reach it (mutual RA-TLS, HTTP/2).
    pub listen: String,
    /// `/metrics`, `/healthz`, `/status` (plain HTTP).
    pub admin_listen: String,
    /// A running replica (`host:port`) to copy the master key from over mutual RA-TLS; empty: this
    /// is the first instance and makes a fresh master key.
    pub replicate_from: String,
    /// Derivation epoch (bump only to rotate every released key at once).
    pub epoch: u32,
    /// How this TD attests itself and checks its peers (its own key is a boot key: `key_source`
    /// stays `local`, with no `key_file` or `dev_key` in `tdx` mode).
    pub tls: TlsSection,
    /// The chain.
    pub chain: KmsChain,
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig {
            listen: "127.0.0.1:7400".into(),
            admin_listen: "127.0.0.1:7401".into(),
            replicate_from: String::new(),
            epoch: 0,
            tls: TlsSection::default(),
            chain: KmsChain::default(),
        }
    }
}

impl KmsConfig {
    /// The root's address.
    pub fn root_address(&self) -> Result<TonAddress, ConfigError> {
        parse_address("chain.root", &self.chain.root)
    }
}

impl Validate for KmsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (field, addr) in [
            ("listen", &self.listen),
            ("admin_listen", &self.admin_listen),
        ] {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(field, "must be ip:port"));
            }
        }
        self.tls.validate()?;
        if self.tls.key_source != KeySource::Local {
            return Err(invalid(
                "tls.key_source",
                "the key service makes its own boot key (key_source = \"local\")",
            ));
        }
        if self.chain.root.is_empty() {
            return Err(invalid(
                "chain.root",
                "the key service needs the root: its allowlists decide who gets keys",
            ));
        }
        self.root_address()?;
        self.chain.endpoint.validate()
    }
}
