//! `proxy_rss_mb_1k_streams`: the proxy runs as its own process (`cocoon proxy run`), 1,000 streams are
//! held open through it (the engine sends a first chunk, then waits), and its resident set is read from
//! `/proc/<pid>/status` while they are open.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::tls::{DevTls, Role};
use cocoon_protocol::PriceParams;
use cocoon_testkit::{FakeEngine, gateway_config, worker_config};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::median;
use super::path::MODEL;

/// A streamed request the fake engine holds open after its first chunk (the prompt says `HOLD`).
const HOLD_BODY: &str = r#"{"model":"fake-model","max_tokens":4,"stream":true,"messages":[{"role":"user","content":"HOLD"}]}"#;

/// HTTP/2 peers here allow 200 concurrent streams per connection (hyper's default): the streams are
/// spread over several gateways (one proxy connection each) and several workers.
const STREAMS_PER_CONNECTION: usize = 180;

/// `VmRSS` and `VmHWM` of a process, MiB.
fn memory_mib(pid: u32) -> Result<(f64, f64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in {path}"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("bad line {line:?}"))?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

async fn next_json(
    lines: &mut tokio::io::Lines<BufReader<ChildStdout>>,
    what: &str,
) -> Result<Value> {
    loop {
        let line = lines
            .next_line()
            .await
            .with_context(|| format!("reading {what}"))?
            .with_context(|| format!("{what} exited early"))?;
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            return Ok(v);
        }
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr().context("local address")?.port())
}

async fn wait_for_workers(admin: u16, want: usize) -> Result<()> {
    let url = format!("http://127.0.0.1:{admin}/status");
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(uri) = url.parse::<hyper::Uri>()
            && let Ok(resp) = http.get(uri).await
            && let Ok(body) = http_body_util::BodyExt::collect(resp.into_body()).await
            && let Ok(v) = serde_json::from_slice::<Value>(&body.to_bytes())
            && v["workers"].as_array().map_or(0, Vec::len) >= want
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{want} workers did not connect to the proxy process");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One run: a fresh proxy process, `streams` held streams; returns (idle RSS, RSS with the streams
/// open, peak RSS) in MiB.
async fn one_run(streams: usize) -> Result<(f64, f64, f64)> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let admin = free_port()?;
    let exe = std::env::current_exe().context("locating the cocoon binary")?;
    let mut proxy: Child = Command::new(&exe)
        .args(["proxy", "run", "--insecure-dev-tls", "--dev-client-credit"])
        .arg(u128::MAX.to_string())
        .args(["--set", "client_listen=127.0.0.1:0"])
        .args(["--set", "worker_listen=127.0.0.1:0"])
        .arg("--set")
        .arg(format!("admin_listen=127.0.0.1:{admin}"))
        .arg("--set")
        .arg(format!(
            "store_path={}",
            dir.path().join("ledger.redb").display()
        ))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting `cocoon proxy run`")?;
    let pid = proxy.id().context("proxy pid")?;
    let mut proxy_out = BufReader::new(proxy.stdout.take().context("proxy stdout")?).lines();
    let addrs = tokio::time::timeout(Duration::from_secs(20), next_json(&mut proxy_out, "proxy"))
        .await
        .context("the proxy printed no addresses")??;
    let client_addr = addrs["client_addr"]
        .as_str()
        .context("no client_addr")?
        .to_owned();
    let worker_addr = addrs["worker_addr"]
        .as_str()
        .context("no worker_addr")?
        .to_owned();

    let engine = FakeEngine::start().await.context("starting the engine")?;
    let connections = streams.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let mut conf = worker_config(&worker_addr, &engine.url(), MODEL, 1000);
        conf.capacity = u32::try_from(STREAMS_PER_CONNECTION).unwrap_or(u32::MAX);
        conf.reconnect_ms = cocoon_testkit::roles::worker::WorkerConfig::default().reconnect_ms;
        let tls = Arc::new(DevTls::generate(Role::Worker).context("worker TLS")?);
        workers.push(
            cocoon_worker::start(conf, tls, PriceParams::default(), Registry::new())
                .context("starting a worker")?,
        );
    }
    let mut gateways = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..connections {
        let conf = gateway_config(&client_addr, None);
        let tls = Arc::new(DevTls::generate(Role::Client).context("client TLS")?);
        let g = cocoon_gateway::start(conf, tls, Registry::new())
            .await
            .context("starting a gateway")?;
        urls.push(format!("http://{}/v1/chat/completions", g.addr));
        gateways.push(g);
    }
    wait_for_workers(admin, connections).await?;
    let (idle, _) = memory_mib(pid)?;

    let mut args = vec![
        "bench".to_owned(),
        "loadgen".into(),
        "--mode".into(),
        "hold".into(),
        "--body".into(),
        HOLD_BODY.into(),
        "--streams".into(),
        streams.to_string(),
    ];
    for u in &urls {
        args.push("--url".into());
        args.push(u.clone());
    }
    let mut load = Command::new(&exe)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the load generator")?;
    let mut load_out = BufReader::new(load.stdout.take().context("loadgen stdout")?).lines();
    let held = tokio::time::timeout(
        Duration::from_secs(120),
        next_json(&mut load_out, "the load generator"),
    )
    .await
    .context("the streams did not all open")??;
    if held["holding"].as_u64() != Some(streams as u64) {
        bail!("load generator: {held}");
    }
    // Let the proxy settle with every stream open, then read its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (open, _) = memory_mib(pid)?;

    let mut stdin = load.stdin.take().context("loadgen stdin")?;
    stdin.write_all(b"release\n").await.context("releasing")?;
    drop(stdin);
    let completed = async {
        loop {
            engine.release();
            tokio::select! {
                v = next_json(&mut load_out, "the load generator") => return v,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(120), completed)
        .await
        .context("the held streams did not finish")??;
    if done["completed"].as_u64() != Some(streams as u64) {
        bail!("load generator: {done}");
    }
    let (_, peak) = memory_mib(pid)?;
    let _ = load.wait().await;
    for g in gateways {
        g.shutdown(Duration::from_secs(2)).await;
    }
    for w in workers {
        w.shutdown(Duration::from_secs(2)).await;
    }
    proxy.start_kill().context("stopping the proxy")?;
    let _ = proxy.wait().await;
    Ok((idle, open, peak))
}

/// Measures `proxy_rss_mb_1k_streams` over `runs` fresh proxy processes.
pub(crate) async fn measure(runs: usize, streams: usize) -> Result<serde_json::Map<String, Value>> {
    let (mut idle, mut open, mut peak) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("  proxy memory run {}/{runs}", run + 1);
        let (i, o, p) = one_run(streams).await?;
        idle.push(i);
        open.push(o);
        peak.push(p);
    }
    let mut out = serde_json::Map::new();
    out.insert("proxy_rss_mb_1k_streams".into(), json!(median(&open)));
    out.insert("proxy_rss_mb_idle".into(), json!(median(&idle)));
    out.insert("proxy_peak_rss_mb_1k_streams".into(), json!(median(&peak)));
    Ok(out)
}
