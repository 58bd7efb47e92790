//! The local API against web pages on the same machine (issue 16, finding 5), at the gateway's real
//! port with raw HTTP/1.1 so that every header is the attacker's choice: a DNS-rebinding `Host`, a
//! cross-site `text/plain` POST with an `Origin`, and the bearer token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `head` (request line and headers, without the blank line) and `body`; returns the status
/// and the whole answer.
async fn raw(net: &Net, head: &str, body: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(net.gateway.addr)
        .await
        .unwrap();
    let req = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebinding_host_cannot_read_the_bundle() {
    let net = Net::start(&[1000], Some(CREDIT)).await;
    let r = net
        .post(
            "/v1/chat/completions",
            &chat("my secret prompt", false),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let port = net.gateway.addr.port();

    // The page's name now points at 127.0.0.1: the browser sends its own name as Host.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("127.0.0.1.nip.io:{port}"),
    ] {
        let (status, text) = raw(
            &net,
            &format!("GET /cocoon/v1/bundle?bodies=1 HTTP/1.1\r\nHost: {host}"),
            "",
        )
        .await;
        assert_eq!(status, 401, "Host {host}: {text}");
        assert!(text.contains("DNS-rebinding"), "{text}");
        assert!(!text.contains("responses"), "no bundle leaks: {text}");
    }
    let (status, _) = raw(&net, "GET /cocoon/v1/receipts HTTP/1.0", "").await;
    assert_eq!(status, 401, "no Host at all");

    // The gateway's own names still work.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
    ] {
        let (status, text) = raw(
            &net,
            &format!("GET /cocoon/v1/bundle?bodies=1 HTTP/1.1\r\nHost: {host}"),
            "",
        )
        .await;
        assert_eq!(status, 200, "Host {host}: {text}");
        assert!(text.contains("\"responses\""));
    }
    let refused = net.gateway.gateway.receipts().len();
    assert_eq!(refused, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_spends_nothing_unless_its_origin_is_allowed() {
    let net = start_with(
        &[1000],
        Some(CREDIT),
        |_| {},
        |g| {
            g.allowed_origins = vec!["http://app.localhost:3000".into()];
        },
    )
    .await;
    let host = format!("Host: 127.0.0.1:{}", net.gateway.addr.port());
    let body = chat("spend the user's credit", false);
    // A "simple" request: text/plain, no preflight; the browser still sends Origin.
    let (status, text) = raw(
        &net,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\n{host}\r\nContent-Type: text/plain\r\nOrigin: https://evil.example"
        ),
        &body,
    )
    .await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("cross-origin"), "{text}");
    assert_eq!(net.charged(), 0, "nothing reached the proxy");
    assert!(net.gateway.gateway.receipts().is_empty());

    // The configured origin may.
    let (status, text) = raw(
        &net,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\n{host}\r\nContent-Type: application/json\r\nOrigin: http://app.localhost:3000"
        ),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(net.charged() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_token_must_match_whole() {
    let net = start_with(
        &[1000],
        Some(CREDIT),
        |_| {},
        |g| {
            g.api_token = "s3cret-token".into();
        },
    )
    .await;
    let host = format!("Host: 127.0.0.1:{}", net.gateway.addr.port());
    for auth in [
        "",
        "\r\nAuthorization: Bearer s3cret-toke",
        "\r\nAuthorization: Bearer s3cret-tokenX",
        "\r\nAuthorization: s3cret-token",
    ] {
        let (status, text) = raw(
            &net,
            &format!("GET /cocoon/v1/receipts HTTP/1.1\r\n{host}{auth}"),
            "",
        )
        .await;
        assert_eq!(status, 401, "{auth:?}: {text}");
    }
    let (status, text) = raw(
        &net,
        &format!(
            "GET /cocoon/v1/receipts HTTP/1.1\r\n{host}\r\nAuthorization: Bearer s3cret-token"
        ),
        "",
    )
    .await;
    assert_eq!(status, 200, "{text}");
}
