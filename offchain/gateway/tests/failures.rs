//! Retries, refusals and failures on the request path; nothing here may charge a client for nothing.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use cocoon_daemon::http::full;
use cocoon_protocol::Coefficient;
use common::*;
use http_body_util::BodyExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_failing_before_the_first_byte_is_retried_elsewhere() {
    let mut net = Net::start(&[1000], Some(CREDIT)).await;
    // A cheaper worker whose engine is down: picked first, fails before answering.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let broken = net.start_worker(&dead_url, 500).unwrap();
    let broken_key = broken.state_key();
    net.workers.push(broken);
    net.wait_for_workers(2).await;

    let r = net
        .post("/v1/chat/completions", &chat("retry me", false), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let receipts = net.gateway.gateway.receipts();
    assert_eq!(receipts[0].status, "verified");
    assert_eq!(
        receipts[0].receipt.as_ref().unwrap().receipt.worker_key,
        net.workers[0].state_key()
    );
    let entry = net
        .proxy()
        .proxy
        .workers
        .all()
        .into_iter()
        .find(|w| w.identity.public_key == broken_key)
        .unwrap();
    assert_eq!(entry.failed.load(Ordering::Relaxed), 1);
    assert_eq!(
        net.proxy().proxy.store.worker(&broken_key).unwrap().earned,
        0
    );
    assert_eq!(
        net.charged(),
        receipts[0].receipt.as_ref().unwrap().receipt.cost_nano
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_stream_ends_the_stream_cleanly_and_is_not_charged() {
    let mut net = Net::start(&[1000], Some(CREDIT)).await;
    let req = hyper::Request::post(net.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(full(chat("HOLD please", true)))
        .unwrap();
    let resp = net.http.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"data: {"), "{first:?}");
    net.workers.pop().unwrap().kill().await;
    let rest = body.collect().await.unwrap().to_bytes();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("\"code\":\"upstream_failed\""), "{rest}");
    assert!(!rest.contains("[DONE]"));
    net.engine.release();
    assert_eq!(net.charged(), 0);
    let receipts = net.gateway.gateway.receipts();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].status, "no receipt");
    assert!(receipts[0].charged_nano.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_escrow_or_credit_are_refused_before_any_work() {
    let net = Net::start(&[1000], None).await;
    let r = net
        .post("/v1/chat/completions", &chat("hi", false), &[])
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "unknown_client"));

    // Credit below the worst case of one request (prompt bound and max_tokens at the cap).
    net.chain.open_escrow(net.client_key, 1000);
    let r = net
        .post("/v1/chat/completions", &chat("hi", false), &[])
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (402, "insufficient_credit")
    );
    assert_eq!(net.engine.requests(), 0);
    assert_eq!(net.charged(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_stable_errors_and_the_path_stays_up() {
    let net = Net::start(&[1000], Some(CREDIT)).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("{".into(), 400, "invalid_json"),
        ("[]".into(), 400, "invalid_json"),
        (
            r#"{"model":"fake-model","messages":[{"role":"user","content":"x"}],"evil":true}"#
                .into(),
            400,
            "unsupported_field",
        ),
        (
            r#"{"model":"fake-model","messages":"x"}"#.into(),
            400,
            "invalid_field",
        ),
        (
            r#"{"model":"fake-model","messages":[{"content":"x"}],"max_tokens":1000000}"#.into(),
            400,
            "invalid_field",
        ),
        (
            r#"{"model":"other","messages":[{"content":"x"}]}"#.into(),
            404,
            "model_not_found",
        ),
        (
            format!(
                r#"{{"model":"fake-model","messages":[{{"content":"{}"}}]}}"#,
                "x".repeat(2 << 20)
            ),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let r = net.post("/v1/chat/completions", &body, &[]).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{}",
            r.text()
        );
        assert!(r.json()["error"]["message"].as_str().is_some());
    }
    let r = net
        .post(
            "/v1/chat/completions",
            &chat("x", false),
            &[("x-cocoon-max-coefficient", "cheap")],
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_price_cap")
    );
    let r = net.get("/v1/chat/completions").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (405, "method_not_allowed")
    );
    let r = net.get("/v2/nothing").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    assert_eq!(net.engine.requests(), 0);
    assert_eq!(net.charged(), 0);
    let r = net
        .post("/v1/chat/completions", &chat("still up", false), &[])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cheapest_worker_under_the_cap_serves_and_live_prices_apply() {
    let net = Net::start(&[3000, 2000, 2500], Some(CREDIT)).await;
    let models = net.get("/v1/models").await.json();
    assert_eq!(models["data"][0]["id"], MODEL);
    assert_eq!(models["data"][0]["cocoon"]["workers"], 3);
    assert_eq!(models["data"][0]["cocoon"]["min_coefficient"], 2000);
    assert_eq!(models["data"][0]["cocoon"]["max_coefficient"], 3000);

    let r = net
        .post(
            "/v1/chat/completions",
            &chat("x", false),
            &[("x-cocoon-max-coefficient", "1500")],
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (503, "no_worker_available")
    );
    let r = net
        .post("/v1/chat/completions", &chat("x", false), &[])
        .await;
    assert_eq!(r.status, 200);
    let receipt = net.gateway.gateway.receipts()[0]
        .receipt
        .clone()
        .unwrap()
        .receipt;
    assert_eq!(receipt.worker_key, net.workers[1].state_key());
    assert_eq!(receipt.coefficient, 2000);

    // The worker lowers its price live: the next receipt and charge use it at once.
    net.workers[1].state.set_coefficient(1200);
    let before = net.charged();
    let r = net
        .post(
            "/v1/chat/completions",
            &chat("x", false),
            &[("x-cocoon-max-coefficient", "2000")],
        )
        .await;
    assert_eq!(r.status, 200);
    let receipt = net.gateway.gateway.receipts()[1]
        .receipt
        .clone()
        .unwrap()
        .receipt;
    assert_eq!(receipt.coefficient, 1200);
    assert_eq!(
        net.charged() - before,
        params()
            .cost(&receipt.usage, Coefficient(1200))
            .unwrap()
            .client
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guards_the_gateway() {
    let net = start_with(
        &[1000],
        Some(CREDIT),
        |_| {},
        |g| g.api_token = "s3cret".into(),
    )
    .await;
    let r = net
        .post("/v1/chat/completions", &chat("x", false), &[])
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"));
    let r = net
        .post(
            "/v1/chat/completions",
            &chat("x", false),
            &[("authorization", "Bearer nope")],
        )
        .await;
    assert_eq!(r.status, 401);
    let r = net
        .post(
            "/v1/chat/completions",
            &chat("x", false),
            &[("authorization", "Bearer s3cret")],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_shutdown_drains_an_open_stream_before_stopping() {
    let mut net = Net::start(&[1000], Some(CREDIT)).await;
    let req = hyper::Request::post(net.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(full(chat("HOLD on", true)))
        .unwrap();
    let resp = net.http.request(req).await.unwrap();
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    let proxy = net.proxy.take().unwrap();
    let store = proxy.proxy.store.clone();
    let stopping = tokio::spawn(proxy.shutdown(Duration::from_secs(60)));
    net.engine.release();
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    stopping.await.unwrap();
    let receipts = net.gateway.gateway.receipts();
    assert_eq!(receipts[0].status, "verified");
    let cost = receipts[0].receipt.as_ref().unwrap().receipt.cost_nano;
    drop(store);
    let proxy_store = cocoon_testkit::roles::proxy::store::Store::open;
    let reopened = proxy_store(
        std::path::Path::new(&net.proxy_config.store_path),
        &cocoon_testkit::roles::proxy::store::storage_key(net.proxy_tls.signing_key()),
    )
    .unwrap();
    let escrow = cocoon_testkit::roles::proxy::chain::dev_escrow_id(&net.client_key);
    assert_eq!(reopened.client(&escrow).unwrap().charged, cost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_the_chain_does_not_allow_are_refused_at_connect() {
    let mut net = Net::start(&[1000], Some(CREDIT)).await;
    net.chain
        .allow_only_workers(vec![net.workers[0].state_key()]);
    let stranger = net.start_worker(&net.engine.url(), 100).unwrap();
    let refused = net
        .proxy()
        .proxy
        .metrics
        .counter("cocoon_proxy_workers_refused_total", "", &[]);
    for _ in 0..500 {
        if refused.get() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused.get() > 0);
    let keys: Vec<_> = net
        .proxy()
        .proxy
        .workers
        .all()
        .iter()
        .map(|w| w.identity.public_key)
        .collect();
    assert_eq!(keys, vec![net.workers[0].state_key()]);
    // The cheaper stranger never serves.
    let r = net
        .post("/v1/chat/completions", &chat("x", false), &[])
        .await;
    assert_eq!(r.status, 200);
    let receipts = net.gateway.gateway.receipts();
    assert_eq!(
        receipts[0].receipt.as_ref().unwrap().receipt.worker_key,
        net.workers[0].state_key()
    );
    net.workers.push(stranger);
}
