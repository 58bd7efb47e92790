//! Junk below the API: raw bytes that are not HTTP, oversized headers, broken chunked encoding,
//! plain text and garbage on the proxy's TLS ports, and a peer of the wrong role. Each connection
//! may be refused or closed however the server likes; afterwards every daemon must still serve a
//! good request, and the proxy must still accept its worker.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: a failed setup step should panic

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cocoon_daemon::tls::{DevTls, HopTls, Role};
use common::{Net, good};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes `bytes`, then reads until the server closes or 2 s pass; returns what came back.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    out
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

fn status_line(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_every_port_leaves_every_daemon_serving() {
    let mut net = Net::start().await;
    let gateway = addr_of(&net.gateway);
    let engine = addr_of(&net.engine);
    let big_header = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-junk: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let http_junk: Vec<(&str, Vec<u8>)> = vec![
        ("not HTTP", b"HELLO THERE\r\n\r\n".to_vec()),
        ("binary", (0u8..=255).cycle().take(4096).collect()),
        ("200 kB header", big_header.into_bytes()),
        (
            "bad chunk size",
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "content-length lies",
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n{\"model\":".to_vec(),
        ),
        (
            "two content-lengths",
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}x".to_vec(),
        ),
        ("HTTP/2 preface on HTTP/1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00".to_vec()),
    ];
    for (name, bytes) in &http_junk {
        for (surface, addr) in [("gateway", gateway), ("engine", engine)] {
            let reply = raw(addr, bytes).await;
            let line = status_line(&reply);
            let shown = if reply.is_empty() {
                "closed".to_owned()
            } else {
                line.chars().take(40).collect()
            };
            eprintln!("{name} at the {surface}: {shown:?}");
            // Closed, an HTTP error status, or HTTP/2 frames (both servers also speak h2c);
            // never an HTTP/1 success.
            let served = line.starts_with("HTTP/") && !(line.contains(" 4") || line.contains(" 5"));
            assert!(!served, "{name} at the {surface}: {line:?}");
        }
    }
    let tls_junk: Vec<(&str, Vec<u8>)> = vec![
        (
            "plain HTTP",
            b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
        ),
        (
            "fake ClientHello",
            [&[0x16u8, 0x03, 0x01, 0xff, 0xff][..], &[0x01; 64]].concat(),
        ),
        ("zeros", vec![0; 10_000]),
    ];
    for (name, bytes) in &tls_junk {
        for (port, addr) in [
            ("client", net.inner.proxy().client_addr),
            ("worker", net.inner.proxy().worker_addr),
        ] {
            let reply = raw(addr, bytes).await;
            assert!(
                !String::from_utf8_lossy(&reply).contains("HTTP/1.1 200"),
                "{name} on the proxy's {port} port was served"
            );
        }
    }
    // A worker certificate on the client port: the TLS handshake may pass, requests may not.
    let wrong_role: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Worker).unwrap());
    let tcp = tokio::net::TcpStream::connect(net.inner.proxy().client_addr)
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(wrong_role.client_config());
    let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid").unwrap();
    if let Ok(stream) = connector.connect(name, tcp).await {
        let handshake =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake::<_, cocoon_daemon::http::Body>(hyper_util::rt::TokioIo::new(stream))
                .await;
        if let Ok((mut sender, conn)) = handshake {
            tokio::spawn(conn);
            let sent = async {
                sender.ready().await?;
                sender.send_request(good("http://proxy")).await
            };
            let got = tokio::time::timeout(Duration::from_secs(5), sent).await;
            assert!(
                !matches!(got, Ok(Ok(ref r)) if r.status() == 200),
                "a worker identity was served on the client port"
            );
        }
    }
    // Everyone still serves, and the proxy still has its worker.
    let g = net.http1(good(&net.gateway)).await;
    let p = net.proxy(good("http://proxy")).await;
    let e = net.http1(good(&net.engine)).await;
    assert_eq!((g.status, p.status, e.status), (200, 200, 200));
    assert_eq!(net.inner.proxy().proxy.workers.all().len(), 1);
}
