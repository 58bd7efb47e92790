//! The cocoon worker: serves requests from proxies through an inference engine and signs a receipt per response.
//!
//! A worker needs no open port: it dials every configured proxy over mutual TLS 1.3 and then *serves*
//! HTTP/2 on that connection (the proxy is the HTTP/2 client). It forwards each request body unchanged to
//! an OpenAI-compatible engine, streams the engine's bytes back unchanged, and appends a signed
//! [`cocoon_protocol::SignedReceipt`] as an HTTP/2 trailer (see docs/protocol.md).
//!
//! With a [`chain::WorkerChain`] ([`start_with`]) it serves only while the chain says its stake is
//! active and its image and model are allowed ([`status`]), claims its payouts past a threshold
//! ([`payouts`]), and leaves rotation while its engine fails health checks.

pub mod chain;
mod chain_config;
pub mod chain_ton;
pub mod config;
pub mod daemon;
mod health;
pub mod measured;
pub mod payouts;
mod receipt_body;
mod service;
pub mod status;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::{HopTls, next_recheck, peer_certificate};
use cocoon_protocol::PriceParams;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

pub use config::WorkerConfig;
use service::WorkerService;
use status::{Eligibility, WorkerStatus};

/// Called with every root snapshot the chain monitor reads (the binary refreshes its TLS image
/// allowlist from it).
pub struct RootHook(pub Box<dyn Fn(&chain::RootView) + Send + Sync>);

impl std::fmt::Debug for RootHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootHook")
    }
}

/// Optional parts of a worker.
#[derive(Debug, Default)]
pub struct WorkerOptions {
    /// Chain access: stake/image/model checks and payout claims (None: no checks, development only).
    pub chain: Option<Arc<dyn chain::WorkerChain>>,
    /// Called with every root snapshot read.
    pub on_root: Option<RootHook>,
}

/// Live state shared by the worker's connections.
#[derive(Debug)]
pub struct WorkerState {
    pub(crate) config: WorkerConfig,
    pub(crate) coefficient: AtomicU32,
    pub(crate) in_flight: AtomicU32,
    pub(crate) params: std::sync::RwLock<PriceParams>,
    pub(crate) model_hash: [u8; 32],
    pub(crate) registry: Arc<Registry>,
    pub(crate) status: tokio::sync::watch::Sender<WorkerStatus>,
    pub(crate) on_root: Option<RootHook>,
    pub(crate) payouts: Option<Arc<payouts::Payouts>>,
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

    /// The price parameters new responses are priced with (the root's, refreshed at every chain
    /// check).
    pub fn params(&self) -> PriceParams {
        *self.params.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_params(&self, params: PriceParams) {
        let mut held = self.params.write().unwrap_or_else(|p| p.into_inner());
        if *held != params {
            tracing::info!(
                from = held.version,
                to = params.version,
                "network price parameters changed on chain"
            );
            *held = params;
        }
    }

    /// What the worker may do now.
    pub fn status(&self) -> WorkerStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<WorkerStatus> {
        self.status.subscribe()
    }

    /// Capacity as announced to proxies: zero while out of rotation.
    pub fn announced_capacity(&self) -> u32 {
        if self.status.borrow().in_rotation() {
            self.config.capacity
        } else {
            0
        }
    }

    pub(crate) fn set_chain(&self, verdict: Eligibility) {
        let gauge = self.registry.gauge(
            "cocoon_worker_chain_eligible",
            "1 while the chain allows this worker to serve.",
            &[],
        );
        gauge.set(i64::from(verdict == Eligibility::Eligible));
        self.status.send_if_modified(|s| {
            if s.chain == verdict {
                return false;
            }
            match &verdict {
                Eligibility::Eligible => tracing::info!(
                    "chain check passed: stake active, image and model allowed; serving"
                ),
                Eligibility::Refused(r) => {
                    tracing::error!(reason = %r, "REFUSING TO SERVE: chain check failed; disconnecting from proxies")
                }
                other => tracing::info!(state = ?other, "chain state"),
            }
            s.chain = verdict.clone();
            true
        });
    }

    pub(crate) fn set_engine(&self, healthy: bool, failures: u32) {
        self.status.send_if_modified(|s| {
            let changed = s.engine_healthy != healthy || s.engine_failures != failures;
            s.engine_healthy = healthy;
            s.engine_failures = failures;
            changed
        });
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
    checks: Option<tokio::sync::mpsc::UnboundedSender<status::CheckRequest>>,
}

impl WorkerHandle {
    /// The worker's attested public key.
    pub fn state_key(&self) -> [u8; 32] {
        self.key
    }

    /// Re-reads the chain now and returns the verdict of that check (None without a chain).
    pub async fn check_chain(&self) -> Option<Eligibility> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.checks.as_ref()?.send(tx).ok()?;
        rx.await.ok()
    }

    /// Checks a proxy-signed payout voucher and keeps it for claiming (what `POST /cocoon/v1/payout`
    /// does); true when it pays more than the voucher held for its vault.
    pub async fn offer_payout(
        &self,
        voucher: cocoon_contracts::statements::SignedPayout,
    ) -> Result<bool, payouts::OfferError> {
        match &self.state.payouts {
            Some(p) => p.offer(voucher).await,
            None => Err(payouts::OfferError::Chain(
                chain::WorkerChainError::Unavailable("no chain configured".into()),
            )),
        }
    }

    /// Runs one claim pass now (the background task runs one every `claim_interval_ms` and when a
    /// better voucher arrives).
    pub async fn claim_now(&self) -> Vec<payouts::ClaimEvent> {
        match &self.state.payouts {
            Some(p) => p.claim_due().await,
            None => Vec::new(),
        }
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

/// Starts a worker without chain checks (development and tests): one dial loop per proxy. `params`
/// are the network price parameters.
pub fn start(
    config: WorkerConfig,
    tls: Arc<dyn HopTls>,
    params: PriceParams,
    registry: Arc<Registry>,
) -> Result<WorkerHandle, WorkerError> {
    start_with(config, tls, params, registry, WorkerOptions::default())
}

/// Starts a worker with its optional parts: with a chain, it dials proxies only once the chain
/// allows it to serve, and claims its payouts.
pub fn start_with(
    config: WorkerConfig,
    tls: Arc<dyn HopTls>,
    params: PriceParams,
    registry: Arc<Registry>,
    options: WorkerOptions,
) -> Result<WorkerHandle, WorkerError> {
    use cocoon_daemon::config::Validate;
    config.validate()?;
    let model_hash = config.model_hash_bytes()?;
    let chain = options.chain;
    let payouts = chain.as_ref().map(|c| {
        Arc::new(payouts::Payouts::new(
            c.clone(),
            u128::from(config.chain.claim_threshold_nano),
            Duration::from_millis(config.chain.claim_interval_ms.max(1)),
            (!config.chain.voucher_file.is_empty())
                .then(|| std::path::PathBuf::from(&config.chain.voucher_file)),
            registry.clone(),
        ))
    });
    let (status, _) = tokio::sync::watch::channel(WorkerStatus::initial(chain.is_some()));
    if chain.is_none() {
        tracing::warn!(
            "no chain configured: stake, image and model are NOT checked (development only)"
        );
    }
    let state = Arc::new(WorkerState {
        coefficient: AtomicU32::new(config.coefficient),
        in_flight: AtomicU32::new(0),
        params: std::sync::RwLock::new(params),
        model_hash,
        registry,
        status,
        on_root: options.on_root,
        payouts: payouts.clone(),
        config,
    });
    let shutdown = Shutdown::new();
    let mut checks = None;
    let service = WorkerService::new(state.clone(), tls.clone(), shutdown.clone());
    let mut tasks = JoinSet::new();
    if let Some(chain) = chain {
        let monitor = status::ChainMonitor {
            interval: Duration::from_millis(state.config.chain.check_interval_ms.max(1)),
            max_stale: Duration::from_millis(state.config.chain.max_stale_ms),
            allow_unattested: state.config.chain.allow_unattested,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        checks = Some(tx);
        tasks.spawn(monitor.run(state.clone(), chain, tls.identity(), rx, shutdown.clone()));
    }
    if let Some(p) = payouts {
        tasks.spawn(p.run(shutdown.clone()));
    }
    if state.config.health_interval_ms > 0 {
        tasks.spawn(health::monitor(state.clone(), shutdown.clone()));
    }
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
        checks,
    })
}

async fn dial_loop(
    proxy: String,
    tls: Arc<dyn HopTls>,
    service: WorkerService,
    shutdown: Shutdown,
) {
    let reconnect = Duration::from_millis(service.state.config.reconnect_ms);
    let mut status = service.state.subscribe();
    while !shutdown.is_triggered() {
        if !status.borrow_and_update().may_connect() {
            tracing::info!(%proxy, "not dialing: the chain does not allow this worker to serve");
            tokio::select! {
                r = wait_status(&mut status, WorkerStatus::may_connect) => if r.is_err() { return },
                _ = shutdown.triggered() => return,
            }
            continue;
        }
        match connect_once(&proxy, &tls, service.clone(), &shutdown, status.clone()).await {
            Ok(()) => tracing::info!(%proxy, "proxy connection closed"),
            Err(e) => tracing::warn!(%proxy, error = %e, "proxy connection failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(reconnect) => {}
            _ = shutdown.triggered() => {}
        }
    }
}

/// Waits until `f` holds (the guard `wait_for` returns is not `Send`; it is dropped here).
async fn wait_status(
    rx: &mut tokio::sync::watch::Receiver<WorkerStatus>,
    f: impl FnMut(&WorkerStatus) -> bool,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    rx.wait_for(f).await.map(|_| ())
}

async fn connect_once(
    proxy: &str,
    tls: &Arc<dyn HopTls>,
    service: WorkerService,
    shutdown: &Shutdown,
    mut status: tokio::sync::watch::Receiver<WorkerStatus>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tokio::net::TcpStream::connect(proxy).await?;
    tcp.set_nodelay(true)?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid")?;
    let mut limits = service.state.config.limits.limits();
    // The proxy may open as many streams as the worker announces capacity (more are refused
    // with 503 by the worker itself).
    limits.max_concurrent_streams = limits
        .max_concurrent_streams
        .map(|n| n.max(service.state.config.capacity));
    let handshake = connector.connect(name, tcp);
    let stream = match limits.tls_handshake_timeout {
        Some(t) => tokio::time::timeout(t, handshake)
            .await
            .map_err(|_| "TLS handshake with the proxy timed out")??,
        None => handshake.await?,
    };
    let peer = tls
        .peer_identity(stream.get_ref().1)
        .ok_or("proxy presented no identity")?;
    if peer.insecure {
        tracing::warn!(proxy_key = %hex::encode(peer.public_key), "connected to an INSECURE (unattested) proxy");
    }
    let certificate =
        peer_certificate(stream.get_ref().1).ok_or("proxy presented no certificate")?;
    // The proxy is judged again on every refresh of the chain view (image allowlist, lifetime,
    // age): TLS 1.3 never re-authenticates it, and a connection may last for days.
    let every = Duration::from_millis(service.state.config.chain.check_interval_ms.max(1));
    let recheck = async {
        loop {
            tokio::time::sleep(next_recheck(&peer, every)).await;
            if let Err(e) = tls.recheck_peer(&certificate) {
                return e;
            }
        }
    };
    tokio::pin!(recheck);
    let svc = hyper::service::service_fn(move |mut req| {
        limits.stamp(&mut req);
        service.clone().handle(req)
    });
    let conn = limits
        .http2_server()
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r?,
        _ = shutdown.triggered() => {
            conn.as_mut().graceful_shutdown();
            conn.await?;
        }
        reason = &mut recheck => {
            // Closed at once (the connection is dropped): a proxy that no longer passes gets
            // neither new requests nor the rest of the ones in flight.
            tracing::warn!(%proxy, proxy_key = %hex::encode(peer.public_key), %reason, "disconnecting: the proxy no longer passes attestation");
        }
        _ = wait_status(&mut status, |s| !s.may_connect()) => {
            // Refused by the chain: GOAWAY, let responses in flight finish, then close.
            tracing::warn!(%proxy, "disconnecting: the chain no longer allows this worker to serve");
            conn.as_mut().graceful_shutdown();
            conn.await?;
        }
    }
    Ok(())
}
