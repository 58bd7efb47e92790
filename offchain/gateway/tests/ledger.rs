//! The proxy's ledger across crashes and restarts, rollback detection, and lazy settlement.

mod common;

use std::time::Duration;

use cocoon_daemon::metrics::Registry;
use cocoon_testkit::roles::proxy::store::StoreError;
use cocoon_testkit::roles::proxy::{ProxyError, ProxyHandle};
use common::*;

async fn restart(net: &Net) -> Result<ProxyHandle, ProxyError> {
    cocoon_testkit::roles::proxy::start(
        net.proxy_config.clone(),
        net.proxy_tls.clone(),
        net.chain.clone(),
        net.chain.clone(),
        Registry::new(),
    )
    .await
}

fn receipt_total(net: &Net) -> u128 {
    net.gateway
        .gateway
        .receipts()
        .iter()
        .map(|r| {
            r.receipt
                .as_ref()
                .expect("every response here is receipted")
                .receipt
                .cost_nano
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_proxy_restarts_with_every_charge_exactly_once() {
    let mut net = Net::start(&[1000], Some(CREDIT)).await;
    let mut served = 0u64;
    for round in 0..3 {
        for i in 0..4 {
            let r = net
                .post(
                    "/v1/chat/completions",
                    &chat(&format!("round {round} request {i}"), i % 2 == 0),
                    &[],
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            served += 1;
        }
        assert!(
            net.gateway
                .gateway
                .receipts()
                .iter()
                .all(|r| r.status == "verified")
        );
        assert_eq!(net.charged(), receipt_total(&net));
        let account = net.proxy().proxy.client_ledger(&net.client_key).unwrap();
        assert_eq!(account.seqno, served);
        assert_eq!(net.proxy().proxy.store.marker().unwrap(), served);
        net.proxy.take().unwrap().kill().await;
        net.proxy = Some(restart(&net).await.unwrap());
        net.wait_for_workers(1).await;
    }
    assert_eq!(net.charged(), receipt_total(&net));
    let worker = net
        .proxy()
        .proxy
        .store
        .worker(&net.workers[0].state_key())
        .unwrap();
    assert_eq!(worker.seqno, served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_behind_the_chain_marker_refuses_to_start() {
    let mut net = Net::start(&[1000], Some(CREDIT)).await;
    let r = net
        .post("/v1/chat/completions", &chat("x", false), &[])
        .await;
    assert_eq!(r.status, 200);
    net.proxy.take().unwrap().kill().await;
    // The chain saw marker 2 committed, the store only knows 1: it was restored from an old copy.
    net.chain.set_marker(2);
    match restart(&net).await {
        Err(ProxyError::Store(StoreError::RolledBack { store: 1, chain: 2 })) => {}
        other => panic!("expected a rollback refusal, got {other:?}"),
    }
    net.chain.set_marker(1);
    let again = restart(&net).await.unwrap();
    again.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_and_payouts_settle_at_their_thresholds_with_signed_cumulative_vouchers() {
    let credit = 100_000_000;
    let net = start_with(
        &[1000],
        Some(credit),
        |p| {
            // Settle a client when its unsettled charges reach 0.01 % of its credit (less than one
            // request costs),
            // a worker when it earned 1 nanoTON; commit the marker often.
            p.charge_threshold_bps = 1;
            p.payout_threshold_nano = 1;
            p.marker_interval_ms = 20;
        },
        |_| {},
    )
    .await;
    let worker_key = net.workers[0].state_key();
    for i in 0..3 {
        let r = net
            .post(
                "/v1/chat/completions",
                &chat(&format!("settle {i} now please"), false),
                &[],
            )
            .await;
        assert_eq!(r.status, 200);
        let charged = net.charged();
        let earned = net.proxy().proxy.store.worker(&worker_key).unwrap().earned;
        wait_until(|| {
            let s = net.chain.snapshot();
            s.charges.last().map(|c| c.cumulative_nano) == Some(charged)
                && s.paid.get(&worker_key).copied() == Some(earned)
                && s.marker == (i + 1) as u64
        })
        .await;
        let account = net.proxy().proxy.client_ledger(&net.client_key).unwrap();
        wait_until(|| {
            net.proxy()
                .proxy
                .client_ledger(&net.client_key)
                .unwrap()
                .settled
                == account.charged
        })
        .await;
    }
    let s = net.chain.snapshot();
    // Vouchers are cumulative and strictly increasing; the escrow's credit went down by what settled.
    assert!(
        s.charges
            .windows(2)
            .all(|w| w[0].seqno < w[1].seqno && w[0].cumulative_nano < w[1].cumulative_nano)
    );
    let escrow = s.escrows[&net.client_key];
    assert_eq!(escrow.settled, net.charged());
    assert_eq!(escrow.credit, credit - net.charged());
    let store = &net.proxy().proxy.store;
    wait_until(|| {
        let w = store.worker(&worker_key).unwrap();
        w.paid == w.earned
    })
    .await;
    let status = net.proxy().status();
    assert_eq!(
        status["workers"][0]["paid_nano"],
        status["workers"][0]["earned_nano"]
    );
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached");
}
