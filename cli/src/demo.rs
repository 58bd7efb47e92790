//! `cocoon demo`: the whole network on a local devnet, one real chat completion, settlement and a
//! summary; `--serve` keeps it up for any OpenAI client until Ctrl-C.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use cocoon_localnet::flow;
use cocoon_localnet::localnet::{EngineChoice, Funding, LocalNet};

/// Arguments of `cocoon demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the network up after the summary and print the gateway URL (Ctrl-C stops it).
    #[arg(long)]
    serve: bool,
    /// The GGUF model for the built-in engine [default: $COCOON_MODEL_PATH, else
    /// .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf in the current folder or a parent up to the
    /// repository root, where `make setup` puts it].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Use the zero-latency fixed engine instead of the model (no real tokens).
    #[arg(long)]
    fixed_engine: bool,
    /// The question asked.
    #[arg(
        long,
        default_value = "In one sentence, what is a trusted execution environment?"
    )]
    prompt: String,
    /// Completion token limit.
    #[arg(long, default_value_t = 48)]
    max_tokens: u32,
}

const INSECURE: &str = "\
################################################################################
#  INSECURE DEVELOPMENT MODE: simulated TEE. Every hop is RA-TLS, but the      #
#  quotes are made up in software by the simulated provider: nothing here is   #
#  confidential. Never use this mode with real prompts or real TON.            #
################################################################################";

pub(crate) fn run(args: DemoArgs) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(demo(args))
}

async fn demo(args: DemoArgs) -> Result<()> {
    let engine = if args.fixed_engine {
        EngineChoice::Fixed
    } else {
        let path = cocoon_engine::locate_model(args.model.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}\n(or pass --fixed-engine to run without a model)"))?;
        EngineChoice::Gguf(path)
    };
    eprintln!("{INSECURE}");
    // Warnings only (RUST_LOG overrides): each daemon's INSECURE notices (simulated quotes, keys
    // from the simulated key service) reach stderr.
    cocoon_daemon::init_tracing_with_default(false, "warn");
    eprintln!("starting the devnet, deploying the contracts, staking, opening an escrow…");
    let net = LocalNet::start(engine, Funding::default())
        .await
        .context("starting the local network")?;
    eprintln!("network up; asking: {}", args.prompt);
    let summary = flow::run(&net, &args.prompt, args.max_tokens).await;
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            let _ = net.shutdown().await;
            return Err(e).context("running the demo request");
        }
    };
    println!("{summary}");
    if args.serve {
        println!("gateway: {}", net.gateway_url());
        println!("tee: {}", cocoon_localnet::localnet::TEE_NOTICE);
        eprintln!("{INSECURE}");
        eprintln!("serving until Ctrl-C or SIGTERM (model `{}`)", net.model);
        cocoon_daemon::shutdown::os_signal().await;
        eprintln!("shutting down: draining streams, stopping daemons and the devnet");
    }
    net.shutdown().await.context("shutting down")?;
    Ok(())
}
