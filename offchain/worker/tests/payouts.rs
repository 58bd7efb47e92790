//! Payout vouchers and automatic claims against the in-memory chain (the contract's rules: vault key,
//! strictly increasing seqno and amount): bad vouchers refused over the proxy connection, nothing
//! claimed below the threshold, an automatic claim above it, replays and proxy-pushed payouts not
//! claimed twice, held vouchers surviving a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cocoon_contracts::CellCodec;
use cocoon_contracts::statements::{PayoutVoucher, SignedPayout};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::Role;
use cocoon_protocol::PriceParams;
use cocoon_protocol::wire::PAYOUT_PATH;
use cocoon_testkit::FakeEngine;
use cocoon_testkit::WorkerMemoryChain as MemoryChain;
use cocoon_testkit::{FAKE_MODEL, chain_worker_config, start_chain_worker};
use cocoon_ton::{TonAddress, TonHash};
use cocoon_worker::WorkerHandle;
use cocoon_worker::chain::{StakeView, WorkerChain};
use cocoon_worker::payouts::ClaimEvent;
use common::{FakeProxy, simulated_image, simulated_tls, within};
use ed25519_dalek::SigningKey;

const MODEL_HASH: [u8; 32] = [0x2b; 32];

fn addr(byte: u8) -> TonAddress {
    TonAddress::new(0, TonHash::from([byte; 32]))
}

fn voucher(
    vault: &TonAddress,
    worker: &TonAddress,
    seqno: u32,
    paid: u128,
    key: &SigningKey,
) -> SignedPayout {
    PayoutVoucher {
        vault: vault.clone(),
        worker: worker.clone(),
        seqno,
        paid,
    }
    .sign(key)
    .expect("sign")
}

fn start(
    proxy: &FakeProxy,
    engine: &FakeEngine,
    chain: &MemoryChain,
    threshold: u64,
    file: &str,
) -> WorkerHandle {
    let mut config = chain_worker_config(
        &proxy.addr.to_string(),
        &engine.url(),
        FAKE_MODEL,
        &MODEL_HASH,
    );
    config.chain.claim_threshold_nano = threshold;
    config.chain.voucher_file = file.into();
    start_chain_worker(
        config,
        simulated_tls(Role::Worker),
        PriceParams::default(),
        Registry::new(),
        Arc::new(chain.clone()),
    )
    .expect("worker starts")
}

async fn until(what: &str, f: impl Fn() -> bool) {
    cocoon_testkit::wait::until(what, f).await;
}

#[tokio::test]
async fn vouchers_are_checked_and_claimed_automatically_past_the_threshold_exactly_once() {
    let engine = FakeEngine::start().await.expect("engine");
    let mut proxy = FakeProxy::start(simulated_tls(Role::Proxy)).await;
    let owner = addr(0x77);
    let chain = MemoryChain::new(owner.clone());
    chain.set_worker_image(simulated_image(), 0);
    chain.set_model(MODEL_HASH, Some(FAKE_MODEL));
    let proxy_key = SigningKey::from_bytes(&[0x62; 32]);
    let vault = addr(0xa1);
    chain.add_vault(&vault, proxy_key.verifying_key().to_bytes());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vouchers.json");
    let file = file.to_str().expect("utf-8 path");

    let worker = start(&proxy, &engine, &chain, 1_000, file);
    chain.set_stake(Some(StakeView {
        can_serve: true,
        key: worker.state_key(),
        staked: 2_000_000_000,
        min_stake: 1_000_000_000,
    }));
    within("a chain check", worker.check_chain()).await;
    let mut conn = proxy.next().await;
    let post = |v: &SignedPayout| v.to_boc().expect("boc");

    // Bad vouchers are refused with a reason, and nothing is kept.
    let (code, body) = conn.post(PAYOUT_PATH, "not a boc").await;
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    let cases = [
        (
            voucher(&vault, &addr(0x78), 1, 5_000, &proxy_key),
            "owner wallet",
        ),
        (
            voucher(&addr(0xb2), &owner, 1, 5_000, &proxy_key),
            "not an active proxy vault",
        ),
        (
            voucher(
                &vault,
                &owner,
                1,
                5_000,
                &SigningKey::from_bytes(&[0x99; 32]),
            ),
            "signature",
        ),
    ];
    for (v, reason) in cases {
        let (code, body) = conn.post(PAYOUT_PATH, post(&v)).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(code, 400, "{text}");
        assert!(text.contains(reason), "{text}");
    }
    assert!(worker.claim_now().await.is_empty(), "nothing held");

    // Below the threshold: kept, not claimed (and the answer says so: the proxy pays it).
    let (code, body) = conn
        .post(
            PAYOUT_PATH,
            post(&voucher(&vault, &owner, 1, 500, &proxy_key)),
        )
        .await;
    assert_eq!(
        (code, &body[..]),
        (200, &br#"{"kept":true,"claims":false}"#[..])
    );
    assert_eq!(
        worker.claim_now().await,
        vec![ClaimEvent::BelowThreshold {
            vault: vault.to_hex(),
            unclaimed: 500
        }]
    );
    assert!(chain.claims().is_empty());

    // Past the threshold: claimed without being asked, for the whole cumulative amount.
    let v2 = voucher(&vault, &owner, 2, 1_500, &proxy_key);
    let (code, body) = conn.post(PAYOUT_PATH, post(&v2)).await;
    assert_eq!(
        (code, &body[..]),
        (200, &br#"{"kept":true,"claims":true}"#[..])
    );
    until("the automatic claim", || chain.claims().len() == 1).await;
    assert_eq!(chain.claims()[0], v2);
    assert_eq!(chain.owner_received(), 1_500);

    // An older voucher does not displace anything; a replay of a claimed one is dropped unclaimed.
    for v in [voucher(&vault, &owner, 1, 500, &proxy_key), v2.clone()] {
        worker.offer_payout(v).await.expect("valid voucher");
        worker.claim_now().await;
    }
    assert_eq!(chain.claims().len(), 1, "never claimed twice");
    assert_eq!(chain.owner_received(), 1_500);

    // The next cumulative voucher pays only the difference.
    let (code, _) = conn
        .post(
            PAYOUT_PATH,
            post(&voucher(&vault, &owner, 3, 2_600, &proxy_key)),
        )
        .await;
    assert_eq!(code, 200);
    until("the second claim", || chain.claims().len() == 2).await;
    assert_eq!(chain.owner_received(), 2_600);

    // The proxy pushed a payout itself: the worker finds it paid and claims nothing.
    let pushed = voucher(&vault, &owner, 4, 3_000, &proxy_key);
    chain.claim(&pushed).await.expect("proxy push");
    worker.offer_payout(pushed).await.expect("valid voucher");
    let events = worker.claim_now().await;
    assert!(
        events.is_empty()
            || events
                == vec![ClaimEvent::AlreadyClaimed {
                    vault: vault.to_hex(),
                    seqno: 4
                }],
        "{events:?}"
    );
    assert_eq!(chain.claims().len(), 3);
    assert_eq!(chain.owner_received(), 3_000);
    worker.shutdown(Duration::from_secs(5)).await;

    // A voucher held below a high threshold survives a restart and is claimed by the next run.
    let worker = start(&proxy, &engine, &chain, 1_000_000, file);
    let v5 = voucher(&vault, &owner, 5, 3_400, &proxy_key);
    assert!(
        worker
            .offer_payout(v5.clone())
            .await
            .expect("valid voucher")
    );
    assert!(matches!(
        worker.claim_now().await.as_slice(),
        [ClaimEvent::BelowThreshold { unclaimed: 400, .. }]
    ));
    worker.shutdown(Duration::from_secs(5)).await;
    let worker = start(&proxy, &engine, &chain, 0, file);
    let events = worker.claim_now().await;
    let claimed = chain.claims().len() == 4 && chain.claims()[3] == v5;
    assert!(claimed, "{events:?}");
    assert_eq!(chain.owner_received(), 3_400);
    worker.shutdown(Duration::from_secs(5)).await;
}
