//! A minimal proxy stand-in for worker tests: accepts the worker's TLS connection, speaks HTTP/2 as
//! the client (as the real proxy does), fetches announcements, sends requests and payout vouchers.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cocoon_attestation as att;
use cocoon_daemon::http::{Body, empty, full, read_limited};
use cocoon_daemon::tls::{HopTls, Role};
use cocoon_daemon::tls_config::{TlsMode, TlsSection, build_hop_tls};
use cocoon_protocol::wire::{ANNOUNCE_PATH, Announcement};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{mpsc, watch};

pub use cocoon_testkit::wait::within;

/// The image hash simulated TEEs report by default.
pub fn simulated_image() -> [u8; 32] {
    TlsSection::with_mode(TlsMode::Simulated).simulated_image_hash()
}

/// Simulated RA-TLS for `role` accepting peers with the simulated image.
pub fn simulated_tls(role: Role) -> Arc<dyn HopTls> {
    let allow = att::InMemoryAllowlist::new();
    allow.allow(att::Role::Proxy, simulated_image());
    allow.allow(att::Role::Worker, simulated_image());
    build_hop_tls(
        role,
        &TlsSection::with_mode(TlsMode::Simulated),
        Arc::new(allow),
    )
    .expect("simulated TLS")
}

/// One accepted worker connection.
pub struct Conn {
    pub sender: SendRequest<Body>,
    closed: watch::Receiver<bool>,
    pub worker_key: [u8; 32],
}

impl Conn {
    /// Waits until the worker closes the connection.
    pub async fn closed(&mut self) {
        let _ = self.closed.wait_for(|c| *c).await;
    }

    pub async fn get(&mut self, path: &str) -> (u16, Bytes) {
        let req = hyper::Request::get(format!("http://worker{path}"))
            .body(empty())
            .expect("request");
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> (u16, Bytes) {
        let req = hyper::Request::post(format!("http://worker{path}"))
            .header("content-type", "application/json")
            .body(full(body.into()))
            .expect("request");
        self.send(req).await
    }

    pub async fn send(&mut self, req: hyper::Request<Body>) -> (u16, Bytes) {
        self.sender.ready().await.expect("connection ready");
        let resp = self.sender.send_request(req).await.expect("response");
        let status = resp.status().as_u16();
        let body = read_limited(resp.into_body(), 1 << 20)
            .await
            .expect("body")
            .expect("body size");
        (status, body)
    }

    pub async fn announce(&mut self) -> Announcement {
        let (status, body) = self.get(ANNOUNCE_PATH).await;
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("announcement JSON")
    }

    pub async fn chat(&mut self, model: &str) -> (u16, Bytes) {
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello there"}}],"max_tokens":3}}"#
        );
        self.post("/v1/chat/completions", body).await
    }
}

/// A listener that accepts worker connections.
pub struct FakeProxy {
    pub addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<Conn>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProxy {
    pub async fn start(tls: Arc<dyn HopTls>) -> FakeProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, conns) = mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(stream) = acceptor.accept(tcp).await else {
                    continue;
                };
                let worker_key = tls
                    .peer_identity(stream.get_ref().1)
                    .map(|p| p.public_key)
                    .unwrap_or_default();
                let Ok((sender, conn)) =
                    hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                        .handshake::<_, Body>(TokioIo::new(stream))
                        .await
                else {
                    continue;
                };
                let (closed_tx, closed) = watch::channel(false);
                tokio::spawn(async move {
                    let _ = conn.await;
                    let _ = closed_tx.send(true);
                });
                let _ = tx.send(Conn {
                    sender,
                    closed,
                    worker_key,
                });
            }
        });
        FakeProxy {
            addr,
            conns,
            accepted,
            task,
        }
    }

    /// The next worker connection.
    pub async fn next(&mut self) -> Conn {
        within("a worker connection", self.conns.recv())
            .await
            .expect("proxy listener alive")
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
