//! The worker's `[chain]` config section: where the chain is, which root governs the network, which
//! wallet owns the worker's stake and receives its payouts, and when payouts are claimed.

use cocoon_daemon::chain_endpoint::{
    ChainEndpoint, KeySource, WalletKey, parse_address, wallet_version_name,
};
use cocoon_daemon::config::{ConfigError, Validate, invalid};
use cocoon_ton::{TonAddress, Wallet, WalletVersion};
use serde::{Deserialize, Serialize};

/// `[chain]`. An empty `root` turns chain checks off (development only; the binary then requires
/// `tls.mode = "dev-insecure"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainSection {
    /// Where the chain is read (`api_url`, `api_key*`, `network`).
    #[serde(flatten)]
    pub endpoint: ChainEndpoint,
    /// The root contract's address.
    pub root: String,
    /// The GPU owner's wallet: owner of the worker stake and receiver of payouts.
    pub owner: String,
    /// Name of the environment variable holding the owner wallet's 24-word mnemonic. Needed only
    /// to send payout claims; without it (and without `owner_mnemonic_file`) claims are off.
    pub owner_mnemonic_env: String,
    /// File holding the owner wallet's 24-word mnemonic (alternative to `owner_mnemonic_env`).
    pub owner_mnemonic_file: String,
    /// Wallet contract of the owner: `v4r2` or `v5r1`.
    #[serde(with = "wallet_version_name")]
    pub wallet_version: WalletVersion,
    /// How often stake, image and model are checked on chain, ms.
    pub check_interval_ms: u64,
    /// How long the last good check stays valid while the chain cannot be read, ms; after that
    /// the worker stops serving.
    pub max_stale_ms: u64,
    /// Claim a proxy's payout once what it signed exceeds what was claimed by at least this,
    /// nanoTON (0 = claim any amount).
    pub claim_threshold_nano: u64,
    /// How often payout vouchers are compared with the chain, ms.
    pub claim_interval_ms: u64,
    /// File keeping the latest payout voucher per proxy vault across restarts (empty: memory only).
    pub voucher_file: String,
    /// Accept an unattested worker identity (zero image hash) without an image allowlist entry.
    /// INSECURE: development mode only.
    pub allow_unattested: bool,
}

impl Default for ChainSection {
    fn default() -> Self {
        ChainSection {
            endpoint: ChainEndpoint::default(),
            root: String::new(),
            owner: String::new(),
            owner_mnemonic_env: String::new(),
            owner_mnemonic_file: String::new(),
            wallet_version: WalletVersion::V4R2,
            check_interval_ms: 60_000,
            max_stale_ms: 300_000,
            claim_threshold_nano: 10_000_000_000,
            claim_interval_ms: 60_000,
            voucher_file: String::new(),
            allow_unattested: false,
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

    /// The owner wallet address.
    pub fn owner_address(&self) -> Result<TonAddress, ConfigError> {
        parse_address("chain.owner", &self.owner)
    }

    /// The owner's key, when a mnemonic is configured.
    pub fn owner_key(&self) -> Option<WalletKey> {
        WalletKey::first_configured(
            self.wallet_version,
            self.endpoint.network,
            &[
                (
                    &self.owner_mnemonic_env,
                    KeySource::MnemonicEnv,
                    "chain.owner_mnemonic_env",
                ),
                (
                    &self.owner_mnemonic_file,
                    KeySource::MnemonicFile,
                    "chain.owner_mnemonic_file",
                ),
            ],
        )
    }

    /// The owner's signing wallet, when a mnemonic is configured; it must be the `owner` address.
    pub fn owner_wallet(&self) -> Result<Option<Wallet>, ConfigError> {
        self.owner_key()
            .map(|key| key.wallet_at(&self.owner_address()?, "chain.owner"))
            .transpose()
    }
}

impl Validate for ChainSection {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        self.endpoint.validate()?;
        self.root_address()?;
        if self.owner.is_empty() {
            return Err(invalid(
                "chain.owner",
                "the GPU owner's wallet (owner of the worker stake) is required",
            ));
        }
        self.owner_address()?;
        if !self.owner_mnemonic_env.is_empty() && !self.owner_mnemonic_file.is_empty() {
            return Err(invalid(
                "chain.owner_mnemonic_env",
                "set owner_mnemonic_env or owner_mnemonic_file, not both",
            ));
        }
        if self.check_interval_ms == 0 || self.claim_interval_ms == 0 {
            return Err(invalid(
                "chain.check_interval_ms",
                "check and claim intervals must be positive",
            ));
        }
        if self.max_stale_ms < self.check_interval_ms {
            return Err(invalid(
                "chain.max_stale_ms",
                "must be at least check_interval_ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WorkerConfig;
    use cocoon_daemon::config::{Sources, load};

    const ROOT: &str = "0:1111111111111111111111111111111111111111111111111111111111111111";
    const OWNER: &str = "0:2222222222222222222222222222222222222222222222222222222222222222";

    fn field(r: Result<(), ConfigError>) -> &'static str {
        match r {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn a_worker_file_with_chain_and_tls_sections_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worker.toml");
        let text = format!(
            "proxies = [\"127.0.0.1:9001\"]\nhealth_failures = 5\n\
             [tls]\nmode = \"simulated\"\n\
             [chain]\napi_url = \"http://127.0.0.1:8081\"\nroot = \"{ROOT}\"\nowner = \"{OWNER}\"\n\
             claim_threshold_nano = 5000000000\n"
        );
        std::fs::write(&path, text).expect("write");
        let sources = Sources {
            file: Some(path),
            overrides: vec!["chain.check_interval_ms=1000".into()],
            ..Default::default()
        };
        let c: WorkerConfig = load(&sources).expect("loads");
        assert!(c.chain.enabled());
        assert_eq!(c.chain.claim_threshold_nano, 5_000_000_000);
        assert_eq!(c.chain.check_interval_ms, 1000);
        assert_eq!(c.health_failures, 5);
        assert_eq!(c.chain.owner_address().expect("owner").to_hex(), OWNER);
        assert!(c.chain.owner_wallet().expect("no mnemonic").is_none());
    }

    #[test]
    fn unknown_keys_and_bad_names_are_refused_at_load() {
        let load_with = |set: &str| {
            let sources = Sources {
                overrides: vec!["proxies=[\"127.0.0.1:9\"]".into(), set.into()],
                ..Default::default()
            };
            load::<WorkerConfig>(&sources)
        };
        let ok = load_with("chain.network=testnet").expect("a known key loads");
        assert_eq!(ok.chain.endpoint.network, cocoon_ton::Network::Testnet);
        let ok = load_with("chain.wallet_version=v5r1").expect("a known key loads");
        assert_eq!(ok.chain.wallet_version, WalletVersion::V5R1);
        for bad in [
            "chain.api_urll=http://x",
            "chain.network=moonnet",
            "chain.wallet_version=v3",
        ] {
            assert!(
                matches!(load_with(bad), Err(ConfigError::Schema(_))),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn chain_section_refuses_what_cannot_run() {
        assert!(
            ChainSection::default().validate().is_ok(),
            "disabled is valid"
        );
        let good = ChainSection {
            root: ROOT.into(),
            owner: OWNER.into(),
            ..Default::default()
        };
        assert!(good.validate().is_ok());
        let bad = |f: fn(&mut ChainSection)| {
            let mut s = good.clone();
            f(&mut s);
            field(s.validate())
        };
        assert_eq!(bad(|s| s.owner.clear()), "chain.owner");
        assert_eq!(bad(|s| s.owner = "nonsense".into()), "chain.owner");
        assert_eq!(bad(|s| s.root = "nonsense".into()), "chain.root");
        assert_eq!(
            bad(|s| s.endpoint.api_url = "ftp://x".into()),
            "chain.api_url"
        );
        assert_eq!(bad(|s| s.check_interval_ms = 0), "chain.check_interval_ms");
        assert_eq!(bad(|s| s.max_stale_ms = 1), "chain.max_stale_ms");
        assert_eq!(
            bad(|s| {
                s.owner_mnemonic_env = "A".into();
                s.owner_mnemonic_file = "b".into();
            }),
            "chain.owner_mnemonic_env"
        );
        let missing = ChainSection {
            owner_mnemonic_env: "COCOON_TEST_UNSET_MNEMONIC_VARIABLE".into(),
            ..good.clone()
        };
        assert!(
            missing.owner_wallet().is_err(),
            "an unset variable is an error"
        );
    }

    #[test]
    fn the_mnemonic_must_be_the_owner_wallet() {
        // A throwaway test phrase (the CLI tests use the same one).
        let phrase = "remove enroll margin hip deer remember cement blossom word exist fence work \
                      woman proof marine avoid marriage couch assume fancy chunk upper receive icon";
        let wallet =
            Wallet::from_mnemonic(phrase, WalletVersion::V4R2, cocoon_ton::Network::Mainnet)
                .expect("wallet");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("mnemonic");
        cocoon_daemon::secret_file::write_private(&file, format!("{phrase}\n").as_bytes())
            .expect("write");
        let mut s = ChainSection {
            root: ROOT.into(),
            owner: wallet.address().to_hex(),
            owner_mnemonic_file: file.to_str().expect("utf-8").into(),
            ..Default::default()
        };
        let loaded = s.owner_wallet().expect("matches").expect("configured");
        assert_eq!(loaded.address(), wallet.address());
        s.owner = OWNER.into();
        match s.owner_wallet() {
            Err(ConfigError::Invalid { field, message }) => {
                assert_eq!(field, "chain.owner");
                assert!(message.contains(&wallet.address_friendly()), "{message}");
            }
            other => panic!("expected a mismatch, got {:?}", other.map(|w| w.is_some())),
        }
    }
}
