//! The in-process network the API drills run against: the testkit's network (the built-in engine's
//! fixed backend → a worker → a proxy → a gateway, all on 127.0.0.1:0 with development TLS), plus a
//! direct HTTP/2 connection to the proxy's client port as a gateway makes it.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)] // test harness

use std::sync::Arc;

use bytes::Bytes;
use cocoon_daemon::http::{Body, full};
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_drills::binding::DRILL_MODEL;
use cocoon_drills::manifest::Case;
use cocoon_testkit::{FakeEngineOptions, MemoryNetwork};
use http_body_util::BodyExt;
use hyper::client::conn::http2::SendRequest;
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
    /// The testkit's network: engine (fixed backend, inline), worker, proxy, gateway.
    pub inner: MemoryNetwork,
    pub gateway: String,
    pub engine: String,
    pub proxy_addr: std::net::SocketAddr,
    pub direct_tls: Arc<dyn HopTls>,
    pub proxy_conn: SendRequest<Body>,
}

impl Net {
    pub async fn start() -> Net {
        let inner = MemoryNetwork::builder()
            .engine(FakeEngineOptions {
                model: DRILL_MODEL.into(),
                holds: false,
            })
            .credit(Some(CREDIT))
            .start()
            .await;
        let direct_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
        inner
            .chain
            .open_escrow(direct_tls.identity().public_key, CREDIT);
        let proxy_addr = inner.proxy().client_addr;
        let proxy_conn = dial_proxy(proxy_addr, &direct_tls).await;
        Net {
            gateway: format!("http://{}", inner.gateway.addr),
            engine: inner.engine.url(),
            proxy_addr,
            direct_tls,
            proxy_conn,
            inner,
        }
    }

    pub async fn http1(&self, req: hyper::Request<Body>) -> Answer {
        match self.inner.http.request(req).await {
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
