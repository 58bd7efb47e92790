//! The proxy's `[chain]` config section: where the chain is, which root governs the network, the
//! operator's wallet (it sends settlements), and how announced wallets are checked. Which wallet a
//! client or worker key belongs to is not configured: each peer announces its wallet and the proxy
//! binds the key only once the chain agrees (see `cocoon_onchain::OnchainView::bind_client`).

use std::time::Duration;

use cocoon_daemon::chain_endpoint::{
    ChainEndpoint, KeySource, WalletKey, parse_address, wallet_version_name,
};
use cocoon_daemon::config::{ConfigError, invalid};
use cocoon_ton::{TonAddress, Wallet, WalletVersion};
use serde::{Deserialize, Serialize};

/// `[chain]`. An empty `root` means no chain: the binary then requires `--dev-client-credit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainSection {
    /// Where the chain is read (`api_url`, `api_key*`, `network`).
    #[serde(flatten)]
    pub endpoint: ChainEndpoint,
    /// The root contract's address.
    pub root: String,
    /// The operator's wallet: owner of the proxy stake (the vault), the escrows' counterparty, and
    /// the sender of every settlement.
    pub operator: String,
    /// Name of the environment variable holding the operator wallet's 24-word mnemonic.
    pub operator_mnemonic_env: String,
    /// File holding the operator wallet's 24-word mnemonic.
    pub operator_mnemonic_file: String,
    /// File holding the operator wallet's Ed25519 key as 64 hex digits (a 32-byte seed).
    pub operator_key_file: String,
    /// Wallet contract of the operator: `v4r2` or `v5r1`.
    #[serde(with = "wallet_version_name")]
    pub wallet_version: WalletVersion,
    /// How often the cached chain state (params, escrows, stakes) is refreshed, ms.
    pub refresh_ms: u64,
    /// How often the root's image allowlist is re-read, ms.
    pub allowlist_refresh_ms: u64,
    /// How old the allowlist may get while the chain cannot be read before peers are refused, ms.
    pub allowlist_max_stale_ms: u64,
    /// How long to wait for each settlement transaction, ms.
    pub settle_wait_ms: u64,
    /// Attempts per settlement while the chain is unavailable.
    pub settle_attempts: u32,
    /// Commit the ledger's state marker to the vault once it is this many charges above the
    /// chain's (checked every `marker_interval_ms`).
    pub marker_min_charges: u64,
    /// ...or once it moved at all and the last commit is this old, ms.
    pub marker_max_age_ms: u64,
    /// How long a key whose announced wallet the chain does not confirm is refused from memory
    /// before the chain is read for it again, ms.
    pub bind_retry_ms: u64,
    /// Chain lookups for new (unbound) client and worker keys per second, across all peers.
    pub bind_lookups_per_sec: u32,
    /// ...of which one peer (IP address) may take at most this many per second (bursts of four
    /// times this), so that a peer burning fresh keys cannot lock out the others.
    pub bind_lookups_per_peer_per_sec: u32,
    /// Accept workers without attestation (zero image hash) if their stake is good. INSECURE:
    /// development TLS only.
    pub allow_unattested: bool,
    /// INSECURE, development only (refused with `tls.mode = "tdx"`): admit a client key for the
    /// wallet its gateway names once that wallet's escrow exists, without checking the escrow's
    /// `client_key` (for contracts whose escrows do not record it).
    pub dev_trust_client_wallet: bool,
}

impl Default for ChainSection {
    fn default() -> Self {
        ChainSection {
            endpoint: ChainEndpoint::default(),
            root: String::new(),
            operator: String::new(),
            operator_mnemonic_env: String::new(),
            operator_mnemonic_file: String::new(),
            operator_key_file: String::new(),
            wallet_version: WalletVersion::V4R2,
            refresh_ms: 10_000,
            allowlist_refresh_ms: 60_000,
            allowlist_max_stale_ms: 600_000,
            settle_wait_ms: 60_000,
            settle_attempts: 4,
            marker_min_charges: 10_000,
            marker_max_age_ms: 6 * 3600 * 1000,
            bind_retry_ms: 30_000,
            bind_lookups_per_sec: 5,
            bind_lookups_per_peer_per_sec: 1,
            allow_unattested: false,
            dev_trust_client_wallet: false,
        }
    }
}

impl ChainSection {
    /// True when a root is configured.
    pub fn enabled(&self) -> bool {
        !self.root.is_empty()
    }

    /// The root address.
    pub fn root_address(&self) -> Result<TonAddress, ConfigError> {
        parse_address("chain.root", &self.root)
    }

    /// The operator wallet address.
    pub fn operator_address(&self) -> Result<TonAddress, ConfigError> {
        parse_address("chain.operator", &self.operator)
    }

    /// The operator's key, when one of the three key settings is set.
    pub fn operator_key(&self) -> Option<WalletKey> {
        WalletKey::first_configured(
            self.wallet_version,
            self.endpoint.network,
            &[
                (
                    &self.operator_key_file,
                    KeySource::SeedFile,
                    "chain.operator_key_file",
                ),
                (
                    &self.operator_mnemonic_env,
                    KeySource::MnemonicEnv,
                    "chain.operator_mnemonic_env",
                ),
                (
                    &self.operator_mnemonic_file,
                    KeySource::MnemonicFile,
                    "chain.operator_mnemonic_file",
                ),
            ],
        )
    }

    /// The operator's signing wallet (mnemonic from env or file, or a key file); it must be the
    /// configured `operator` address. `None` when none of the three is set.
    pub fn operator_wallet(&self) -> Result<Option<Wallet>, ConfigError> {
        self.operator_key()
            .map(|key| key.wallet_at(&self.operator_address()?, "chain.operator"))
            .transpose()
    }

    /// How announced wallets are checked (negative cache, lookup budget).
    pub fn bind_policy(&self) -> cocoon_onchain::BindPolicy {
        cocoon_onchain::BindPolicy {
            retry_after: Duration::from_millis(self.bind_retry_ms),
            lookups_per_sec: self.bind_lookups_per_sec,
            burst: self.bind_lookups_per_sec.saturating_mul(4).max(1),
            per_peer_lookups_per_sec: self.bind_lookups_per_peer_per_sec,
            per_peer_burst: self.bind_lookups_per_peer_per_sec.saturating_mul(4).max(1),
            dev_trust_client_wallet: self.dev_trust_client_wallet,
            ..cocoon_onchain::BindPolicy::default()
        }
    }

    /// How settlements are sent and the store marker committed.
    pub fn settle_options(&self) -> cocoon_onchain::SettleOptions {
        cocoon_onchain::SettleOptions {
            wait: Duration::from_millis(self.settle_wait_ms),
            attempts: self.settle_attempts,
            marker_min_step: self.marker_min_charges,
            marker_max_age: Duration::from_millis(self.marker_max_age_ms),
            ..cocoon_onchain::SettleOptions::default()
        }
    }

    /// Refresh interval of the chain view.
    pub fn refresh(&self) -> Duration {
        Duration::from_millis(self.refresh_ms)
    }

    /// True when one of the operator key settings is set.
    pub fn has_operator_key(&self) -> bool {
        self.operator_key().is_some()
    }

    /// Checks the section (no network access): addresses, keys, wallet settings, intervals.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        self.endpoint.validate()?;
        self.root_address()?;
        self.operator_address()?;
        let sources = [
            &self.operator_mnemonic_env,
            &self.operator_mnemonic_file,
            &self.operator_key_file,
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .count();
        if sources > 1 {
            return Err(invalid(
                "chain.operator_key_file",
                "set at most one of operator_mnemonic_env, operator_mnemonic_file, operator_key_file (none: the CLI's keystore)",
            ));
        }
        if self.refresh_ms == 0
            || self.allowlist_refresh_ms == 0
            || self.allowlist_max_stale_ms < self.allowlist_refresh_ms
            || self.settle_wait_ms == 0
            || self.settle_attempts == 0
            || self.bind_lookups_per_sec == 0
            || self.bind_lookups_per_peer_per_sec == 0
            || self.bind_lookups_per_peer_per_sec > self.bind_lookups_per_sec
        {
            return Err(invalid(
                "chain.refresh_ms",
                "intervals, attempts and bind_lookups_per_sec must be positive, bind_lookups_per_peer_per_sec between 1 and bind_lookups_per_sec, allowlist_max_stale_ms at least allowlist_refresh_ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_daemon::chain_endpoint::wallet_for_seed;
    use cocoon_ton::Network;

    fn testnet_wallet(seed: u8) -> (tempfile::TempDir, String, Wallet) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.key");
        std::fs::write(&path, hex::encode([seed; 32])).unwrap();
        let s = ChainSection {
            root: "0:".to_owned() + &"11".repeat(32),
            operator: "0:".to_owned() + &"22".repeat(32),
            operator_key_file: path.display().to_string(),
            endpoint: ChainEndpoint::new("https://toncenter.com/api/v2", Network::Testnet),
            ..Default::default()
        };
        let err = s.operator_wallet().unwrap_err().to_string();
        assert!(err.contains("not the configured chain.operator"), "{err}");
        // The wallet the key makes, whatever the configured address.
        let wallet = wallet_for_seed(&[seed; 32], WalletVersion::V4R2, Network::Testnet).unwrap();
        (dir, path.display().to_string(), wallet)
    }

    #[test]
    fn operator_key_file_must_make_the_configured_wallet() {
        let (_dir, path, wallet) = testnet_wallet(5);
        let s = ChainSection {
            root: "0:".to_owned() + &"11".repeat(32),
            operator: wallet.address().to_hex(),
            operator_key_file: path,
            endpoint: ChainEndpoint::new("https://toncenter.com/api/v2", Network::Testnet),
            ..Default::default()
        };
        s.validate().unwrap();
        let got = s.operator_wallet().unwrap().unwrap();
        assert_eq!(got.address(), wallet.address());
    }

    #[test]
    fn validation_names_the_bad_key() {
        let (_dir, path, wallet) = testnet_wallet(6);
        let base = ChainSection {
            root: "0:".to_owned() + &"11".repeat(32),
            operator: wallet.address().to_hex(),
            operator_key_file: path,
            endpoint: ChainEndpoint::new("https://toncenter.com/api/v2", Network::Testnet),
            ..Default::default()
        };
        let field = |s: &ChainSection| match s.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        let mut s = base.clone();
        s.operator_mnemonic_env = "X".into();
        assert_eq!(field(&s), "chain.operator_key_file");
        let mut s = base.clone();
        s.bind_lookups_per_sec = 0;
        assert_eq!(field(&s), "chain.refresh_ms");
        let mut s = base.clone();
        s.endpoint.api_url = "toncenter.com".into();
        assert_eq!(field(&s), "chain.api_url");
        let mut s = base;
        s.root = String::new();
        assert!(s.validate().is_ok(), "no root: no chain, nothing to check");
    }
}
