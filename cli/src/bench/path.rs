//! The request-path figures: gateway → proxy → worker → engine (mutual TLS 1.3 on both hops, receipts,
//! ledger commits) against the same engine called directly. The network runs in this process; the
//! load comes from a `cocoon bench loadgen` child process.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use cocoon_testkit::roles::proxy::ProxyConfig;
use cocoon_testkit::roles::worker::WorkerConfig;
use cocoon_testkit::{FAKE_MODEL, FakeEngineOptions, MemoryNetwork};
use serde_json::{Value, json};

use super::{loadgen_json, median};

/// The model the fake engine and the worker serve.
pub(crate) const MODEL: &str = FAKE_MODEL;
/// A non-streamed chat request: the engine echoes the prompt, so 5 prompt and (capped) 3
/// completion tokens, priced as 1 prompt and 4 completion tokens were before the fixed backend.
pub(crate) const BODY: &str = r#"{"model":"fake-model","max_tokens":3,"messages":[{"role":"user","content":"a bench request of words"}]}"#;
/// The same request streamed, with usage in the last chunk.
pub(crate) const STREAM_BODY: &str = r#"{"model":"fake-model","max_tokens":3,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a bench request of words"}]}"#;

/// Sizes of one path run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathPlan {
    /// Repeated runs; every figure is the median over them.
    pub(crate) runs: usize,
    /// Measured sequential requests per latency series.
    pub(crate) requests: usize,
    /// Closed-loop clients for throughput.
    pub(crate) concurrency: usize,
    /// Measured throughput window, ms.
    pub(crate) duration_ms: u64,
}

/// The in-process network: the engine generating inline (no hold), one worker taking 4096
/// requests at once, enough credit that no settlement happens during the bench.
async fn start_network() -> Result<MemoryNetwork> {
    MemoryNetwork::builder()
        .engine(FakeEngineOptions {
            holds: false,
            ..Default::default()
        })
        .credit(Some(u128::MAX / 4))
        .tracing(false)
        .proxy_config(|c| c.announce_poll_ms = ProxyConfig::default().announce_poll_ms)
        .worker_config(|w| {
            w.capacity = 4096;
            w.reconnect_ms = WorkerConfig::default().reconnect_ms;
        })
        .try_start()
        .await
        .context("starting the in-process network")
}

fn num(v: &Value, key: &str) -> Result<f64> {
    v[key]
        .as_f64()
        .with_context(|| format!("load generator printed no {key}: {v}"))
}

async fn latency(url: &str, body: &str, requests: usize) -> Result<Value> {
    let n = requests.to_string();
    loadgen_json(&[
        "--mode",
        "latency",
        "--url",
        url,
        "--body",
        body,
        "--requests",
        &n,
    ])
    .await
}

async fn rps(url: &str, plan: &PathPlan) -> Result<f64> {
    let (c, d) = (plan.concurrency.to_string(), plan.duration_ms.to_string());
    let v = loadgen_json(&[
        "--mode",
        "throughput",
        "--url",
        url,
        "--body",
        BODY,
        "--concurrency",
        &c,
        "--duration-ms",
        &d,
    ])
    .await?;
    num(&v, "rps")
}

/// Runs the path bench and returns its keys, plus the measured charge of one bench request.
pub(crate) async fn measure(plan: PathPlan) -> Result<(serde_json::Map<String, Value>, u128)> {
    let net = start_network().await?;
    let direct = format!("{}/v1/chat/completions", net.engine.url());
    let path = format!("http://{}/v1/chat/completions", net.gateway.addr);
    let mut figures: [Vec<f64>; 11] = Default::default();
    let [
        d50,
        d99,
        p50,
        p99,
        dttfb,
        pttfb,
        drps,
        prps,
        over50,
        over99,
        ratio,
    ] = &mut figures;
    for run in 0..plan.runs {
        eprintln!("  path run {}/{}", run + 1, plan.runs);
        let d = latency(&direct, BODY, plan.requests).await?;
        let p = latency(&path, BODY, plan.requests).await?;
        let ds = latency(&direct, STREAM_BODY, plan.requests).await?;
        let ps = latency(&path, STREAM_BODY, plan.requests).await?;
        let dr = rps(&direct, &plan).await?;
        let pr = rps(&path, &plan).await?;
        d50.push(num(&d, "p50_ms")?);
        d99.push(num(&d, "p99_ms")?);
        p50.push(num(&p, "p50_ms")?);
        p99.push(num(&p, "p99_ms")?);
        dttfb.push(num(&ds, "ttfb_p50_ms")?);
        pttfb.push(num(&ps, "ttfb_p50_ms")?);
        drps.push(dr);
        prps.push(pr);
        over50.push(num(&p, "p50_ms")? - num(&d, "p50_ms")?);
        over99.push(num(&p, "p99_ms")? - num(&d, "p99_ms")?);
        ratio.push(pr / dr);
    }
    let account = net
        .proxy()
        .proxy
        .client_ledger(&net.client_key)
        .context("reading the bench client's ledger")?;
    if account.seqno == 0 {
        bail!("the proxy recorded no charge during the path bench");
    }
    let per_request = account.charged / u128::from(account.seqno);
    let ttft_over: Vec<f64> = pttfb.iter().zip(dttfb.iter()).map(|(p, d)| p - d).collect();
    let mut out = serde_json::Map::new();
    for (k, v) in [
        ("path_overhead_p50_ms", median(over50)),
        ("path_overhead_p99_ms", median(over99)),
        ("path_throughput_ratio", median(ratio)),
        ("path_rps", median(prps)),
        ("direct_rps", median(drps)),
        ("ttft_overhead_ms", median(&ttft_over)),
        ("direct_p50_ms", median(d50)),
        ("direct_p99_ms", median(d99)),
        ("path_p50_ms", median(p50)),
        ("path_p99_ms", median(p99)),
        ("direct_ttfb_p50_ms", median(dttfb)),
        ("path_ttfb_p50_ms", median(pttfb)),
    ] {
        out.insert(k.into(), json!(v));
    }
    net.shutdown(Duration::from_secs(2)).await;
    Ok((out, per_request))
}
