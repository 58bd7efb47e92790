//! Binary glue for `cocoon-proxy` and `cocoon proxy run`: run a proxy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{MemoryChain, ProxyConfig};
use anyhow::Context;
use cocoon_daemon::config::{Sources, load};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::{Shutdown, os_signal};
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_protocol::PriceParams;

/// Run a cocoon proxy.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// TOML config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config key: `--set key=value` (repeatable; beats env and file).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Use development TLS without attestation (INSECURE).
    #[arg(long)]
    pub insecure_dev_tls: bool,
    /// Without a chain: accept any client with this much credit (nanoTON) and record settlements in
    /// memory only (development).
    #[arg(long)]
    pub dev_client_credit: Option<u128>,
    /// JSON logs.
    #[arg(long)]
    pub json_logs: bool,
}

/// Loads the configuration, starts the daemon and its admin endpoint, and runs until SIGINT/SIGTERM,
/// then drains.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    cocoon_daemon::init_tracing(args.json_logs);
    let config: ProxyConfig = load(&Sources::from_process(args.config.as_deref(), args.set))
        .context("loading proxy configuration")?;
    anyhow::ensure!(
        args.insecure_dev_tls,
        "RA-TLS is not wired into the binary yet: pass --insecure-dev-tls"
    );
    anyhow::ensure!(
        args.dev_client_credit.is_some(),
        "no chain backend wired yet: pass --dev-client-credit"
    );
    let tls: Arc<dyn HopTls> =
        Arc::new(DevTls::from_dev_key(Role::Proxy, &config.dev_key).context("development TLS")?);
    let chain = Arc::new(crate::chain::OpenChain::new(
        MemoryChain::new(PriceParams::default(), tls.identity().public_key),
        args.dev_client_credit.unwrap_or(0),
    ));
    let admin = tokio::net::TcpListener::bind(&config.admin_listen)
        .await
        .with_context(|| format!("binding admin {}", config.admin_listen))?;
    let registry = Registry::new();
    let proxy = crate::start(config, tls, chain.clone(), chain, registry.clone()).await?;
    let state = proxy.proxy.clone();
    let status = Arc::new(move || state.status_json());
    let admin_shutdown = Shutdown::new();
    tokio::spawn(cocoon_daemon::admin::serve_admin(
        admin,
        registry,
        status,
        proxy.draining(),
        admin_shutdown.clone(),
    ));
    println!(
        "{}",
        serde_json::json!({"client_addr": proxy.client_addr, "worker_addr": proxy.worker_addr})
    );
    os_signal().await;
    tracing::info!("draining");
    proxy.shutdown(Duration::from_secs(30)).await;
    admin_shutdown.trigger();
    Ok(())
}
