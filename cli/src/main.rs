//! The `cocoon` command-line tool.
//!
//! `main` only parses and dispatches: each command group lives in its own module with a `run`
//! function. Results go to stdout, diagnostics to stderr; the exit codes are in [`exit`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attest;
mod completions;
mod devnet;
mod exit;
mod global;
mod keystore;
mod mnemonic;
mod output;
mod runtime;
mod tx;
mod wallet;

/// cocoon: confidential LLM inference paid in TON.
#[derive(Debug, Parser)]
#[command(
    name = "cocoon",
    version,
    about,
    long_about = None,
    after_help = exit::EXIT_CODES_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: global::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Attestation: verify quotes, decode RA-TLS certificates, check endpoints.
    Attest(attest::AttestArgs),
    /// Create, import, show and use the keystore wallet.
    Wallet(wallet::WalletArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Run the local devnet in the background: up, down, status, reset, fund, time.
    Devnet(devnet::DevnetArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = cli.global;
    let result = match cli.command {
        Command::Attest(args) => attest::run(args),
        Command::Wallet(args) => wallet::run(&global, args),
        Command::Completions(args) => completions::run::<Cli>(args),
        Command::Devnet(args) => devnet::run(args),
    };
    exit::report(result)
}
