//! `cocoon-proxy`: run a proxy (see `cocoon_proxy::daemon`).

use clap::Parser;

/// Run a cocoon proxy.
#[derive(Debug, Parser)]
#[command(name = "cocoon-proxy", version)]
struct Cli {
    #[command(flatten)]
    args: cocoon_proxy::daemon::RunArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cocoon_proxy::daemon::run(Cli::parse().args).await
}
