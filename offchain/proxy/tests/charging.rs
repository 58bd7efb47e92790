//! Issue 14, findings 1–3: an adversarial client speaking HTTP/2 over mutual TLS to the proxy's
//! client port directly (no gateway), with the key its escrow is opened for. Every request the proxy
//! forwards ends in a charge equal to the worker's receipt (capped by the reservation) or in a clear
//! refusal, whatever the client does with the stream: omit `include_usage`, reset after the
//! `finish_reason` chunk, close the connection, stall its flow-control window and then reset, send
//! conflicting limits. The proxy's metrics count exactly what its ledger committed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use cocoon_daemon::http::{Body, full, json_response};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::HopTls;
use cocoon_protocol::{Coefficient, PriceParams, SignedReceipt, headers};
use cocoon_testkit::rogue_client::{RogueConn, RogueExchange};
use cocoon_testkit::roles::proxy::ProxyConfig;
use cocoon_testkit::roles::worker::{self, WorkerConfig, WorkerHandle};
use cocoon_testkit::{HOLD_WORD, MemoryNetwork, TlsKit, wait, worker_config};

/// The coefficient cap every request names (the worker serves at 1000).
const CAP: u32 = 1000;

/// The network with one worker the test starts itself (to read its metrics), and the client TLS.
struct Bench {
    net: MemoryNetwork,
    worker: WorkerHandle,
    worker_metrics: Arc<Registry>,
    client_tls: Arc<dyn HopTls>,
}

async fn bench_with(
    tweak: impl FnOnce(&mut ProxyConfig) + Send + 'static,
    worker_tweak: impl FnOnce(&mut WorkerConfig),
    engine_url: Option<String>,
) -> Bench {
    let kit = TlsKit::dev().unwrap();
    let client_tls = kit.gateway.clone();
    let net = MemoryNetwork::builder()
        .workers(&[])
        .tls(kit)
        .proxy_config(tweak)
        .start()
        .await;
    let url = engine_url.unwrap_or_else(|| net.engine.url());
    let mut config = worker_config(&net.proxy_config.worker_listen, &url, &net.model, 1000);
    worker_tweak(&mut config);
    let worker_metrics = Registry::new();
    let worker = worker::start(
        config,
        (net.worker_tls)().unwrap(),
        PriceParams::default(),
        worker_metrics.clone(),
    )
    .unwrap();
    net.wait_for_workers(1).await;
    Bench {
        net,
        worker,
        worker_metrics,
        client_tls,
    }
}

async fn bench() -> Bench {
    bench_with(|_| {}, |_| {}, None).await
}

impl Bench {
    /// What the worker signed receipts for so far (client cost, nanoTON), and how many.
    fn receipted(&self) -> (u64, u64) {
        let m = &self.worker_metrics;
        (
            m.counter("cocoon_worker_earned_client_nanoton_total", "", &[])
                .get(),
            m.counter("cocoon_worker_receipts_total", "", &[]).get(),
        )
    }

    fn ledger(&self) -> (u128, u64) {
        let a = self
            .net
            .proxy()
            .proxy
            .client_ledger(&self.net.client_key)
            .unwrap();
        (a.charged, a.seqno)
    }

    /// The proxy's charge metrics equal its ledger.
    fn assert_metrics_match_ledger(&self) {
        let m = &self.net.proxy().proxy.metrics;
        let (charged, count) = self.ledger();
        assert_eq!(
            (
                u128::from(
                    m.counter("cocoon_proxy_charged_nanoton_total", "", &[])
                        .get()
                ),
                m.counter("cocoon_proxy_charges_total", "", &[]).get()
            ),
            (charged, count),
            "the proxy's metrics must count what its ledger committed"
        );
    }

    /// Waits until the ledger holds `charged` (charges are committed whatever the client does, but
    /// not necessarily before the client's side of the stream is gone).
    async fn wait_charged(&self, charged: u128) -> u128 {
        wait::poll_until(Duration::from_secs(10), || self.ledger().0 == charged).await;
        self.ledger().0
    }

    async fn connect(&self, window: Option<u32>) -> Conn {
        let addr = self.net.proxy().client_addr.to_string();
        Conn(
            RogueConn::connect(&addr, &self.client_tls, window)
                .await
                .unwrap(),
        )
    }
}

/// The rogue client's connection, panicking on failures (tests).
struct Conn(RogueConn);

impl Conn {
    async fn post(&mut self, path: &str, body: &str) -> Exchange {
        Exchange(self.0.post(path, body, CAP).await.unwrap())
    }
}

struct Exchange(RogueExchange);

impl Exchange {
    async fn read_all(self) -> (Vec<u8>, Option<http::HeaderMap>) {
        self.0.read_all().await.unwrap()
    }
}

impl std::ops::Deref for Exchange {
    type Target = RogueExchange;
    fn deref(&self) -> &RogueExchange {
        &self.0
    }
}

impl std::ops::DerefMut for Exchange {
    fn deref_mut(&mut self) -> &mut RogueExchange {
        &mut self.0
    }
}

/// A chat request with `words` prompt words, answered with one token per word (the fake engine
/// echoes), streamed, without `stream_options`.
fn long_chat(model: &str, words: usize, stream: bool) -> String {
    let content = vec!["word"; words].join(" ");
    serde_json::json!({"model": model, "stream": stream, "max_tokens": words + 1,
        "messages": [{"role": "user", "content": content}]})
    .to_string()
}

fn with_usage(body: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["stream_options"] = serde_json::json!({"include_usage": true});
    v.to_string()
}

fn charged_trailer(trailers: &Option<http::HeaderMap>) -> u128 {
    trailers
        .as_ref()
        .and_then(|t| t.get(headers::CHARGED_NANO))
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("a charged trailer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_include_usage_is_charged_its_receipt() {
    let b = bench().await;
    let mut conn = b.connect(None).await;
    // The honest shape first: it pays exactly its receipt.
    let honest = with_usage(&long_chat(&b.net.model, 20, true));
    let (body, trailers) = conn
        .post("/v1/chat/completions", &honest)
        .await
        .read_all()
        .await;
    assert!(String::from_utf8_lossy(&body).contains("\"usage\""));
    let paid = charged_trailer(&trailers);
    assert!(paid > 0);
    assert_eq!(u128::from(b.receipted().0), paid);
    assert_eq!(b.ledger(), (paid, 1));
    // The same request without `stream_options`: no longer free.
    let attack = long_chat(&b.net.model, 20, true);
    let ex = conn.post("/v1/chat/completions", &attack).await;
    assert_eq!(ex.status, 200);
    let (_, trailers) = ex.read_all().await;
    let receipt = trailers
        .as_ref()
        .and_then(|t| t.get(headers::RECEIPT))
        .expect("the forced usage gives the worker a receipt to sign");
    SignedReceipt::from_wire(receipt.as_bytes())
        .unwrap()
        .verify_signature()
        .unwrap();
    assert_eq!(charged_trailer(&trailers), paid, "same request, same price");
    assert_eq!(b.ledger(), (2 * paid, 2));
    assert_eq!(u128::from(b.receipted().0), 2 * paid, "ledger == receipts");
    b.assert_metrics_match_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resets_after_finish_reason_or_closes_pays_its_receipt() {
    let b = bench().await;
    let body = with_usage(&long_chat(&b.net.model, 600, true));
    // Reset as soon as the finish_reason chunk is in, before the usage event and the trailers.
    let mut conn = b.connect(Some(1024)).await;
    let mut ex = conn.post("/v1/chat/completions", &body).await;
    let got = ex
        .read_until(|seen| {
            let s = String::from_utf8_lossy(seen);
            s.contains("\"finish_reason\":\"") || s.contains("\"finish_reason\": \"")
        })
        .await;
    assert!(!got.is_empty());
    ex.reset();
    let finished = wait::poll_until(Duration::from_secs(10), || b.receipted().1 == 1).await;
    assert!(finished, "the worker finished and signed");
    let receipted = u128::from(b.receipted().0);
    assert_eq!(
        b.wait_charged(receipted).await,
        receipted,
        "reset after finish: charged its receipt"
    );
    // Close the whole connection after the first chunk.
    let mut conn = b.connect(None).await;
    let mut ex = conn.post("/v1/chat/completions", &body).await;
    let got = ex.read_until(|seen| !seen.is_empty()).await;
    assert!(!got.is_empty());
    drop(ex);
    conn.0.cut();
    let want = wait::poll_until(Duration::from_secs(10), || b.receipted().1 == 2).await;
    assert!(
        want,
        "the worker's stream runs to its end without the client"
    );
    let receipted = u128::from(b.receipted().0);
    assert_eq!(
        b.wait_charged(receipted).await,
        receipted,
        "closed connection: charged"
    );
    assert_eq!(b.ledger().1, 2);
    b.assert_metrics_match_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_its_window_then_resets_pays_its_receipt() {
    let b = bench().await;
    let body = with_usage(&long_chat(&b.net.model, 600, true));
    let mut conn = b.connect(Some(1024)).await;
    let mut ex = conn.post("/v1/chat/completions", &body).await;
    // Re-grant 1 KiB as data arrives until about half the answer is in, then stop granting.
    let half = ex.read_until(|seen| seen.len() > 40 * 1024).await;
    assert!(half.len() > 40 * 1024);
    tokio::time::sleep(Duration::from_millis(300)).await;
    ex.reset();
    let finished = wait::poll_until(Duration::from_secs(10), || b.receipted().1 == 1).await;
    assert!(
        finished,
        "the worker's stream runs to its end while the client stalls"
    );
    let receipted = u128::from(b.receipted().0);
    assert_eq!(
        b.wait_charged(receipted).await,
        receipted,
        "stalled, reset: charged its receipt"
    );
    // The honest client on the same connection still pays exactly its receipt.
    let (_, trailers) = conn
        .post("/v1/chat/completions", &body)
        .await
        .read_all()
        .await;
    assert_eq!(charged_trailer(&trailers), receipted);
    assert_eq!(b.ledger(), (2 * receipted, 2));
    assert_eq!(u128::from(b.receipted().0), 2 * receipted);
    b.assert_metrics_match_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_limits_are_refused_and_a_missing_one_is_reserved_and_forwarded() {
    let b = bench().await;
    let mut conn = b.connect(None).await;
    let conflicting = serde_json::json!({"model": b.net.model, "stream": true,
        "max_tokens": 1, "max_completion_tokens": 32768,
        "messages": [{"role": "user", "content": "word word word"}]})
    .to_string();
    let ex = conn.post("/v1/chat/completions", &conflicting).await;
    assert_eq!(ex.status, 400);
    let (body, _) = ex.read_all().await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_field");
    assert_eq!(v["error"]["param"], "max_completion_tokens");
    assert_eq!(
        b.net.engine.requests(),
        0,
        "refused before any worker ran it"
    );
    assert_eq!(b.ledger(), (0, 0));
    // No limit at all: the default is forwarded explicitly (the engine stops there) and charged
    // like its receipt.
    let unlimited = serde_json::json!({"model": b.net.model,
        "messages": [{"role": "user", "content": "word word word"}]})
    .to_string();
    let (_, trailers) = conn
        .post("/v1/chat/completions", &unlimited)
        .await
        .read_all()
        .await;
    let paid = charged_trailer(&trailers);
    assert_eq!(u128::from(b.receipted().0), paid);
    assert_eq!(b.ledger(), (paid, 1));
    b.assert_metrics_match_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starved_stream_releases_worker_capacity_at_the_request_timeout() {
    let b = bench_with(|c| c.request_timeout_ms = 1500, |_| {}, None).await;
    let body = serde_json::json!({"model": b.net.model, "stream": true, "max_tokens": 8,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": format!("a {HOLD_WORD} b c")}]})
    .to_string();
    // A client that grants no window at all: the proxy cannot send it a byte.
    let mut conn = b.connect(Some(0)).await;
    let ex = conn.post("/v1/chat/completions", &body).await;
    assert_eq!(ex.status, 200);
    // The engine holds the stream after its first token.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.worker.state.in_flight(), 1, "the stream holds one unit");
    let released = wait::poll_until(Duration::from_millis(2500), || {
        b.worker.state.in_flight() == 0
    })
    .await;
    assert!(
        released,
        "the worker's capacity must be released at the proxy's deadline, not when the client closes"
    );
    // Cut by the proxy's own deadline before the worker finished: a worker failure nobody pays.
    assert_eq!(b.ledger(), (0, 0));
    assert_eq!(b.receipted().1, 0);
    b.net.engine.release();
    drop(ex);
    b.assert_metrics_match_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_own_timeout_ends_its_side_only_and_the_answer_is_charged() {
    let b = bench().await;
    let body = serde_json::json!({"model": b.net.model, "stream": true, "max_tokens": 8,
        "messages": [{"role": "user", "content": format!("a {HOLD_WORD} b c")}]})
    .to_string();
    let mut conn = b.connect(None).await;
    let ex = conn
        .0
        .post_with(
            "/v1/chat/completions",
            &body,
            CAP,
            &[(headers::TIMEOUT_MS, "700")],
        )
        .await
        .unwrap();
    assert_eq!(ex.status, 200);
    // The engine holds after its first token; the client's deadline ends the client's side.
    let (seen, trailers) = ex.read_all().await.unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("\"code\":\"timeout\""), "{text}");
    assert!(trailers.is_none());
    assert_eq!(
        b.worker.state.in_flight(),
        1,
        "the worker's stream still runs"
    );
    // Choosing where the cut lands does not make the answer free: it is charged its receipt.
    b.net.engine.release();
    let finished = wait::poll_until(Duration::from_secs(10), || b.receipted().1 == 1).await;
    assert!(finished);
    let receipted = u128::from(b.receipted().0);
    assert!(receipted > 0);
    assert_eq!(b.wait_charged(receipted).await, receipted);
    assert_eq!(b.ledger().1, 1);
    b.assert_metrics_match_ledger();
}

/// An engine that answers every chat completion with a usage far above what was asked.
async fn lying_engine() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let resp: hyper::Response<Body> = if req.uri().path() == "/health" {
                            json_response(200, b"{}".to_vec())
                        } else {
                            let body = serde_json::json!({"id": "x", "object": "chat.completion",
                            "model": cocoon_testkit::FAKE_MODEL, "choices": [{"index": 0,
                            "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}});
                            let mut r = hyper::Response::new(full(body.to_string().into_bytes()));
                            r.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                "application/json".parse().unwrap(),
                            );
                            r
                        };
                        Ok::<_, Infallible>(resp)
                    },
                );
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_over_the_reservation_charges_at_most_the_reservation() {
    let engine = lying_engine().await;
    let b = bench_with(|_| {}, |w| w.health_interval_ms = 0, Some(engine)).await;
    let body = serde_json::json!({"model": b.net.model, "max_tokens": 4,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let mut conn = b.connect(None).await;
    let ex = conn.post("/v1/chat/completions", &body).await;
    assert_eq!(ex.status, 200);
    let (_, trailers) = ex.read_all().await;
    // The body states its limit and is forwarded as sent: the reservation is for it.
    let reserved = PriceParams::default()
        .worst_case(body.len() as u64, 4, Coefficient(CAP))
        .unwrap();
    let (receipted, _) = b.receipted();
    assert!(
        u128::from(receipted) > reserved,
        "the worker signed far above the reservation"
    );
    assert_eq!(charged_trailer(&trailers), reserved);
    assert_eq!(
        b.ledger(),
        (reserved, 1),
        "the client pays at most its reservation"
    );
    let over = b
        .net
        .proxy()
        .proxy
        .metrics
        .counter("cocoon_proxy_receipts_over_reservation_total", "", &[])
        .get();
    assert_eq!(over, 1);
    b.assert_metrics_match_ledger();
}
