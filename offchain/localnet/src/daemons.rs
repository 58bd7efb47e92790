//! The daemons' configs for a local network, written as an operator would write their files, and the
//! worker's start from its config (as `cocoon_worker::run` does).

use std::path::Path;
use std::sync::Arc;

use cocoon_attestation as att;
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::Role;
use cocoon_daemon::tls_config::{TlsMode, TlsSection, build_hop_tls};
use cocoon_gateway::GatewayConfig;
use cocoon_gateway::config::GatewayChain;
use cocoon_proxy::ProxyConfig;
use cocoon_proxy::config::ChainSection;
use cocoon_ton::{TonAddress, TonClient};
use cocoon_worker::chain::WorkerChain;
use cocoon_worker::{RootHook, WorkerConfig, WorkerHandle, WorkerOptions};
use ed25519_dalek::SigningKey;

use crate::localnet::{LocalnetError, Parties, daemon};

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

/// The three daemons' configs.
#[derive(Debug, Clone)]
pub struct Configs {
    /// The proxy's.
    pub proxy: ProxyConfig,
    /// The worker's (its `proxies` are filled in once the proxy listens).
    pub worker: WorkerConfig,
    /// The gateway's (it finds the proxy in the root).
    pub gateway: GatewayConfig,
}

/// `[tls]` of every daemon here: the simulated provider with its default image label.
pub fn simulated_tls() -> TlsSection {
    TlsSection::with_mode(TlsMode::Simulated)
}

fn key_file(dir: &Path, name: &str, key: &SigningKey) -> Result<String, LocalnetError> {
    let path = dir.join(name);
    std::fs::write(&path, hex::encode(key.to_bytes())).map_err(daemon("writing a key file"))?;
    Ok(path.display().to_string())
}

/// The configs of the three daemons of a local network in `dir`: every daemon on 127.0.0.1:0,
/// RA-TLS with simulated quotes, keys in files, the chain at `api_url`.
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
    let proxy = ProxyConfig {
        client_listen: "127.0.0.1:0".into(),
        worker_listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        store_path: dir.join("proxy-ledger.redb").display().to_string(),
        announce_poll_ms: 200,
        tls: tls("proxy.key", &keys.proxy)?,
        chain: ChainSection {
            api_url: api_url.to_owned(),
            root: root_hex.clone(),
            operator: parties.proxy_operator.address().to_hex(),
            operator_key_file: key_file(dir, "operator.key", &keys.operator)?,
            network: "testnet".into(),
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
    worker.chain.api_url = api_url.to_owned();
    worker.chain.root = root_hex.clone();
    worker.chain.owner = parties.gpu_owner.address().to_hex();
    worker.chain.network = "testnet".into();
    let gateway = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        tls: tls("client.key", &keys.client)?,
        chain: GatewayChain {
            api_url: api_url.to_owned(),
            root: root_hex,
            wallet: parties.client.address().to_hex(),
            ..GatewayChain::default()
        },
        receipts_path: dir.join("receipts.journal").display().to_string(),
        ..GatewayConfig::default()
    };
    Ok(Configs {
        proxy,
        worker,
        gateway,
    })
}

fn proxy_images(root: &cocoon_worker::chain::RootView) -> att::policy::AllowlistSnapshot {
    root.proxy_images
        .iter()
        .map(|(hash, &at)| {
            let status = if at == 0 {
                att::policy::ImageStatus::Allowed
            } else {
                att::policy::ImageStatus::Revoked { at: u64::from(at) }
            };
            ((att::Role::Proxy, *hash), status)
        })
        .collect()
}

/// Starts a worker from its config the way `cocoon_worker::run` does: TLS from `[tls]`, proxies'
/// images checked against the root's allowlist, stake, image and model checked on chain.
pub async fn start_worker(config: WorkerConfig) -> Result<WorkerHandle, LocalnetError> {
    start_worker_with_owner(config, None).await
}

/// As [`start_worker`], with the owner's signing wallet (what `chain.owner_mnemonic_*` gives the
/// binary; the local network's wallets come from keys, not mnemonics): the worker claims its payouts
/// itself once they reach `chain.claim_threshold_nano`.
pub async fn start_worker_with_owner(
    config: WorkerConfig,
    owner_wallet: Option<cocoon_ton::Wallet>,
) -> Result<WorkerHandle, LocalnetError> {
    config.tls.validate().map_err(daemon("worker [tls]"))?;
    let allowlist = att::InMemoryAllowlist::new();
    let tls = build_hop_tls(Role::Worker, &config.tls, Arc::new(allowlist.clone()))
        .map_err(daemon("building the worker's TLS"))?;
    let client: Arc<dyn TonClient> = Arc::new(
        cocoon_ton::HttpTonClient::new(cocoon_ton::TonClientConfig::new(
            config.chain.api_url.clone(),
        ))
        .map_err(daemon("worker chain client"))?,
    );
    let chain = cocoon_worker::chain_ton::TonChain::new(
        client,
        config
            .chain
            .root_address()
            .map_err(daemon("worker [chain]"))?,
        config
            .chain
            .owner_address()
            .map_err(daemon("worker [chain]"))?,
        owner_wallet,
    );
    let root = chain
        .root()
        .await
        .map_err(daemon("the worker reading the root"))?;
    allowlist.replace(proxy_images(&root));
    let hook_list = allowlist.clone();
    let options = WorkerOptions {
        chain: Some(Arc::new(chain)),
        on_root: Some(RootHook(Box::new(move |root| {
            hook_list.replace(proxy_images(root));
        }))),
    };
    cocoon_worker::start_with(config, tls, root.params, Registry::new(), options)
        .map_err(daemon("starting the worker"))
}
