//! `cocoon bench loadgen` (hidden): the load generator, run by `cocoon bench` as a child process so its
//! CPU use is its own. It speaks plain HTTP/1.1 (keep-alive) to one URL — the gateway, or the engine
//! directly for the baseline — and prints one JSON line of figures on stdout.

use std::io::BufRead;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

type Http = Client<HttpConnector, Full<Bytes>>;

/// What the load generator measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Sequential requests on one connection: p50/p99 of the full response and of the first byte.
    Latency,
    /// `concurrency` closed-loop clients for `duration_ms`: completed requests per second.
    Throughput,
    /// Opens `streams` streaming requests, prints `{"holding": n}` once each has sent its first
    /// byte, waits for a line on stdin, then drains them all and prints `{"completed": n}`.
    Hold,
}

/// Arguments of the hidden `cocoon bench loadgen`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadgenArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Target URLs (`http://host:port/v1/chat/completions`); hold mode spreads streams over them.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// The JSON request body.
    #[arg(long)]
    body: String,
    /// Measured requests (latency mode).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Unmeasured requests first (latency and throughput modes).
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Concurrent clients (throughput mode).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured duration (throughput mode), ms.
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Concurrent streams (hold mode).
    #[arg(long, default_value_t = 1000)]
    streams: usize,
}

/// One request: time to the first body frame and to the end of the body.
async fn one(http: &Http, url: &str, body: &Bytes) -> Result<(Duration, Duration)> {
    let start = Instant::now();
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .context("building the request")?;
    let resp = http.request(req).await.context("sending the request")?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    let mut b = resp.into_body();
    let mut ttfb = None;
    while let Some(frame) = b.frame().await {
        frame.context("reading the response")?;
        ttfb.get_or_insert_with(|| start.elapsed());
    }
    let total = start.elapsed();
    Ok((ttfb.unwrap_or(total), total))
}

fn percentile_ms(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1e3
}

fn client(max_idle: usize) -> Http {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .build(conn)
}

async fn latency(args: &LoadgenArgs, body: Bytes) -> Result<serde_json::Value> {
    let http = client(1);
    let url = &args.urls[0];
    for _ in 0..args.warmup {
        one(&http, url, &body).await?;
    }
    let mut total = Vec::with_capacity(args.requests);
    let mut first = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        let (f, t) = one(&http, url, &body).await?;
        first.push(f);
        total.push(t);
    }
    Ok(json!({
        "requests": args.requests,
        "p50_ms": percentile_ms(&mut total, 0.5),
        "p99_ms": percentile_ms(&mut total, 0.99),
        "ttfb_p50_ms": percentile_ms(&mut first, 0.5),
        "ttfb_p99_ms": percentile_ms(&mut first, 0.99),
    }))
}

async fn throughput(args: &LoadgenArgs, body: Bytes) -> Result<serde_json::Value> {
    let http = client(args.concurrency);
    let url = args.urls[0].clone();
    let warm_until = Instant::now() + Duration::from_millis(500);
    let stop_at = warm_until + Duration::from_millis(args.duration_ms);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let mut done = 0u64;
            loop {
                one(&http, &url, &body).await?;
                let now = Instant::now();
                if now >= stop_at {
                    return Ok::<_, anyhow::Error>(done);
                }
                if now >= warm_until {
                    done += 1;
                }
            }
        });
    }
    let mut completed = 0u64;
    while let Some(r) = tasks.join_next().await {
        completed += r.context("load task panicked")??;
    }
    let secs = Duration::from_millis(args.duration_ms).as_secs_f64();
    Ok(json!({"completed": completed, "rps": completed as f64 / secs}))
}

async fn hold(args: &LoadgenArgs, body: Bytes) -> Result<()> {
    let http = client(args.streams);
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.streams {
        let url = args.urls[i % args.urls.len()].clone();
        let (http, body, first_tx) = (http.clone(), body.clone(), first_tx.clone());
        tasks.spawn(async move {
            let req = hyper::Request::post(&url)
                .header("content-type", "application/json")
                .body(Full::new(body))
                .context("building the request")?;
            let resp = http.request(req).await.context("sending the request")?;
            if !resp.status().is_success() {
                bail!("{url} answered {}", resp.status());
            }
            let mut b = resp.into_body();
            let mut first = Some(first_tx);
            let mut bytes = 0usize;
            while let Some(frame) = b.frame().await {
                if let Some(data) = frame.context("reading the stream")?.data_ref() {
                    bytes += data.len();
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
            }
            Ok::<_, anyhow::Error>(bytes)
        });
    }
    drop(first_tx);
    let mut holding = 0usize;
    while holding < args.streams {
        tokio::select! {
            Some(()) = first_rx.recv() => holding += 1,
            Some(r) = tasks.join_next() => {
                r.context("stream task panicked")??;
                bail!("a stream ended before the others started");
            }
        }
    }
    println!("{}", json!({ "holding": holding }));
    // The parent measures the proxy now; a line (or EOF) on stdin lets the streams finish.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    })
    .await
    .context("waiting for stdin")?;
    let mut completed = 0usize;
    while let Some(r) = tasks.join_next().await {
        if r.context("stream task panicked")?? > 0 {
            completed += 1;
        }
    }
    println!("{}", json!({ "completed": completed }));
    Ok(())
}

/// Runs the load generator.
pub(crate) fn run(args: LoadgenArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let body = Bytes::from(args.body.clone());
    rt.block_on(async {
        match args.mode {
            Mode::Latency => println!("{}", latency(&args, body).await?),
            Mode::Throughput => println!("{}", throughput(&args, body).await?),
            Mode::Hold => hold(&args, body).await?,
        }
        Ok(())
    })
}
