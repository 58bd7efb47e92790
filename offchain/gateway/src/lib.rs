//! The cocoon client gateway: a local OpenAI-compatible endpoint that reaches the network over RA-TLS and verifies receipts.
//!
//! Apps speak plain HTTP/1.1 to the gateway on loopback. The gateway checks the body against the same
//! allowlist as the proxy, asks for usage on streams (`stream_options.include_usage`) when the app did
//! not, and sends the bytes over one multiplexed HTTP/2 connection (mutual TLS 1.3) to its proxy. It
//! hashes what it sent and what it receives, verifies the worker's receipt against the worker key the
//! proxy attested, keeps the receipt, the exact bytes and the worker's certificate (fetched once per
//! worker from the proxy) for proof bundles ([`bundle`], `GET /cocoon/v1/receipts` and
//! `GET /cocoon/v1/bundle`), and strips every cocoon header before answering the app.

pub mod bundle;
pub mod config;
pub mod daemon;
pub mod journal;
pub mod local_api;
mod proxy_conn;
pub mod receipts;
pub mod request_id;

mod service;
mod sse_filter;
mod verify;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_attestation::verify::PeerVerifier;
use cocoon_attestation::{PeerIdentity, Role};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::serve::{HttpVersion, ServeOptions, serve};
use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::HopTls;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use config::GatewayConfig;
pub use receipts::{ReceiptRecord, ReceiptStatus};

const DROPPED_HELP: &str = "Receipts dropped from the store past receipts_kept (what=record), \
     or whose bodies were dropped past the body budget (what=bodies).";

/// Shared gateway state.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    /// The bound listen address (what `Host` must name, with `localhost`).
    pub(crate) listen_addr: SocketAddr,
    pub(crate) proxy: proxy_conn::ProxyConn,
    pub(crate) metrics: Arc<Registry>,
    pub(crate) shutdown: Shutdown,
    store: Mutex<receipts::Store>,
    journal: Option<Mutex<journal::Journal>>,
    fetching: Mutex<HashSet<[u8; 32]>>,
    /// Verifies the certificates (and quotes) of the workers the proxy names, under this gateway's
    /// own attestation policy for the worker role; remembers each verified certificate by hash.
    workers: Option<Arc<PeerVerifier>>,
    /// Set once the first eviction was logged.
    eviction_logged: std::sync::atomic::AtomicBool,
}

impl Gateway {
    pub(crate) fn record(self: &Arc<Self>, kept: receipts::Kept) {
        let r = &kept.record;
        let verified = if r.status.is_verified() {
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
        if !r.status.is_verified() {
            tracing::warn!(
                request_id = r.request_id.as_deref().unwrap_or(""),
                status = %r.status,
                "response receipt did not verify"
            );
        }
        if let Some(mismatch) = &r.charge_mismatch {
            self.metrics
                .counter(
                    "cocoon_gateway_charge_mismatches_total",
                    "Responses whose proxy charge is not the worker receipt's cost_nano.",
                    &[],
                )
                .inc();
            tracing::warn!(
                request_id = r.request_id.as_deref().unwrap_or(""),
                mismatch = %mismatch,
                "the proxy's charge differs from the worker's receipt"
            );
        }
        let worker = r.worker_key.map(|k| k.0);
        {
            let mut store = self.lock_store();
            let pushed = store.push(kept, self.config.receipts_kept);
            self.count_evictions(pushed);
            if let Some(journal) = &self.journal {
                let mut journal = journal.lock().unwrap_or_else(|p| p.into_inner());
                // What the store kept of this record (it may have dropped an oversized body).
                let stored = store.records().last().filter(|k| k.record.id == pushed.id);
                let appended = stored.map_or(Ok(()), |k| journal.append(k));
                if let Err(e) = appended {
                    self.journal_failed(&e);
                } else if journal.wants_compaction() {
                    let before = journal.records();
                    match journal.compact(store.records()) {
                        Ok(n) => tracing::info!(
                            kept = n,
                            dropped = before.saturating_sub(n),
                            "receipts journal compacted to what is kept in memory; older receipts dropped from disk"
                        ),
                        Err(e) => self.journal_failed(&e),
                    }
                }
            }
        }
        if let Some(key) = worker {
            self.fetch_certificate_in_background(key);
        }
    }

    /// Verifies the worker the proxy named for a response, as this gateway's policy requires: the
    /// certificate the proxy serves for `key` (fetched once, then kept) must carry that key and
    /// pass the attestation policy (role worker, quote bound to the key, image allowed, TCB,
    /// lifetime), re-checked on every call (from the verifier's cache by certificate hash).
    pub(crate) async fn attest_worker(&self, key: [u8; 32]) -> Result<Arc<PeerIdentity>, String> {
        let Some(verifier) = self.workers.clone() else {
            return Err(
                "this gateway's TLS has no attestation policy to verify workers with".into(),
            );
        };
        let der = match self.worker_certificate(&key) {
            Some(der) => der,
            None => {
                self.fetch_certificate(key)
                    .await
                    .map_err(|e| format!("certificate not obtained: {e}"))?;
                self.worker_certificate(&key)
                    .ok_or("certificate not obtained")?
            }
        };
        let verdict = tokio::task::spawn_blocking(move || verifier.verify(&der))
            .await
            .map_err(|e| format!("verification task failed: {e}"))?;
        let identity = verdict.map_err(|e| {
            self.metrics
                .counter(
                    "cocoon_gateway_worker_attestation_failures_total",
                    "Worker certificates the gateway's own attestation policy refused.",
                    &[],
                )
                .inc();
            e.to_string()
        })?;
        if identity.public_key != key || identity.role != Role::Worker {
            return Err("the certificate attests another key or role".into());
        }
        Ok(identity)
    }

    /// Counts what retention dropped (`cocoon_gateway_receipts_dropped_total`), and says so in the log
    /// the first time, so nothing leaves the store unnoticed.
    fn count_evictions(&self, pushed: receipts::Pushed) {
        for (what, n) in [
            ("record", pushed.dropped_records),
            ("bodies", pushed.stripped_bodies),
        ] {
            if n == 0 {
                continue;
            }
            self.metrics
                .counter(
                    "cocoon_gateway_receipts_dropped_total",
                    DROPPED_HELP,
                    &[("what", what)],
                )
                .add(n as u64);
            if !self
                .eviction_logged
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(
                    receipts_kept = self.config.receipts_kept,
                    body_budget_bytes = receipts::BODY_BUDGET_BYTES,
                    "receipt store full: the oldest receipts (or their bodies) are now dropped; \
                     counted in cocoon_gateway_receipts_dropped_total (logged once)"
                );
            }
        }
    }

    fn journal_failed(&self, e: &journal::JournalError) {
        self.metrics
            .counter(
                "cocoon_gateway_journal_errors_total",
                "Receipts that could not be written to the journal.",
                &[],
            )
            .inc();
        tracing::error!(error = %e, "receipt kept in memory only: the journal write failed");
    }

    /// Makes the journal's appended records durable (the flush task calls it every second).
    fn sync_journal(&self) {
        if let Some(journal) = &self.journal {
            let synced = journal.lock().unwrap_or_else(|p| p.into_inner()).sync();
            if let Err(e) = synced {
                self.journal_failed(&e);
            }
        }
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, receipts::Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The receipts kept so far, oldest first.
    pub fn receipts(&self) -> Vec<ReceiptRecord> {
        self.lock_store()
            .records()
            .map(|k| k.record.clone())
            .collect()
    }

    /// Whether the gateway holds an open connection to its proxy now (it dials on demand, and
    /// closes the connection when the proxy no longer passes attestation).
    pub async fn proxy_connected(&self) -> bool {
        self.proxy.connected().await
    }

    /// The certificate (DER) the proxy served for a worker key, if it was fetched.
    pub fn worker_certificate(&self, key: &[u8; 32]) -> Option<bytes::Bytes> {
        self.lock_store().certificate(key)
    }

    /// Fetches a worker's certificate once, without delaying the response that named the worker.
    fn fetch_certificate_in_background(self: &Arc<Self>, key: [u8; 32]) {
        if self.lock_store().certificate(&key).is_some() {
            return;
        }
        if !self
            .fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key)
        {
            return;
        }
        let gw = self.clone();
        tokio::spawn(async move {
            if let Err(e) = gw.fetch_certificate(key).await {
                tracing::debug!(worker = %hex::encode(key), error = %e, "worker certificate not fetched");
            }
            gw.fetching
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        });
    }

    /// Asks the proxy for the certificate a worker presented, checks that it carries the worker's
    /// key, and keeps it.
    pub(crate) async fn fetch_certificate(&self, key: [u8; 32]) -> Result<(), String> {
        let der = service::fetch_worker_certificate(self, &key).await?;
        if cocoon_daemon::tls::ed25519_key_of_cert(&der) != Some(key) {
            return Err("the proxy served a certificate for another key".into());
        }
        self.lock_store().set_certificate(key, der);
        Ok(())
    }
}

pub(crate) fn parse_key(hex_key: &str) -> Option<[u8; 32]> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut k).ok().map(|_| k)
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
    /// The receipts journal could not be opened.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
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
    let mut store = receipts::Store::default();
    let journal = if config.receipts_path.is_empty() {
        tracing::warn!(
            "receipts_path is not set: receipts are kept in memory only and a restart loses them"
        );
        None
    } else {
        let path = std::path::Path::new(&config.receipts_path);
        let (journal, records) = journal::Journal::open(path, config.receipts_journal_max_bytes)?;
        let n = records.len();
        let mut dropped = 0;
        for kept in records {
            dropped += store.restore(kept, config.receipts_kept).dropped_records;
        }
        if dropped > 0 {
            metrics
                .counter(
                    "cocoon_gateway_receipts_dropped_total",
                    DROPPED_HELP,
                    &[("what", "record")],
                )
                .add(dropped as u64);
        }
        tracing::info!(
            path = %path.display(),
            receipts = n,
            kept_in_memory = store.len(),
            "receipts journal opened"
        );
        if store.len() < n {
            tracing::warn!(
                on_disk = n,
                receipts_kept = config.receipts_kept,
                "the journal holds more receipts than receipts_kept: only the newest are served; \
                 the rest leave the file at its next compaction"
            );
        }
        Some(Mutex::new(journal))
    };
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
    let workers = tls
        .peer_policy()
        .map(|p| Arc::new(PeerVerifier::new(worker_policy(p))));
    if workers.is_none() {
        tracing::warn!(
            "this gateway's TLS has no attestation policy: no worker can be verified, every receipt is unverified"
        );
    }
    let gateway = Arc::new(Gateway {
        workers,
        proxy: proxy_conn::ProxyConn::new(
            config.proxy.clone(),
            tls,
            pinned,
            std::time::Duration::from_millis(config.chain.allowlist_refresh_ms),
        ),
        config,
        listen_addr: addr,
        metrics,
        shutdown: Shutdown::new(),
        store: Mutex::new(store),
        journal,
        fetching: Mutex::new(HashSet::new()),
        eviction_logged: std::sync::atomic::AtomicBool::new(false),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(accept(gateway.clone(), listener));
    if gateway.journal.is_some() {
        tasks.spawn(flush_journal(gateway.clone()));
    }
    tracing::info!(%addr, "gateway listening");
    Ok(GatewayHandle {
        addr,
        gateway,
        tasks,
    })
}

/// The gateway's policy for the workers behind its proxy: what it requires of its proxy (the
/// allowlist, which lists worker images too, TCB, collateral, clock, development mode), for the
/// worker role, with no pinned key.
fn worker_policy(mut policy: cocoon_attestation::Policy) -> cocoon_attestation::Policy {
    policy.allowed_roles = vec![Role::Worker];
    policy.unattested_roles = Vec::new();
    policy.peer_keys = None;
    policy
}

/// Syncs the receipts journal every second, and once more when the gateway stops.
async fn flush_journal(gateway: Arc<Gateway>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = gateway.shutdown.triggered() => true,
        };
        let gw = gateway.clone();
        let _ = tokio::task::spawn_blocking(move || gw.sync_journal()).await;
        if stopping {
            return;
        }
    }
}

/// Serves apps (plain HTTP/1.1 or HTTP/2 on loopback) until the gateway shuts down, then drains.
async fn accept(gateway: Arc<Gateway>, listener: TcpListener) {
    let options = ServeOptions {
        limits: gateway.config.limits.limits(),
        ..ServeOptions::plain(HttpVersion::Auto)
    };
    let shutdown = gateway.shutdown.clone();
    serve(listener, options, shutdown, move |_peer| {
        let gw = gateway.clone();
        Some(hyper::service::service_fn(move |req| {
            service::handle(gw.clone(), req)
        }))
    })
    .await;
}
