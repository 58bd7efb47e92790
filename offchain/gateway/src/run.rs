//! Binary glue for `cocoon-gateway` and `cocoon client gateway`: the local OpenAI-compatible endpoint
//! for apps.
//!
//! [`build`] is what the binary runs and what in-process networks call: the proxy is the one
//! configured, or else the one registered in the root contract (its key pinned); TLS comes from
//! `[tls]` with an unattested client certificate (the client has no TEE) and verifies the proxy's
//! quote against the root's proxy image allowlist. Everything is checked before the port is bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{GatewayConfig, GatewayHandle};
use anyhow::Context;
use cocoon_attestation as att;
use cocoon_daemon::config::{Sources, load};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::{Shutdown, os_signal};
use cocoon_daemon::tls::{HopTls, Role};
use cocoon_daemon::tls_config::{TlsMode, TlsSection, build_hop_tls_with_policy, peer_policy};
use cocoon_onchain::allowlist::{RootAllowlist, registered_proxies};
use cocoon_ton::{HttpTonClient, TonClient, TonClientConfig};

/// Run a cocoon client gateway.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// TOML config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config key: `--set key=value` (repeatable; beats env and file).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Shorthand for `--set tls.mode=dev-insecure`: no attestation at all (INSECURE).
    #[arg(long)]
    pub insecure_dev_tls: bool,
    /// JSON logs.
    #[arg(long)]
    pub json_logs: bool,
}

/// A gateway built from config, with its admin endpoint.
pub struct GatewayDaemon {
    /// The serving gateway.
    pub handle: GatewayHandle,
    /// Bound admin endpoint.
    pub admin_addr: SocketAddr,
    /// The gateway's TLS (its key is the client key escrows are bound to).
    pub tls: Arc<dyn HopTls>,
    /// The proxy used (`host:port`) and its pinned key, if any.
    pub proxy: (String, Option<[u8; 32]>),
    admin_shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for GatewayDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayDaemon")
            .field("handle", &self.handle)
            .field("admin_addr", &self.admin_addr)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl GatewayDaemon {
    /// Drains in-flight streams (up to `grace`), then stops the admin endpoint and refresher.
    pub async fn shutdown(self, grace: Duration) {
        self.handle.shutdown(grace).await;
        self.admin_shutdown.trigger();
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The `[tls]` section after the command-line shorthand; a top-level `dev_key` still works.
pub fn tls_section(config: &GatewayConfig, insecure_dev_tls: bool) -> TlsSection {
    let mut tls = config.tls.clone();
    if insecure_dev_tls {
        tls.mode = TlsMode::DevInsecure;
    }
    if tls.dev_key.is_empty() && tls.key_file.is_empty() && !config.dev_key.is_empty() {
        tls.dev_key = config.dev_key.clone();
    }
    tls
}

/// Picks the proxy: the configured endpoint, or the root's registration (the configured operator's,
/// else the first); a registered proxy's key is pinned.
fn choose_proxy(
    config: &GatewayConfig,
    registered: &[cocoon_onchain::allowlist::RegisteredProxy],
) -> anyhow::Result<(String, Option<[u8; 32]>)> {
    let pinned = config.proxy_key_bytes()?;
    if !config.proxy.is_empty() {
        let from_root = registered
            .iter()
            .find(|p| p.endpoints.split(',').any(|e| e.trim() == config.proxy));
        return Ok((config.proxy.clone(), pinned.or(from_root.map(|p| p.key))));
    }
    let wanted = if config.chain.proxy_operator.is_empty() {
        None
    } else {
        Some(cocoon_ton::parse_address(&config.chain.proxy_operator)?)
    };
    let proxy = registered
        .iter()
        .find(|p| wanted.as_ref().is_none_or(|w| *w == p.operator))
        .context("no proxy registered in the root (or none for chain.proxy_operator)")?;
    let endpoint = proxy
        .endpoints
        .split(',')
        .map(str::trim)
        .find(|e| e.contains(':'))
        .with_context(|| {
            format!(
                "the registered proxy has no host:port endpoint ({:?})",
                proxy.endpoints
            )
        })?;
    if pinned.is_some_and(|p| p != proxy.key) {
        anyhow::bail!("proxy_key is not the key the root registers for this proxy");
    }
    Ok((endpoint.to_owned(), Some(proxy.key)))
}

/// Builds a gateway from `config` exactly as the binary does and starts serving.
pub async fn build(config: GatewayConfig, insecure_dev_tls: bool) -> anyhow::Result<GatewayDaemon> {
    use cocoon_daemon::config::Validate;
    config.validate().context("gateway configuration")?;
    let tls_section = tls_section(&config, insecure_dev_tls);
    tls_section.validate().context("[tls]")?;
    let mut tasks = Vec::new();
    let (tls, proxy) = if config.chain.enabled() {
        let mut client_config = TonClientConfig::new(config.chain.api_url.clone());
        client_config.api_key = config.chain.api_key();
        let client: Arc<dyn TonClient> =
            Arc::new(HttpTonClient::new(client_config).context("chain client")?);
        let root = cocoon_ton::parse_address(&config.chain.root)?;
        let registered = registered_proxies(client.as_ref(), &root).await.context(
            "reading the root's registered proxies (is chain.root right and the API reachable?)",
        )?;
        let proxy = choose_proxy(&config, &registered)?;
        let allowlist = Arc::new(att::policy::CachingAllowlist::new(
            Arc::new(RootAllowlist::new(client, root)),
            Duration::from_millis(config.chain.allowlist_refresh_ms),
            Duration::from_millis(config.chain.allowlist_max_stale_ms),
            Arc::new(att::SystemClock),
        ));
        allowlist
            .refresh()
            .await
            .context("reading the root's image allowlist")?;
        tasks.push(allowlist.spawn_refresher());
        let mut policy = peer_policy(Role::Client, &tls_section, allowlist)?;
        if let Some(key) = proxy.1 {
            policy = policy.expect_peer_keys(vec![key]);
        }
        let tls = build_hop_tls_with_policy(Role::Client, &tls_section, policy)
            .context("building the gateway's TLS")?;
        (tls, proxy)
    } else {
        anyhow::ensure!(
            tls_section.mode == TlsMode::DevInsecure,
            "[chain] root is not set, so no proxy image allowlist: only tls.mode = \"dev-insecure\" (INSECURE) runs without a chain"
        );
        let proxy = (config.proxy.clone(), config.proxy_key_bytes()?);
        let policy = peer_policy(
            Role::Client,
            &tls_section,
            Arc::new(att::InMemoryAllowlist::new()),
        )?;
        let tls = build_hop_tls_with_policy(Role::Client, &tls_section, policy)
            .context("building the gateway's TLS")?;
        (tls, proxy)
    };
    let mut serving = config.clone();
    serving.proxy = proxy.0.clone();
    serving.proxy_key = proxy.1.map(hex::encode).unwrap_or_default();
    let admin = tokio::net::TcpListener::bind(&config.admin_listen)
        .await
        .with_context(|| format!("binding admin {}", config.admin_listen))?;
    let admin_addr = admin.local_addr().context("admin address")?;
    let registry = Registry::new();
    let client_key = hex::encode(tls.identity().public_key);
    let handle = crate::start(serving, tls.clone(), registry.clone()).await?;
    let gw = handle.gateway.clone();
    let shown_proxy = proxy.0.clone();
    let status = Arc::new(move || {
        let receipts = gw.receipts();
        let verified = receipts.iter().filter(|r| r.status.is_verified()).count();
        serde_json::json!({"role": "gateway", "client_key": client_key, "proxy": shown_proxy, "receipts": receipts.len(), "verified": verified})
    });
    let admin_shutdown = Shutdown::new();
    tasks.push(tokio::spawn(cocoon_daemon::admin::serve_admin(
        admin,
        registry,
        status,
        handle.draining(),
        admin_shutdown.clone(),
    )));
    Ok(GatewayDaemon {
        handle,
        admin_addr,
        tls,
        proxy,
        admin_shutdown,
        tasks,
    })
}

/// Loads the configuration, builds the gateway ([`build`]), and runs until SIGINT/SIGTERM, then
/// drains.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    cocoon_daemon::init_tracing(args.json_logs);
    let config: GatewayConfig = load(&Sources::from_process(args.config.as_deref(), args.set))
        .context("loading gateway configuration")?;
    let daemon = build(config, args.insecure_dev_tls).await?;
    println!(
        "{}",
        serde_json::json!({
            "listen": daemon.handle.addr,
            "admin_addr": daemon.admin_addr,
            "proxy": daemon.proxy.0,
            "client_key": hex::encode(daemon.tls.identity().public_key),
        })
    );
    os_signal().await;
    tracing::info!("draining");
    daemon.shutdown(Duration::from_secs(30)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_onchain::allowlist::RegisteredProxy;

    fn registered(n: u8) -> RegisteredProxy {
        RegisteredProxy {
            operator: cocoon_ton::parse_address(&format!("0:{}", hex::encode([n; 32]))).unwrap(),
            key: [n; 32],
            endpoints: format!("10.0.0.{n}:9300"),
        }
    }

    #[test]
    fn the_proxy_comes_from_config_or_from_the_root() {
        let list = [registered(1), registered(2)];
        let mut config = GatewayConfig {
            chain: crate::config::GatewayChain {
                root: format!("0:{}", "33".repeat(32)),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            choose_proxy(&config, &list).unwrap(),
            ("10.0.0.1:9300".to_owned(), Some([1; 32]))
        );
        config.chain.proxy_operator = format!("0:{}", "02".repeat(32));
        assert_eq!(
            choose_proxy(&config, &list).unwrap(),
            ("10.0.0.2:9300".to_owned(), Some([2; 32]))
        );
        config.proxy_key = "01".repeat(32);
        assert!(
            choose_proxy(&config, &list).is_err(),
            "pin contradicts the root"
        );
        config.proxy_key = String::new();
        config.proxy = "10.0.0.2:9300".into();
        assert_eq!(choose_proxy(&config, &list).unwrap().1, Some([2; 32]));
        config.proxy = "127.0.0.1:1".into();
        assert_eq!(choose_proxy(&config, &list).unwrap().1, None);
        config.proxy = String::new();
        config.chain.proxy_operator = format!("0:{}", "09".repeat(32));
        assert!(choose_proxy(&config, &[]).is_err());
    }

    #[tokio::test]
    async fn without_a_chain_only_dev_insecure_tls_runs() {
        let config = GatewayConfig {
            listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            proxy: "127.0.0.1:9".into(),
            tls: TlsSection::with_mode(TlsMode::Simulated),
            ..Default::default()
        };
        let err = build(config.clone(), false).await.unwrap_err();
        assert!(format!("{err:#}").contains("dev-insecure"), "{err:#}");
        let mut no_proxy = config.clone();
        no_proxy.proxy = String::new();
        let err = build(no_proxy, true).await.unwrap_err();
        assert!(format!("{err:#}").contains("chain.root"), "{err:#}");
        let daemon = build(config, true).await.unwrap();
        assert!(daemon.tls.identity().insecure);
        assert_eq!(daemon.proxy, ("127.0.0.1:9".to_owned(), None));
        daemon.shutdown(Duration::from_secs(1)).await;
    }

    #[test]
    fn dev_flag_and_top_level_key_reach_the_tls_section() {
        let config = GatewayConfig {
            dev_key: "11".repeat(32),
            ..Default::default()
        };
        let tls = tls_section(&config, true);
        assert_eq!(tls.mode, TlsMode::DevInsecure);
        assert_eq!(tls.dev_key, "11".repeat(32));
    }
}
