//! Engine health: after `health_failures` failed checks the worker announces zero capacity and
//! refuses new requests before the first byte; when the engine answers again it rejoins.

mod common;

use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::Role;
use cocoon_protocol::PriceParams;
use cocoon_testkit::FakeEngine;
use cocoon_worker::WorkerConfig;
use common::{FakeProxy, simulated_tls, within};

const MODEL: &str = "fake-model";

#[tokio::test]
async fn failing_engine_leaves_rotation_and_recovery_brings_it_back() {
    let engine = FakeEngine::start().await.expect("engine");
    let mut proxy = FakeProxy::start(simulated_tls(Role::Proxy)).await;
    let config = WorkerConfig {
        proxies: vec![proxy.addr.to_string()],
        engine_url: engine.url(),
        model: MODEL.into(),
        capacity: 7,
        reconnect_ms: 20,
        health_interval_ms: 10,
        health_timeout_ms: 5_000,
        health_failures: 3,
        ..Default::default()
    };
    let worker = cocoon_worker::start(
        config,
        simulated_tls(Role::Worker),
        PriceParams::default(),
        Registry::new(),
    )
    .expect("worker starts");
    let mut conn = proxy.next().await;
    let mut status = worker.state.subscribe();
    assert_eq!(conn.announce().await.capacity, 7);
    assert_eq!(conn.chat(MODEL).await.0, 200);

    // The engine fails its health checks: out of rotation after the third failure.
    engine.set_healthy(false);
    let s = within("leaving rotation", status.wait_for(|s| !s.engine_healthy))
        .await
        .expect("status")
        .clone();
    assert!(
        s.engine_failures >= 3,
        "left after {} failures",
        s.engine_failures
    );
    assert!(engine.health_checks() >= 3);
    assert_eq!(conn.announce().await.capacity, 0);
    let served = engine.requests();
    let (code, body) = conn.chat(MODEL).await;
    assert_eq!(code, 503);
    assert!(
        String::from_utf8_lossy(&body).contains("no_worker_available"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        engine.requests(),
        served,
        "refused before reaching the engine"
    );

    // Healthy again: back in rotation on the first good check.
    engine.set_healthy(true);
    let s = within("rejoining rotation", status.wait_for(|s| s.engine_healthy))
        .await
        .expect("status")
        .clone();
    assert_eq!(s.engine_failures, 0);
    assert_eq!(conn.announce().await.capacity, 7);
    assert_eq!(conn.chat(MODEL).await.0, 200);
    assert_eq!(engine.requests(), served + 1);
    worker.shutdown(std::time::Duration::from_secs(5)).await;
}
