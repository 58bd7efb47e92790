//! What every role's `[chain]` section shares: the endpoint the chain is read through
//! ([`ChainEndpoint`], `#[serde(flatten)]`ed into each role's section) and the key a role's wallet
//! signs with ([`WalletKey`]), so the TonClient and the wallet are built in one place.

use std::sync::Arc;
use std::time::Duration;

use cocoon_ton::{HttpTonClient, KeyPair, Network, TonAddress, TonClient, TonClientConfig, Wallet};
use cocoon_ton::{TonError, WalletVersion};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, invalid};

/// Spacing of requests to toncenter.com without an API key (it answers 1 request per second).
pub const TONCENTER_KEYLESS_INTERVAL: Duration = Duration::from_millis(1100);

/// Where a role reads the chain: a toncenter-v2 compatible API, its key, and the network the
/// role's addresses and wallet belong to. Flattened into each role's `[chain]`, so the keys stay
/// `chain.api_url`, `chain.api_key_env`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChainEndpoint {
    /// toncenter API v2 base URL (toncenter, a self-hosted ton-http-api, or the devnet).
    pub api_url: String,
    /// The API key itself (prefer `api_key_env` or `api_key_file`: a config file is often shared).
    pub api_key: String,
    /// Name of the environment variable holding the API key (empty: none).
    pub api_key_env: String,
    /// File holding the API key (empty: none).
    pub api_key_file: String,
    /// `mainnet` or `testnet`: wallet ids and address flags.
    #[serde(with = "network_name")]
    pub network: Network,
    /// A second, independent toncenter-v2 API (empty: none). When set, every read of contract
    /// state (which decides admission and allowlists) is made through both and a disagreement is
    /// refused with a logged reason (`cocoon_onchain::crosscheck`). Sends go to `api_url` only.
    pub cross_check_url: String,
}

impl Default for ChainEndpoint {
    fn default() -> Self {
        ChainEndpoint {
            api_url: "https://toncenter.com/api/v2".into(),
            api_key: String::new(),
            api_key_env: String::new(),
            api_key_file: String::new(),
            network: Network::Mainnet,
            cross_check_url: String::new(),
        }
    }
}

/// Parses a TON address of config key `field`.
pub fn parse_address(field: &'static str, text: &str) -> Result<TonAddress, ConfigError> {
    cocoon_ton::parse_address(text).map_err(|e| invalid(field, format!("`{text}`: {e}")))
}

impl ChainEndpoint {
    /// An endpoint at `api_url` with no key on `network`.
    pub fn new(api_url: impl Into<String>, network: Network) -> Self {
        ChainEndpoint {
            api_url: api_url.into(),
            network,
            ..ChainEndpoint::default()
        }
    }

    /// Checks the URL and that at most one key source is set (no network access).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.api_url.starts_with("http://") || self.api_url.starts_with("https://")) {
            return Err(invalid("chain.api_url", "must be an http(s) URL"));
        }
        if !self.cross_check_url.is_empty() {
            if !(self.cross_check_url.starts_with("http://")
                || self.cross_check_url.starts_with("https://"))
            {
                return Err(invalid("chain.cross_check_url", "must be an http(s) URL"));
            }
            if self.cross_check_url.trim_end_matches('/') == self.api_url.trim_end_matches('/') {
                return Err(invalid(
                    "chain.cross_check_url",
                    "must be another provider than api_url",
                ));
            }
        }
        let sources = [&self.api_key, &self.api_key_env, &self.api_key_file];
        if sources.iter().filter(|s| !s.is_empty()).count() > 1 {
            return Err(invalid(
                "chain.api_key_env",
                "set at most one of api_key, api_key_env, api_key_file",
            ));
        }
        Ok(())
    }

    /// The real-TEE rule for chain endpoints (`tls.mode = "tdx"`): `api_url` and `cross_check_url`
    /// (when set) are `https://` (`crate::measured::require_https`).
    pub fn require_https(&self) -> Result<(), ConfigError> {
        crate::measured::require_https("chain.api_url", &self.api_url)?;
        if !self.cross_check_url.is_empty() {
            crate::measured::require_https("chain.cross_check_url", &self.cross_check_url)?;
        }
        Ok(())
    }

    /// The API key from the value, the environment variable or the file (`None` when none is
    /// set or the variable is unset or empty).
    pub fn api_key(&self) -> Result<Option<String>, ConfigError> {
        let key = if !self.api_key.is_empty() {
            self.api_key.clone()
        } else if !self.api_key_env.is_empty() {
            std::env::var(&self.api_key_env).unwrap_or_default()
        } else if !self.api_key_file.is_empty() {
            std::fs::read_to_string(&self.api_key_file)
                .map_err(|e| invalid("chain.api_key_file", format!("{}: {e}", self.api_key_file)))?
        } else {
            return Ok(None);
        };
        let key = key.trim().to_owned();
        Ok((!key.is_empty()).then_some(key))
    }

    /// The client settings: the API key, and toncenter.com's keyless rate limit when there is none.
    pub fn client_config(&self) -> Result<TonClientConfig, ConfigError> {
        let mut config = TonClientConfig::new(self.api_url.clone());
        config.api_key = self.api_key()?;
        if config.api_key.is_none() && self.api_url.contains("toncenter.com") {
            config.min_interval = Some(TONCENTER_KEYLESS_INTERVAL);
        }
        Ok(config)
    }

    /// The chain client every role reads and sends through; with `cross_check_url`, contract-state
    /// reads are cross-checked against that second provider
    /// ([`cocoon_onchain::crosscheck::CrossCheckedClient`]).
    pub fn client(&self) -> Result<Arc<dyn TonClient>, ChainClientError> {
        let client: Arc<dyn TonClient> = Arc::new(HttpTonClient::new(self.client_config()?)?);
        if self.cross_check_url.is_empty() {
            return Ok(client);
        }
        let mut second = TonClientConfig::new(self.cross_check_url.clone());
        if self.cross_check_url.contains("toncenter.com") {
            second.min_interval = Some(TONCENTER_KEYLESS_INTERVAL);
        }
        let second: Arc<dyn TonClient> = Arc::new(HttpTonClient::new(second)?);
        tracing::info!(
            primary = %self.api_url,
            cross_check = %self.cross_check_url,
            "contract-state reads are cross-checked against a second provider"
        );
        Ok(Arc::new(
            cocoon_onchain::crosscheck::CrossCheckedClient::new(client, second),
        ))
    }
}

/// Why the chain client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChainClientError {
    /// The key could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built.
    #[error("chain client: {0}")]
    Client(#[from] cocoon_ton::ClientError),
}

/// Where a wallet's private key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A 24-word mnemonic in this environment variable.
    MnemonicEnv(String),
    /// A 24-word mnemonic in this file.
    MnemonicFile(String),
    /// A 32-byte Ed25519 seed as 64 hex digits in this file.
    SeedFile(String),
}

/// One key setting of a role: its value (empty when unset), the kind of source it names, and its
/// config key.
pub type KeySetting<'a> = (&'a str, fn(String) -> KeySource, &'static str);

/// A role's signing wallet: contract version, network and key source; the role names the config
/// key each source came from, so errors point at the operator's own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletKey {
    /// Wallet contract.
    pub version: WalletVersion,
    /// Network (wallet id, address flags).
    pub network: Network,
    /// Where the key is.
    pub source: KeySource,
    /// The config key of `source`, for errors.
    pub field: &'static str,
}

impl WalletKey {
    /// The first key setting that is set, in the role's order of precedence: `(value, source kind,
    /// config key)`; `None` when none is set.
    pub fn first_configured(
        version: WalletVersion,
        network: Network,
        settings: &[KeySetting<'_>],
    ) -> Option<WalletKey> {
        let (value, kind, field) = settings.iter().find(|(value, _, _)| !value.is_empty())?;
        Some(WalletKey {
            version,
            network,
            source: kind((*value).to_owned()),
            field,
        })
    }

    /// Reads the key and builds the wallet.
    pub fn wallet(&self) -> Result<Wallet, ConfigError> {
        let field = self.field;
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|e| invalid(field, format!("{path}: {e}")))
        };
        let wallet = match &self.source {
            KeySource::MnemonicEnv(var) => {
                let phrase = std::env::var(var).map_err(|_| {
                    invalid(field, format!("environment variable {var} is not set"))
                })?;
                self.mnemonic_wallet(&phrase)
            }
            KeySource::MnemonicFile(path) => self.mnemonic_wallet(&read(path)?),
            KeySource::SeedFile(path) => {
                let text = read(path)?;
                let mut seed = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut seed)
                    .map_err(|_| invalid(field, format!("{path}: 64 hex digits")))?;
                wallet_for_seed(&seed, self.version, self.network)
            }
        };
        wallet.map_err(|e| invalid(field, e.to_string()))
    }

    /// As [`WalletKey::wallet`], checking the wallet is `expected` (config key `address_field`).
    pub fn wallet_at(
        &self,
        expected: &TonAddress,
        address_field: &'static str,
    ) -> Result<Wallet, ConfigError> {
        let wallet = self.wallet()?;
        if wallet.address() != expected {
            return Err(invalid(
                address_field,
                format!(
                    "the configured key's {} wallet is {}, not the configured {address_field}",
                    version_name(self.version),
                    wallet.address_friendly()
                ),
            ));
        }
        Ok(wallet)
    }

    fn mnemonic_wallet(&self, phrase: &str) -> Result<Wallet, TonError> {
        let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
        Wallet::from_mnemonic(&phrase, self.version, self.network)
    }
}

/// The wallet of an Ed25519 seed (the local network's and tests' wallets come from raw keys).
pub fn wallet_for_seed(
    seed: &[u8; 32],
    version: WalletVersion,
    network: Network,
) -> Result<Wallet, TonError> {
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let public = key.verifying_key().to_bytes().to_vec();
    let mut secret = key.to_bytes().to_vec();
    secret.extend_from_slice(&public);
    let pair = KeyPair {
        public_key: public,
        secret_key: secret,
    };
    Wallet::from_key_pair(pair, version, network)
}

/// The config name of a wallet version.
pub fn version_name(version: WalletVersion) -> &'static str {
    match version {
        WalletVersion::V4R2 => "v4r2",
        WalletVersion::V5R1 => "v5r1",
    }
}

/// `network = "mainnet" | "testnet"` as a typed [`Network`] (parsed by cocoon-ton's `FromStr`).
pub mod network_name {
    use cocoon_ton::Network;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the network's name.
    pub fn serialize<S: Serializer>(network: &Network, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if network.is_testnet() {
            "testnet"
        } else {
            "mainnet"
        })
    }

    /// Parses a network name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Network, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|e| serde::de::Error::custom(format!("chain.network: {e}")))
    }
}

/// `wallet_version = "v4r2" | "v5r1"` as a typed [`WalletVersion`] (cocoon-ton's `FromStr`).
pub mod wallet_version_name {
    use cocoon_ton::WalletVersion;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the version's name.
    pub fn serialize<S: Serializer>(version: &WalletVersion, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::version_name(*version))
    }

    /// Parses a version name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WalletVersion, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|e| serde::de::Error::custom(format!("chain.wallet_version: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_refuses_non_http_urls_and_two_key_sources() {
        assert!(ChainEndpoint::default().validate().is_ok());
        let ftp = ChainEndpoint::new("ftp://x", Network::Mainnet);
        assert!(matches!(
            ftp.validate(),
            Err(ConfigError::Invalid {
                field: "chain.api_url",
                ..
            })
        ));
        let two = ChainEndpoint {
            api_key: "k".into(),
            api_key_env: "K".into(),
            ..ChainEndpoint::default()
        };
        assert!(two.validate().is_err());
    }

    #[test]
    fn toncenter_without_a_key_is_throttled_and_a_key_is_always_sent() {
        let keyless = ChainEndpoint::default().client_config().unwrap();
        assert_eq!(keyless.min_interval, Some(TONCENTER_KEYLESS_INTERVAL));
        assert_eq!(keyless.api_key, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "secret\n").unwrap();
        let keyed = ChainEndpoint {
            api_key_file: file.display().to_string(),
            ..ChainEndpoint::default()
        };
        let config = keyed.client_config().unwrap();
        assert_eq!(config.api_key.as_deref(), Some("secret"));
        assert_eq!(config.min_interval, None);
        let local = ChainEndpoint {
            api_key: "devkey".into(),
            ..ChainEndpoint::new("http://127.0.0.1:8081", Network::Testnet)
        };
        let config = local.client_config().unwrap();
        assert_eq!(config.api_key.as_deref(), Some("devkey"));
        assert_eq!(config.min_interval, None);
    }

    #[test]
    fn a_seed_file_makes_the_wallet_of_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        std::fs::write(&path, hex::encode([7u8; 32])).unwrap();
        let key = WalletKey {
            version: WalletVersion::V4R2,
            network: Network::Testnet,
            source: KeySource::SeedFile(path.display().to_string()),
            field: "chain.operator_key_file",
        };
        let expected = wallet_for_seed(&[7; 32], WalletVersion::V4R2, Network::Testnet).unwrap();
        let wallet = key.wallet_at(expected.address(), "chain.operator").unwrap();
        assert_eq!(wallet.address(), expected.address());
        let other = wallet_for_seed(&[8; 32], WalletVersion::V4R2, Network::Testnet).unwrap();
        match key.wallet_at(other.address(), "chain.operator") {
            Err(ConfigError::Invalid { field, message }) => {
                assert_eq!(field, "chain.operator");
                assert!(message.contains(&expected.address_friendly()), "{message}");
            }
            other => panic!(
                "expected a mismatch, got {:?}",
                other.map(|w| w.address_friendly())
            ),
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(key.wallet().is_err());
    }
}
