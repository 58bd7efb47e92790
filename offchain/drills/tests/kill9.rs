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
//! Beside the gateway's load, rogue clients (`cocoon_testkit::rogue_client`, their own client key) speak
//! HTTP/2 to the proxy's client port directly: streams without `include_usage`, each reset or its
//! connection cut right after the first bytes. None of them is served free: every one the worker
//! signed a receipt for is charged (its receipt amount), except those whose proxy was killed between
//! the worker's receipt and the commit (bounded by kills × concurrency); none is charged twice.
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
use cocoon_testkit::rogue_client::{RogueConn, RogueLoad};
use cocoon_testkit::{FakeEngine, FakeEngineOptions, gateway_config, worker_config};

const PROXY_SEED: [u8; 32] = [0x44; 32];
const CONCURRENCY: usize = 6;
/// Rogue clients resetting and cutting their streams, beside the gateway's load.
const ROGUE_CONCURRENCY: usize = 2;
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

    // The rogue client's request: streamed, no `include_usage`, long enough to be cut mid-stream.
    let rogue_tls: Arc<dyn HopTls> = Arc::new(DevTls::generate(Role::Client).unwrap());
    let rogue_key = rogue_tls.identity().public_key;
    let words = vec!["w"; 120].join(" ");
    let rogue_body = serde_json::json!({"model": DRILL_MODEL, "stream": true, "max_tokens": 120,
        "messages": [{"role": "user", "content": words}]})
    .to_string();
    // What one of them costs: read honestly once (its charge is in the ledger like the others).
    let (_, trailers) = RogueConn::connect(&client_addr, &rogue_tls, None)
        .await
        .unwrap()
        .post("/v1/chat/completions", &rogue_body, 1000)
        .await
        .unwrap()
        .read_all()
        .await
        .unwrap();
    let rogue_amount: u128 = trailers
        .as_ref()
        .and_then(|t| t.get(cocoon_protocol::headers::CHARGED_NANO))
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("the honest rogue request is charged");

    let load = ChatLoad::start(&base, DRILL_MODEL, CONCURRENCY, Duration::from_millis(20));
    let rogue = RogueLoad::start(&client_addr, rogue_tls, rogue_body, 1000, ROGUE_CONCURRENCY);
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
    let rogue_tally = rogue.stop().await;
    // The rogue clients' last streams still run to their end at the proxy: let them.
    let quiet =
        cocoon_testkit::wait::poll_until(Duration::from_secs(10), || worker.state.in_flight() == 0)
            .await;
    assert!(quiet, "streams still running at the worker");
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.terminate();

    let storage_key =
        cocoon_proxy::store::storage_key(&ed25519_dalek::SigningKey::from_bytes(&PROXY_SEED));
    let ledger = cocoon_proxy::store::Store::open(&store, &storage_key).expect("store reopens");
    let client = ledger
        .client(&cocoon_proxy::chain::dev_escrow_id(&client_key))
        .unwrap();
    let rogue_account = ledger
        .client(&cocoon_proxy::chain::dev_escrow_id(&rogue_key))
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
    let receipts_signed = worker_metrics
        .counter("cocoon_worker_receipts_total", "Signed receipts.", &[])
        .get();
    let (resets, cuts) = (
        rogue_tally.reset.load(std::sync::atomic::Ordering::Relaxed),
        rogue_tally.cut.load(std::sync::atomic::Ordering::Relaxed),
    );
    eprintln!(
        "kill -9 drill, rogue clients: {resets} streams reset and {cuts} connections cut after \
         their first bytes; store: {} rogue charges ({} nanoTON, {rogue_amount} each); the worker \
         signed {receipts_signed} receipts, the store holds {} charges",
        rogue_account.seqno,
        rogue_account.charged,
        client.seqno + rogue_account.seqno
    );
    assert!(
        verified.iter().all(|r| r.receipt.cost_nano == amount),
        "identical requests, identical costs"
    );
    // Rogue streams: each charged its receipt's amount, none twice, none free but those a kill cut
    // between the worker's receipt and the commit.
    assert!(resets > 0 && cuts > 0, "the rogue clients never got going");
    assert_eq!(
        rogue_account.charged,
        rogue_amount * u128::from(rogue_account.seqno),
        "a rogue charge of another amount"
    );
    // At most one charge per rogue stream: those that got their first bytes (reset or cut), the
    // honest one, and those a kill caught after the commit but before any byte reached the client
    // (paid for and never received, as the charging rule says; at most the rogue streams in flight
    // at each kill).
    let rogue_bound = resets + cuts + 1 + (kills * ROGUE_CONCURRENCY) as u64;
    assert!(
        rogue_account.seqno <= rogue_bound,
        "{} rogue charges for at most {rogue_bound} rogue streams that could be charged",
        rogue_account.seqno,
    );
    let charges = client.seqno + rogue_account.seqno;
    assert!(
        charges <= receipts_signed,
        "{charges} charges for {receipts_signed} receipts"
    );
    let free = receipts_signed - charges;
    assert!(
        free <= (kills * (CONCURRENCY + ROGUE_CONCURRENCY)) as u64,
        "{free} receipted responses never charged after {kills} kills: served free"
    );
    assert!(
        rogue_account.seqno + (kills * ROGUE_CONCURRENCY) as u64 > resets + cuts,
        "{} rogue charges for {} rogue streams served after {kills} kills",
        rogue_account.seqno,
        resets + cuts
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
    assert_eq!(earned.seqno, client.seqno + rogue_account.seqno);
    assert!(earned.earned <= client.charged + rogue_account.charged);
    assert!(client.settled <= client.charged);
    assert!(earned.paid <= earned.earned);
    // Settlement and payouts ran across the kills (marks survive in the store).
    assert!(client.settled > 0, "no charge was ever settled");
    assert!(earned.paid > 0, "no payout was ever made");
    drop(worker);
    engine.shutdown().await;
}
