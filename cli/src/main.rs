//! The `cocoon` command-line tool.

use clap::{Parser, Subcommand};

/// cocoon: confidential LLM inference paid in TON.
#[derive(Debug, Parser)]
#[command(name = "cocoon", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
