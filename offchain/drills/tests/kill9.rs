//! The kill -9 proxy drill (`make drills`; ignored by `cargo test` because it needs the
//! `cocoon-proxy` binary built first and takes tens of seconds).
//!
//! The proxy runs as its own OS process (`cocoon-proxy --insecure-dev-tls --dev-client-credit`: the
//! development mode, since the binary has no chain backend yet) on a redb store in a temporary
//! directory. A worker over the built-in engine and a gateway run in this process; load tasks send
//! chat completions (streamed and not) through the gateway while the proxy is SIGKILLed and
//! restarted on the same store and ports, several times. Then the proxy is stopped and its store is
//! checked against what the client and the worker saw:
//!
//! - no charge lost: the store holds at least every charge whose receipt the gateway verified;
//! - none counted twice: the store never records more charges than the worker served responses,
//!   every charge has the same amount (identical requests), so `charged = count × amount` exactly;
//! - the only charges without a receipt at the client are responses cut by a kill (bounded by
//!   kills × concurrency);
//! - worker earnings follow the same count; nothing settled or paid beyond what was recorded.
//!
//! In development mode the "chain" is in the proxy's memory and dies with it, so the drill compares
//! receipts with the store, not with on-chain escrow and payout state; thresholds are set so that
//! charges settle and the worker is paid all along, and the settled and paid marks the store keeps
//! must never exceed what it recorded.
//!
//! Environment: `COCOON_PROXY_BIN` (default: `cocoon-proxy` next to this test's `deps/` directory),
//! `COCOON_KILLS` (default 5).

#![allow(clippy::unwrap_used, clippy::expect_used)] // drill harness: a failed step should panic

mod proxy_process;

use std::path::Path;

use proxy_process::spawn_proxy;
use std::sync::Arc;
use std::time::Duration;

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_drills::binding::DRILL_MODEL;
use cocoon_gateway::GatewayConfig;
use cocoon_protocol::PriceParams;
use cocoon_testkit::load::ChatLoad;
use cocoon_testkit::{FakeEngine, FakeEngineOptions, gateway_config, worker_config};

const PROXY_SEED: [u8; 32] = [0x44; 32];
const CONCURRENCY: usize = 6;
/// Development credit per client: small enough that a charge threshold of 1 bp (30,000 nanoTON)
/// settles after nearly every request, so settlement runs across the kills too.
const DEV_CREDIT: &str = "300000000";
/// Pay the worker once it is owed this much.
const PAYOUT_THRESHOLD: u64 = 10_000;

fn write_config(path: &Path, store: &Path, client: &str, worker: &str, admin: &str) {
    let text = format!(
        "client_listen = \"{client}\"\nworker_listen = \"{worker}\"\nadmin_listen = \"{admin}\"\n\
         store_path = \"{}\"\nannounce_poll_ms = 50\ndev_key = \"{}\"\n\
         charge_threshold_bps = 1\npayout_threshold_nano = {PAYOUT_THRESHOLD}\n",
        store.display(),
        hex::encode(PROXY_SEED)
    );
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the cocoon-proxy binary; run with `make drills`"]
async fn kill9_the_proxy_under_load_loses_and_doubles_nothing() {
    let kills: usize = std::env::var("COCOON_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("proxy.redb");
    let config = dir.path().join("proxy.toml");
    write_config(&config, &store, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0");
    let (mut proxy, addrs) = spawn_proxy(
        &config,
        &["--insecure-dev-tls", "--dev-client-credit", DEV_CREDIT],
        true,
    );
    let client_addr = addrs["client_addr"].as_str().unwrap().to_owned();
    let worker_addr = addrs["worker_addr"].as_str().unwrap().to_owned();
    // Restarts take the same ports, so the worker and the gateway find the proxy again.
    write_config(&config, &store, &client_addr, &worker_addr, "127.0.0.1:0");

    let engine = FakeEngine::start_with(FakeEngineOptions {
        model: DRILL_MODEL.into(),
        holds: false,
    })
    .await
    .unwrap();
    let worker_metrics = Registry::new();
    let worker = cocoon_worker::start(
        worker_config(&worker_addr, &engine.url(), DRILL_MODEL, 1000),
        Arc::new(DevTls::generate(Role::Worker).unwrap()),
        PriceParams::default(),
        worker_metrics.clone(),
    )
    .unwrap();
    let worker_key = worker.state_key();
    let gateway_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
    let client_key = gateway_tls.identity().public_key;
    let proxy_key = ed25519_dalek::SigningKey::from_bytes(&PROXY_SEED)
        .verifying_key()
        .to_bytes();
    let gateway = cocoon_gateway::start(
        GatewayConfig {
            receipts_kept: 1_000_000,
            ..gateway_config(&client_addr, Some(&proxy_key))
        },
        gateway_tls,
        Registry::new(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", gateway.addr);

    let load = ChatLoad::start(&base, DRILL_MODEL, CONCURRENCY, Duration::from_millis(20));
    for round in 0..kills {
        // Let load run until some requests have completed since the last restart.
        let before = load.tally().ok();
        load.tally()
            .reach(before + 20 + 7 * round as u64, Duration::from_secs(10))
            .await;
        assert!(
            load.tally().ok() > before,
            "no progress before kill {round}"
        );
        proxy.kill9();
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy = spawn_proxy(
            &config,
            &["--insecure-dev-tls", "--dev-client-credit", DEV_CREDIT],
            true,
        )
        .0;
    }
    // Recovery: requests succeed again after the last restart.
    let after_last = load.tally().ok();
    load.tally()
        .reach(after_last + 20, Duration::from_secs(10))
        .await;
    let tally = load.stop().await;
    assert!(
        tally.ok() >= after_last + 20,
        "no recovery after the last restart"
    );
    proxy.terminate();

    let storage_key =
        cocoon_proxy::store::storage_key(&ed25519_dalek::SigningKey::from_bytes(&PROXY_SEED));
    let ledger = cocoon_proxy::store::Store::open(&store, &storage_key).expect("store reopens");
    let client = ledger
        .client(&cocoon_proxy::chain::dev_escrow_id(&client_key))
        .unwrap();
    let earned = ledger.worker(&worker_key).unwrap();
    ledger.close().await;

    let receipts = gateway.gateway.receipts();
    let verified: Vec<_> = receipts
        .iter()
        .filter(|r| r.status == "verified")
        .filter_map(|r| r.receipt.as_ref())
        .collect();
    let held = verified.len() as u64;
    let held_sum: u128 = verified.iter().map(|r| r.receipt.cost_nano).sum();
    let served = worker_metrics
        .counter(
            "cocoon_worker_responses_total",
            "Responses by status.",
            &[("status", "200")],
        )
        .get();
    let amount = verified
        .first()
        .map(|r| r.receipt.cost_nano)
        .expect("some receipts");
    eprintln!(
        "kill -9 drill: {kills} kills, {} ok / {} failed requests, {held} verified receipts \
         ({held_sum} nanoTON), store: {} charges ({} nanoTON, settled {}), worker served {served}, \
         earned {} (paid {})",
        tally.ok(),
        tally.failed(),
        client.seqno,
        client.charged,
        client.settled,
        earned.earned,
        earned.paid
    );
    assert!(
        verified.iter().all(|r| r.receipt.cost_nano == amount),
        "identical requests, identical costs"
    );
    // No charge lost: every receipt the client holds is in the store.
    assert!(
        client.seqno >= held,
        "store has {} charges, the client holds {held} receipts",
        client.seqno
    );
    assert!(client.charged >= held_sum);
    // None counted twice: at most one charge per served response, each of the same amount.
    assert!(
        client.seqno <= served,
        "{} charges for {served} responses",
        client.seqno
    );
    assert_eq!(
        client.charged,
        amount * u128::from(client.seqno),
        "a charge of another amount"
    );
    // Charges without a receipt at the client: responses cut by a kill.
    let unreceipted = client.seqno - held;
    assert!(
        unreceipted <= (kills * CONCURRENCY) as u64,
        "{unreceipted} charges without receipts after {kills} kills"
    );
    // The worker earned per recorded charge, and nothing was settled or paid beyond the records.
    assert_eq!(earned.seqno, client.seqno);
    assert!(earned.earned <= client.charged);
    assert_eq!(earned.earned % u128::from(earned.seqno.max(1)), 0);
    assert!(client.settled <= client.charged);
    assert!(earned.paid <= earned.earned);
    // Settlement and payouts ran across the kills (marks survive in the store).
    assert!(client.settled > 0, "no charge was ever settled");
    assert!(earned.paid > 0, "no payout was ever made");
    drop(worker);
    engine.shutdown().await;
}
