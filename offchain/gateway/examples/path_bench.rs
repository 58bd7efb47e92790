//! Quick in-process request-path check (BRIEF §8): added latency, throughput ratio and time to first
//! streamed byte of gateway → proxy → worker (mutual TLS 1.3, receipts, ledger commits) over calling the
//! zero-latency fake engine (the built-in engine's fixed backend) directly. The load generator shares this process, so the figures are only
//! indicative; the reference figures come from `make bench` (`cocoon bench`, load from a separate
//! process, medians over repeated runs). Run in release: `cargo run --release -p cocoon-gateway
//! --example path_bench [out.json]`. Figures go to stdout and, when given, to the JSON file.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use cocoon_daemon::http::{Body, full};
use cocoon_testkit::FakeEngineOptions;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

// As `cocoon bench`: 5 prompt and 3 completion tokens from the echo engine.
const BODY: &str = r#"{"model":"fake-model","max_tokens":3,"messages":[{"role":"user","content":"a bench request of words"}]}"#;
const STREAM_BODY: &str = r#"{"model":"fake-model","max_tokens":3,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a bench request of words"}]}"#;

type Http = Client<HttpConnector, Body>;

async fn one(http: &Http, url: &str, body: &'static str) -> (Duration, Duration) {
    let start = Instant::now();
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(full(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let resp = http.request(req).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut b = resp.into_body();
    let first = b.frame().await;
    let ttfb = start.elapsed();
    assert!(first.is_some());
    while b.frame().await.is_some() {}
    (ttfb, start.elapsed())
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

async fn latency(http: &Http, url: &str, body: &'static str, n: usize) -> (f64, f64, f64) {
    for _ in 0..200 {
        one(http, url, body).await;
    }
    let mut total = Vec::with_capacity(n);
    let mut ttfb = Vec::with_capacity(n);
    for _ in 0..n {
        let (f, t) = one(http, url, body).await;
        ttfb.push(f);
        total.push(t);
    }
    (
        pct(&mut total, 0.5),
        pct(&mut total, 0.99),
        pct(&mut ttfb, 0.5),
    )
}

async fn throughput(http: &Http, url: &str, concurrency: usize, per_task: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                one(&http, &url, BODY).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (concurrency * per_task) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let out = std::env::args().nth(1);
    let net = cocoon_testkit::MemoryNetwork::builder()
        .engine(FakeEngineOptions {
            holds: false,
            ..Default::default()
        })
        .credit(Some(u128::MAX / 4))
        .tracing(false)
        .worker_config(|w| w.capacity = 4096)
        .start()
        .await;
    let (engine, gateway, client_key) = (&net.engine, &net.gateway, net.client_key);
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let direct = format!("{}/v1/chat/completions", engine.url());
    let path = format!("http://{}/v1/chat/completions", gateway.addr);
    let n = 2000;
    let (d50, d99, _) = latency(&http, &direct, BODY, n).await;
    let (p50, p99, _) = latency(&http, &path, BODY, n).await;
    let (_, _, dttfb) = latency(&http, &direct, STREAM_BODY, n).await;
    let (_, _, pttfb) = latency(&http, &path, STREAM_BODY, n).await;
    let direct_rps = throughput(&http, &direct, 32, 300).await;
    let path_rps = throughput(&http, &path, 32, 300).await;
    let report = serde_json::json!({
        "direct_p50_ms": d50, "direct_p99_ms": d99, "path_p50_ms": p50, "path_p99_ms": p99,
        "added_p50_ms": p50 - d50, "added_p99_ms": p99 - d99,
        "direct_ttfb_p50_ms": dttfb, "path_ttfb_p50_ms": pttfb, "added_ttfb_p50_ms": pttfb - dttfb,
        "direct_rps": direct_rps, "path_rps": path_rps, "path_throughput_ratio": path_rps / direct_rps,
        "charged_nano": net.proxy().proxy.client_ledger(&client_key).unwrap().charged.to_string(),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    }
}
