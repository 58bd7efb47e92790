//! What the worker measures about itself before it serves: the configuration hash its claims (and
//! a simulated RTMR3) carry, the real-TEE endpoint rules, and the weights file against the model
//! hash.
//!
//! The measured settings ([`MeasuredSettings`]) are the ones that decide what the worker does with a
//! prompt or a price: the engine endpoint, the model name and hash, the price coefficient and
//! limits, the TLS mode, and where and what on chain it trusts (API endpoints, network, root, owner,
//! check cadence, `allow_unattested`). Not measured: the proxies it dials (each is attested at the
//! handshake), ports of its own admin endpoint, key and mnemonic sources, reconnect timings.

use std::io::Read;
use std::path::Path;

use cocoon_daemon::config::ConfigError;
use cocoon_daemon::measured::require_local_endpoint;
use cocoon_daemon::tls_config::TlsMode;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::WorkerConfig;

/// Why the worker refuses to start with its configuration.
#[derive(Debug, thiserror::Error)]
pub enum MeasuredError {
    /// A real-TEE rule (engine endpoint, chain endpoints, weights file) is broken.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The weights file could not be read.
    #[error("reading the weights file {path}: {message}")]
    WeightsUnreadable {
        /// The configured `model_path`.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The weights file does not hash to the configured model hash.
    #[error(
        "the weights file {path} hashes to {file_hash}, not the configured model_hash {configured}: refusing to serve other weights than the root's model"
    )]
    WeightsMismatch {
        /// The configured `model_path`.
        path: String,
        /// SHA-256 of the file, hex.
        file_hash: String,
        /// The configured `model_hash`, hex.
        configured: String,
    },
}

/// The settings the configuration hash covers (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasuredSettings {
    /// `[tls] mode`.
    pub tls_mode: String,
    /// The engine's base URL.
    pub engine_url: String,
    /// The model name served.
    pub model: String,
    /// The model hash (the weights file's SHA-256 when `model_path` is set), hex.
    pub model_hash: String,
    /// Price coefficient, thousandths.
    pub coefficient: u32,
    /// Concurrent requests.
    pub capacity: u32,
    /// Largest request body, bytes.
    pub max_body_bytes: u64,
    /// The chain API.
    pub chain_api_url: String,
    /// The second chain API reads are cross-checked against (empty: none).
    pub chain_cross_check_url: String,
    /// `mainnet` or `testnet`.
    pub chain_testnet: bool,
    /// The root contract (empty: no chain checks).
    pub chain_root: String,
    /// The owner wallet.
    pub chain_owner: String,
    /// Chain check interval, ms.
    pub chain_check_interval_ms: u64,
    /// How long a good check stays valid, ms.
    pub chain_max_stale_ms: u64,
    /// Whether an unattested identity may serve (development only).
    pub chain_allow_unattested: bool,
}

impl MeasuredSettings {
    /// The measured view of `config` running in `mode`.
    pub fn of(config: &WorkerConfig, mode: TlsMode) -> Self {
        let chain = &config.chain;
        MeasuredSettings {
            tls_mode: mode.as_str().to_owned(),
            engine_url: config.engine_url.clone(),
            model: config.model.clone(),
            model_hash: config.model_hash.to_ascii_lowercase(),
            coefficient: config.coefficient,
            capacity: config.capacity,
            max_body_bytes: u64::try_from(config.max_body_bytes).unwrap_or(u64::MAX),
            chain_api_url: chain.endpoint.api_url.clone(),
            chain_cross_check_url: chain.endpoint.cross_check_url.clone(),
            chain_testnet: chain.endpoint.network.is_testnet(),
            chain_root: chain.root.clone(),
            chain_owner: chain.owner.clone(),
            chain_check_interval_ms: chain.check_interval_ms,
            chain_max_stale_ms: chain.max_stale_ms,
            chain_allow_unattested: chain.allow_unattested,
        }
    }
}

/// The worker's measured configuration hash in `mode`.
pub fn config_hash(config: &WorkerConfig, mode: TlsMode) -> Result<[u8; 32], ConfigError> {
    cocoon_daemon::measured::config_hash("worker", &MeasuredSettings::of(config, mode))
}

/// SHA-256 of the file at `path`, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// The checks a worker runs before it builds anything, in `mode`:
/// - `tdx`: the engine endpoint is a loopback address, the chain endpoints are https, and a
///   weights file (`model_path`) is configured;
/// - every mode: when `model_path` is set, the file is hashed and must equal `model_hash` (the
///   chain monitor then requires that hash, under the configured model name, in the root's model
///   registry).
///
/// Returns the weights hash when a file was hashed.
pub fn check_start(
    config: &WorkerConfig,
    mode: TlsMode,
) -> Result<Option<[u8; 32]>, MeasuredError> {
    if mode == TlsMode::Tdx {
        require_local_endpoint("engine_url", &config.engine_url)?;
        if config.chain.enabled() {
            config.chain.endpoint.require_https()?;
        }
        if config.model_path.is_empty() {
            return Err(cocoon_daemon::config::invalid(
                "model_path",
                "tls.mode = \"tdx\" hashes the weights at start: set model_path to the weights file the engine serves",
            )
            .into());
        }
    }
    if config.model_path.is_empty() {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let file_hash =
        hash_file(Path::new(&config.model_path)).map_err(|e| MeasuredError::WeightsUnreadable {
            path: config.model_path.clone(),
            message: e.to_string(),
        })?;
    let configured = config.model_hash_bytes()?;
    if file_hash != configured {
        return Err(MeasuredError::WeightsMismatch {
            path: config.model_path.clone(),
            file_hash: hex::encode(file_hash),
            configured: hex::encode(configured),
        });
    }
    tracing::info!(
        path = %config.model_path,
        model_hash = %hex::encode(file_hash),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "weights file hashed: it is the configured model"
    );
    Ok(Some(file_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> WorkerConfig {
        let mut c = WorkerConfig {
            proxies: vec!["127.0.0.1:1".into()],
            ..WorkerConfig::default()
        };
        c.chain.root = "0:".to_owned() + &"11".repeat(32);
        c.chain.owner = "0:".to_owned() + &"22".repeat(32);
        c
    }

    #[test]
    fn the_hash_covers_engine_model_prices_limits_and_chain_but_not_proxies() {
        let c = base();
        let h = config_hash(&c, TlsMode::Simulated).unwrap();
        assert_eq!(h, config_hash(&c.clone(), TlsMode::Simulated).unwrap());
        assert_ne!(h, config_hash(&c, TlsMode::Tdx).unwrap());
        let changes: Vec<fn(&mut WorkerConfig)> = vec![
            |c| c.engine_url = "http://127.0.0.1:8001".into(),
            |c| c.model = "other".into(),
            |c| c.model_hash = "11".repeat(32),
            |c| c.coefficient = 1001,
            |c| c.capacity = 17,
            |c| c.max_body_bytes = 7,
            |c| c.chain.endpoint.api_url = "https://evil.example/api/v2".into(),
            |c| c.chain.endpoint.cross_check_url = "https://other.example".into(),
            |c| c.chain.root = "0:".to_owned() + &"33".repeat(32),
            |c| c.chain.owner = "0:".to_owned() + &"44".repeat(32),
            |c| c.chain.max_stale_ms += 1,
            |c| c.chain.allow_unattested = true,
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut other = c.clone();
            change(&mut other);
            assert_ne!(
                config_hash(&other, TlsMode::Simulated).unwrap(),
                h,
                "change {i}"
            );
        }
        let mut same = c.clone();
        same.proxies = vec!["10.0.0.1:9".into(), "10.0.0.2:9".into()];
        same.admin_listen = "127.0.0.1:0".into();
        same.reconnect_ms = 5;
        assert_eq!(config_hash(&same, TlsMode::Simulated).unwrap(), h);
    }

    #[test]
    fn tdx_mode_refuses_a_remote_engine_plain_http_chains_and_no_weights_file() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("w.gguf");
        std::fs::write(&weights, b"weights").unwrap();
        let mut ok = base();
        ok.chain.endpoint.api_url = "https://toncenter.com/api/v2".into();
        ok.model_path = weights.display().to_string();
        ok.model_hash = hex::encode(Sha256::digest(b"weights"));
        assert_eq!(
            check_start(&ok, TlsMode::Tdx).unwrap(),
            Some(Sha256::digest(b"weights").into())
        );
        let field_of = |c: &WorkerConfig| match check_start(c, TlsMode::Tdx) {
            Err(MeasuredError::Config(ConfigError::Invalid { field, .. })) => field,
            other => panic!("expected a config refusal, got {other:?}"),
        };
        let mut remote = ok.clone();
        remote.engine_url = "http://10.1.2.3:8000".into();
        assert_eq!(field_of(&remote), "engine_url");
        let mut plain = ok.clone();
        plain.chain.endpoint.api_url = "http://toncenter.com/api/v2".into();
        assert_eq!(field_of(&plain), "chain.api_url");
        let mut plain_second = ok.clone();
        plain_second.chain.endpoint.cross_check_url = "http://other.example".into();
        assert_eq!(field_of(&plain_second), "chain.cross_check_url");
        let mut no_file = ok.clone();
        no_file.model_path.clear();
        assert_eq!(field_of(&no_file), "model_path");
        // Simulated mode keeps development setups (remote engine, http devnet) but still hashes.
        assert!(check_start(&remote, TlsMode::Simulated).is_ok());
        assert_eq!(check_start(&no_file, TlsMode::Simulated).unwrap(), None);
    }

    #[test]
    fn weights_that_do_not_hash_to_the_model_hash_are_refused_in_every_mode() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("w.gguf");
        std::fs::write(&weights, b"other weights").unwrap();
        let mut c = base();
        c.model_path = weights.display().to_string();
        c.model_hash = hex::encode(Sha256::digest(b"weights"));
        for mode in [TlsMode::Simulated, TlsMode::DevInsecure] {
            match check_start(&c, mode) {
                Err(MeasuredError::WeightsMismatch {
                    file_hash,
                    configured,
                    ..
                }) => {
                    assert_eq!(file_hash, hex::encode(Sha256::digest(b"other weights")));
                    assert_eq!(configured, c.model_hash);
                }
                other => panic!("expected a mismatch, got {other:?}"),
            }
        }
        c.model_path = dir.path().join("missing").display().to_string();
        assert!(matches!(
            check_start(&c, TlsMode::Simulated),
            Err(MeasuredError::WeightsUnreadable { .. })
        ));
    }
}
