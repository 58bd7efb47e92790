//! `cocoon bench`: measures the figures of BRIEF §8 and writes them to one JSON file.
//!
//! - Request path (`path_*`, `direct_rps`, `ttft_overhead_ms`): gateway → proxy → worker → fake engine
//!   in this process over mutual TLS, against the same engine called directly; the load comes from a
//!   `cocoon bench loadgen` child process ([`path`]).
//! - Proxy memory (`proxy_rss_mb_1k_streams`): `cocoon proxy run` as its own process with 1,000 streams
//!   held open through it ([`rss`]).
//! - Settlement (`onchain_tx_per_10k_requests`): computed from the default thresholds and the measured
//!   per-request charge ([`onchain`]); `notes` says so.
//! - Gas and fees from the sandbox history (`sandbox-tests/gas.json`); attestation and engine figures
//!   from their crates' bench examples, run as child processes.
//!
//! Every measured key is the median over `--runs` repeated runs (the examples repeat internally). A key
//! that could not be measured is written as `null` and listed under `missing`.

mod loadgen;
mod onchain;
mod path;
mod rss;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

/// Arguments of `cocoon bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Internal: the load generator the bench runs as a child process.
    #[command(subcommand)]
    command: Option<BenchCommand>,
    /// Where the figures are written.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// The sandbox tests folder holding gas.json.
    #[arg(long, default_value = "sandbox-tests")]
    sandbox: PathBuf,
    /// Repeated runs of the request-path bench (figures are medians over them).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Sequential requests per latency series.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Repeated runs of the proxy memory bench (a fresh proxy process each).
    #[arg(long, default_value_t = 3)]
    rss_runs: usize,
    /// Streams held open for the proxy memory bench.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Skip the attestation and engine bench examples (they are built with cargo).
    #[arg(long)]
    skip_examples: bool,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Load generator (internal; run by `cocoon bench`).
    #[command(hide = true)]
    Loadgen(loadgen::LoadgenArgs),
}

/// Median of `v` (NaN when empty).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Runs `cocoon bench loadgen <args>` and parses the last line it printed.
pub(crate) async fn loadgen_json(args: &[&str]) -> Result<Value> {
    let exe = std::env::current_exe().context("locating the cocoon binary")?;
    let output = tokio::process::Command::new(exe)
        .args(["bench", "loadgen"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running the load generator")?;
    if !output.status.success() {
        anyhow::bail!(
            "load generator failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("load generator printed {line:?}"))
}

fn gas(sandbox: &Path, out: &mut Map<String, Value>) -> Result<()> {
    let path = sandbox.join("gas.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let g: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for key in ["charge", "payout"] {
        out.insert(format!("{key}_gas"), g[key]["gas"].clone());
        out.insert(format!("{key}_fee_ton"), g[key]["fee_ton"].clone());
    }
    Ok(())
}

/// Runs `cargo run --release -p <package> --example <name>` and returns its last stdout line as JSON.
fn example(package: &str, name: &str) -> Result<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            package,
            "--example",
            name,
        ])
        .output()
        .with_context(|| format!("running the {package} bench"))?;
    if !output.status.success() {
        anyhow::bail!(
            "{package} bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("{package} bench printed {line:?}"))
}

/// Every key the results file must hold.
const KEYS: &[&str] = &[
    "path_overhead_p50_ms",
    "path_overhead_p99_ms",
    "path_throughput_ratio",
    "path_rps",
    "direct_rps",
    "ttft_overhead_ms",
    "charge_gas",
    "payout_gas",
    "charge_fee_ton",
    "payout_fee_ton",
    "onchain_tx_per_10k_requests",
    "quote_verify_ms",
    "ratls_handshake_ms",
    "proxy_rss_mb_1k_streams",
    "engine_tokens_per_s",
];

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    json!({"cpu": cpu, "cores": cores})
}

async fn network_figures(
    args: &BenchArgs,
    out: &mut Map<String, Value>,
    notes: &mut Map<String, Value>,
) {
    eprintln!("running the request-path bench…");
    let plan = path::PathPlan {
        runs: args.runs.max(1),
        requests: args.requests.max(10),
        concurrency: 32,
        duration_ms: 3000,
    };
    match path::measure(plan).await {
        Ok((figures, per_request)) => {
            out.extend(figures);
            match onchain::figures(per_request) {
                Ok((tx, note)) => {
                    out.insert("onchain_tx_per_10k_requests".into(), json!(tx));
                    notes.insert("onchain_tx_per_10k_requests".into(), note);
                }
                Err(e) => eprintln!("settlement figure unavailable: {e:#}"),
            }
        }
        Err(e) => eprintln!("request-path bench failed: {e:#}"),
    }
    notes.insert(
        "path".into(),
        json!({
            "engine": "cocoon_testkit::FakeEngine: cocoon-engine's fixed backend generating inline (5 prompt and 3 completion tokens, priced as 1 and 4), the same for path and direct",
            "path": "HTTP/1.1 → gateway → HTTP/2 over mutual TLS 1.3 → proxy → HTTP/2 over mutual TLS 1.3 → worker → HTTP/1.1 → engine; receipts signed, verified and committed to the proxy's ledger",
            "load": "`cocoon bench loadgen` child process; latency: sequential on one keep-alive connection; throughput: 32 closed-loop clients for 3 s",
            "overheads": "path minus direct within each run, then the median over runs",
            "runs": plan.runs,
            "requests_per_series": plan.requests,
        }),
    );
    eprintln!("running the proxy memory bench…");
    match rss::measure(args.rss_runs.max(1), args.streams.max(1)).await {
        Ok(figures) => out.extend(figures),
        Err(e) => eprintln!("proxy memory bench failed: {e:#}"),
    }
    notes.insert(
        "proxy_rss_mb_1k_streams".into(),
        json!({
            "method": "VmRSS of a `cocoon proxy run` process (MiB) with the streams open; VmHWM after they finished is proxy_peak_rss_mb_1k_streams",
            "streams": args.streams,
            "runs": args.rss_runs,
        }),
    );
}

pub(crate) fn run(args: BenchArgs) -> Result<()> {
    if let Some(BenchCommand::Loadgen(l)) = args.command {
        return loadgen::run(l);
    }
    let mut out = Map::new();
    let mut notes = Map::new();
    if let Err(e) = gas(&args.sandbox, &mut out) {
        eprintln!("gas figures unavailable: {e:#}");
    }
    notes.insert(
        "gas".into(),
        json!(
            "charge/payout gas and fees from the sandbox suites' history (sandbox-tests/gas.json)"
        ),
    );
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // The memory bench holds every stream on an engine thread of this process.
        .max_blocking_threads(args.streams.max(1) + 512)
        .build()
        .context("starting the async runtime")?
        .block_on(network_figures(&args, &mut out, &mut notes));
    let examples: [(&str, &str, &[&str]); 2] = [
        (
            "cocoon-attestation",
            "attestation_bench",
            &["quote_verify_ms", "ratls_handshake_ms"],
        ),
        ("cocoon-engine", "engine_bench", &["engine_tokens_per_s"]),
    ];
    for (package, name, keys) in examples {
        if args.skip_examples {
            continue;
        }
        eprintln!("running the {package} bench…");
        match example(package, name) {
            Ok(v) => {
                for k in keys {
                    out.insert((*k).to_owned(), v[*k].clone());
                }
            }
            Err(e) => eprintln!("{e:#}"),
        }
    }
    let missing: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| {
            out.get(*k)
                .is_none_or(|v| v.is_null() || v.as_f64().is_some_and(f64::is_nan))
        })
        .collect();
    for k in &missing {
        out.insert((*k).to_owned(), Value::Null);
    }
    out.insert("missing".into(), json!(missing));
    out.insert("machine".into(), machine());
    out.insert("notes".into(), Value::Object(notes));
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&Value::Object(out))?;
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{text}");
    if !missing.is_empty() {
        anyhow::bail!("not measured: {}", missing.join(", "));
    }
    Ok(())
}
