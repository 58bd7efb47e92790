//! The worker serves only while the chain allows it: no stake, an inactive stake, a stake bound to
//! another key, an image or a model not allowed each keep it from dialing proxies; once everything is
//! allowed it connects and serves; a revocation disconnects it. Simulated RA-TLS on both sides, an
//! in-memory chain.

mod common;

use cocoon_daemon::tls::Role;
use cocoon_protocol::PriceParams;
use cocoon_testkit::FakeEngine;
use cocoon_testkit::WorkerMemoryChain as MemoryChain;
use cocoon_testkit::chain_worker_config;
use cocoon_ton::{TonAddress, TonHash};
use cocoon_worker::chain::StakeView;
use cocoon_worker::status::{Eligibility, Refusal};
use cocoon_worker::{WorkerConfig, WorkerHandle};
use common::{FakeProxy, simulated_image, simulated_tls, within};

const MODEL: &str = "fake-model";
const MODEL_HASH: [u8; 32] = [0x2b; 32];

fn owner() -> TonAddress {
    TonAddress::new(0, TonHash::from([0x77; 32]))
}

fn config(proxy: &FakeProxy, engine: &FakeEngine, max_stale_ms: u64) -> WorkerConfig {
    // Checks run at start and when the test asks (recheck_chain), never on a timer here.
    let mut c = chain_worker_config(&proxy.addr.to_string(), &engine.url(), MODEL, &MODEL_HASH);
    c.chain.max_stale_ms = max_stale_ms;
    c
}

fn start(config: WorkerConfig, chain: &MemoryChain) -> WorkerHandle {
    common::start_on_chain(config, chain)
}

/// A fresh chain check's verdict.
async fn verdict(worker: &WorkerHandle) -> Eligibility {
    within("a chain check", worker.check_chain())
        .await
        .expect("the worker has a chain")
}

fn active_stake(key: [u8; 32]) -> Option<StakeView> {
    Some(StakeView {
        can_serve: true,
        key,
        staked: 5_000_000_000,
        min_stake: 1_000_000_000,
    })
}

#[tokio::test]
async fn refuses_until_stake_image_and_model_are_allowed_then_serves_and_leaves_on_revocation() {
    let engine = FakeEngine::start().await.expect("engine");
    let mut proxy = FakeProxy::start(simulated_tls(Role::Proxy)).await;
    let chain = MemoryChain::new(owner());
    let worker = start(config(&proxy, &engine, 3_600_000), &chain);
    let key = worker.state_key();

    // No stake at all.
    let v = verdict(&worker).await;
    assert_eq!(v, Eligibility::Refused(Refusal::NoStake));

    // A stake that cannot serve (below the minimum).
    chain.set_stake(Some(StakeView {
        can_serve: false,
        key,
        staked: 10,
        min_stake: 1_000_000_000,
    }));
    let v = verdict(&worker).await;
    assert_eq!(
        v,
        Eligibility::Refused(Refusal::StakeInactive {
            staked: 10,
            min_stake: 1_000_000_000
        })
    );

    // An active stake bound to another key.
    chain.set_stake(active_stake([9; 32]));
    let v = verdict(&worker).await;
    assert!(
        matches!(&v, Eligibility::Refused(Refusal::KeyMismatch { worker_key, stake_key })
            if *worker_key == hex::encode(key) && *stake_key == hex::encode([9u8; 32])),
        "{v:?}"
    );

    // Our stake, but the image is not on the allowlist.
    chain.set_stake(active_stake(key));
    let v = verdict(&worker).await;
    assert_eq!(
        v,
        Eligibility::Refused(Refusal::ImageNotAllowed {
            image: hex::encode(simulated_image())
        })
    );

    // Image allowed, model not.
    chain.set_worker_image(simulated_image(), 0);
    chain.set_model([0x2c; 32], Some("another model"));
    let v = verdict(&worker).await;
    assert_eq!(
        v,
        Eligibility::Refused(Refusal::ModelNotAllowed {
            model_hash: hex::encode(MODEL_HASH)
        })
    );
    // The root registers the model's hash under another name than the one served: refused.
    chain.set_model(MODEL_HASH, Some("renamed-by-the-operator"));
    let v = verdict(&worker).await;
    assert_eq!(
        v,
        Eligibility::Refused(Refusal::ModelNameMismatch {
            model_hash: hex::encode(MODEL_HASH),
            registered: "renamed-by-the-operator".into(),
            configured: MODEL.into(),
        })
    );
    // Never allowed so far: the worker never dialed.
    assert_eq!(proxy.accepted(), 0);
    assert!(!worker.state.status().may_connect());

    // Everything allowed: it connects and serves.
    chain.set_model(MODEL_HASH, Some(MODEL));
    assert_eq!(verdict(&worker).await, Eligibility::Eligible);
    let mut conn = proxy.next().await;
    assert_eq!(conn.worker_key, key);
    let a = conn.announce().await;
    assert_eq!((a.model.as_str(), a.capacity), (MODEL, 16));
    let (status, body) = conn.chat(MODEL).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(engine.requests(), 1);

    // Governance changes prices: the next check picks them up for new responses.
    let raised = PriceParams {
        version: 2,
        price_per_token: PriceParams::default().price_per_token * 3,
        ..PriceParams::default()
    };
    chain.set_params(raised);
    assert_eq!(verdict(&worker).await, Eligibility::Eligible);
    assert_eq!(worker.state.params(), raised);

    // Governance revokes the image: the worker disconnects and does not come back.
    chain.set_worker_image(simulated_image(), 1_700_000_000);
    let v = verdict(&worker).await;
    assert_eq!(
        v,
        Eligibility::Refused(Refusal::ImageRevoked {
            image: hex::encode(simulated_image()),
            at: 1_700_000_000
        })
    );
    within("the worker to disconnect", conn.closed()).await;
    let accepted = proxy.accepted();
    // A check later it still stays away.
    verdict(&worker).await;
    assert_eq!(proxy.accepted(), accepted);
    worker.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn chain_outage_keeps_a_fresh_verdict_and_refuses_a_stale_one() {
    let engine = FakeEngine::start().await.expect("engine");
    let mut proxy = FakeProxy::start(simulated_tls(Role::Proxy)).await;
    let chain = MemoryChain::new(owner());
    chain.set_worker_image(simulated_image(), 0);
    chain.set_model(MODEL_HASH, Some(MODEL));

    // max_stale = 1 h: an outage right after a good check keeps the worker serving.
    let worker = start(config(&proxy, &engine, 3_600_000), &chain);
    chain.set_stake(active_stake(worker.state_key()));
    verdict(&worker).await;
    let _conn = proxy.next().await;
    chain.set_unavailable(true);
    assert_eq!(
        verdict(&worker).await,
        Eligibility::Eligible,
        "a fresh verdict survives an outage"
    );
    worker.shutdown(std::time::Duration::from_secs(5)).await;

    // max_stale = 0: the first failed read refuses.
    chain.set_unavailable(false);
    let worker = start(config(&proxy, &engine, 0), &chain);
    chain.set_stake(active_stake(worker.state_key()));
    verdict(&worker).await;
    let mut conn = proxy.next().await;
    chain.set_unavailable(true);
    let v = verdict(&worker).await;
    assert!(
        matches!(v, Eligibility::Refused(Refusal::ChainUnavailable { .. })),
        "{v:?}"
    );
    within("the worker to disconnect", conn.closed()).await;
    worker.shutdown(std::time::Duration::from_secs(5)).await;
}
