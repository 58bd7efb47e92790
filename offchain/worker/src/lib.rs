//! The cocoon worker: serves requests from proxies through an inference engine and signs a receipt per response.
//!
//! A worker needs no open port: it dials every configured proxy over mutual TLS 1.3 and then *serves*
//! HTTP/2 on that connection (the proxy is the HTTP/2 client). It forwards each request body unchanged to
//! an OpenAI-compatible engine, streams the engine's bytes back unchanged, and appends a signed
//! [`cocoon_protocol::SignedReceipt`] as an HTTP/2 trailer (see docs/protocol.md).

pub mod config;
pub mod fake_engine;
mod receipt_body;
pub mod run;
mod service;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::HopTls;
use cocoon_protocol::PriceParams;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::task::JoinSet;

pub use config::WorkerConfig;
use service::WorkerService;

/// Path of the announcement the proxy fetches after the worker connects.
pub const ANNOUNCE_PATH: &str = "/cocoon/v1/announce";

/// What a worker tells a proxy about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Announcement {
    /// The served model name.
    pub model: String,
    /// Hash of the model weights, hex.
    pub model_hash: String,
    /// Current price coefficient, thousandths.
    pub coefficient: u32,
    /// Concurrent requests the worker accepts.
    pub capacity: u32,
    /// Requests in flight now.
    pub in_flight: u32,
}

/// Live state shared by the worker's connections.
#[derive(Debug)]
pub struct WorkerState {
    pub(crate) config: WorkerConfig,
    pub(crate) coefficient: AtomicU32,
    pub(crate) in_flight: AtomicU32,
    pub(crate) params: PriceParams,
    pub(crate) model_hash: [u8; 32],
    pub(crate) registry: Arc<Registry>,
}

impl WorkerState {
    /// Changes the price coefficient; proxies see it on their next announcement poll, and every
    /// request from then on is served (and receipted) at the new price.
    pub fn set_coefficient(&self, milli: u32) {
        self.coefficient.store(milli, Ordering::Release);
    }

    /// The current price coefficient.
    pub fn coefficient(&self) -> u32 {
        self.coefficient.load(Ordering::Acquire)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// A running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    /// Shared live state (coefficient, load).
    pub state: Arc<WorkerState>,
    /// Its shutdown switch.
    pub shutdown: Shutdown,
    key: [u8; 32],
    tasks: JoinSet<()>,
}

impl WorkerHandle {
    /// The worker's attested public key.
    pub fn state_key(&self) -> [u8; 32] {
        self.key
    }

    /// Stops dialing, lets in-flight responses finish (up to `grace`), then closes the connections.
    pub async fn shutdown(mut self, grace: Duration) {
        self.shutdown.trigger();
        // Each dial loop ends after its connection closed gracefully (responses and receipts flushed).
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(grace, drain).await;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Drops every connection at once, mid-stream included (a crash, for tests and drills).
    pub async fn kill(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Worker errors at start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] cocoon_daemon::config::ConfigError),
}

/// Starts a worker: one dial loop per proxy. `params` are the network price parameters.
pub fn start(
    config: WorkerConfig,
    tls: Arc<dyn HopTls>,
    params: PriceParams,
    registry: Arc<Registry>,
) -> Result<WorkerHandle, WorkerError> {
    use cocoon_daemon::config::Validate;
    config.validate()?;
    let model_hash = config.model_hash_bytes()?;
    let state = Arc::new(WorkerState {
        coefficient: AtomicU32::new(config.coefficient),
        in_flight: AtomicU32::new(0),
        params,
        model_hash,
        registry,
        config,
    });
    let shutdown = Shutdown::new();
    let service = WorkerService::new(state.clone(), tls.clone(), shutdown.clone());
    let mut tasks = JoinSet::new();
    for proxy in state.config.proxies.clone() {
        tasks.spawn(dial_loop(
            proxy,
            tls.clone(),
            service.clone(),
            shutdown.clone(),
        ));
    }
    let key = tls.identity().public_key;
    Ok(WorkerHandle {
        state,
        shutdown,
        key,
        tasks,
    })
}

async fn dial_loop(
    proxy: String,
    tls: Arc<dyn HopTls>,
    service: WorkerService,
    shutdown: Shutdown,
) {
    let reconnect = Duration::from_millis(service.state.config.reconnect_ms);
    while !shutdown.is_triggered() {
        match connect_once(&proxy, &tls, service.clone(), &shutdown).await {
            Ok(()) => tracing::info!(%proxy, "proxy connection closed"),
            Err(e) => tracing::warn!(%proxy, error = %e, "proxy connection failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(reconnect) => {}
            _ = shutdown.triggered() => {}
        }
    }
}

async fn connect_once(
    proxy: &str,
    tls: &Arc<dyn HopTls>,
    service: WorkerService,
    shutdown: &Shutdown,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tokio::net::TcpStream::connect(proxy).await?;
    tcp.set_nodelay(true)?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid")?;
    let stream = connector.connect(name, tcp).await?;
    let peer = tls
        .peer_identity(stream.get_ref().1)
        .ok_or("proxy presented no identity")?;
    if peer.insecure {
        tracing::warn!(proxy_key = %hex::encode(peer.public_key), "connected to an INSECURE (unattested) proxy");
    }
    let svc = hyper::service::service_fn(move |req| service.clone().handle(req));
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r?,
        _ = shutdown.triggered() => {
            conn.as_mut().graceful_shutdown();
            conn.await?;
        }
    }
    Ok(())
}
