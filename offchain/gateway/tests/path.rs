//! End to end, in process: app → gateway → proxy → worker → engine, and back.

mod common;

use cocoon_protocol::{Coefficient, Usage};
use common::*;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streamed_chat_is_served_receipted_and_charged() {
    let net = Net::start(&[1000], Some(CREDIT)).await;
    let body = chat("hello there world", false);
    let r = net.post("/v1/chat/completions", &body, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "hello there world",
        "the fixed engine echoes the prompt"
    );
    assert_eq!(
        r.headers.get("x-cocoon-receipt-status").unwrap(),
        "verified"
    );
    assert!(
        r.headers.get("x-cocoon-worker-key").is_none(),
        "hop headers must be stripped"
    );

    let receipts = net.gateway.gateway.receipts();
    assert_eq!(receipts.len(), 1);
    let rec = receipts[0].receipt.as_ref().unwrap();
    assert_eq!(
        rec.receipt.request_sha256,
        <[u8; 32]>::from(Sha256::digest(body.as_bytes()))
    );
    assert_eq!(
        rec.receipt.response_sha256,
        <[u8; 32]>::from(Sha256::digest(&r.body))
    );
    assert_eq!(
        rec.receipt.usage,
        Usage {
            prompt: 3,
            cached: 0,
            completion: 4,
            reasoning: 0
        }
    );
    assert_eq!(rec.receipt.worker_key, net.workers[0].state_key());

    let cost = params()
        .cost(&rec.receipt.usage, Coefficient(1000))
        .unwrap();
    assert!(cost.client > 0);
    assert_eq!(rec.receipt.cost_nano, cost.client);
    assert_eq!(
        receipts[0].charged_nano.as_deref(),
        Some(cost.client.to_string().as_str())
    );
    assert_eq!(net.charged(), cost.client);
    let worker = net
        .proxy()
        .proxy
        .store
        .worker(&rec.receipt.worker_key)
        .unwrap();
    assert_eq!(worker.earned, cost.worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chat_passes_sse_through_and_is_charged() {
    let net = Net::start(&[1000], Some(CREDIT)).await;
    let r = net
        .post("/v1/chat/completions", &chat("one two", true), &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("content-type").unwrap(), "text/event-stream");
    let text = r.text();
    assert!(text.starts_with("data: {"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // The fixed engine echoes the prompt one word per chunk, after the role chunk.
    assert_eq!(text.matches("\"content\":\"one\"").count(), 1, "{text}");
    assert_eq!(text.matches("\"content\":\" two\"").count(), 1, "{text}");
    // The gateway asked for usage on the app's behalf: the app, which did not ask, does not see the
    // usage event (its SDK loop would index `choices[0]` of it), but the receipt covers it. (The
    // engine writes `"usage":null` in every other chunk, as OpenAI does.)
    assert!(!text.contains("\"usage\":{"), "{text}");

    let receipts = net.gateway.gateway.receipts();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].status, "verified");
    let rec = &receipts[0].receipt.as_ref().unwrap().receipt;
    assert_ne!(
        rec.response_sha256,
        <[u8; 32]>::from(Sha256::digest(&r.body))
    );
    assert_eq!(receipts[0].response_sha256.0, rec.response_sha256);
    assert_eq!(
        rec.usage,
        Usage {
            prompt: 2,
            cached: 0,
            completion: 3,
            reasoning: 0
        }
    );
    assert_eq!(
        net.charged(),
        params().cost(&rec.usage, Coefficient(1000)).unwrap().client
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_work_streamed_and_not() {
    let net = Net::start(&[1000], Some(CREDIT)).await;
    let plain =
        serde_json::json!({"model": MODEL, "prompt": "a b c d", "max_tokens": 2}).to_string();
    let r = net.post("/v1/completions", &plain, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["text"],
        "a b",
        "echoed up to max_tokens"
    );
    let streamed =
        serde_json::json!({"model": MODEL, "prompt": "a b", "max_tokens": 3, "stream": true,
        "stream_options": {"include_usage": true}})
        .to_string();
    let r = net.post("/v1/completions", &streamed, &[]).await;
    assert_eq!(r.status, 200);
    let receipts = net.gateway.gateway.receipts();
    assert!(
        receipts.iter().all(|r| r.status == "verified"),
        "{receipts:?}"
    );
    // The app asked for usage itself, so its exact bytes went through unchanged.
    let rec = &receipts[1].receipt.as_ref().unwrap().receipt;
    assert_eq!(
        rec.request_sha256,
        <[u8; 32]>::from(Sha256::digest(streamed.as_bytes()))
    );
    let total: u128 = receipts
        .iter()
        .map(|r| r.receipt.as_ref().unwrap().receipt.cost_nano)
        .sum();
    assert_eq!(net.charged(), total);
    assert_eq!(
        net.proxy()
            .proxy
            .client_ledger(&net.client_key)
            .unwrap()
            .seqno,
        2
    );
}
