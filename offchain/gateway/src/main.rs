//! `cocoon-gateway`: run a gateway (see `cocoon_gateway::run`).

use clap::Parser;

/// Run a cocoon gateway.
#[derive(Debug, Parser)]
#[command(name = "cocoon-gateway", version)]
struct Cli {
    #[command(flatten)]
    args: cocoon_gateway::run::RunArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cocoon_gateway::run::run(Cli::parse().args).await
}
