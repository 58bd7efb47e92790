//! Binary glue for `cocoon-worker` and `cocoon worker run`: run a worker next to an inference engine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::WorkerConfig;
use anyhow::Context;
use cocoon_daemon::config::{Sources, load};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::{Shutdown, os_signal};
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_protocol::PriceParams;

/// Run a cocoon worker.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// TOML config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config key: `--set key=value` (repeatable; beats env and file).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Use development TLS without attestation (INSECURE; required until RA-TLS is configured).
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
    let config: WorkerConfig = load(&Sources::from_process(args.config.as_deref(), args.set))
        .context("loading worker configuration")?;
    anyhow::ensure!(
        args.insecure_dev_tls,
        "RA-TLS is not wired into the binary yet: pass --insecure-dev-tls"
    );
    let tls: Arc<dyn HopTls> =
        Arc::new(DevTls::from_dev_key(Role::Worker, &config.dev_key).context("development TLS")?);
    let admin = tokio::net::TcpListener::bind(&config.admin_listen)
        .await
        .with_context(|| format!("binding admin {}", config.admin_listen))?;
    let registry = Registry::new();
    let worker = crate::start(
        config,
        tls.clone(),
        PriceParams::default(),
        registry.clone(),
    )?;
    let state = worker.state.clone();
    let key = hex::encode(tls.identity().public_key);
    let status = Arc::new(
        move || serde_json::json!({"role": "worker", "key": key, "coefficient": state.coefficient(), "in_flight": state.in_flight()}),
    );
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
