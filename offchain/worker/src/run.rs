//! Binary glue for `cocoon-worker` and `cocoon worker run`: run a worker next to an inference engine.
//!
//! TLS comes from the `[tls]` section (`cocoon_daemon::tls_config::build_hop_tls`); proxies' images
//! are checked against the root contract's proxy allowlist, refreshed by the chain monitor. The
//! `[chain]` section is required unless TLS is `dev-insecure`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::chain::WorkerChain;
use crate::chain_ton::TonChain;
use crate::{RootHook, WorkerConfig, WorkerOptions};
use anyhow::Context;
use cocoon_attestation as att;
use cocoon_daemon::config::{Sources, load};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::{Shutdown, os_signal};
use cocoon_daemon::tls::Role;
use cocoon_daemon::tls_config::{TlsMode, build_hop_tls};
use cocoon_protocol::PriceParams;
use cocoon_ton::{HttpTonClient, TonClient, TonClientConfig};

/// Run a cocoon worker.
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

/// The TLS section after the command-line shorthand; a top-level `dev_key` still works.
fn tls_section(
    config: &WorkerConfig,
    insecure_dev_tls: bool,
) -> cocoon_daemon::tls_config::TlsSection {
    let mut tls = config.tls.clone();
    if insecure_dev_tls {
        tls.mode = TlsMode::DevInsecure;
    }
    if tls.dev_key.is_empty() && tls.key_file.is_empty() && !config.dev_key.is_empty() {
        tls.dev_key = config.dev_key.clone();
    }
    tls
}

/// Proxy images from the root, as the attestation policy's allowlist.
fn proxy_snapshot(root: &crate::chain::RootView) -> att::policy::AllowlistSnapshot {
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

/// Loads the configuration, checks it and the chain, starts the daemon and its admin endpoint, and
/// runs until SIGINT/SIGTERM, then drains.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    cocoon_daemon::init_tracing(args.json_logs);
    let config: WorkerConfig = load(&Sources::from_process(args.config.as_deref(), args.set))
        .context("loading worker configuration")?;
    let tls_section = tls_section(&config, args.insecure_dev_tls);
    tls_section.validate().context("[tls]")?;
    let allowlist = att::InMemoryAllowlist::new();
    let tls = build_hop_tls(Role::Worker, &tls_section, Arc::new(allowlist.clone()))
        .context("building the worker's TLS")?;
    let identity = tls.identity();
    tracing::info!(
        key = %hex::encode(identity.public_key),
        image_hash = %hex::encode(identity.image_hash),
        tee = %identity.tee,
        "worker identity (bind the stake to it: `cocoon worker stake --amount <TON> --key <key>`)"
    );

    let mut options = WorkerOptions::default();
    let params = if config.chain.enabled() {
        let mut client_config = TonClientConfig::new(config.chain.api_url.clone());
        client_config.api_key = config.chain.api_key();
        if client_config.api_key.is_none() && config.chain.api_url.contains("toncenter.com") {
            // toncenter answers 1 request per second without a key.
            client_config.min_interval = Some(Duration::from_millis(1100));
        }
        let client: Arc<dyn TonClient> =
            Arc::new(HttpTonClient::new(client_config).context("chain client")?);
        let wallet = config.chain.owner_wallet()?;
        if wallet.is_none() {
            tracing::warn!("no owner mnemonic configured: payouts are NOT claimed by this worker");
        }
        let chain = TonChain::new(
            client,
            config.chain.root_address()?,
            config.chain.owner_address()?,
            wallet,
        );
        let root = chain
            .root()
            .await
            .context("reading the root contract (is chain.root right and the API reachable?)")?;
        allowlist.replace(proxy_snapshot(&root));
        options.chain = Some(Arc::new(chain));
        let hook_list = allowlist.clone();
        options.on_root = Some(RootHook(Box::new(move |root| {
            hook_list.replace(proxy_snapshot(root));
        })));
        root.params
    } else {
        anyhow::ensure!(
            tls_section.mode == TlsMode::DevInsecure,
            "[chain] root is not set: only tls.mode = \"dev-insecure\" may run without chain checks"
        );
        PriceParams::default()
    };

    let admin = tokio::net::TcpListener::bind(&config.admin_listen)
        .await
        .with_context(|| format!("binding admin {}", config.admin_listen))?;
    let registry = Registry::new();
    let worker = crate::start_with(config, tls, params, registry.clone(), options)?;
    let state = worker.state.clone();
    let key = hex::encode(identity.public_key);
    let status = Arc::new(move || {
        serde_json::json!({
            "role": "worker",
            "key": key,
            "coefficient": state.coefficient(),
            "in_flight": state.in_flight(),
            "announced_capacity": state.announced_capacity(),
            "status": state.status(),
            "payout_vouchers_held": state.payouts.as_ref().map_or(0, |p| p.held().len()),
        })
    });
    let admin_shutdown = Shutdown::new();
    tokio::spawn(cocoon_daemon::admin::serve_admin(
        admin,
        registry,
        status,
        worker.shutdown.clone(),
        admin_shutdown.clone(),
    ));
    tracing::info!("worker running");
    os_signal().await;
    tracing::info!("draining");
    worker.shutdown(Duration::from_secs(30)).await;
    admin_shutdown.trigger();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_flag_and_top_level_key_reach_the_tls_section() {
        let config = WorkerConfig {
            dev_key: "11".repeat(32),
            ..Default::default()
        };
        let tls = tls_section(&config, true);
        assert_eq!(tls.mode, TlsMode::DevInsecure);
        assert_eq!(tls.dev_key, "11".repeat(32));
        let tls = tls_section(&WorkerConfig::default(), false);
        assert_eq!(tls.mode, TlsMode::Tdx);
        assert!(tls.dev_key.is_empty());
    }

    #[test]
    fn proxy_allowlist_follows_the_root() {
        let mut root = crate::chain::RootView::default();
        root.proxy_images.insert([1; 32], 0);
        root.proxy_images.insert([2; 32], 77);
        root.worker_images.insert([3; 32], 0);
        let snap = proxy_snapshot(&root);
        assert_eq!(snap.len(), 2);
        assert_eq!(
            snap.get(&(att::Role::Proxy, [1; 32])),
            Some(&att::policy::ImageStatus::Allowed)
        );
        assert_eq!(
            snap.get(&(att::Role::Proxy, [2; 32])),
            Some(&att::policy::ImageStatus::Revoked { at: 77 })
        );
    }
}
