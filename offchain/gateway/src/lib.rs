//! The cocoon client gateway: a local OpenAI-compatible endpoint that reaches the network over RA-TLS and verifies receipts.
//!
//! Apps speak plain HTTP/1.1 to the gateway on loopback. The gateway checks the body against the same
//! allowlist as the proxy, asks for usage on streams (`stream_options.include_usage`) when the app did
//! not, and sends the bytes over one multiplexed HTTP/2 connection (mutual TLS 1.3) to its proxy. It
//! hashes what it sent and what it receives, verifies the worker's receipt against the worker key the
//! proxy attested, keeps the receipt for the proof bundle (`GET /cocoon/v1/receipts`), and strips every
//! cocoon header before answering the app.

pub mod config;
mod proxy_conn;
pub mod run;
mod service;
mod verify;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::HopTls;
use cocoon_protocol::SignedReceipt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use config::GatewayConfig;

/// One response's evidence, as kept for the proof bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiptRecord {
    /// The verified receipt (or the one that failed).
    pub receipt: Option<SignedReceipt>,
    /// `verified` or the reason it is not.
    pub status: String,
    /// What the proxy charged, nanoTON (from its trailer), as a decimal string.
    pub charged_nano: Option<String>,
}

/// Shared gateway state.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) proxy: proxy_conn::ProxyConn,
    pub(crate) metrics: Arc<Registry>,
    pub(crate) shutdown: Shutdown,
    receipts: Mutex<VecDeque<ReceiptRecord>>,
}

impl Gateway {
    pub(crate) fn record(&self, r: ReceiptRecord) {
        let verified = if r.status == "verified" {
            "true"
        } else {
            "false"
        };
        self.metrics
            .counter(
                "cocoon_gateway_receipts_total",
                "Receipts checked.",
                &[("verified", verified)],
            )
            .inc();
        if r.status != "verified" {
            tracing::warn!(status = %r.status, "response receipt did not verify");
        }
        let mut q = self.receipts.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= self.config.receipts_kept.max(1) {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// The receipts kept so far, oldest first.
    pub fn receipts(&self) -> Vec<ReceiptRecord> {
        self.receipts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    /// Where apps connect.
    pub addr: SocketAddr,
    /// Shared state.
    pub gateway: Arc<Gateway>,
    tasks: JoinSet<()>,
}

impl GatewayHandle {
    /// The gateway's shutdown state (draining starts when it triggers).
    pub fn draining(&self) -> Shutdown {
        self.gateway.shutdown.clone()
    }

    /// Stops accepting and drains in-flight responses (up to `grace`).
    pub async fn shutdown(mut self, grace: Duration) {
        self.gateway.shutdown.trigger();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(grace, drain).await;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Gateway start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] cocoon_daemon::config::ConfigError),
    /// The listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Validates the config, binds `listen`, and serves. The proxy is dialed on the first request.
pub async fn start(
    config: GatewayConfig,
    tls: Arc<dyn HopTls>,
    metrics: Arc<Registry>,
) -> Result<GatewayHandle, GatewayError> {
    use cocoon_daemon::config::Validate;
    config.validate()?;
    let pinned = config.proxy_key_bytes()?;
    let listener =
        TcpListener::bind(&config.listen)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: config.listen.clone(),
                source,
            })?;
    let addr = listener.local_addr().map_err(|source| GatewayError::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    let gateway = Arc::new(Gateway {
        proxy: proxy_conn::ProxyConn::new(config.proxy.clone(), tls, pinned),
        config,
        metrics,
        shutdown: Shutdown::new(),
        receipts: Mutex::new(VecDeque::new()),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(accept(gateway.clone(), listener));
    tracing::info!(%addr, "gateway listening");
    Ok(GatewayHandle {
        addr,
        gateway,
        tasks,
    })
}

async fn accept(gateway: Arc<Gateway>, listener: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = gateway.shutdown.triggered() => {
                while conns.join_next().await.is_some() {}
                return;
            }
        };
        let Ok((tcp, _)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let gw = gateway.clone();
        conns.spawn(async move {
            let svc_gw = gw.clone();
            let svc = hyper::service::service_fn(move |req| service::handle(svc_gw.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tcp), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = gw.shutdown.triggered() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
