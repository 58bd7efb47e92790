//! `cocoon-proxy`: run a proxy (see `cocoon_proxy::run`).

use clap::Parser;

/// Run a cocoon proxy.
#[derive(Debug, Parser)]
#[command(name = "cocoon-proxy", version)]
struct Cli {
    #[command(flatten)]
    args: cocoon_proxy::run::RunArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cocoon_proxy::run::run(Cli::parse().args).await
}
