//! Issue 16: attestation holds for the whole life of a connection. Every long-lived connection is
//! re-verified on each refresh against the current view (image allowlist, stake) and closed when
//! it no longer passes: the proxy drops a revoked or unstaked worker, the worker and the gateway
//! drop a revoked proxy.

mod common;

use std::time::{Duration, Instant};

use cocoon_attestation as att;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use common::*;

/// The refresh interval of every connection in these tests.
const REFRESH_MS: u64 = 200;

async fn simulated_net() -> (Net, std::sync::Arc<att::InMemoryAllowlist>) {
    let kit = TlsKit::simulated("live-proxy", "live-worker").unwrap();
    let allowlist = kit.allowlist.clone().unwrap();
    let net = Net::builder()
        .workers(&[1000])
        .credit(Some(CREDIT))
        .tls(kit)
        .proxy_config(|c| c.announce_poll_ms = REFRESH_MS)
        .worker_config(|c| {
            c.chain.check_interval_ms = REFRESH_MS;
            // Redial quickly: a worker refused again proves the refusal is not a one-off.
            c.reconnect_ms = 50;
        })
        .gateway_config(|c| c.chain.allowlist_refresh_ms = REFRESH_MS)
        .start()
        .await;
    (net, allowlist)
}

/// Waits up to `limit` for `f`; how long it took.
async fn within(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if f().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// One refresh, plus the time a request and a scheduler hiccup take on a loaded machine.
fn one_refresh() -> Duration {
    Duration::from_millis(REFRESH_MS * 2 + 300)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_image_is_revoked_is_dropped_within_one_refresh() {
    let (net, allowlist) = simulated_net().await;
    let r = net
        .post("/v1/chat/completions", &chat("before", false), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    allowlist.revoke(
        att::Role::Worker,
        SimulatedProvider::new("live-worker").image_hash(),
        1,
    );
    let took = within(one_refresh(), async || {
        net.proxy().proxy.workers.all().is_empty()
    })
    .await
    .expect("the revoked worker is dropped within one refresh");
    eprintln!("revoked worker dropped after {took:?}");
    let dropped = net.proxy().proxy.metrics.counter(
        "cocoon_proxy_workers_dropped_total",
        "",
        &[("reason", "attestation")],
    );
    assert_eq!(dropped.get(), 1);
    // It stays out: every redial is refused at the handshake.
    tokio::time::sleep(Duration::from_millis(REFRESH_MS * 2)).await;
    assert!(net.proxy().proxy.workers.all().is_empty());
    let r = net
        .post("/v1/chat/completions", &chat("after", false), &[])
        .await;
    assert_ne!(r.status, 200, "nobody serves: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_stake_is_gone_is_dropped_within_one_refresh() {
    let (net, _allowlist) = simulated_net().await;
    // The chain view no longer counts this worker's stake.
    net.chain.allow_only_workers(Vec::new());
    let took = within(one_refresh(), async || {
        net.proxy().proxy.workers.all().is_empty()
    })
    .await
    .expect("the unstaked worker is dropped within one refresh");
    eprintln!("unstaked worker dropped after {took:?}");
    let dropped = net.proxy().proxy.metrics.counter(
        "cocoon_proxy_workers_dropped_total",
        "",
        &[("reason", "chain")],
    );
    assert_eq!(dropped.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_proxy_is_dropped_by_the_worker_and_the_gateway() {
    let (net, allowlist) = simulated_net().await;
    let r = net
        .post("/v1/chat/completions", &chat("before", false), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(net.gateway.gateway.proxy_connected().await);
    allowlist.revoke(
        att::Role::Proxy,
        SimulatedProvider::new("live-proxy").image_hash(),
        1,
    );
    // The proxy still accepts the worker (its image is fine): only the worker can end this.
    let took = within(one_refresh(), async || {
        net.proxy().proxy.workers.all().is_empty()
    })
    .await
    .expect("the worker drops the revoked proxy within one refresh");
    eprintln!("worker left the revoked proxy after {took:?}");
    let took = within(one_refresh(), async || {
        !net.gateway.gateway.proxy_connected().await
    })
    .await
    .expect("the gateway drops the revoked proxy within one refresh");
    eprintln!("gateway left the revoked proxy after {took:?}");
    // And it does not come back: a new handshake refuses the proxy.
    let r = net
        .post("/v1/chat/completions", &chat("after", false), &[])
        .await;
    assert_ne!(r.status, 200, "{}", r.text());
    assert!(!net.gateway.gateway.proxy_connected().await);
}
