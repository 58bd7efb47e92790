//! Binary glue for `cocoon-gateway` and `cocoon gateway run`: the local OpenAI-compatible endpoint for apps.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::GatewayConfig;
use anyhow::Context;
use cocoon_daemon::config::{Sources, load};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::{Shutdown, os_signal};
use cocoon_daemon::tls::{DevTls, HopTls, Role};

/// Run a cocoon client gateway.
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
    /// JSON logs.
    #[arg(long)]
    pub json_logs: bool,
}

/// Loads the configuration, starts the daemon and its admin endpoint, and runs until SIGINT/SIGTERM,
/// then drains.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    cocoon_daemon::init_tracing(args.json_logs);
    let config: GatewayConfig = load(&Sources::from_process(args.config.as_deref(), args.set))
        .context("loading gateway configuration")?;
    anyhow::ensure!(
        args.insecure_dev_tls,
        "RA-TLS is not wired into the binary yet: pass --insecure-dev-tls"
    );
    let tls: Arc<dyn HopTls> =
        Arc::new(DevTls::from_dev_key(Role::Client, &config.dev_key).context("development TLS")?);
    let admin = tokio::net::TcpListener::bind(&config.admin_listen)
        .await
        .with_context(|| format!("binding admin {}", config.admin_listen))?;
    let registry = Registry::new();
    let client_key = hex::encode(tls.identity().public_key);
    let gateway = crate::start(config, tls, registry.clone()).await?;
    let gw = gateway.gateway.clone();
    let status = Arc::new(move || {
        let receipts = gw.receipts();
        let verified = receipts.iter().filter(|r| r.status == "verified").count();
        serde_json::json!({"role": "gateway", "client_key": client_key, "receipts": receipts.len(), "verified": verified})
    });
    let admin_shutdown = Shutdown::new();
    tokio::spawn(cocoon_daemon::admin::serve_admin(
        admin,
        registry,
        status,
        gateway.draining(),
        admin_shutdown.clone(),
    ));
    println!("{}", serde_json::json!({"listen": gateway.addr}));
    os_signal().await;
    tracing::info!("draining");
    gateway.shutdown(Duration::from_secs(30)).await;
    admin_shutdown.trigger();
    Ok(())
}
