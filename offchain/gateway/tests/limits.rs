//! Issue 14, item 7: the buffers that hold a whole non-streamed response are bounded, each with a
//! clear error: the gateway's collect before it verifies (`max_response_bytes`), and the worker's
//! copy it reads the usage from (its own `max_response_bytes`: cut without a receipt, uncharged).

mod common;

use common::*;

/// A non-streamed chat whose echoed answer is about `words` tokens (several KiB).
fn long_chat(words: usize) -> String {
    let content = vec!["word"; words].join(" ");
    serde_json::json!({"model": MODEL, "max_tokens": words + 8,
        "messages": [{"role": "user", "content": content}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_a_whole_response_over_its_bound() {
    let net = start_with(
        &[1000],
        Some(CREDIT),
        |_| {},
        |g| g.max_response_bytes = 1024,
    )
    .await;
    let r = net.post("/v1/chat/completions", &long_chat(600), &[]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error_code(), "upstream_failed");
    assert!(r.text().contains("max_response_bytes"), "{}", r.text());
    // A response within the bound is served.
    let r = net
        .post("/v1/chat/completions", &chat("short", false), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_cuts_a_whole_response_over_its_bound_and_nobody_pays() {
    let net = cocoon_testkit::NetworkBuilder::default()
        .worker_config(|w| w.max_response_bytes = 1024)
        .start()
        .await;
    let r = net.post("/v1/chat/completions", &long_chat(600), &[]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error_code(), "upstream_failed");
    assert_eq!(net.charged(), 0, "no receipt, no charge");
    let r = net
        .post("/v1/chat/completions", &chat("short", false), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(net.charged() > 0);
}
