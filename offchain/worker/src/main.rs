//! `cocoon-worker`: run a worker (see `cocoon_worker::run`).

use clap::Parser;

/// Run a cocoon worker.
#[derive(Debug, Parser)]
#[command(name = "cocoon-worker", version)]
struct Cli {
    #[command(flatten)]
    args: cocoon_worker::run::RunArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cocoon_worker::run::run(Cli::parse().args).await
}
