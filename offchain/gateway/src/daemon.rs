//! The gateway daemon behind `cocoon-gateway` and `cocoon client gateway`: the local
//! OpenAI-compatible endpoint for apps.
//!
//! [`build`] is what the binary runs and what in-process networks call: the proxy is the one
//! configured, or else the one registered in the root contract (its key pinned); TLS comes from
//! `[tls]` with an unattested client certificate (the client has no TEE) and verifies the proxy's
//! quote against the root's proxy image allowlist. Everything is checked before the port is bound.

use std::sync::Arc;
use std::time::Duration;

use crate::{GatewayConfig, GatewayHandle};
use anyhow::Context;
use cocoon_attestation as att;
use cocoon_daemon::admin::{AdminEndpoint, StatusFn};
use cocoon_daemon::launch::{Daemon, DaemonArgs, effective_tls};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::os_signal;
use cocoon_daemon::tls::{HopTls, Role};
use cocoon_daemon::tls_config::{TlsMode, TlsSection, build_hop_tls_with_policy, peer_policy};
use cocoon_onchain::allowlist::{RootAllowlist, registered_proxies};

/// The proxy used (`host:port`) and its pinned key, if any.
type ChosenProxy = (String, Option<[u8; 32]>);

/// A gateway built from config, with its admin endpoint.
pub struct GatewayDaemon {
    /// The serving gateway.
    pub handle: GatewayHandle,
    /// The admin endpoint (`/metrics`, `/healthz`, `/status`).
    pub admin: AdminEndpoint,
    /// The gateway's TLS (its key is the client key escrows are bound to).
    pub tls: Arc<dyn HopTls>,
    /// The proxy used (`host:port`) and its pinned key, if any.
    pub proxy: (String, Option<[u8; 32]>),
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for GatewayDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayDaemon")
            .field("handle", &self.handle)
            .field("admin", &self.admin)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Daemon for GatewayDaemon {
    fn banner(&self) -> serde_json::Value {
        serde_json::json!({
            "listen": self.handle.addr,
            "admin_addr": self.admin.addr,
            "proxy": self.proxy.0,
            "client_key": hex::encode(self.tls.identity().public_key),
        })
    }

    /// Drains in-flight streams (up to `grace`), then stops the admin endpoint and refresher.
    async fn shutdown(self, grace: Duration) {
        self.handle.shutdown(grace).await;
        self.admin.stop();
        for t in self.tasks {
            t.abort();
        }
    }
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

/// The gateway's TLS and proxy on a chain: the proxy registered in the root (its key pinned),
/// checked against the root's proxy image allowlist.
async fn on_chain(
    config: &GatewayConfig,
    tls_section: &TlsSection,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<(Arc<dyn HopTls>, ChosenProxy)> {
    let client = config.chain.endpoint.client()?;
    let root = cocoon_ton::parse_address(&config.chain.root)?;
    let registered = registered_proxies(client.as_ref(), &root).await.context(
        "reading the root's registered proxies (is chain.root right and the API reachable?)",
    )?;
    let proxy = choose_proxy(config, &registered)?;
    let allowlist = Arc::new(att::policy::CachingAllowlist::new(
        Arc::new(RootAllowlist::new(Arc::clone(&client), root.clone())),
        Duration::from_millis(config.chain.allowlist_refresh_ms),
        Duration::from_millis(config.chain.allowlist_max_stale_ms),
        Arc::new(att::SystemClock),
    ));
    allowlist
        .refresh()
        .await
        .context("reading the root's image allowlist")?;
    tasks.push(allowlist.spawn_refresher());
    let mut policy = peer_policy(Role::Client, tls_section, allowlist)?;
    if let Some(key) = proxy.1 {
        // Pinned while the root registers it: a deregistered proxy's live connection is closed
        // at its next re-verification, and no new one is accepted.
        let keys = att::PeerKeys::new(vec![key]);
        tasks.push(follow_registration(
            client,
            root,
            key,
            keys.clone(),
            Duration::from_millis(config.chain.allowlist_refresh_ms),
        ));
        policy = policy.expect_peer_key_set(keys);
    }
    let tls = build_hop_tls_with_policy(Role::Client, tls_section, policy)
        .context("building the gateway's TLS")?;
    Ok((tls, proxy))
}

/// Re-reads the root's registered proxies every `every` and keeps `keys` at `[key]` while `key` is
/// registered, empty once it is not (a failed read keeps the last answer; the allowlist's own
/// staleness limit covers a chain that cannot be read).
fn follow_registration(
    client: Arc<dyn cocoon_ton::TonClient>,
    root: cocoon_ton::TonAddress,
    key: [u8; 32],
    keys: att::PeerKeys,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match registered_proxies(client.as_ref(), &root).await {
                Ok(list) => {
                    let registered = list.iter().any(|p| p.key == key);
                    if registered != keys.contains(&key) {
                        if registered {
                            tracing::info!(proxy = %hex::encode(key), "the proxy is registered in the root again");
                        } else {
                            tracing::warn!(proxy = %hex::encode(key), "the root no longer registers the proxy: its connections will be closed");
                        }
                    }
                    keys.replace(if registered { vec![key] } else { Vec::new() });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the root's registered proxies failed; keeping the last answer")
                }
            }
        }
    })
}

/// The INSECURE development gateway without a chain: the configured proxy, no image allowlist.
fn without_chain(
    config: &GatewayConfig,
    tls_section: &TlsSection,
) -> anyhow::Result<(Arc<dyn HopTls>, ChosenProxy)> {
    anyhow::ensure!(
        tls_section.mode == TlsMode::DevInsecure,
        "[chain] root is not set, so no proxy image allowlist: only tls.mode = \"dev-insecure\" (INSECURE) runs without a chain"
    );
    let proxy = (config.proxy.clone(), config.proxy_key_bytes()?);
    let policy = peer_policy(
        Role::Client,
        tls_section,
        Arc::new(att::InMemoryAllowlist::new()),
    )?;
    let tls = build_hop_tls_with_policy(Role::Client, tls_section, policy)
        .context("building the gateway's TLS")?;
    Ok((tls, proxy))
}

fn status_fn(handle: &GatewayHandle, client_key: [u8; 32], proxy: String) -> StatusFn {
    let gw = handle.gateway.clone();
    let client_key = hex::encode(client_key);
    Arc::new(move || {
        let receipts = gw.receipts();
        let verified = receipts.iter().filter(|r| r.status.is_verified()).count();
        serde_json::json!({"role": "gateway", "client_key": client_key, "proxy": proxy, "receipts": receipts.len(), "verified": verified})
    })
}

/// Builds a gateway from `config` exactly as the binary does and starts serving.
pub async fn build(config: GatewayConfig, insecure_dev_tls: bool) -> anyhow::Result<GatewayDaemon> {
    use cocoon_daemon::config::Validate;
    config.validate().context("gateway configuration")?;
    let tls_section = effective_tls(&config.tls, &config.dev_key, insecure_dev_tls);
    tls_section.validate().context("[tls]")?;
    let mut tasks = Vec::new();
    let (tls, proxy) = if config.chain.enabled() {
        on_chain(&config, &tls_section, &mut tasks).await?
    } else {
        without_chain(&config, &tls_section)?
    };
    let mut serving = config.clone();
    serving.proxy = proxy.0.clone();
    serving.proxy_key = proxy.1.map(hex::encode).unwrap_or_default();
    let registry = Registry::new();
    let handle = crate::start(serving, tls.clone(), registry.clone()).await?;
    let status = status_fn(&handle, tls.identity().public_key, proxy.0.clone());
    let admin =
        match AdminEndpoint::start(&config.admin_listen, registry, status, handle.draining()).await
        {
            Ok(admin) => admin,
            Err(e) => {
                handle.shutdown(Duration::ZERO).await;
                return Err(e).with_context(|| format!("binding admin {}", config.admin_listen));
            }
        };
    Ok(GatewayDaemon {
        handle,
        admin,
        tls,
        proxy,
        tasks,
    })
}

/// Loads the configuration, builds the gateway ([`build`]), and runs until SIGINT/SIGTERM, then
/// drains.
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let config: GatewayConfig = args.load().context("loading gateway configuration")?;
    build(config, args.insecure_dev_tls)
        .await?
        .run_until(os_signal())
        .await;
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
}
