//! The worker daemon: [`build`] assembles a worker from its config exactly as `cocoon-worker`,
//! `cocoon worker run` and the local network run it, and [`run`] is the binary's whole life.
//!
//! TLS comes from the `[tls]` section (`cocoon_daemon::tls_config::build_hop_tls`); proxies' images
//! are checked against the root contract's proxy allowlist, refreshed by the chain monitor. The
//! `[chain]` section is required unless TLS is `dev-insecure`.

use std::sync::Arc;
use std::time::Duration;

use crate::chain::WorkerChain;
use crate::chain_ton::TonChain;
use crate::{RootHook, WorkerConfig, WorkerHandle, WorkerOptions};
use anyhow::Context;
use cocoon_attestation as att;
use cocoon_daemon::admin::{AdminEndpoint, StatusFn};
use cocoon_daemon::keys::{KmsContext, key_material};
use cocoon_daemon::launch::{Daemon, DaemonArgs, effective_tls, identity_banner};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::os_signal;
use cocoon_daemon::tls::{HopTls, Role};
use cocoon_daemon::tls_config::{KeySource, TlsMode, build_hop_tls_keyed};
use cocoon_protocol::PriceParams;

/// What the command line (or an embedding network) adds to the config.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--insecure-dev-tls`.
    pub insecure_dev_tls: bool,
    /// The owner's wallet, already unlocked (the local network's wallets come from keys); when
    /// `None` the `chain.owner_mnemonic_*` settings provide it, if any.
    pub owner_wallet: Option<cocoon_ton::Wallet>,
}

/// A worker built from config, with its admin endpoint.
pub struct WorkerDaemon {
    /// The serving worker.
    pub handle: WorkerHandle,
    /// The admin endpoint (`/metrics`, `/healthz`, `/status`).
    pub admin: AdminEndpoint,
    /// The worker's TLS (its key is the one bound in its stake).
    pub tls: Arc<dyn HopTls>,
}

impl std::fmt::Debug for WorkerDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerDaemon")
            .field("handle", &self.handle)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Daemon for WorkerDaemon {
    fn banner(&self) -> serde_json::Value {
        let mut addrs = serde_json::Map::new();
        addrs.insert("admin_addr".into(), serde_json::json!(self.admin.addr));
        identity_banner(self.tls.as_ref(), addrs)
    }

    async fn shutdown(self, grace: Duration) {
        self.handle.shutdown(grace).await;
        self.admin.stop();
    }
}

/// Proxy images (and the key-service images a `key_source = "kms"` worker accepts) from the root,
/// as the attestation policy's allowlist.
fn proxy_snapshot(root: &crate::chain::RootView) -> att::policy::AllowlistSnapshot {
    let status = |at: u32| {
        if at == 0 {
            att::policy::ImageStatus::Allowed
        } else {
            att::policy::ImageStatus::Revoked { at: u64::from(at) }
        }
    };
    let proxies = root
        .proxy_images
        .iter()
        .map(|(hash, &at)| ((att::Role::Proxy, *hash), status(at)));
    let services = root
        .kms_images
        .iter()
        .map(|(hash, &at)| ((att::Role::Kms, *hash), status(at)));
    proxies.chain(services).collect()
}

/// Reads the root through `[chain]` and wires the proxy allowlist to follow it; returns the
/// options the worker starts with and the network's price parameters.
async fn chain_options(
    config: &WorkerConfig,
    owner_wallet: Option<cocoon_ton::Wallet>,
    allowlist: &att::InMemoryAllowlist,
) -> anyhow::Result<(WorkerOptions, PriceParams)> {
    let chain = &config.chain;
    let client = chain.endpoint.client()?;
    let wallet = match owner_wallet {
        Some(w) => Some(w),
        None => chain.owner_wallet()?,
    };
    if wallet.is_none() {
        tracing::warn!("no owner mnemonic configured: payouts are NOT claimed by this worker");
    }
    let ton = TonChain::new(
        client,
        chain.root_address()?,
        chain.owner_address()?,
        wallet,
    );
    let root = ton
        .root()
        .await
        .context("reading the root contract (is chain.root right and the API reachable?)")?;
    allowlist.replace(proxy_snapshot(&root));
    let hook_list = allowlist.clone();
    let options = WorkerOptions {
        chain: Some(Arc::new(ton)),
        on_root: Some(RootHook(Box::new(move |root| {
            hook_list.replace(proxy_snapshot(root));
        }))),
    };
    Ok((options, root.params))
}

fn status_fn(handle: &WorkerHandle) -> StatusFn {
    let state = handle.state.clone();
    let key = hex::encode(handle.state_key());
    Arc::new(move || {
        serde_json::json!({
            "role": "worker",
            "key": key,
            "coefficient": state.coefficient(),
            "in_flight": state.in_flight(),
            "announced_capacity": state.announced_capacity(),
            "status": state.status(),
            "payout_vouchers_held": state.payouts.as_ref().map_or(0, |p| p.held().len()),
        })
    })
}

/// Builds a worker from `config` exactly as the binary does (TLS, chain checks, admin endpoint)
/// and starts it dialing its proxies.
pub async fn build(config: WorkerConfig, options: &BuildOptions) -> anyhow::Result<WorkerDaemon> {
    use cocoon_daemon::config::Validate;
    config.validate().context("worker configuration")?;
    let tls_section = effective_tls(&config.tls, &config.dev_key, options.insecure_dev_tls);
    tls_section.validate().context("[tls]")?;
    // Before anything is built: the real-TEE endpoint rules and the weights file's hash.
    crate::measured::check_start(&config, tls_section.mode)
        .context("measured configuration (refusing to serve)")?;
    let config_hash = crate::measured::config_hash(&config, tls_section.mode)
        .context("measuring the configuration")?;
    let allowlist = att::InMemoryAllowlist::new();
    let (worker_options, params) = if config.chain.enabled() {
        chain_options(&config, options.owner_wallet.clone(), &allowlist).await?
    } else {
        anyhow::ensure!(
            tls_section.mode == TlsMode::DevInsecure,
            "[chain] root is not set: only tls.mode = \"dev-insecure\" may run without chain checks"
        );
        (WorkerOptions::default(), PriceParams::default())
    };
    // The one key seam: a boot key made here (with key_source = "kms" also proven to the key
    // service, which releases the worker's storage key), or a local key in development.
    let kms = if tls_section.key_source == KeySource::Kms {
        Some(KmsContext {
            root: config.chain.root_address()?,
            wallet: config.chain.owner_address()?,
            allowlist: Arc::new(allowlist.clone()),
            config_hash: Some(config_hash),
        })
    } else {
        None
    };
    let keys = key_material(Role::Worker, &tls_section, kms.as_ref())
        .await
        .context("getting the worker's keys")?;
    let tls = build_hop_tls_keyed(
        Role::Worker,
        &tls_section,
        Arc::new(allowlist.clone()),
        &keys,
        Some(&config_hash),
    )
    .context("building the worker's TLS")?;
    let identity = tls.identity();
    tracing::info!(
        key = %hex::encode(identity.public_key),
        image_hash = %hex::encode(identity.image_hash),
        config_hash = %hex::encode(config_hash),
        tee = %identity.tee,
        "worker identity (bind the stake to it: `cocoon worker stake --amount <TON> --key <key>`)"
    );
    let registry = Registry::new();
    let admin_listen = config.admin_listen.clone();
    let handle = crate::start_with(
        config,
        tls.clone(),
        params,
        registry.clone(),
        worker_options,
    )?;
    let admin = match AdminEndpoint::start(
        &admin_listen,
        registry,
        status_fn(&handle),
        handle.shutdown.clone(),
    )
    .await
    {
        Ok(admin) => admin,
        Err(e) => {
            handle.shutdown(Duration::ZERO).await;
            return Err(e).with_context(|| format!("binding admin {admin_listen}"));
        }
    };
    tracing::info!("worker running");
    Ok(WorkerDaemon { handle, admin, tls })
}

/// Loads the configuration, builds the worker ([`build`]), and runs until SIGINT/SIGTERM, then
/// drains.
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let config: WorkerConfig = args.load().context("loading worker configuration")?;
    let options = BuildOptions {
        insecure_dev_tls: args.insecure_dev_tls,
        owner_wallet: None,
    };
    build(config, &options).await?.run_until(os_signal()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
