//! The whole network in one process on a local devnet: wallets, contracts, engine, worker, proxy and
//! gateway, one real request, settlement and a summary. What `cocoon demo` runs.
//!
//! The key service, the proxy, the worker and the gateway are built from their config files'
//! structures by the same functions their binaries run (`cocoon_kms::daemon::build`,
//! `cocoon_proxy::daemon::build`, `cocoon_worker::daemon::build`, `cocoon_gateway::daemon::build`).
//! Every hop is RA-TLS with the **simulated** TEE provider: quotes are made up in software, so this
//! is INSECURE — a development network, never for real prompts or real TON.
//!
//! The key lifecycle runs as in production (docs/security.md "Keys"): the key service makes the
//! master key; the proxy and the worker make boot keys in memory and write them out; the local
//! network plays each operator, whose wallet signs the binding of its TD's boot key (and the GPU
//! owner opens its stake with the worker's boot key); the key service releases the proxy's stable
//! key `P` (which governance then registers) and both storage keys.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cocoon_contracts::address::{escrow_address, vault_address};
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::{EscrowStorage, ROLE_KMS, ROLE_PROXY, ROLE_WORKER, StakeStorage};
use cocoon_daemon::chain_endpoint::ChainEndpoint;
use cocoon_daemon::keys::{BootKeyBinding, DEFAULT_BINDING_LIFETIME, boot_key_path};
use cocoon_daemon::launch::Daemon;
use cocoon_daemon::tls::Role;
use cocoon_daemon::tls_config::TlsSection;
use cocoon_devnet::{Devnet, DevnetOptions};
use cocoon_engine::{EngineConfig, EngineHandle};
use cocoon_gateway::daemon::GatewayDaemon;
use cocoon_kms::daemon::KmsDaemon;
use cocoon_onchain::bootstrap::{dev_params, wallet_for_key};
use cocoon_onchain::tx::{Outcome, fetch_state};
use cocoon_onchain::{OnchainError, OnchainSettler, OnchainView};
use cocoon_proxy::ProxyConfig;
use cocoon_proxy::daemon::{ChainParts, ProxyDaemon, RunOptions};
use cocoon_ton::{HttpTonClient, Network, TonAddress, TonClient, Wallet};
use cocoon_worker::WorkerConfig;
use cocoon_worker::daemon::{BuildOptions, WorkerDaemon};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::daemons::{self, Keys, Parties};
use crate::error::{LocalnetError, chain, daemon};

const TON: u128 = 1_000_000_000;
/// Network id the devnet (@ton/sandbox) reports.
pub const DEVNET_NETWORK_ID: i32 = cocoon_devnet::GLOBAL_ID;
/// Model name served in the demo.
pub const DEMO_MODEL: &str = "smollm2-135m-instruct";
/// What the summary and banners say about the TEE of a local network.
pub const TEE_NOTICE: &str = "simulated TEE — INSECURE";
/// What the summary says about where the daemons' keys come from.
pub const KEYS_NOTICE: &str = "INSECURE simulated key service";

/// Which engine backend serves the model.
#[derive(Debug, Clone)]
pub enum EngineChoice {
    /// The built-in candle engine on this GGUF file (real tokens).
    Gguf(PathBuf),
    /// The zero-latency fixed backend (tests, benchmarks).
    Fixed,
}

/// A running local network.
pub struct LocalNet {
    /// The devnet process.
    pub devnet: Devnet,
    /// Chain client.
    pub chain: Arc<dyn TonClient>,
    /// Wallets.
    pub parties: Parties,
    /// The root.
    pub root: RootHandle,
    /// The proxy's view of the chain.
    pub view: Arc<OnchainView>,
    /// The proxy's settler.
    pub settler: Arc<OnchainSettler>,
    /// Engine.
    pub engine: EngineHandle,
    /// The key service, as its binary builds it (simulated: INSECURE).
    pub kms: KmsDaemon,
    /// Worker, as its binary builds it.
    pub worker: WorkerDaemon,
    /// Proxy, as its binary builds it.
    pub proxy: ProxyDaemon,
    /// Gateway, as its binary builds it.
    pub gateway: GatewayDaemon,
    /// The gateway's (client) key, which the escrow is bound to.
    pub client_key: [u8; 32],
    /// The model name requests use.
    pub model: String,
    /// Transactions of the setup (deploy, allowlists, stakes, escrow), one outcome a message.
    pub setup: Vec<Outcome>,
    /// The config files the daemons were built from (TOML), for inspection and reuse.
    pub configs: daemons::Configs,
    /// The proxy operator's wallet key (it signs the binding of each proxy TD's boot key).
    operator_key: SigningKey,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for LocalNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNet")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// How much each party starts with, and what they lock.
#[derive(Debug, Clone, Copy)]
pub struct Funding {
    /// Funded into each wallet.
    pub wallet: u128,
    /// Sent with each stake opening.
    pub stake: u128,
    /// Deposited into the escrow.
    pub escrow_deposit: u128,
    /// The escrow's credit line.
    pub escrow_stake: u128,
}

impl Default for Funding {
    fn default() -> Self {
        Funding {
            wallet: 100 * TON,
            stake: 2 * TON,
            escrow_deposit: 5 * TON,
            escrow_stake: 3 * TON,
        }
    }
}

/// What the engine serves: the model name, the engine's config and the model's hash.
fn engine_plan(engine: &EngineChoice) -> Result<(String, EngineConfig, [u8; 32]), LocalnetError> {
    match engine {
        EngineChoice::Gguf(path) => {
            let mut file = std::fs::File::open(path).map_err(daemon("opening the model"))?;
            let mut h = Sha256::new();
            std::io::copy(&mut file, &mut h).map_err(daemon("hashing the model"))?;
            let mut config = EngineConfig::gguf(path);
            config.model_id = Some(DEMO_MODEL.into());
            Ok((DEMO_MODEL.to_owned(), config, h.finalize().into()))
        }
        EngineChoice::Fixed => Ok((
            cocoon_engine::FIXED_MODEL_ID.to_owned(),
            EngineConfig::fixed(),
            Sha256::digest(cocoon_engine::FIXED_MODEL_ID.as_bytes()).into(),
        )),
    }
}

/// The devnet and a fast-polling client of it.
async fn start_devnet() -> Result<(Devnet, Arc<dyn TonClient>), LocalnetError> {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .map_err(daemon("starting the devnet"))?;
    let mut cfg = ChainEndpoint::new(devnet.url(), Network::Testnet)
        .client_config()
        .map_err(daemon("chain client"))?;
    cfg.poll_interval = Duration::from_millis(50);
    cfg.max_retries = 2;
    let client = HttpTonClient::new(cfg).map_err(daemon("chain client"))?;
    Ok((devnet, Arc::new(client)))
}

/// Fresh keys (file keys for the proxy and the worker, which a key-service network does not use;
/// the client's; the operator's wallet key), the GPU owner's wallet key, and the four parties'
/// wallets, funded on the devnet.
async fn new_parties(
    devnet: &Devnet,
    funding: &Funding,
) -> Result<(Keys, Parties, SigningKey), LocalnetError> {
    let mut rng = rand::rngs::OsRng;
    let owner_key = SigningKey::generate(&mut rng);
    let keys = Keys {
        proxy: SigningKey::generate(&mut rng),
        worker: SigningKey::generate(&mut rng),
        client: SigningKey::generate(&mut rng),
        operator: SigningKey::generate(&mut rng),
    };
    let new_wallet =
        |key: &SigningKey| wallet_for_key(key, Network::Testnet).map_err(chain("wallet"));
    let parties = Parties {
        governance: new_wallet(&SigningKey::generate(&mut rng))?,
        proxy_operator: new_wallet(&keys.operator)?,
        gpu_owner: new_wallet(&owner_key)?,
        client: new_wallet(&SigningKey::generate(&mut rng))?,
    };
    for w in [
        &parties.governance,
        &parties.proxy_operator,
        &parties.gpu_owner,
        &parties.client,
    ] {
        devnet
            .fund(w.address_friendly(), funding.wallet)
            .await
            .map_err(daemon("funding a wallet"))?;
    }
    Ok((keys, parties, owner_key))
}

/// Deploys the root, allows the simulated images (the daemons' and the key service's) and the
/// model, and opens the proxy's stake (the worker's is opened with its boot key once it runs).
async fn deploy_root(
    c: &dyn TonClient,
    parties: &Parties,
    funding: &Funding,
    model: &str,
    model_hash: [u8; 32],
) -> Result<(RootHandle, Vec<Outcome>), LocalnetError> {
    let gov = &parties.governance;
    let (root, o) = RootHandle::deploy(c, gov, DEVNET_NETWORK_ID, dev_params(), TON)
        .await
        .map_err(chain("deploying the root"))?;
    let mut setup = vec![o];
    let sim_image = daemons::simulated_tls().simulated_image_hash();
    for role in [ROLE_WORKER, ROLE_PROXY] {
        let o = root.set_image(c, gov, role, sim_image, true).await;
        setup.push(o.map_err(chain("allowing the simulated image"))?);
    }
    let kms_image = daemons::kms_tls().simulated_image_hash();
    let o = root.set_image(c, gov, ROLE_KMS, kms_image, true).await;
    setup.push(o.map_err(chain("allowing the key service's simulated image"))?);
    let o = root
        .set_model(c, gov, model_hash, Some(model.to_owned()))
        .await;
    setup.push(o.map_err(chain("allowing the model"))?);
    // A proxy vault pays by the key governance registers; the key named here is ignored.
    let o = root
        .open_stake(
            c,
            &parties.proxy_operator,
            ROLE_PROXY,
            [0; 32],
            funding.stake,
        )
        .await;
    setup.push(o.map_err(chain("staking the proxy"))?);
    Ok((root, setup))
}

/// Registers the running proxy in the root and opens the client's escrow with it (bound to the
/// gateway's TLS key: the proxy admits that key because the escrow says so).
async fn register_and_open_escrow(
    c: &dyn TonClient,
    root: &RootHandle,
    keys: &Keys,
    proxy_key: [u8; 32],
    parties: &Parties,
    funding: &Funding,
    proxy: &ProxyDaemon,
) -> Result<Vec<Outcome>, LocalnetError> {
    let operator = parties.proxy_operator.address();
    let info = ProxyInfo {
        key: proxy_key,
        endpoints: proxy.handle.client_addr.to_string(),
    };
    let o = root
        .set_proxy(c, &parties.governance, operator, Some(info))
        .await;
    let mut setup = vec![o.map_err(chain("registering the proxy"))?];
    // The vault was opened before the proxy had a registered key: it pays out only after this.
    let o = root.sync_vault_key(c, &parties.governance, operator).await;
    setup.push(o.map_err(chain("sending the registered key to the proxy's vault"))?);
    let client_key = keys.client.verifying_key().to_bytes();
    let o = root.open_escrow(
        c,
        &parties.client,
        operator,
        funding.escrow_stake,
        client_key,
        funding.escrow_deposit,
    );
    setup.push(o.await.map_err(chain("opening the client escrow"))?);
    Ok(setup)
}

/// Waits for a daemon with `key_source = "kms"` to write its boot key (it does before asking).
async fn wait_boot_key(tls: &TlsSection) -> Result<[u8; 32], LocalnetError> {
    let path = boot_key_path(std::path::Path::new(&tls.kms_binding_file));
    for _ in 0..1200 {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut boot = [0u8; 32];
            if hex::decode_to_slice(text.trim(), &mut boot).is_ok() {
                return Ok(boot);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(LocalnetError::Daemon {
        step: "waiting for a boot key",
        message: format!("{} never appeared", path.display()),
    })
}

/// Plays the operator: its wallet key signs the binding of `boot` for `role` and puts it where
/// the daemon reads it (`cocoon kms bind` does the same).
fn write_binding(
    tls: &TlsSection,
    role: Role,
    root: &TonAddress,
    wallet: &Wallet,
    wallet_key: &SigningKey,
    boot: [u8; 32],
) -> Result<(), LocalnetError> {
    let valid_until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(daemon("the clock"))?
        .as_secs()
        .saturating_add(DEFAULT_BINDING_LIFETIME.as_secs());
    let binding =
        BootKeyBinding::sign(wallet_key, role, root, wallet.address(), &boot, valid_until);
    let text = serde_json::to_vec_pretty(&binding).map_err(daemon("writing a binding"))?;
    std::fs::write(&tls.kms_binding_file, text).map_err(daemon("writing a binding"))
}

/// The proxy as its binary builds it, with the chain parts a local network reads.
async fn start_proxy(config: &ProxyConfig) -> Result<(ProxyDaemon, ChainParts), LocalnetError> {
    let proxy = cocoon_proxy::daemon::build(config.clone(), &RunOptions::default())
        .await
        .map_err(daemon("starting the proxy"))?;
    let parts = proxy.chain.clone().ok_or_else(|| LocalnetError::Daemon {
        step: "starting the proxy",
        message: "the proxy runs without a chain".into(),
    })?;
    Ok((proxy, parts))
}

/// The worker as its binary builds it, dialing `proxy`. The local network plays the GPU owner:
/// its worker claims its own payouts (past `chain.claim_threshold_nano`, 10 TON by default;
/// below it the proxy pays).
async fn start_worker(
    config: &WorkerConfig,
    proxy: &ProxyDaemon,
    owner: &Wallet,
) -> Result<WorkerDaemon, LocalnetError> {
    let mut config = config.clone();
    config.proxies = vec![proxy.handle.worker_addr.to_string()];
    let options = BuildOptions {
        insecure_dev_tls: false,
        owner_wallet: Some(owner.clone()),
    };
    cocoon_worker::daemon::build(config, &options)
        .await
        .map_err(daemon("starting the worker"))
}

impl LocalNet {
    /// Starts the devnet, deploys and configures the contracts, starts every daemon from its config
    /// (RA-TLS, simulated TEE), and waits for the worker to connect.
    pub async fn start(
        engine_choice: EngineChoice,
        funding: Funding,
    ) -> Result<LocalNet, LocalnetError> {
        LocalNet::start_with(engine_choice, funding, |_| {}).await
    }

    /// As [`LocalNet::start`], letting `adjust` change the daemons' configs before they start (e.g.
    /// settlement thresholds).
    pub async fn start_with(
        engine_choice: EngineChoice,
        funding: Funding,
        adjust: impl FnOnce(&mut daemons::Configs),
    ) -> Result<LocalNet, LocalnetError> {
        let dir = tempfile::tempdir().map_err(daemon("temporary directory"))?;
        let (devnet, chain_client) = start_devnet().await?;
        let c = chain_client.as_ref();
        let (keys, parties, owner_key) = new_parties(&devnet, &funding).await?;
        let (model, engine_config, model_hash) = engine_plan(&engine_choice)?;
        let (root, mut setup) = deploy_root(c, &parties, &funding, &model, model_hash).await?;
        let engine = cocoon_engine::start(engine_config)
            .await
            .map_err(daemon("starting the engine"))?;
        let mut configs = daemons::configs(
            dir.path(),
            &keys,
            devnet.url(),
            &root.address,
            &parties,
            &engine.url(),
            &model,
            &hex::encode(model_hash),
        )?;
        if let EngineChoice::Gguf(path) = &engine_choice {
            // The worker hashes the weights at start and refuses other ones than the root's model.
            configs.worker.model_path = path.display().to_string();
        }
        let kms = cocoon_kms::daemon::build(configs.kms.clone(), &Default::default())
            .await
            .map_err(daemon("starting the key service"))?;
        let kms_addr = kms.addr.to_string();
        configs.proxy.tls = daemons::with_kms(&configs.proxy.tls, dir.path(), "proxy", &kms_addr);
        configs.worker.tls =
            daemons::with_kms(&configs.worker.tls, dir.path(), "worker", &kms_addr);
        adjust(&mut configs);
        // The worker's simulated RTMR3 measures its configuration: allow that image.
        let worker_image = daemons::measured_worker_image(&configs.worker)?;
        let o = root
            .set_image(c, &parties.governance, ROLE_WORKER, worker_image, true)
            .await;
        setup.push(o.map_err(chain("allowing the worker's measured image"))?);
        // The proxy TD asks the key service; its operator binds the boot key it shows.
        let bind_proxy = async {
            let boot = wait_boot_key(&configs.proxy.tls).await?;
            let wallet = &parties.proxy_operator;
            write_binding(
                &configs.proxy.tls,
                Role::Proxy,
                &root.address,
                wallet,
                &keys.operator,
                boot,
            )
        };
        let (started, bound) = tokio::join!(start_proxy(&configs.proxy), bind_proxy);
        bound?;
        let (proxy, parts) = started?;
        // Governance registers the key the key service releases to this operator's proxy.
        let operator = parties.proxy_operator.address();
        let released = kms
            .service
            .public_key(Role::Proxy, operator)
            .map_err(daemon("the key service's proxy key"))?;
        let proxy_key = proxy.tls.identity().public_key;
        if released.public_key != hex::encode(proxy_key) {
            return Err(LocalnetError::Daemon {
                step: "checking the proxy's key",
                message: "the proxy does not run with the key the key service released".into(),
            });
        }
        let opened =
            register_and_open_escrow(c, &root, &keys, proxy_key, &parties, &funding, &proxy).await;
        setup.extend(opened?);
        let refreshed = parts.view.refresh().await;
        refreshed.map_err(chain("refreshing the chain view"))?;
        // The worker TD makes a boot key; its owner opens the stake with it and binds it.
        let stake_worker = async {
            let boot = wait_boot_key(&configs.worker.tls).await?;
            let owner = &parties.gpu_owner;
            let o = root
                .open_stake(c, owner, ROLE_WORKER, boot, funding.stake)
                .await
                .map_err(chain("staking the worker"))?;
            write_binding(
                &configs.worker.tls,
                Role::Worker,
                &root.address,
                owner,
                &owner_key,
                boot,
            )?;
            Ok::<_, LocalnetError>(o)
        };
        let (worker, staked) = tokio::join!(
            start_worker(&configs.worker, &proxy, &parties.gpu_owner),
            stake_worker
        );
        setup.push(staked?);
        let worker = worker?;
        let gateway = cocoon_gateway::daemon::build(configs.gateway.clone(), false)
            .await
            .map_err(daemon("starting the gateway"))?;
        let net = LocalNet {
            devnet,
            chain: chain_client,
            parties,
            root,
            view: parts.view,
            settler: parts.settler,
            engine,
            kms,
            worker,
            proxy,
            gateway,
            client_key: keys.client.verifying_key().to_bytes(),
            model,
            setup,
            configs,
            operator_key: keys.operator.clone(),
            _dir: dir,
        };
        net.wait_for_worker().await?;
        Ok(net)
    }

    /// Builds another proxy from `config` (a restart, a move to a fresh data directory) as its
    /// binary does, playing its operator: the operator's wallet binds the new TD's boot key when
    /// `config` takes its keys from the key service.
    pub async fn build_proxy(&self, config: ProxyConfig) -> Result<ProxyDaemon, LocalnetError> {
        let options = RunOptions::default();
        let build = cocoon_proxy::daemon::build(config.clone(), &options);
        if config.tls.key_source != cocoon_daemon::tls_config::KeySource::Kms {
            return build.await.map_err(daemon("starting the proxy"));
        }
        let bind = async {
            let boot = wait_boot_key(&config.tls).await?;
            let wallet = &self.parties.proxy_operator;
            write_binding(
                &config.tls,
                Role::Proxy,
                &self.root.address,
                wallet,
                &self.operator_key,
                boot,
            )
        };
        let (built, bound) = tokio::join!(build, bind);
        let proxy = built.map_err(daemon("starting the proxy"))?;
        bound?;
        Ok(proxy)
    }

    async fn wait_for_worker(&self) -> Result<(), LocalnetError> {
        for _ in 0..600 {
            if !self.proxy.handle.proxy.workers.all().is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(LocalnetError::Daemon {
            step: "waiting for the worker",
            message: "the worker did not connect to the proxy".into(),
        })
    }

    /// The OpenAI base URL of the gateway.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/v1", self.gateway.handle.addr)
    }

    /// Forces settlement of everything in the proxy's ledger.
    pub async fn settle(&self) -> Result<(), LocalnetError> {
        cocoon_proxy::onchain::settle_ledger(&self.proxy.handle.proxy, &self.settler)
            .await
            .map_err(chain("settling"))
    }

    /// What each party paid and earned, from the ledger and from the chain.
    pub async fn balances(&self) -> Result<Balances, LocalnetError> {
        let c = self.chain.as_ref();
        let proxy = &self.proxy.handle.proxy;
        let client = proxy
            .client_ledger(&self.client_key)
            .map_err(daemon("reading the ledger"))?;
        let worker_key = self.worker.handle.state_key();
        let worker = proxy
            .worker_ledger(&worker_key)
            .map_err(daemon("reading the ledger"))?;
        let escrow = escrow_address(
            &self.root.address,
            self.parties.client.address(),
            self.parties.proxy_operator.address(),
        )
        .map_err(chain("escrow address"))?;
        let vault = vault_address(&self.root.address, self.parties.proxy_operator.address())
            .map_err(chain("vault address"))?;
        let es: EscrowStorage = fetch_state(c, &escrow)
            .await
            .map_err(chain("reading the escrow"))?
            .ok_or_else(|| {
                chain("reading the escrow")(OnchainError::NotDeployed(escrow.to_hex()))
            })?;
        let vs: StakeStorage = fetch_state(c, &vault)
            .await
            .map_err(chain("reading the vault"))?
            .ok_or_else(|| chain("reading the vault")(OnchainError::NotDeployed(vault.to_hex())))?;
        let paid_onchain = vs
            .payouts
            .get(&account_id(self.parties.gpu_owner.address()))
            .map_or(0, |r| r.paid);
        let records = self.settler.records();
        Ok(Balances {
            ledger_client_charged: client.charged,
            ledger_worker_earned: worker.earned,
            ledger_proxy_kept: client.charged.saturating_sub(worker.earned),
            chain_escrow_charged: es.charged,
            chain_escrow_balance: es.balance,
            chain_worker_paid: paid_onchain,
            chain_proxy_kept: es.charged.saturating_sub(paid_onchain),
            settlement_transactions: records.iter().map(|r| r.outcome.transaction_count()).sum(),
            settlement_fees: records.iter().map(|r| r.outcome.fees()).sum(),
            setup_transactions: self.setup.iter().map(Outcome::transaction_count).sum(),
            setup_fees: self.setup.iter().map(Outcome::fees).sum(),
        })
    }

    /// Stops every daemon gracefully, then the devnet.
    pub async fn shutdown(self) -> Result<(), LocalnetError> {
        let grace = Duration::from_secs(5);
        self.gateway.shutdown(grace).await;
        self.worker.shutdown(grace).await;
        self.proxy.shutdown(grace).await;
        self.kms.shutdown(grace).await;
        self.engine.shutdown().await;
        self.devnet
            .stop()
            .await
            .map_err(daemon("stopping the devnet"))
    }
}

/// Money as the ledger and the chain see it after settlement (nanoTON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Balances {
    /// What the proxy's ledger charged the client.
    pub ledger_client_charged: u128,
    /// What the ledger credits the worker with.
    pub ledger_worker_earned: u128,
    /// What the ledger leaves to the proxy.
    pub ledger_proxy_kept: u128,
    /// The escrow's cumulative charge on chain.
    pub chain_escrow_charged: u128,
    /// What the escrow still holds.
    pub chain_escrow_balance: u128,
    /// What the vault paid the worker on chain.
    pub chain_worker_paid: u128,
    /// Charged minus paid: the proxy's share left in its vault.
    pub chain_proxy_kept: u128,
    /// Transactions the settlement caused.
    pub settlement_transactions: usize,
    /// Their fees.
    pub settlement_fees: u128,
    /// Transactions of the setup.
    pub setup_transactions: usize,
    /// Their fees.
    pub setup_fees: u128,
}
