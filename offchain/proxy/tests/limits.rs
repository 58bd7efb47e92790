//! Issue 14, findings 5 and 6, tried at the proxy's client port as an adversarial client speaking
//! HTTP/2 over mutual TLS with its own key: the worker pool cannot be emptied by requests the client
//! makes fail, and the listener's limits (TLS handshake timeout, connection caps, credit before
//! body, per-peer bind budget) hold.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: a failed setup step should panic

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocoon_daemon::http::{Body, full};
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_testkit::{FakeEngineOptions, MemoryNetwork};
use http_body_util::BodyExt;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;

const CREDIT: u128 = 1_000_000_000_000_000;

/// A TCP connection to `addr` from `local` (another loopback address is another peer).
async fn tcp_from(local: Option<&str>, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(ip) = local {
        socket.bind(format!("{ip}:0").parse().unwrap())?;
    }
    socket.connect(addr).await
}

/// An HTTP/2 connection to the proxy's client port with `tls`, as a gateway (or anyone) makes it.
async fn try_dial(
    addr: SocketAddr,
    tls: &Arc<dyn HopTls>,
    local: Option<&str>,
) -> Result<SendRequest<Body>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tcp_from(local, addr).await?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid")?;
    let stream = connector.connect(name, tcp).await?;
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Body>(TokioIo::new(stream))
        .await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn dial(addr: SocketAddr, tls: &Arc<dyn HopTls>) -> SendRequest<Body> {
    try_dial(addr, tls, None).await.unwrap()
}

struct Answer {
    status: u16,
    code: String,
    body: Bytes,
}

async fn send(sender: &mut SendRequest<Body>, req: hyper::Request<Body>) -> Answer {
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/error/code")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    Answer { status, code, body }
}

fn chat(net: &MemoryNetwork, content: &str, headers: &[(&str, &str)]) -> hyper::Request<Body> {
    let mut b = hyper::Request::post("http://proxy/v1/chat/completions")
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(full(net.chat(content, false))).unwrap()
}

fn client_tls() -> Arc<dyn HopTls> {
    Arc::new(DevTls::generate(Role::Client).unwrap())
}

/// Finding 5: requests the client makes time out (`x-cocoon-timeout-ms: 1`) are not the workers'
/// fault. Before the fix, ~10 such requests per worker made `pick` skip every worker until they
/// reconnected; now the pool stays whole and the same client's honest request is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timeouts_do_not_empty_the_worker_pool() {
    let net = MemoryNetwork::builder()
        .workers(&[1000, 1000])
        .engine(FakeEngineOptions {
            holds: true,
            ..FakeEngineOptions::default()
        })
        .start()
        .await;
    let tls = client_tls();
    net.chain.open_escrow(tls.identity().public_key, CREDIT);
    let mut conn = dial(net.proxy().client_addr, &tls).await;
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..30 {
        // A held prompt: the worker never answers within 1 ms, so every attempt hits the deadline.
        let a = send(
            &mut conn,
            chat(&net, &format!("HOLD {i}"), &[("x-cocoon-timeout-ms", "1")]),
        )
        .await;
        *codes.entry(a.code).or_default() += 1;
    }
    net.engine.release();
    eprintln!("30 requests with a 1 ms timeout: {codes:?}");
    assert!(
        !codes.contains_key("no_worker_available"),
        "the pool was emptied: {codes:?}"
    );
    assert_eq!(codes.get("timeout"), Some(&30), "{codes:?}");
    let a = send(&mut conn, chat(&net, "honest", &[])).await;
    assert_eq!(
        a.status,
        200,
        "{}: {}",
        a.code,
        String::from_utf8_lossy(&a.body)
    );
    for w in net.proxy().proxy.workers.all() {
        assert_eq!(
            w.failed.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "a client's deadline is not a worker fault"
        );
    }
}

/// Reads from a raw TCP connection until the server closes it (0 bytes) or `limit` passes.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), tcp.read(&mut buf))
            .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Finding 6: a peer that opens a TCP connection to the client port and never completes the TLS
/// handshake is dropped after `limits.tls_handshake_timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tls_handshake_is_dropped() {
    let net = MemoryNetwork::builder()
        .proxy_config(|c| c.limits.tls_handshake_timeout_ms = 300)
        .start()
        .await;
    let mut tcp = tcp_from(None, net.proxy().client_addr).await.unwrap();
    // Half a ClientHello record header, then silence.
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &[0x16, 0x03])
        .await
        .unwrap();
    let closed = closed_within(&mut tcp, Duration::from_secs(10)).await;
    let took = closed.expect("the proxy closes a stalled handshake");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    // The honest gateway is still served.
    let r = net
        .post("/v1/chat/completions", &net.chat("after", false), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Finding 6: per-peer and total connection caps on the client port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_caps_hold_at_the_client_port() {
    let net = MemoryNetwork::builder()
        .proxy_config(|c| {
            c.limits.max_connections_per_peer = 3;
            c.limits.max_connections = 5;
        })
        .start()
        .await;
    let addr = net.proxy().client_addr;
    let tls = client_tls();
    net.chain.open_escrow(tls.identity().public_key, CREDIT);
    // The gateway already holds one connection from 127.0.0.1 (once it has sent a request).
    let r = net
        .post("/v1/chat/completions", &net.chat("warm", false), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(dial(addr, &tls).await);
    }
    // A fourth connection from 127.0.0.1 is closed at once.
    assert!(
        try_dial(addr, &tls, None).await.is_err(),
        "the per-peer cap admits no fourth connection"
    );
    // Another peer (127.0.0.2) gets its own share, up to the total cap of 5.
    let mut other = Vec::new();
    for _ in 0..2 {
        other.push(try_dial(addr, &tls, Some("127.0.0.2")).await.unwrap());
    }
    assert!(
        try_dial(addr, &tls, Some("127.0.0.3")).await.is_err(),
        "the total cap admits no sixth connection"
    );
    // Connections within the caps are served.
    let a = send(&mut other[0], chat(&net, "within", &[])).await;
    assert_eq!(a.status, 200, "{}", a.code);
    drop(other);
    drop(held);
}

/// Finding 6: a client without credit is refused before its body is read: the proxy answers while
/// the client has sent only the headers of a request announcing a 1 MiB body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_credit_is_refused_before_its_body_is_read() {
    let net = MemoryNetwork::start(&[1000], Some(CREDIT)).await;
    let broke = client_tls();
    net.chain.open_escrow(broke.identity().public_key, 0);
    let mut conn = dial(net.proxy().client_addr, &broke).await;
    let (mut tx, body) = body_channel();
    let req = hyper::Request::post("http://proxy/v1/chat/completions")
        .header("content-type", "application/json")
        .header("content-length", (1 << 20).to_string())
        .body(body)
        .unwrap();
    conn.ready().await.unwrap();
    let pending = conn.send_request(req);
    // Only a few bytes of the body are sent; the rest never is.
    tx.send(Bytes::from_static(b"{\"model\":")).await;
    let resp = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("refused without waiting for the body")
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 402, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_credit", "{v}");
    drop(tx);
}

/// A body the test writes into by hand.
struct BodySender(tokio::sync::mpsc::Sender<Bytes>);

impl BodySender {
    async fn send(&mut self, b: Bytes) {
        let _ = self.0.send(b).await;
    }
}

struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = cocoon_daemon::http::BoxError;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn body_channel() -> (BodySender, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    (BodySender(tx), ChannelBody(rx).boxed_unsync())
}
