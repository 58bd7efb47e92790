//! The app-facing API around inference: `x-request-id` on every response (and in the receipt it
//! names), and `GET /v1/models/{id}`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cocoon_gateway::ReceiptRecord;
use cocoon_gateway::bundle::ProofBundle;
use common::*;

fn request_id(r: &Resp) -> String {
    r.headers
        .get("x-request-id")
        .expect("every response carries x-request-id")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_and_the_receipt_is_found_by_it() {
    let net = Net::start(&[1000], Some(CREDIT)).await;

    // A sane client id is echoed and stored with the receipt.
    let mine = net
        .post(
            "/v1/chat/completions",
            &chat("mine", false),
            &[("x-request-id", "app-7f3c.trace:1")],
        )
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert_eq!(request_id(&mine), "app-7f3c.trace:1");

    // No id, or one that is not sane: a fresh one each time.
    let plain = net
        .post("/v1/chat/completions", &chat("plain", true), &[])
        .await;
    assert_eq!(plain.status, 200);
    let generated = request_id(&plain);
    assert!(
        generated.starts_with("req_") && generated.len() == 36,
        "{generated}"
    );
    let odd = net
        .post(
            "/v1/chat/completions",
            &chat("odd", false),
            &[("x-request-id", "has spaces and \"quotes\"")],
        )
        .await;
    let replaced = request_id(&odd);
    assert!(
        replaced.starts_with("req_") && replaced != generated,
        "{replaced}"
    );

    // Errors and non-inference routes carry one too.
    let refused = net.post("/v1/chat/completions", "{not json", &[]).await;
    assert_eq!(refused.status, 400);
    assert!(request_id(&refused).starts_with("req_"));
    let missing = net.get("/nowhere").await;
    assert_eq!(missing.status, 404);
    request_id(&missing);
    request_id(&net.get("/v1/models").await);

    // The stored records name their requests, streamed or not.
    let ids: Vec<Option<String>> = net
        .gateway
        .gateway
        .receipts()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(
        ids,
        vec![
            Some("app-7f3c.trace:1".to_owned()),
            Some(generated.clone()),
            Some(replaced)
        ]
    );
    let found: Vec<ReceiptRecord> = serde_json::from_slice(
        &net.get(&format!("/cocoon/v1/receipts?request_id={generated}"))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].stream && found[0].status == "verified");
    let none = net.get("/cocoon/v1/receipts?request_id=unknown-id").await;
    assert_eq!(none.json(), serde_json::json!([]));
    let bad = net.get("/cocoon/v1/receipts?request_id=a%20b").await;
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "invalid_field")
    );

    // And the bundle of one request.
    let bundle: ProofBundle = serde_json::from_slice(
        &net.get("/cocoon/v1/bundle?request_id=app-7f3c.trace:1")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(bundle.responses.len(), 1);
    assert_eq!(bundle.responses[0].id, 1);
    assert_eq!(
        bundle.responses[0].request_id.as_deref(),
        Some("app-7f3c.trace:1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_retrieved_by_id_and_an_unknown_one_is_model_not_found() {
    let net = Net::start(&[1500], Some(CREDIT)).await;
    let r = net.get(&format!("/v1/models/{MODEL}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    assert_eq!(m["id"], MODEL);
    assert_eq!(m["object"], "model");
    assert!(m["created"].is_u64() && m["owned_by"].is_string(), "{m}");
    assert_eq!(m["cocoon"]["min_coefficient"], 1500);
    // Percent-encoded ids (SDKs encode `/` in ids like `org/model`) are decoded.
    let encoded = net.get("/v1/models/fake%2Dmodel").await;
    assert_eq!(encoded.json()["id"], MODEL);

    let unknown = net.get("/v1/models/no-such-model").await;
    assert_eq!(unknown.status, 404);
    let e = &unknown.json()["error"];
    assert_eq!(e["code"], "model_not_found");
    assert_eq!(e["param"], "model");
    assert!(
        e["message"].as_str().unwrap().contains("no-such-model"),
        "{e}"
    );
    assert!(e["type"].is_string());
    let bad = net.get("/v1/models/%zz").await;
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "invalid_field")
    );
    let empty = net.get("/v1/models/").await;
    assert_eq!(empty.status, 400);
}
