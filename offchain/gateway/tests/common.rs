//! In-process network for tests: fake engine → worker(s) → proxy → gateway, all on 127.0.0.1:0.

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cocoon_daemon::http::{Body, full};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_gateway::{GatewayConfig, GatewayHandle};
use cocoon_protocol::PriceParams;
use cocoon_proxy::{MemoryChain, ProxyConfig, ProxyHandle};
use cocoon_worker::fake_engine::FakeEngine;
use cocoon_worker::{WorkerConfig, WorkerHandle};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const MODEL: &str = "fake-model";
pub const CREDIT: u128 = 1_000_000_000_000;

pub struct Net {
    pub engine: FakeEngine,
    pub chain: Arc<MemoryChain>,
    pub proxy_tls: Arc<dyn HopTls>,
    pub worker_tls: Arc<dyn Fn() -> Arc<dyn HopTls> + Send + Sync>,
    pub proxy_config: ProxyConfig,
    pub proxy: Option<ProxyHandle>,
    pub workers: Vec<WorkerHandle>,
    pub gateway: GatewayHandle,
    pub client_key: [u8; 32],
    pub http: Client<HttpConnector, Body>,
    pub dir: tempfile::TempDir,
}

pub fn params() -> PriceParams {
    PriceParams::default()
}

pub fn proxy_config(dir: &std::path::Path) -> ProxyConfig {
    ProxyConfig {
        client_listen: "127.0.0.1:0".into(),
        worker_listen: "127.0.0.1:0".into(),
        store_path: dir.join("ledger.redb").display().to_string(),
        announce_poll_ms: 50,
        ..Default::default()
    }
}

impl Net {
    /// A network with one worker per coefficient, and an escrow with `credit` for the gateway's key.
    pub async fn start(coefficients: &[u32], credit: Option<u128>) -> Net {
        Net::start_with(coefficients, credit, |_| {}, |_| {}).await
    }

    pub async fn start_with(
        coefficients: &[u32],
        credit: Option<u128>,
        tweak_proxy: impl FnOnce(&mut ProxyConfig),
        tweak_gateway: impl FnOnce(&mut GatewayConfig),
    ) -> Net {
        let kit = TlsKit {
            proxy: Arc::new(DevTls::generate(Role::Proxy).unwrap()),
            gateway: Arc::new(DevTls::generate(Role::Client).unwrap()),
            worker: Arc::new(|| {
                Arc::new(DevTls::generate(Role::Worker).unwrap()) as Arc<dyn HopTls>
            }),
        };
        Net::start_full(coefficients, credit, tweak_proxy, tweak_gateway, kit).await
    }

    pub async fn start_full(
        coefficients: &[u32],
        credit: Option<u128>,
        tweak_proxy: impl FnOnce(&mut ProxyConfig),
        tweak_gateway: impl FnOnce(&mut GatewayConfig),
        kit: TlsKit,
    ) -> Net {
        cocoon_daemon::init_tracing(false);
        let dir = tempfile::tempdir().unwrap();
        let engine = FakeEngine::start().await.unwrap();
        let proxy_tls = kit.proxy;
        let chain = Arc::new(MemoryChain::new(params(), proxy_tls.identity().public_key));
        let mut proxy_config = proxy_config(dir.path());
        tweak_proxy(&mut proxy_config);
        let proxy = cocoon_proxy::start(
            proxy_config.clone(),
            proxy_tls.clone(),
            chain.clone(),
            chain.clone(),
            Registry::new(),
        )
        .await
        .unwrap();
        // Later restarts reuse the same ports.
        proxy_config.client_listen = proxy.client_addr.to_string();
        proxy_config.worker_listen = proxy.worker_addr.to_string();
        let mut workers = Vec::new();
        for &c in coefficients {
            workers.push(start_worker_with(&proxy, &engine.url(), c, (kit.worker)()));
        }
        let gateway_tls = kit.gateway;
        let client_key = gateway_tls.identity().public_key;
        if let Some(credit) = credit {
            chain.open_escrow(client_key, credit);
        }
        let mut gconf = GatewayConfig {
            listen: "127.0.0.1:0".into(),
            proxy: proxy.client_addr.to_string(),
            proxy_key: hex::encode(proxy_tls.identity().public_key),
            ..Default::default()
        };
        tweak_gateway(&mut gconf);
        let gateway = cocoon_gateway::start(gconf, gateway_tls, Registry::new())
            .await
            .unwrap();
        let http = Client::builder(TokioExecutor::new()).build_http();
        let net = Net {
            engine,
            chain,
            proxy_tls,
            worker_tls: kit.worker,
            proxy_config,
            proxy: Some(proxy),
            workers,
            gateway,
            client_key,
            http,
            dir,
        };
        net.wait_for_workers(coefficients.len()).await;
        net
    }

    pub fn proxy(&self) -> &ProxyHandle {
        self.proxy.as_ref().unwrap()
    }

    /// Waits until the proxy lists `n` live workers (bounded; asserts nothing about time).
    pub async fn wait_for_workers(&self, n: usize) {
        for _ in 0..500 {
            if self.proxy().proxy.workers.all().len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("workers did not connect");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gateway.addr, path)
    }

    pub async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
        let mut b = hyper::Request::post(self.url(path)).header("content-type", "application/json");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .http
            .request(b.body(full(body.to_owned())).unwrap())
            .await
            .unwrap();
        Resp::collect(resp).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        let req = hyper::Request::get(self.url(path))
            .body(full(Bytes::new()))
            .unwrap();
        Resp::collect(self.http.request(req).await.unwrap()).await
    }

    pub fn charged(&self) -> u128 {
        self.proxy()
            .proxy
            .store
            .client(&self.client_key)
            .unwrap()
            .charged
    }
}

/// The TLS of each role.
pub struct TlsKit {
    pub proxy: Arc<dyn HopTls>,
    pub gateway: Arc<dyn HopTls>,
    pub worker: Arc<dyn Fn() -> Arc<dyn HopTls> + Send + Sync>,
}

pub fn start_worker(proxy: &ProxyHandle, engine_url: &str, coefficient: u32) -> WorkerHandle {
    start_worker_with(
        proxy,
        engine_url,
        coefficient,
        Arc::new(DevTls::generate(Role::Worker).unwrap()),
    )
}

pub fn start_worker_with(
    proxy: &ProxyHandle,
    engine_url: &str,
    coefficient: u32,
    tls: Arc<dyn HopTls>,
) -> WorkerHandle {
    let config = WorkerConfig {
        proxies: vec![proxy.worker_addr.to_string()],
        engine_url: engine_url.to_owned(),
        model: MODEL.into(),
        coefficient,
        reconnect_ms: 20,
        ..Default::default()
    };
    cocoon_worker::start(config, tls, params(), Registry::new()).unwrap()
}

pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub fn chat(content: &str, stream: bool) -> String {
    serde_json::json!({"model": MODEL, "stream": stream, "max_tokens": 4,
        "messages": [{"role": "user", "content": content}]})
    .to_string()
}
