//! [`MemoryNetwork`]: the three hops in this process — [`FakeEngine`] → worker(s) → proxy →
//! gateway, every listener on 127.0.0.1:0, the proxy on a [`MemoryChain`] — built by
//! [`NetworkBuilder`]. The config helpers ([`proxy_config`], [`worker_config`], [`gateway_config`])
//! are what the builder uses, for tests that assemble a network of their own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cocoon_daemon::http::full;
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::HopTls;
use cocoon_gateway::{GatewayConfig, GatewayHandle};
use cocoon_protocol::PriceParams;
use cocoon_proxy::{ProxyConfig, ProxyHandle};
use cocoon_worker::chain::WorkerChain;
use cocoon_worker::{WorkerConfig, WorkerHandle, WorkerOptions};

use crate::engine::{FakeEngine, FakeEngineOptions};
use crate::http::{AppClient, Resp, app_client, post_json};
use crate::tls::{TlsKit, WorkerTlsFactory};
use crate::{MemoryChain, wait};

/// Credit of the escrow a network opens for its gateway by default, nanoTON.
pub const DEFAULT_CREDIT: u128 = 1_000_000_000_000;
/// How long a network waits for its workers to connect to the proxy.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// A test network could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A socket or temporary directory.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A role's TLS could not be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// The proxy did not start.
    #[error("proxy: {0}")]
    Proxy(#[from] cocoon_proxy::ProxyError),
    /// A worker did not start.
    #[error("worker: {0}")]
    Worker(#[from] cocoon_worker::WorkerError),
    /// The gateway did not start.
    #[error("gateway: {0}")]
    Gateway(#[from] cocoon_gateway::GatewayError),
    /// Workers did not all connect to the proxy in time.
    #[error("{connected} of {wanted} workers connected to the proxy")]
    NotConnected {
        /// Workers started.
        wanted: usize,
        /// Workers the proxy listed when the wait ended.
        connected: usize,
    },
}

impl NetworkError {
    pub(crate) fn tls(e: impl std::fmt::Display) -> NetworkError {
        NetworkError::Tls(e.to_string())
    }
}

/// A proxy config for tests: both listeners on 127.0.0.1:0, the ledger in `dir`, announcements
/// polled every 50 ms.
pub fn proxy_config(dir: &Path) -> ProxyConfig {
    ProxyConfig {
        client_listen: "127.0.0.1:0".into(),
        worker_listen: "127.0.0.1:0".into(),
        store_path: dir.join("ledger.redb").display().to_string(),
        announce_poll_ms: 50,
        ..Default::default()
    }
}

/// A worker config for tests: dials `proxy` (its worker address), serves `model` from `engine_url`
/// at `coefficient`, reconnects after 20 ms.
pub fn worker_config(proxy: &str, engine_url: &str, model: &str, coefficient: u32) -> WorkerConfig {
    WorkerConfig {
        proxies: vec![proxy.to_owned()],
        engine_url: engine_url.to_owned(),
        model: model.to_owned(),
        coefficient,
        reconnect_ms: 20,
        ..Default::default()
    }
}

/// Never, in practice: chain checks and claims on this interval run only when a test asks.
const ON_DEMAND_MS: u64 = 3_600_000;

/// A worker config for chain-gated tests: [`worker_config`] at coefficient 1000 serving
/// `model_hash`, with chain checks, claims and engine health checks never on a timer (the test
/// triggers them) and chain reads never stale.
pub fn chain_worker_config(
    proxy: &str,
    engine_url: &str,
    model: &str,
    model_hash: &[u8; 32],
) -> WorkerConfig {
    let mut c = worker_config(proxy, engine_url, model, 1000);
    c.model_hash = hex::encode(model_hash);
    c.health_interval_ms = 0;
    c.chain.check_interval_ms = ON_DEMAND_MS;
    c.chain.max_stale_ms = ON_DEMAND_MS;
    c.chain.claim_interval_ms = ON_DEMAND_MS;
    c
}

/// Starts a worker on `config` that reads `chain` (stake, image and model checks, claims).
pub fn start_chain_worker(
    config: WorkerConfig,
    tls: Arc<dyn HopTls>,
    params: PriceParams,
    metrics: Arc<Registry>,
    chain: Arc<dyn WorkerChain>,
) -> Result<WorkerHandle, NetworkError> {
    let options = WorkerOptions {
        chain: Some(chain),
        on_root: None,
    };
    Ok(cocoon_worker::start_with(
        config, tls, params, metrics, options,
    )?)
}

/// A gateway config for tests: listens on 127.0.0.1:0 and reaches `proxy` (its client address),
/// pinning `proxy_key` when given.
pub fn gateway_config(proxy: &str, proxy_key: Option<&[u8; 32]>) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".into(),
        proxy: proxy.to_owned(),
        proxy_key: proxy_key.map(hex::encode).unwrap_or_default(),
        ..Default::default()
    }
}

type Tweak<'a, T> = Box<dyn FnOnce(&mut T) + Send + 'a>;

/// Builds a [`MemoryNetwork`]; defaults: one worker at coefficient 1000, [`DEFAULT_CREDIT`] for
/// the gateway, development TLS, the fake engine's defaults, tracing on.
pub struct NetworkBuilder<'a> {
    coefficients: Vec<u32>,
    credit: Option<u128>,
    tls: Option<TlsKit>,
    engine: FakeEngineOptions,
    tracing: bool,
    proxy: Tweak<'a, ProxyConfig>,
    worker: Arc<dyn Fn(&mut WorkerConfig) + Send + Sync>,
    gateway: Tweak<'a, GatewayConfig>,
}

impl std::fmt::Debug for NetworkBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkBuilder")
            .field("coefficients", &self.coefficients)
            .field("credit", &self.credit)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Default for NetworkBuilder<'_> {
    fn default() -> Self {
        NetworkBuilder {
            coefficients: vec![1000],
            credit: Some(DEFAULT_CREDIT),
            tls: None,
            engine: FakeEngineOptions::default(),
            tracing: true,
            proxy: Box::new(|_| {}),
            worker: Arc::new(|_| {}),
            gateway: Box::new(|_| {}),
        }
    }
}

impl<'a> NetworkBuilder<'a> {
    /// One worker per coefficient (thousandths).
    pub fn workers(mut self, coefficients: &[u32]) -> Self {
        self.coefficients = coefficients.to_vec();
        self
    }

    /// The credit of the gateway's escrow (`None`: no escrow).
    pub fn credit(mut self, credit: Option<u128>) -> Self {
        self.credit = credit;
        self
    }

    /// The TLS of each role (default: [`TlsKit::dev`]).
    pub fn tls(mut self, kit: TlsKit) -> Self {
        self.tls = Some(kit);
        self
    }

    /// The engine's options (its model is also the workers' model).
    pub fn engine(mut self, options: FakeEngineOptions) -> Self {
        self.engine = options;
        self
    }

    /// Whether to install the daemons' log subscriber (benches keep their output clean).
    pub fn tracing(mut self, on: bool) -> Self {
        self.tracing = on;
        self
    }

    /// Changes the proxy's config before it starts.
    pub fn proxy_config(mut self, f: impl FnOnce(&mut ProxyConfig) + Send + 'a) -> Self {
        self.proxy = Box::new(f);
        self
    }

    /// Changes every worker's config before it starts (also those started later).
    pub fn worker_config(mut self, f: impl Fn(&mut WorkerConfig) + Send + Sync + 'static) -> Self {
        self.worker = Arc::new(f);
        self
    }

    /// Changes the gateway's config before it starts.
    pub fn gateway_config(mut self, f: impl FnOnce(&mut GatewayConfig) + Send + 'a) -> Self {
        self.gateway = Box::new(f);
        self
    }

    /// Starts the network and waits until every worker is connected.
    pub async fn try_start(self) -> Result<MemoryNetwork, NetworkError> {
        if self.tracing {
            cocoon_daemon::init_tracing(false);
        }
        let dir = tempfile::tempdir()?;
        let model = self.engine.model.clone();
        let engine = FakeEngine::start_with(self.engine).await?;
        let kit = match self.tls {
            Some(kit) => kit,
            None => TlsKit::dev()?,
        };
        let proxy_key = kit.proxy.identity().public_key;
        let chain = Arc::new(MemoryChain::new(PriceParams::default(), proxy_key));
        let mut proxy_config = proxy_config(dir.path());
        (self.proxy)(&mut proxy_config);
        let proxy = cocoon_proxy::start(
            proxy_config.clone(),
            kit.proxy.clone(),
            chain.clone(),
            chain.clone(),
            Registry::new(),
        )
        .await?;
        // Later restarts reuse the same ports.
        proxy_config.client_listen = proxy.client_addr.to_string();
        proxy_config.worker_listen = proxy.worker_addr.to_string();
        let client_key = kit.gateway.identity().public_key;
        if let Some(credit) = self.credit {
            chain.open_escrow(client_key, credit);
        }
        let mut gconf = gateway_config(&proxy.client_addr.to_string(), Some(&proxy_key));
        (self.gateway)(&mut gconf);
        let gateway = cocoon_gateway::start(gconf, kit.gateway.clone(), Registry::new()).await?;
        let mut net = MemoryNetwork {
            engine,
            chain,
            proxy_tls: kit.proxy,
            worker_tls: kit.worker,
            worker_tweak: self.worker,
            model,
            proxy_config,
            proxy: Some(proxy),
            workers: Vec::new(),
            gateway,
            client_key,
            http: app_client(),
            dir,
        };
        for &c in &self.coefficients {
            let url = net.engine.url();
            let worker = net.start_worker(&url, c)?;
            net.workers.push(worker);
        }
        net.try_wait_for_workers(self.coefficients.len()).await?;
        Ok(net)
    }

    /// [`NetworkBuilder::try_start`], panicking on failure (tests).
    pub async fn start(self) -> MemoryNetwork {
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("starting the test network: {e}"))
    }
}

/// A running in-process network (see the module docs). Fields are public: tests restart the
/// proxy, add workers and read the chain directly.
pub struct MemoryNetwork {
    /// The engine every worker serves from.
    pub engine: FakeEngine,
    /// The proxy's chain.
    pub chain: Arc<MemoryChain>,
    /// The proxy's TLS (kept for restarts).
    pub proxy_tls: Arc<dyn HopTls>,
    /// Makes the TLS of one more worker.
    pub worker_tls: WorkerTlsFactory,
    worker_tweak: Arc<dyn Fn(&mut WorkerConfig) + Send + Sync>,
    /// The model the engine and the workers serve.
    pub model: String,
    /// The proxy's config, listening on the ports it first bound (restarts reuse them).
    pub proxy_config: ProxyConfig,
    /// The proxy (`None` while a test has it stopped).
    pub proxy: Option<ProxyHandle>,
    /// The workers, in start order.
    pub workers: Vec<WorkerHandle>,
    /// The gateway.
    pub gateway: GatewayHandle,
    /// The gateway's key (the client key of its escrow).
    pub client_key: [u8; 32],
    /// An app's client for the gateway.
    pub http: AppClient,
    /// Holds the ledger and anything else a test writes.
    pub dir: tempfile::TempDir,
}

impl std::fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNetwork")
            .field("engine", &self.engine.url())
            .field("gateway", &self.gateway.addr)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl MemoryNetwork {
    /// A builder with the defaults.
    pub fn builder() -> NetworkBuilder<'static> {
        NetworkBuilder::default()
    }

    /// One worker per coefficient, and an escrow with `credit` for the gateway's key.
    pub async fn start(coefficients: &[u32], credit: Option<u128>) -> MemoryNetwork {
        MemoryNetwork::builder()
            .workers(coefficients)
            .credit(credit)
            .start()
            .await
    }

    /// The running proxy (panics while a test has it stopped).
    pub fn proxy(&self) -> &ProxyHandle {
        match &self.proxy {
            Some(p) => p,
            None => panic!("the proxy is stopped"),
        }
    }

    /// Starts one more worker (not added to [`MemoryNetwork::workers`]) dialing the proxy's worker
    /// port, serving from `engine_url` at `coefficient`, with a fresh key from the network's TLS.
    pub fn start_worker(
        &self,
        engine_url: &str,
        coefficient: u32,
    ) -> Result<WorkerHandle, NetworkError> {
        let mut config = worker_config(
            &self.proxy_config.worker_listen,
            engine_url,
            &self.model,
            coefficient,
        );
        (self.worker_tweak)(&mut config);
        let tls = (self.worker_tls)()?;
        Ok(cocoon_worker::start(
            config,
            tls,
            PriceParams::default(),
            Registry::new(),
        )?)
    }

    /// Waits until the proxy lists `n` live workers.
    pub async fn try_wait_for_workers(&self, n: usize) -> Result<(), NetworkError> {
        let listed = || {
            self.proxy
                .as_ref()
                .map_or(0, |p| p.proxy.workers.all().len())
        };
        if wait::poll_until(CONNECT_WAIT, || listed() == n).await {
            return Ok(());
        }
        Err(NetworkError::NotConnected {
            wanted: n,
            connected: listed(),
        })
    }

    /// [`MemoryNetwork::try_wait_for_workers`], panicking when they do not connect.
    pub async fn wait_for_workers(&self, n: usize) {
        if let Err(e) = self.try_wait_for_workers(n).await {
            panic!("{e}");
        }
    }

    /// The gateway's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gateway.addr, path)
    }

    /// `POST`s JSON `body` to the gateway's `path`.
    pub async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
        let req = post_json(&self.url(path), body.to_owned(), headers);
        match self.http.request(req).await {
            Ok(resp) => Resp::collect(resp).await,
            Err(e) => panic!("POST {path}: {e}"),
        }
    }

    /// `GET`s the gateway's `path`.
    pub async fn get(&self, path: &str) -> Resp {
        let req = hyper::Request::get(self.url(path))
            .body(full(Bytes::new()))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        match self.http.request(req).await {
            Ok(resp) => Resp::collect(resp).await,
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// What the proxy's ledger has charged the gateway's client, nanoTON.
    pub fn charged(&self) -> u128 {
        self.proxy()
            .proxy
            .client_ledger(&self.client_key)
            .map(|c| c.charged)
            .unwrap_or_else(|e| panic!("reading the ledger: {e}"))
    }

    /// Shuts every daemon down gracefully (each gets `grace`), gateway first, engine last.
    pub async fn shutdown(self, grace: Duration) {
        self.gateway.shutdown(grace).await;
        for worker in self.workers {
            worker.shutdown(grace).await;
        }
        if let Some(proxy) = self.proxy {
            proxy.shutdown(grace).await;
        }
        self.engine.shutdown().await;
    }

    /// A chat request for the network's model (see [`crate::http::chat_body`]).
    pub fn chat(&self, content: &str, stream: bool) -> String {
        crate::http::chat_body(&self.model, content, stream)
    }
}
