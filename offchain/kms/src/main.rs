//! `cocoon-kms`: run a key service (see `cocoon_kms::daemon`).

use clap::Parser;

/// Run a cocoon key service.
#[derive(Debug, Parser)]
#[command(name = "cocoon-kms", version)]
struct Cli {
    #[command(flatten)]
    args: cocoon_daemon::launch::DaemonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cocoon_kms::daemon::run(Cli::parse().args).await
}
