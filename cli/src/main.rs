//! The `cocoon` command-line tool.

mod attest;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Attest(args) => attest::run(args),
    }
}
