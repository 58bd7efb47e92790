//! The proxy daemon: [`build`] assembles a proxy from its config exactly as `cocoon-proxy`,
//! `cocoon proxy run` and in-process networks (`cocoon-localnet`, tests) run it, and [`run`] is the
//! binary's whole life.
//!
//! Keys from `cocoon_daemon::keys::key_material` (a key service's `P` and `S` with
//! `tls.key_source = "kms"`, required in `tdx` mode), TLS from `[tls]` (`cocoon_daemon::tls_config`), peers' images checked against the root contract's
//! allowlist, the chain view and settler from `[chain]`, the admin endpoint; everything is validated
//! and the chain read before any port is bound. Without a chain only an explicit development mode
//! runs (`--dev-client-credit`, which admits any client: INSECURE).

use std::sync::Arc;
use std::time::Duration;

use crate::{ProxyConfig, ProxyHandle};
use anyhow::Context;
use cocoon_attestation as att;
use cocoon_daemon::admin::AdminEndpoint;
use cocoon_daemon::config::{Sources, load};
use cocoon_daemon::keys::{KmsContext, key_material};
use cocoon_daemon::launch::{Daemon, DaemonArgs, effective_tls, identity_banner};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::os_signal;
use cocoon_daemon::tls::{HopTls, Role};
use cocoon_daemon::tls_config::{TlsMode, TlsSection, build_hop_tls, build_hop_tls_keyed};
use cocoon_onchain::allowlist::{RootAllowlist, registered_proxies};
use cocoon_onchain::{OnchainConfig, OnchainSettler, OnchainView};
use cocoon_protocol::PriceParams;
use cocoon_ton::{TonAddress, TonClient, Wallet};

/// Run a cocoon proxy.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The flags every daemon takes.
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Development mode without a chain: accept any client with this much credit (nanoTON) and
    /// record settlements in memory only (INSECURE; needs `tls.mode = "dev-insecure"`).
    #[arg(long)]
    pub dev_client_credit: Option<u128>,
}

/// What the command line adds to the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--insecure-dev-tls`.
    pub insecure_dev_tls: bool,
    /// `--dev-client-credit`.
    pub dev_client_credit: Option<u128>,
    /// The operator wallet, already unlocked (the `cocoon` CLI's keystore); it must be `chain.operator`.
    /// When `None` the `[chain]` key settings provide it.
    pub operator_wallet: Option<Wallet>,
}

/// The chain side of a proxy built on a chain.
#[derive(Debug, Clone)]
pub struct ChainParts {
    /// The cached chain view.
    pub view: Arc<OnchainView>,
    /// The settler (sends from the operator wallet).
    pub settler: Arc<OnchainSettler>,
    /// The root's image allowlist, as the attestation policy sees it.
    pub allowlist: Arc<att::policy::CachingAllowlist>,
}

/// A proxy built from config, with its admin endpoint and background tasks.
pub struct ProxyDaemon {
    /// The serving proxy.
    pub handle: ProxyHandle,
    /// The admin endpoint (`/metrics`, `/healthz`, `/status`).
    pub admin: AdminEndpoint,
    /// The proxy's TLS (its identity is the key registered in the root).
    pub tls: Arc<dyn HopTls>,
    /// Present when running on a chain.
    pub chain: Option<ChainParts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ProxyDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyDaemon")
            .field("handle", &self.handle)
            .field("admin", &self.admin)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl Daemon for ProxyDaemon {
    fn banner(&self) -> serde_json::Value {
        let addrs = [
            ("client_addr", self.handle.client_addr),
            ("worker_addr", self.handle.worker_addr),
            ("admin_addr", self.admin.addr),
        ];
        let addrs = addrs.map(|(k, a)| (k.to_owned(), serde_json::json!(a)));
        identity_banner(self.tls.as_ref(), addrs.into_iter().collect())
    }

    /// Drains in-flight streams (up to `grace`), stops the admin endpoint and the refreshers.
    async fn shutdown(self, grace: Duration) {
        self.handle.shutdown(grace).await;
        self.admin.stop();
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The `[tls]` section after the command-line shorthand; a top-level `dev_key` still works.
fn tls_section(config: &ProxyConfig, options: &RunOptions) -> TlsSection {
    effective_tls(&config.tls, &config.dev_key, options.insecure_dev_tls)
}

/// The operator wallet: the unlocked one (which must be `chain.operator`), or the `[chain]` key's.
fn operator_wallet(
    chain: &crate::config::ChainSection,
    unlocked: Option<Wallet>,
    operator: &TonAddress,
) -> anyhow::Result<Wallet> {
    let Some(w) = unlocked else {
        return chain.operator_wallet()?.context(
            "the operator wallet's key is required to send settlements: set chain.operator_key_file, \
             operator_mnemonic_file or operator_mnemonic_env, or run `cocoon proxy run --keystore PATH`",
        );
    };
    anyhow::ensure!(
        w.address() == operator,
        "the unlocked wallet {} is not chain.operator",
        w.address_friendly()
    );
    anyhow::ensure!(
        !chain.has_operator_key(),
        "[chain] sets an operator key and a keystore wallet was given too: use one"
    );
    Ok(w)
}

/// Refuses the INSECURE development switches where they cannot apply, and warns about the rest.
fn check_dev_switches(
    chain: &crate::config::ChainSection,
    tls_section: &TlsSection,
) -> anyhow::Result<()> {
    if chain.dev_trust_client_wallet {
        anyhow::ensure!(
            tls_section.mode != TlsMode::Tdx,
            "chain.dev_trust_client_wallet is a development mode: it is refused with tls.mode = \"tdx\""
        );
        tracing::warn!(
            "INSECURE: chain.dev_trust_client_wallet admits a client for any wallet it names whose escrow exists"
        );
    }
    if chain.allow_unattested {
        tracing::warn!(
            "INSECURE: chain.allow_unattested admits workers without attestation if staked"
        );
    }
    Ok(())
}

/// Warns when the root registers no proxy, or another key, for this operator.
async fn check_registration(
    client: &dyn TonClient,
    root: &TonAddress,
    operator: &TonAddress,
    key: [u8; 32],
) -> anyhow::Result<()> {
    let registered = registered_proxies(client, root)
        .await
        .context("reading the registered proxies")?;
    match registered.iter().find(|p| &p.operator == operator) {
        Some(p) if p.key == key => {}
        Some(p) => tracing::warn!(
            registered = %hex::encode(p.key),
            ours = %hex::encode(key),
            "the root registers another key for this operator: escrows will refuse our charges"
        ),
        None => tracing::warn!(
            key = %hex::encode(key),
            "this operator has no proxy registered in the root yet (gateways will not find it)"
        ),
    }
    Ok(())
}

/// A proxy, its TLS, its chain parts and the background tasks they need.
type Built = (
    ProxyHandle,
    Arc<dyn HopTls>,
    Option<ChainParts>,
    Vec<tokio::task::JoinHandle<()>>,
);

/// The proxy on a chain: allowlist, view and settler from `[chain]`.
async fn build_on_chain(
    config: &ProxyConfig,
    tls_section: &TlsSection,
    options: &RunOptions,
    registry: Arc<Registry>,
) -> anyhow::Result<Built> {
    anyhow::ensure!(
        options.dev_client_credit.is_none(),
        "--dev-client-credit is a development mode without a chain; [chain] root is set"
    );
    let chain = &config.chain;
    let client = chain.endpoint.client()?;
    let root = chain.root_address()?;
    let operator = chain.operator_address()?;
    let wallet = operator_wallet(chain, options.operator_wallet.clone(), &operator)?;
    let allowlist = Arc::new(att::policy::CachingAllowlist::new(
        Arc::new(RootAllowlist::new(client.clone(), root.clone())),
        Duration::from_millis(chain.allowlist_refresh_ms),
        Duration::from_millis(chain.allowlist_max_stale_ms),
        Arc::new(att::SystemClock),
    ));
    allowlist.refresh().await.context(
        "reading the root's image allowlist (is chain.root right and the API reachable?)",
    )?;
    // The one key seam: a key service's P and S in a TD (key_source = "kms"), a local key in
    // development. `keys.storage` is the key the ledger's sealing derives from.
    let kms = KmsContext {
        root: root.clone(),
        wallet: operator.clone(),
        allowlist: allowlist.clone(),
        config_hash: None,
    };
    let keys = key_material(Role::Proxy, tls_section, Some(&kms))
        .await
        .context("getting the proxy's keys")?;
    let tls = build_hop_tls_keyed(Role::Proxy, tls_section, allowlist.clone(), &keys, None)
        .context("building the proxy's TLS")?;
    check_dev_switches(chain, tls_section)?;
    let storage = crate::store::StorageKey::from_bytes(keys.storage);
    let view = OnchainView::load(
        client.clone(),
        OnchainConfig {
            root: root.clone(),
            proxy: operator.clone(),
            refresh: chain.refresh(),
            allow_unattested: chain.allow_unattested,
            binding: chain.bind_policy(),
            bindings: Some(cocoon_onchain::BindingsFile {
                path: format!("{}.bindings", config.store_path).into(),
                key: storage.clone(),
            }),
        },
    )
    .await
    .context("reading the root contract")?;
    check_registration(client.as_ref(), &root, &operator, tls.identity().public_key).await?;
    let settler = Arc::new(OnchainSettler::new(
        view.clone(),
        wallet,
        tls.signing_key().clone(),
        chain.settle_options(),
    ));
    let tasks = vec![view.spawn_refresh(), allowlist.spawn_refresher()];
    let handle = crate::start_sealed(
        config.clone(),
        tls.clone(),
        view.clone(),
        settler.clone(),
        registry,
        storage,
    )
    .await?;
    let parts = ChainParts {
        view,
        settler,
        allowlist,
    };
    Ok((handle, tls, Some(parts), tasks))
}

/// The INSECURE development proxy without a chain: every client gets `--dev-client-credit`.
async fn build_without_chain(
    config: &ProxyConfig,
    tls_section: &TlsSection,
    options: &RunOptions,
    registry: Arc<Registry>,
) -> anyhow::Result<Built> {
    let credit = options.dev_client_credit.context(
        "no [chain] root configured: set chain.root and the operator wallet \
         (or, for an INSECURE development run without a chain, --dev-client-credit with tls.mode = \"dev-insecure\")",
    )?;
    anyhow::ensure!(
        tls_section.mode == TlsMode::DevInsecure,
        "--dev-client-credit runs without a chain, so without an image allowlist: it needs tls.mode = \"dev-insecure\" (--insecure-dev-tls)"
    );
    eprintln!(
        "INSECURE/DEV: no chain; every client gets {credit} nanoTON of credit and settlements stay in memory"
    );
    tracing::warn!(
        credit,
        "INSECURE/DEV mode: no chain, any client is admitted"
    );
    let tls = build_hop_tls(
        Role::Proxy,
        tls_section,
        Arc::new(att::InMemoryAllowlist::new()),
    )
    .context("building the proxy's TLS")?;
    let chain = Arc::new(crate::chain::InsecureDevChain::new(
        PriceParams::default(),
        tls.identity().public_key,
        credit,
    ));
    let handle = crate::start(config.clone(), tls.clone(), chain.clone(), chain, registry).await?;
    Ok((handle, tls, None, Vec::new()))
}

/// Builds a proxy from `config` exactly as the binary does (validation, TLS, chain, ledger,
/// listeners, admin endpoint) and starts serving.
pub async fn build(config: ProxyConfig, options: &RunOptions) -> anyhow::Result<ProxyDaemon> {
    let tls_section = tls_section(&config, options);
    tls_section.validate_for(Role::Proxy).context("[tls]")?;
    config.chain.validate().context("[chain]")?;
    if tls_section.mode == TlsMode::Tdx && config.chain.enabled() {
        // Issue 15: what the TD reads from the chain decides admission; https at least.
        config
            .chain
            .endpoint
            .require_https()
            .context("[chain] in tdx mode")?;
    }
    config.validate_serving().context("proxy configuration")?;
    let registry = Registry::new();
    let (handle, tls, chain, tasks) = if config.chain.enabled() {
        build_on_chain(&config, &tls_section, options, registry.clone()).await?
    } else {
        build_without_chain(&config, &tls_section, options, registry.clone()).await?
    };
    let state = handle.proxy.clone();
    let status = Arc::new(move || state.status_json());
    let admin =
        match AdminEndpoint::start(&config.admin_listen, registry, status, handle.draining()).await
        {
            Ok(admin) => admin,
            Err(e) => {
                handle.shutdown(Duration::ZERO).await;
                return Err(e).with_context(|| format!("binding admin {}", config.admin_listen));
            }
        };
    Ok(ProxyDaemon {
        handle,
        admin,
        tls,
        chain,
        tasks,
    })
}

/// Loads the configuration, builds the proxy ([`build`]), and runs until SIGINT/SIGTERM, then drains.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    run_with(args, None).await
}

/// As [`run`], with the operator wallet already unlocked (the `cocoon` CLI's keystore).
pub async fn run_with(args: RunArgs, operator_wallet: Option<Wallet>) -> anyhow::Result<()> {
    cocoon_daemon::init_tracing(args.daemon.json_logs);
    let sources = Sources::from_process(args.daemon.config.as_deref(), args.daemon.set);
    let config: ProxyConfig = load_unchecked(&sources).context("loading proxy configuration")?;
    let options = RunOptions {
        insecure_dev_tls: args.daemon.insecure_dev_tls,
        dev_client_credit: args.dev_client_credit,
        operator_wallet,
    };
    build(config, &options).await?.run_until(os_signal()).await;
    Ok(())
}

/// Loads the layered config checking only what does not depend on the command line (the `[tls]`
/// section is checked by [`build`] after `--insecure-dev-tls` applies).
fn load_unchecked(sources: &Sources) -> Result<ProxyConfig, cocoon_daemon::config::ConfigError> {
    let config: Lenient = load(sources)?;
    Ok(config.0)
}

/// A [`ProxyConfig`] whose load-time validation leaves the `[tls]` section to [`build`].
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct Lenient(ProxyConfig);

impl cocoon_daemon::config::Validate for Lenient {
    fn validate(&self) -> Result<(), cocoon_daemon::config::ConfigError> {
        self.0.validate_serving()?;
        self.0.chain.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_flag_and_top_level_key_reach_the_tls_section() {
        let config = ProxyConfig {
            dev_key: "11".repeat(32),
            ..Default::default()
        };
        let options = RunOptions {
            insecure_dev_tls: true,
            ..Default::default()
        };
        let tls = tls_section(&config, &options);
        assert_eq!(tls.mode, TlsMode::DevInsecure);
        assert_eq!(tls.dev_key, "11".repeat(32));
        let tls = tls_section(&ProxyConfig::default(), &RunOptions::default());
        assert_eq!(tls.mode, TlsMode::Tdx, "secure by default");
    }

    #[test]
    fn the_binary_loads_tls_and_chain_sections_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("proxy.toml");
        let root = format!("0:{}", "11".repeat(32));
        let operator = format!("0:{}", "22".repeat(32));
        std::fs::write(
            &file,
            format!(
                "store_path = \"x.redb\"\n[tls]\nmode = \"simulated\"\nimage_label = \"img\"\n\
                 [chain]\napi_url = \"http://127.0.0.1:1\"\nroot = \"{root}\"\noperator = \"{operator}\"\n\
                 refresh_ms = 500\nbind_retry_ms = 1000\n"
            ),
        )
        .unwrap();
        let sources = Sources {
            file: Some(file),
            overrides: vec!["chain.settle_attempts=2".into()],
            ..Default::default()
        };
        let c = load_unchecked(&sources).unwrap();
        assert_eq!(c.tls.mode, TlsMode::Simulated);
        assert_eq!(c.tls.image_label, "img");
        assert_eq!(c.chain.refresh_ms, 500);
        assert_eq!(c.chain.settle_attempts, 2);
        assert_eq!(c.chain.bind_policy().retry_after, Duration::from_secs(1));
        // The default [tls] (tdx without collateral) is left to `build`, after --insecure-dev-tls.
        assert!(load_unchecked(&Sources::default()).is_ok());
        let bad = Sources {
            overrides: vec!["chain.root=nope".into()],
            ..Default::default()
        };
        assert!(load_unchecked(&bad).is_err());
    }

    #[tokio::test]
    async fn without_a_chain_only_the_explicit_dev_mode_runs() {
        let dir = tempfile::tempdir().unwrap();
        let config = ProxyConfig {
            client_listen: "127.0.0.1:0".into(),
            worker_listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            store_path: dir.path().join("l.redb").display().to_string(),
            tls: TlsSection::with_mode(TlsMode::Simulated),
            ..Default::default()
        };
        let err = build(config.clone(), &RunOptions::default())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("no [chain] root"), "{err:#}");
        let dev = RunOptions {
            dev_client_credit: Some(1000),
            ..Default::default()
        };
        let err = build(config.clone(), &dev).await.unwrap_err();
        assert!(format!("{err:#}").contains("dev-insecure"), "{err:#}");
        let dev = RunOptions {
            insecure_dev_tls: true,
            dev_client_credit: Some(1000),
            ..Default::default()
        };
        let daemon = build(config, &dev).await.unwrap();
        assert!(daemon.tls.identity().insecure);
        daemon.shutdown(Duration::from_secs(1)).await;
    }
}
