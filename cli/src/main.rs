//! The `cocoon` command-line tool.

mod attest;
mod devnet;

use clap::{Parser, Subcommand};

/// cocoon: confidential LLM inference paid in TON.
#[derive(Debug, Parser)]
#[command(name = "cocoon", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Attestation: verify quotes, decode RA-TLS certificates, check endpoints.
    Attest(attest::AttestArgs),
    /// Run the local devnet in the background: up, down, status, reset, fund, time.
    Devnet(devnet::DevnetArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Attest(args) => attest::run(args),
        Command::Devnet(args) => devnet::run(args),
    }
}
