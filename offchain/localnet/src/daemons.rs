//! Who is who in a local network (wallets, keys) and the daemons' configs, written as an operator
//! would write their files.

use std::path::Path;

use cocoon_daemon::chain_endpoint::ChainEndpoint;
use cocoon_daemon::tls_config::{KeySource, TlsMode, TlsSection};
use cocoon_gateway::GatewayConfig;
use cocoon_gateway::config::GatewayChain;
use cocoon_kms::KmsConfig;
use cocoon_proxy::ProxyConfig;
use cocoon_proxy::config::ChainSection;
use cocoon_ton::{Network, TonAddress, Wallet};
use cocoon_worker::WorkerConfig;
use ed25519_dalek::SigningKey;

use crate::error::{LocalnetError, daemon};

/// The four parties' wallets.
#[derive(Debug, Clone)]
pub struct Parties {
    /// Root owner.
    pub governance: Wallet,
    /// Proxy operator (stake, vault, escrow counterparty).
    pub proxy_operator: Wallet,
    /// GPU owner (worker stake, receives payouts).
    pub gpu_owner: Wallet,
    /// App developer (escrow).
    pub client: Wallet,
}

/// The keys of a local network.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The proxy's TLS key (registered in the root; signs vouchers).
    pub proxy: SigningKey,
    /// The worker's TLS key (bound in its stake; signs receipts).
    pub worker: SigningKey,
    /// The client gateway's TLS key (its escrow's `client_key`; the gateway names the client
    /// wallet, and the proxy binds the key once the escrow agrees).
    pub client: SigningKey,
    /// The proxy operator's wallet key (sends settlements).
    pub operator: SigningKey,
}

/// The daemons' configs.
#[derive(Debug, Clone)]
pub struct Configs {
    /// The proxy's.
    pub proxy: ProxyConfig,
    /// The worker's (its `proxies` are filled in once the proxy listens).
    pub worker: WorkerConfig,
    /// The gateway's (it finds the proxy in the root).
    pub gateway: GatewayConfig,
    /// The key service's.
    pub kms: KmsConfig,
}

/// `[tls]` of every daemon here: the simulated provider with its default image label.
pub fn simulated_tls() -> TlsSection {
    TlsSection::with_mode(TlsMode::Simulated)
}

/// The simulated image hash of a worker built from `config`: its RTMR3 measured the worker's
/// configuration hash (`cocoon_worker::measured`), so the root must allow this hash for it.
pub fn measured_worker_image(config: &WorkerConfig) -> Result<[u8; 32], LocalnetError> {
    let hash = cocoon_worker::measured::config_hash(config, config.tls.mode).map_err(|e| {
        LocalnetError::Daemon {
            step: "measuring the worker's configuration",
            message: e.to_string(),
        }
    })?;
    Ok(config.tls.simulated_image_hash_measured(&hash))
}

/// The image label of the local network's (simulated) key service: its own image, allowed for the
/// `kms` role only.
pub const KMS_IMAGE_LABEL: &str = "cocoon-kms-simulated";

/// `[tls]` of the key service here.
pub fn kms_tls() -> TlsSection {
    TlsSection {
        image_label: KMS_IMAGE_LABEL.into(),
        ..simulated_tls()
    }
}

/// Switches `tls` to keys from the key service at `kms_addr`, the operator's binding put in
/// `dir/<name>.binding` (the daemon writes its boot key to `<name>.binding.boot-key`).
pub fn with_kms(tls: &TlsSection, dir: &Path, name: &str, kms_addr: &str) -> TlsSection {
    TlsSection {
        key_source: KeySource::Kms,
        kms_url: kms_addr.to_owned(),
        kms_binding_file: dir.join(format!("{name}.binding")).display().to_string(),
        key_file: String::new(),
        dev_key: String::new(),
        ..tls.clone()
    }
}

fn key_file(dir: &Path, name: &str, key: &SigningKey) -> Result<String, LocalnetError> {
    let path = dir.join(name);
    std::fs::write(&path, hex::encode(key.to_bytes())).map_err(daemon("writing a key file"))?;
    Ok(path.display().to_string())
}

/// The configs of the daemons of a local network in `dir`: every daemon on 127.0.0.1:0, RA-TLS
/// with simulated quotes, keys in files (INSECURE; [`with_kms`] switches the proxy and the worker
/// to the key service, as [`crate::localnet::LocalNet`] does), the chain at `api_url`.
#[allow(clippy::too_many_arguments)]
pub fn configs(
    dir: &Path,
    keys: &Keys,
    api_url: &str,
    root: &TonAddress,
    parties: &Parties,
    engine_url: &str,
    model: &str,
    model_hash: &str,
) -> Result<Configs, LocalnetError> {
    let tls = |name: &str, key: &SigningKey| -> Result<TlsSection, LocalnetError> {
        Ok(TlsSection {
            key_file: key_file(dir, name, key)?,
            ..simulated_tls()
        })
    };
    let root_hex = root.to_hex();
    let endpoint = ChainEndpoint::new(api_url, Network::Testnet);
    let proxy = ProxyConfig {
        client_listen: "127.0.0.1:0".into(),
        worker_listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        store_path: dir.join("proxy-ledger.redb").display().to_string(),
        announce_poll_ms: 200,
        tls: tls("proxy.key", &keys.proxy)?,
        chain: ChainSection {
            endpoint: endpoint.clone(),
            root: root_hex.clone(),
            operator: parties.proxy_operator.address().to_hex(),
            operator_key_file: key_file(dir, "operator.key", &keys.operator)?,
            refresh_ms: 2000,
            ..ChainSection::default()
        },
        ..ProxyConfig::default()
    };
    let mut worker = WorkerConfig {
        engine_url: engine_url.to_owned(),
        model: model.to_owned(),
        model_hash: model_hash.to_owned(),
        admin_listen: "127.0.0.1:0".into(),
        reconnect_ms: 100,
        tls: tls("worker.key", &keys.worker)?,
        ..WorkerConfig::default()
    };
    worker.chain.endpoint = endpoint.clone();
    worker.chain.root = root_hex.clone();
    worker.chain.owner = parties.gpu_owner.address().to_hex();
    let gateway = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        tls: tls("client.key", &keys.client)?,
        chain: GatewayChain {
            endpoint,
            root: root_hex,
            wallet: parties.client.address().to_hex(),
            ..GatewayChain::default()
        },
        receipts_path: dir.join("receipts.journal").display().to_string(),
        ..GatewayConfig::default()
    };
    let mut kms = KmsConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        tls: kms_tls(),
        ..KmsConfig::default()
    };
    kms.chain.endpoint = ChainEndpoint::new(api_url, Network::Testnet);
    kms.chain.root = root.to_hex();
    kms.chain.allowlist_refresh_ms = 2000;
    Ok(Configs {
        proxy,
        worker,
        gateway,
        kms,
    })
}
