//! `cocoon-worker`: run a worker (see `cocoon_worker::daemon`).

use clap::Parser;

/// Run a cocoon worker.
#[derive(Debug, Parser)]
#[command(name = "cocoon-worker", version)]
struct Cli {
    #[command(flatten)]
    args: cocoon_daemon::launch::DaemonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cocoon_worker::daemon::run(Cli::parse().args).await
}
