//! `cocoon-gateway`: run a gateway (see `cocoon_gateway::daemon`).

use clap::Parser;

/// Run a cocoon gateway.
#[derive(Debug, Parser)]
#[command(name = "cocoon-gateway", version)]
struct Cli {
    #[command(flatten)]
    args: cocoon_daemon::launch::DaemonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cocoon_gateway::daemon::run(Cli::parse().args).await
}
