//! Issue 14, finding 6, on the devnet at the proxy's client port: chain lookups for new client keys
//! have a budget, and each peer (IP address) only a share of it. A peer burning fresh keys (each
//! naming a wallet without an escrow, each a chain read) spends its share and is answered "busy";
//! a different peer's new key, bound to a real escrow, is still admitted right after.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: a failed setup step should panic

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::ROLE_PROXY;
use cocoon_daemon::http::{Body, full};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_onchain::bootstrap::{dev_params, wallet_for_key};
use cocoon_onchain::{BindPolicy, OnchainConfig, OnchainView};
use cocoon_protocol::PriceParams;
use cocoon_testkit::{MemoryChain, proxy_config};
use cocoon_ton::Network;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};

const TON: u128 = 1_000_000_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// One chat request on a fresh connection from `local` with `tls`, naming `wallet`; the answer's
/// error code (empty on success).
async fn request_from(
    local: &str,
    addr: SocketAddr,
    tls: &Arc<dyn HopTls>,
    wallet: &str,
) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name = rustls::pki_types::ServerName::try_from("proxy.cocoon.invalid").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = r#"{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;
    let req = hyper::Request::post("http://proxy/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-cocoon-client-wallet", wallet)
        .body(full(body))
        .unwrap();
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/error/code")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_burning_fresh_keys_does_not_lock_out_another_peer() {
    let (devnet, client) = cocoon_testkit::devnet::start_devnet(1).await;
    let c = client.as_ref();
    let gov = wallet_for_key(&key(31), Network::Testnet).unwrap();
    let proxy_op = wallet_for_key(&key(32), Network::Testnet).unwrap();
    let user = wallet_for_key(&key(33), Network::Testnet).unwrap();
    for w in [&gov, &proxy_op, &user] {
        devnet.fund(w.address_friendly(), 100 * TON).await.unwrap();
    }
    let proxy_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Proxy).unwrap());
    let honest: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
    let proxy_pub = proxy_tls.identity().public_key;
    let (root, _) = RootHandle::deploy(c, &gov, -239, dev_params(), TON)
        .await
        .unwrap();
    let info = ProxyInfo {
        key: proxy_pub,
        endpoints: "127.0.0.1:1".into(),
    };
    root.set_proxy(c, &gov, proxy_op.address(), Some(info))
        .await
        .unwrap();
    root.open_stake(c, &proxy_op, ROLE_PROXY, proxy_pub, 2 * TON)
        .await
        .unwrap();
    root.open_escrow(
        c,
        &user,
        proxy_op.address(),
        3 * TON,
        honest.identity().public_key,
        5 * TON,
    )
    .await
    .unwrap();

    // Two lookups a second in common (bursts of 8), one a second per peer (bursts of 4).
    let view = OnchainView::load(
        client.clone(),
        OnchainConfig {
            root: root.address.clone(),
            proxy: proxy_op.address().clone(),
            refresh: Duration::from_secs(3600),
            allow_unattested: true,
            binding: BindPolicy {
                lookups_per_sec: 2,
                burst: 8,
                per_peer_lookups_per_sec: 1,
                per_peer_burst: 4,
                ..BindPolicy::default()
            },
            bindings: None,
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settler = Arc::new(MemoryChain::new(PriceParams::default(), proxy_pub));
    let proxy = cocoon_proxy::start(
        proxy_config(dir.path()),
        proxy_tls,
        view,
        settler,
        Registry::new(),
    )
    .await
    .unwrap();
    let addr = proxy.client_addr;

    // The attacker at 127.0.0.2: a fresh key per request, each naming a wallet whose escrow does
    // not hold it (a chain read each), until it is told to wait three times in a row.
    let nobody = gov.address().to_hex();
    let mut codes = Vec::new();
    let mut busy_in_a_row = 0;
    while busy_in_a_row < 3 && codes.len() < 40 {
        let fresh: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
        let code = request_from("127.0.0.2", addr, &fresh, &nobody).await;
        busy_in_a_row = if code == "chain_unavailable" {
            busy_in_a_row + 1
        } else {
            0
        };
        codes.push(code);
    }
    eprintln!("attacker's answers: {codes:?}");
    // Each lookup it got ends in a refusal (that wallet's escrow does not hold the key).
    let looked_up = codes.iter().filter(|c| *c == "client_key_mismatch").count();
    assert!(
        busy_in_a_row == 3,
        "the attacker was never limited: {codes:?}"
    );
    assert!(
        (4..=5).contains(&looked_up),
        "the attacker's share is 4 lookups (and one a second): {codes:?}"
    );

    // Another peer's new key, bound to its escrow on chain, is admitted at once (then finds no
    // worker for the model: admission passed).
    let code = request_from("127.0.0.1", addr, &honest, &user.address().to_hex()).await;
    assert_eq!(code, "model_not_found", "the honest peer was locked out");

    proxy.kill().await;
    devnet.stop().await.unwrap();
}
