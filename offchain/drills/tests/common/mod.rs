//! The in-process network the API drills run against: the built-in engine (fixed backend) → a worker
//! → a proxy → a gateway, all on 127.0.0.1:0 with development TLS, plus a direct HTTP/2 connection to
//! the proxy's client port as a gateway makes it.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)] // test harness

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cocoon_daemon::http::{Body, full};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_drills::binding::DRILL_MODEL;
use cocoon_drills::manifest::Case;
use cocoon_gateway::GatewayConfig;
use cocoon_protocol::PriceParams;
use cocoon_proxy::{MemoryChain, ProxyConfig};
use cocoon_worker::WorkerConfig;
use http_body_util::BodyExt;
use hyper::client::conn::http2::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

pub const CREDIT: u128 = 1_000_000_000_000_000;

pub struct Answer {
    pub status: u16,
    pub code: String,
}

impl Answer {
    pub async fn of(resp: hyper::Response<hyper::body::Incoming>) -> Answer {
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        let body = body.unwrap_or_default();
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/error/code")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        Answer { status, code }
    }

    /// `ok` for a 2xx, else the error code (`<no code, status N>` when the body had none).
    pub fn class(&self) -> String {
        match (self.status, self.code.as_str()) {
            (200..=299, _) => "ok".into(),
            (s, "") => format!("<no code, status {s}>"),
            (_, c) => c.to_owned(),
        }
    }
}

pub fn good_chat() -> String {
    serde_json::json!({"model": DRILL_MODEL, "max_tokens": 4,
        "messages": [{"role": "user", "content": "still alive"}]})
    .to_string()
}

pub fn request(case: &Case, base: &str, body: Bytes) -> hyper::Request<Body> {
    let path = case.path.as_deref().unwrap_or("/v1/chat/completions");
    let method = case.method.as_deref().unwrap_or("POST");
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    for (k, v) in &case.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(full(body)).expect("request")
}

pub fn good(base: &str) -> hyper::Request<Body> {
    hyper::Request::post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(full(good_chat()))
        .expect("request")
}

/// An HTTP/2 connection to the proxy's client port, as a gateway with `tls` makes it.
pub async fn dial_proxy(addr: std::net::SocketAddr, tls: &Arc<dyn HopTls>) -> SendRequest<Body> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

pub struct Net {
    pub http: Client<HttpConnector, Body>,
    pub gateway: String,
    pub engine: String,
    pub proxy_addr: std::net::SocketAddr,
    pub direct_tls: Arc<dyn HopTls>,
    pub proxy_conn: SendRequest<Body>,
    pub chain: Arc<MemoryChain>,
    pub proxy: cocoon_proxy::ProxyHandle,
    pub gateway_handle: cocoon_gateway::GatewayHandle,
    pub gateway_key: [u8; 32],
    pub worker: cocoon_worker::WorkerHandle,
    pub engine_handle: cocoon_engine::EngineHandle,
    pub _dir: tempfile::TempDir,
}

impl Net {
    pub async fn start() -> Net {
        cocoon_daemon::init_tracing(false);
        let dir = tempfile::tempdir().unwrap();
        let mut engine_config = cocoon_engine::EngineConfig::fixed();
        engine_config.model_id = Some(DRILL_MODEL.into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let engine = cocoon_engine::serve(engine_config, listener).await.unwrap();
        let proxy_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Proxy).unwrap());
        let chain = Arc::new(MemoryChain::new(
            PriceParams::default(),
            proxy_tls.identity().public_key,
        ));
        let proxy_config = ProxyConfig {
            client_listen: "127.0.0.1:0".into(),
            worker_listen: "127.0.0.1:0".into(),
            store_path: dir.path().join("ledger.redb").display().to_string(),
            announce_poll_ms: 50,
            ..Default::default()
        };
        let proxy = cocoon_proxy::start(
            proxy_config,
            proxy_tls.clone(),
            chain.clone(),
            chain.clone(),
            Registry::new(),
        )
        .await
        .unwrap();
        let worker_config = WorkerConfig {
            proxies: vec![proxy.worker_addr.to_string()],
            engine_url: engine.url(),
            model: DRILL_MODEL.into(),
            coefficient: 1000,
            reconnect_ms: 20,
            ..Default::default()
        };
        let worker = cocoon_worker::start(
            worker_config,
            Arc::new(DevTls::generate(Role::Worker).unwrap()),
            PriceParams::default(),
            Registry::new(),
        )
        .unwrap();
        let gateway_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
        let direct_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
        let gateway_key = gateway_tls.identity().public_key;
        chain.open_escrow(gateway_key, CREDIT);
        chain.open_escrow(direct_tls.identity().public_key, CREDIT);
        let gconf = GatewayConfig {
            listen: "127.0.0.1:0".into(),
            proxy: proxy.client_addr.to_string(),
            proxy_key: hex::encode(proxy_tls.identity().public_key),
            ..Default::default()
        };
        let gateway_handle = cocoon_gateway::start(gconf, gateway_tls, Registry::new())
            .await
            .unwrap();
        for _ in 0..500 {
            if proxy.proxy.workers.all().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            proxy.proxy.workers.all().len(),
            1,
            "the worker did not connect"
        );
        let proxy_conn = dial_proxy(proxy.client_addr, &direct_tls).await;
        Net {
            http: Client::builder(TokioExecutor::new()).build_http(),
            gateway: format!("http://{}", gateway_handle.addr),
            engine: engine.url(),
            proxy_addr: proxy.client_addr,
            direct_tls,
            proxy_conn,
            chain,
            proxy,
            gateway_handle,
            gateway_key,
            worker,
            engine_handle: engine,
            _dir: dir,
        }
    }

    pub async fn http1(&self, req: hyper::Request<Body>) -> Answer {
        match self.http.request(req).await {
            Ok(resp) => Answer::of(resp).await,
            Err(e) => Answer {
                status: 0,
                code: format!("<transport error: {e}>"),
            },
        }
    }

    pub async fn proxy(&mut self, req: hyper::Request<Body>) -> Answer {
        if self.proxy_conn.is_closed() {
            self.proxy_conn = dial_proxy(self.proxy_addr, &self.direct_tls).await;
        }
        let sent = async {
            self.proxy_conn.ready().await?;
            self.proxy_conn.send_request(req).await
        };
        match sent.await {
            Ok(resp) => Answer::of(resp).await,
            Err(e) => Answer {
                status: 0,
                code: format!("<transport error: {e}>"),
            },
        }
    }
}
