//! Settlement without a new charge to trigger it (issue 14 finding 4): an escrow seen closing is
//! settled before its close delay ends, an escrow whose client key rotated is settled at once and
//! the new key continues its one cumulative series, and charges left idle past a bound are settled. Requests go through the gateway and the
//! proxy's client port (in process, over the in-memory chain).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_testkit::{MemoryNetwork, gateway_config};

const CREDIT: u128 = 1_000_000_000_000;

async fn serve(net: &MemoryNetwork, n: usize) {
    for i in 0..n {
        let r = net
            .post(
                "/v1/chat/completions",
                &net.chat(&format!("request {i}"), i % 2 == 0),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

fn escrow_settled(net: &MemoryNetwork, key: &[u8; 32]) -> u128 {
    net.chain
        .snapshot()
        .escrows
        .get(key)
        .map_or(0, |e| e.settled)
}

async fn until(what: &str, f: impl Fn() -> bool) {
    cocoon_testkit::wait::until(what, f).await;
}

/// The attack: run up charges just under the settle threshold, request the close and wait the close
/// delay: before, nothing followed an escrow that left OPEN, and the client was refunded everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escrow_seen_closing_is_settled_before_its_close_delay_ends() {
    let net = MemoryNetwork::builder()
        .credit(Some(CREDIT))
        .proxy_config(|c| {
            c.charge_threshold_bps = 10_000;
            c.settle_interval_ms = 50;
            c.settle_idle_ms = 3_600_000;
        })
        .start()
        .await;
    serve(&net, 3).await;
    let charged = net.charged();
    assert!(charged > 0);
    // Under the threshold and not idle: nothing goes on chain yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(net.chain.snapshot().charges.is_empty());
    net.chain.begin_close(net.client_key, u64::MAX);
    until("the closing escrow to be settled", || {
        escrow_settled(&net, &net.client_key) == charged
    })
    .await;
    let charges = net.chain.snapshot().charges;
    assert_eq!(charges.len(), 1, "one voucher for everything: {charges:?}");
    assert_eq!((charges[0].seqno, charges[0].cumulative_nano), (3, charged));
    until("the ledger to record it", || {
        net.proxy()
            .proxy
            .client_ledger(&net.client_key)
            .unwrap()
            .settled
            == charged
    })
    .await;
    // A closing escrow admits no new request.
    let r = net
        .post("/v1/chat/completions", &net.chat("after close", false), &[])
        .await;
    assert_ne!(r.status, 200, "{}", r.text());
}

/// The attack: rotate the escrow's client key. Before, the old key's account kept its unsettled
/// charges and the new key started a second cumulative series from zero that the escrow refuses
/// (the cumulative goes down), so nothing more was ever settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_client_key_continues_its_escrows_one_series() {
    let mut net = MemoryNetwork::builder()
        .credit(Some(100_000_000))
        .proxy_config(|c| {
            // Never by threshold or idleness here: only the rotation settles the old key's part.
            c.charge_threshold_bps = 10_000;
            c.settle_interval_ms = 50;
            c.settle_idle_ms = 3_600_000;
        })
        .start()
        .await;
    let old_key = net.client_key;
    serve(&net, 2).await;
    let first = net.charged();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(net.chain.snapshot().charges.is_empty());

    // The client names a new key on its escrow: what the old key spent is settled at once.
    let tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
    let new_key = tls.identity().public_key;
    net.chain.rotate_client_key(old_key, new_key);
    until("the old key's charges to settle at the rotation", || {
        escrow_settled(&net, &new_key) == first
    })
    .await;
    // And it comes back with the new key.
    let proxy_key = net.proxy_tls.identity().public_key;
    let gconf = gateway_config(&net.proxy().client_addr.to_string(), Some(&proxy_key));
    net.gateway = cocoon_testkit::roles::gateway::start(gconf, tls, Registry::new())
        .await
        .unwrap();
    net.client_key = new_key;
    serve(&net, 2).await;
    let ledger = net.proxy().proxy.client_ledger(&new_key).unwrap();
    assert_eq!(ledger.seqno, 4, "one series across both keys");
    assert!(ledger.charged > first);
    // The escrow closes: the new key's part is settled on the same escrow, continuing the series.
    net.chain.begin_close(new_key, u64::MAX);
    until("the new key's charges to settle on the same escrow", || {
        escrow_settled(&net, &new_key) == ledger.charged
    })
    .await;
    let charges = net.chain.snapshot().charges;
    let last = charges.last().unwrap();
    assert_eq!((last.seqno, last.cumulative_nano), (4, ledger.charged));
    assert!(
        charges
            .windows(2)
            .all(|w| w[0].seqno < w[1].seqno && w[0].cumulative_nano < w[1].cumulative_nano),
        "{charges:?}"
    );
}

/// Charges under the threshold that nobody adds to are settled once idle past `settle_idle_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_idle_past_the_bound_are_settled() {
    let net = MemoryNetwork::builder()
        .credit(Some(CREDIT))
        .proxy_config(|c| {
            c.charge_threshold_bps = 10_000;
            c.settle_interval_ms = 50;
            c.settle_idle_ms = 400;
        })
        .start()
        .await;
    serve(&net, 2).await;
    let charged = net.charged();
    assert!(net.chain.snapshot().charges.is_empty());
    until("the idle charges to settle", || {
        escrow_settled(&net, &net.client_key) == charged
    })
    .await;
    assert_eq!(net.chain.snapshot().charges.len(), 1);
}
