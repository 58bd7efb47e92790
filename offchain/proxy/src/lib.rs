//! The cocoon proxy: admits clients, routes requests to workers, records charges and payouts, settles on chain.
//!
//! Two TLS listeners: client gateways connect to one and speak HTTP/2 to the proxy; workers dial the
//! other and the proxy speaks HTTP/2 to *them* over the accepted connection. Request and response bytes
//! pass through unchanged; the worker's receipt trailer is verified, priced, committed to the ledger
//! ([`store::Store`]) and only then forwarded. Chain access goes through [`chain::ChainView`] and
//! [`chain::Settler`].

mod api;
pub mod chain;
pub mod chain_config;
mod charge_body;
pub mod config;
pub mod daemon;
pub mod onchain;
mod payout;
pub mod registry;
mod settle;
pub mod store;
mod workers;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_daemon::metrics;
use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::HopTls;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use chain::{ChainView, EscrowInfo, Settler};
pub use config::ProxyConfig;
use registry::Registry;
use store::Store;

/// Proxy start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] cocoon_daemon::config::ConfigError),
    /// The ledger could not be opened, or was rolled back.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Shared proxy state.
pub struct Proxy {
    pub(crate) config: ProxyConfig,
    pub(crate) tls: Arc<dyn HopTls>,
    pub(crate) chain: Arc<dyn ChainView>,
    pub(crate) settler: Arc<dyn Settler>,
    /// The ledger.
    pub store: Store,
    /// Connected workers.
    pub workers: Registry,
    /// The daemon's metrics.
    pub metrics: Arc<metrics::Registry>,
    pub(crate) reservations: Mutex<HashMap<[u8; 32], u128>>,
    pub(crate) settling: Mutex<HashSet<[u8; 32]>>,
    pub(crate) payouts: payout::PayoutStats,
    pub(crate) shutdown: Shutdown,
    pub(crate) next_id: AtomicU64,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct ProxyHandle {
    /// Bound client listener.
    pub client_addr: SocketAddr,
    /// Bound worker listener.
    pub worker_addr: SocketAddr,
    /// Shared state (ledger, workers).
    pub proxy: Arc<Proxy>,
    tasks: JoinSet<()>,
}

impl ProxyHandle {
    /// Stops accepting, drains in-flight streams (up to `grace`), closes the ledger.
    pub async fn shutdown(mut self, grace: Duration) {
        self.proxy.shutdown.trigger();
        // The accept loops end once their connections have closed gracefully (streams finished,
        // trailers flushed); whatever is still running after `grace` is cut.
        let started = tokio::time::Instant::now();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!("shutdown grace period over; cutting the remaining streams");
        }
        // A worker's stream whose client left still runs to its receipt and commits it.
        let left = grace.saturating_sub(started.elapsed());
        if !self.proxy.shutdown.drained(left).await {
            tracing::warn!("shutdown grace period over; uncommitted responses are not charged");
        }
        self.stop().await;
    }

    /// Stops at once, dropping in-flight streams (a crash, for tests and drills). The ledger keeps
    /// only what was committed.
    pub async fn kill(self) {
        self.proxy.shutdown.trigger();
        self.stop().await;
    }

    async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let store = self.proxy.store.clone();
        drop(self);
        store.close().await;
    }

    /// The proxy's shutdown state (draining starts when it triggers).
    pub fn draining(&self) -> Shutdown {
        self.proxy.shutdown.clone()
    }

    /// Starts the payout of every worker whose unpaid earnings reached `payout_threshold_nano`
    /// (each charge does this for its worker; this also pays workers that stopped serving, e.g.
    /// after a restart). Returns how many payouts started; they run in the background.
    pub fn pay_workers_due(&self) -> usize {
        settle::pay_workers_due(&self.proxy)
    }

    /// The status document (also served at the admin `/status`).
    pub fn status(&self) -> serde_json::Value {
        self.proxy.status_json()
    }
}

/// Validates the config, opens the ledger, checks it against the chain, then binds and serves. The
/// ledger is sealed under the storage key of a local signing key ([`store::storage_key`]).
pub async fn start(
    config: ProxyConfig,
    tls: Arc<dyn HopTls>,
    chain: Arc<dyn ChainView>,
    settler: Arc<dyn Settler>,
    metrics: Arc<metrics::Registry>,
) -> Result<ProxyHandle, ProxyError> {
    let storage_key = store::storage_key(tls.signing_key());
    start_sealed(config, tls, chain, settler, metrics, storage_key).await
}

/// As [`start`], the ledger and WAL sealed under `storage_key` (the key service's `S` in a TD;
/// [`start`] derives it from the signing key, as a local key has nothing else).
pub async fn start_sealed(
    config: ProxyConfig,
    tls: Arc<dyn HopTls>,
    chain: Arc<dyn ChainView>,
    settler: Arc<dyn Settler>,
    metrics: Arc<metrics::Registry>,
    storage_key: store::StorageKey,
) -> Result<ProxyHandle, ProxyError> {
    config.validate_serving()?;
    let store = {
        let client = |key: &[u8; 32]| chain.client_account(key);
        let worker = |key: &[u8; 32]| Some(chain.payee(key));
        Store::open_migrating(
            std::path::Path::new(&config.store_path),
            &storage_key,
            &store::Migration {
                client: &client,
                worker: &worker,
            },
        )?
    };
    let listeners = async {
        store.check_not_rolled_back(chain.committed_marker())?;
        let bind = |addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| ProxyError::Bind { addr, source })
        };
        let clients = bind(config.client_listen.clone()).await?;
        let workers = bind(config.worker_listen.clone()).await?;
        let local = |l: &TcpListener, what: &str| {
            l.local_addr().map_err(|source| ProxyError::Bind {
                addr: what.into(),
                source,
            })
        };
        let addrs = (local(&clients, "client")?, local(&workers, "worker")?);
        Ok::<_, ProxyError>((clients, workers, addrs))
    };
    let (clients, workers_l, (client_addr, worker_addr)) = match listeners.await {
        Ok(v) => v,
        Err(e) => {
            // Release the ledger file so that a corrected start can open it.
            store.close().await;
            return Err(e);
        }
    };
    let proxy = Arc::new(Proxy {
        workers: Registry::new(registry::HealthPolicy {
            min_success_milli: config.min_success_milli,
            half_life: Duration::from_millis(config.health_half_life_ms),
            probe_interval: Duration::from_millis(config.probe_interval_ms),
            max_capacity: config.max_worker_capacity,
        }),
        config,
        tls,
        chain,
        settler,
        store,
        metrics,
        reservations: Mutex::new(HashMap::new()),
        settling: Mutex::new(HashSet::new()),
        payouts: payout::PayoutStats::default(),
        shutdown: Shutdown::new(),
        next_id: AtomicU64::new(1),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(api::accept_clients(proxy.clone(), clients));
    tasks.spawn(workers::accept_workers(proxy.clone(), workers_l));
    tasks.spawn(settle::marker_loop(proxy.clone()));
    tasks.spawn(settle::settle_loop(proxy.clone()));
    tracing::info!(%client_addr, %worker_addr, "proxy listening");
    Ok(ProxyHandle {
        client_addr,
        worker_addr,
        proxy,
        tasks,
    })
}

impl Proxy {
    /// The ledger account a client key spends: its escrow's (empty when the key has none).
    pub fn client_ledger(
        &self,
        client_key: &[u8; 32],
    ) -> Result<store::ClientAccount, store::StoreError> {
        match self.chain.client_account(client_key) {
            Some(escrow) => self.store.client(&escrow),
            None => Ok(store::ClientAccount::default()),
        }
    }

    /// The ledger account a worker key earns into: its payee's.
    pub fn worker_ledger(
        &self,
        worker_key: &[u8; 32],
    ) -> Result<store::WorkerAccount, store::StoreError> {
        self.store.worker(&self.chain.payee(worker_key))
    }

    /// Workers, load and earnings as JSON.
    pub fn status_json(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let ledger: HashMap<[u8; 32], store::WorkerAccount> = self
            .store
            .workers()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let workers: Vec<_> = self
            .workers
            .all()
            .iter()
            .map(|w| {
                let acc = ledger
                    .get(&self.chain.payee(&w.identity.public_key))
                    .copied()
                    .unwrap_or_default();
                serde_json::json!({
                    "key": hex::encode(w.identity.public_key), "model": w.model,
                    "insecure": w.identity.insecure, "coefficient": w.coefficient.load(Relaxed),
                    "capacity": w.capacity.load(Relaxed), "in_flight": w.in_flight.load(Relaxed),
                    "latency_us": w.latency_us.load(Relaxed), "ok": w.ok.load(Relaxed),
                    "failed": w.failed.load(Relaxed),
                    "recent_success_milli": w.recent_success_milli(self.workers.policy.half_life).0,
                    "earned_nano": acc.earned.to_string(), "paid_nano": acc.paid.to_string(),
                })
            })
            .collect();
        let total: u128 = ledger.values().map(|a| a.earned).sum();
        serde_json::json!({
            "role": "proxy",
            "key": hex::encode(self.tls.identity().public_key),
            "marker": self.store.marker().unwrap_or(0),
            "in_flight": self.shutdown.in_flight(),
            "draining": self.shutdown.is_triggered(),
            "workers": workers,
            "workers_earned_nano": total.to_string(),
            "payouts": self.payouts.json(),
        })
    }
}
