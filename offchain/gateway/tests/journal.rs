//! The receipts journal through the gateway: receipts (with their exact bodies) survive a restart,
//! and a gateway started on the same journal exports the same proof bundle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cocoon_audit::{ProofBundle, Selection, Verdict, VerifyOptions, verify_bundle};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, HopTls, Role};
use cocoon_gateway::GatewayConfig;
use cocoon_gateway::{GatewayHandle, ReceiptRecord};
use common::*;
use http_body_util::BodyExt;

/// A gateway on an existing journal, as a restarted process would start it.
async fn restart_on(
    net: &Net,
    path: &str,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> (GatewayHandle, std::sync::Arc<Registry>) {
    let mut config = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        proxy: net.proxy().client_addr.to_string(),
        receipts_path: path.to_owned(),
        ..Default::default()
    };
    tweak(&mut config);
    let metrics = Registry::new();
    // A fresh key with its own escrow, so the restarted gateway can also serve.
    let tls = DevTls::generate(Role::Client).unwrap();
    net.chain.open_escrow(tls.identity().public_key, CREDIT);
    let handle = cocoon_gateway::start(config, std::sync::Arc::new(tls), metrics.clone())
        .await
        .unwrap();
    (handle, metrics)
}

/// One worker, and a gateway journaling its receipts to `path`.
async fn journaled_net(path: &str) -> Net {
    start_with(
        &[1000],
        Some(CREDIT),
        |_| {},
        |g| g.receipts_path = path.to_owned(),
    )
    .await
}

/// `GET path` on a gateway, over HTTP like an app (or `cocoon receipt export`).
/// Development TLS certificates carry no quote and so no image; the verifier still wants an
/// allowlist before it looks at a bundle.
fn dev_opts() -> VerifyOptions {
    VerifyOptions {
        allowed_images: vec![[0u8; 32]],
        ..Default::default()
    }
}

async fn get(net: &Net, gw: &GatewayHandle, path: &str) -> (u16, bytes::Bytes) {
    let req = hyper::Request::get(format!("http://{}{path}", gw.addr))
        .body(cocoon_daemon::http::full(bytes::Bytes::new()))
        .unwrap();
    let resp = net.http.request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_their_bodies_survive_a_restart_of_the_gateway() {
    let keep = tempfile::tempdir().unwrap();
    let journal = keep.path().join("receipts.journal");
    let path = journal.display().to_string();
    let net = journaled_net(&path).await;
    let mut request_ids = Vec::new();
    for (i, stream) in [false, true, false].into_iter().enumerate() {
        let r = net
            .post(
                "/v1/chat/completions",
                &chat(&format!("keep {i}"), stream),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        request_ids.push(r.headers["x-request-id"].to_str().unwrap().to_owned());
    }
    let before = net.gateway.gateway.receipts();
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|r| r.status == "verified"));
    let bundle_before = net
        .gateway
        .gateway
        .bundle(&Selection::default().with_bodies())
        .await;
    assert!(journal.metadata().unwrap().len() > 0);

    // A second gateway process on the same journal (the first one is gone as far as it knows).
    let (restarted, _) = restart_on(&net, &path, |_| {}).await;
    let after = restarted.gateway.receipts();
    assert_eq!(
        after, before,
        "every receipt, with its id, request id, status and hashes"
    );
    // What `cocoon receipt export` fetches: the same bundle over HTTP, and it still verifies.
    let (status, body) = get(&net, &restarted, "/cocoon/v1/bundle?bodies=1").await;
    assert_eq!(status, 200);
    let bundle_after: ProofBundle = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        bundle_after.responses, bundle_before.responses,
        "the exact request and response bytes came back too"
    );
    let report = verify_bundle(&bundle_after, &dev_opts());
    assert!(
        report.failures.is_empty() && report.verdict == Verdict::Insecure,
        "signed and consistent, DevTls attests nothing: {report:?}"
    );
    // A request's receipt is found by its x-request-id after the restart.
    let (status, body) = get(
        &net,
        &restarted,
        &format!("/cocoon/v1/receipts?request_id={}", request_ids[1]),
    )
    .await;
    assert_eq!(status, 200);
    let found: Vec<ReceiptRecord> = serde_json::from_slice(&body).unwrap();
    assert_eq!(found, vec![before[1].clone()]);
    assert!(found[0].stream);

    // A journal path in a directory that does not exist is refused before any port is bound.
    let bad = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        proxy: net.proxy().client_addr.to_string(),
        receipts_path: keep
            .path()
            .join("missing/dir/r.journal")
            .display()
            .to_string(),
        ..Default::default()
    };
    let refused = cocoon_gateway::start(
        bad,
        std::sync::Arc::new(DevTls::generate(Role::Client).unwrap()),
        Registry::new(),
    )
    .await;
    assert!(
        refused
            .err()
            .is_some_and(|e| e.to_string().contains("receipts_path")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_that_failed_is_journaled_as_failed_and_stays_failed_after_a_restart() {
    let keep = tempfile::tempdir().unwrap();
    let path = keep.path().join("receipts.journal").display().to_string();
    let mut net = journaled_net(&path).await;
    let r = net
        .post("/v1/chat/completions", &chat("good one", false), &[])
        .await;
    assert_eq!(r.status, 200);
    // The worker dies mid-stream: the stream ends without a receipt trailer.
    let req = hyper::Request::post(net.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-request-id", "cut-short-1")
        .body(cocoon_daemon::http::full(chat("HOLD please", true)))
        .unwrap();
    let resp = net.http.request(req).await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "cut-short-1");
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    net.workers.pop().unwrap().kill().await;
    let _ = body.collect().await;
    net.engine.release();

    let (restarted, _) = restart_on(&net, &path, |_| {}).await;
    let back = restarted.gateway.receipts();
    let statuses: Vec<(&str, Option<&str>)> = back
        .iter()
        .map(|r| (r.status.as_str(), r.request_id.as_deref()))
        .collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].0, "verified");
    assert_eq!(statuses[1], ("no receipt", Some("cut-short-1")));
    let (_, body) = get(&net, &restarted, "/cocoon/v1/bundle?request_id=cut-short-1").await;
    let bundle: ProofBundle = serde_json::from_slice(&body).unwrap();
    assert_eq!(bundle.responses.len(), 1);
    assert_eq!(bundle.responses[0].gateway_status, "no receipt");
    let report = verify_bundle(&bundle, &dev_opts());
    assert_eq!(report.verdict, Verdict::Failed, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_receipts_and_counts_every_one_it_drops() {
    let keep = tempfile::tempdir().unwrap();
    let path = keep.path().join("receipts.journal").display().to_string();
    let net = journaled_net(&path).await;
    for i in 0..5 {
        let r = net
            .post("/v1/chat/completions", &chat(&format!("r{i}"), false), &[])
            .await;
        assert_eq!(r.status, 200);
    }
    // Restarted with room for 3: the newest 3 are served, with their original ids.
    let (small, metrics) = restart_on(&net, &path, |g| g.receipts_kept = 3).await;
    let ids: Vec<u64> = small.gateway.receipts().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![3, 4, 5]);
    let dropped = |m: &Registry| {
        m.counter(
            "cocoon_gateway_receipts_dropped_total",
            "",
            &[("what", "record")],
        )
        .get()
    };
    assert_eq!(
        dropped(&metrics),
        2,
        "what the restart did not load is counted"
    );
    // One more request through the small gateway drops one more, counted too.
    let req = hyper::Request::post(format!("http://{}/v1/chat/completions", small.addr))
        .header("content-type", "application/json")
        .body(cocoon_daemon::http::full(chat("r5", false)))
        .unwrap();
    assert_eq!(net.http.request(req).await.unwrap().status(), 200);
    let ids: Vec<u64> = small.gateway.receipts().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![4, 5, 6], "ids go on from the journal's");
    assert_eq!(dropped(&metrics), 3);
    assert!(
        metrics
            .render()
            .contains("cocoon_gateway_receipts_dropped_total")
    );
}
