//! `cocoon-engine`: the built-in inference engine as a standalone OpenAI-compatible server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use cocoon_engine::{BackendKind, DEFAULT_MAX_BODY_BYTES, EngineConfig};

/// Serve a GGUF model (or the fixed test backend) over OpenAI-compatible HTTP.
#[derive(Debug, Parser)]
#[command(name = "cocoon-engine", version)]
struct Args {
    /// GGUF model file for --backend gguf [default: $COCOON_MODEL_PATH, else
    /// .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf in the current folder or a parent up to the
    /// repository root, where `make setup` puts it].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Compute threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// `gguf` (the real model) or `fixed` (deterministic zero-latency echo for tests and benches).
    #[arg(long, default_value = "gguf")]
    backend: String,
    /// Model id served (default: the GGUF file stem, or `cocoon-fixed`).
    #[arg(long)]
    model_id: Option<String>,
    /// Concurrent generations (default: 2 for gguf, 256 for fixed).
    #[arg(long)]
    slots: Option<usize>,
    /// Requests that may wait for a slot before 503 (default: 64 for gguf, 4096 for fixed).
    #[arg(long)]
    max_queued: Option<usize>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Cap on prompt + completion tokens (default: the model's context).
    #[arg(long)]
    max_context: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(threads) = args.threads {
        set_compute_threads(threads);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the async runtime")?
        .block_on(run(args))
}

/// candle sizes its process-wide compute pools from `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS` on
/// first use.
#[allow(unsafe_code)]
fn set_compute_threads(threads: usize) {
    // SAFETY: called at the top of `main`, before the runtime or any other thread exists, so no
    // other thread can be reading the environment concurrently.
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let backend: BackendKind = args.backend.parse()?;
    let config = EngineConfig {
        backend,
        model_path: if backend == BackendKind::Gguf {
            Some(cocoon_engine::locate_model(args.model.as_deref())?)
        } else {
            None
        },
        model_id: args.model_id,
        threads: args.threads,
        slots: args.slots,
        max_queued: args.max_queued,
        max_body_bytes: args.max_body_bytes,
        max_context: args.max_context,
        listen: args.listen,
    };
    config.validate()?;
    let engine = cocoon_engine::start(config)
        .await
        .context("starting the engine")?;
    println!("engine listening on {}", engine.url());
    let stop = engine.shutdown_signal();
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("shutting down: finishing in-flight generations");
        let _ = stop.send(true);
    });
    engine.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
