//! The `cocoon` command-line tool.
//!
//! `main` only parses and dispatches: each command group lives in its own module with a `run`
//! function. Results go to stdout, diagnostics to stderr; the exit codes are in [`exit`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attest;
mod audit;
#[cfg(feature = "bench")]
mod bench;
mod client;
mod common;
mod completions;
mod demo;
mod deploy;
mod devnet;
mod exit;
mod global;
mod gov;
mod image;
mod keystore;
mod kms;
mod mnemonic;
mod ops;
mod output;
mod receipt;
mod runtime;
mod stake;
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
    /// Deploy a root contract from a parameters file (the keystore wallet becomes its owner).
    Deploy(deploy::DeployArgs),
    /// Governance (root owner): images, models, proxies, parameters, ownership.
    Gov(gov::GovArgs),
    /// GPU owner: stake, unbond, withdraw, claim payouts, status.
    Worker(stake::WorkerArgs),
    /// Proxy operator: stake, unbond, withdraw, withdraw earnings, status (with the payout pool).
    Proxy(stake::ProxyArgs),
    /// App developer: escrow with a proxy (open, top-up, withdraw, close, status).
    Client(client::ClientArgs),
    /// Key service: run it, bind a TD's boot key with the operator's wallet, a proxy's public key.
    Kms(kms::KmsArgs),
    /// Auditor: deployed code versus this repository, decoded state, the network registry.
    Audit(audit::AuditArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Run the local devnet in the background: up, down, status, reset, fund, time.
    Devnet(devnet::DevnetArgs),
    /// The whole network on a local devnet: one real request, settlement, a summary (INSECURE dev mode).
    Demo(demo::DemoArgs),
    /// TD images: measure boot artifacts (MRTD, RTMRs, image hash), replay event logs.
    Image(image::ImageArgs),
    /// Proof bundles: export receipts from a client gateway, verify them offline.
    Receipt(receipt::ReceiptArgs),
    /// Benchmarks (BRIEF §8): request path, proxy memory, settlement, gas, attestation, engine.
    #[cfg(feature = "bench")]
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = cli.global;
    let result = match cli.command {
        Command::Attest(args) => attest::run(args),
        Command::Wallet(args) => wallet::run(&global, args),
        Command::Deploy(args) => deploy::run(&global, args),
        Command::Gov(args) => gov::run(&global, args),
        Command::Worker(args) => stake::run_worker(&global, args),
        Command::Proxy(args) => stake::run_proxy(&global, args),
        Command::Client(args) => client::run(&global, args),
        Command::Audit(args) => audit::run(&global, args),
        Command::Completions(args) => completions::run::<Cli>(args),
        Command::Devnet(args) => devnet::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Kms(args) => kms::run(&global, args),
        #[cfg(feature = "bench")]
        Command::Bench(args) => bench::run(args),
        Command::Receipt(args) => receipt::run(&global, args),
        Command::Image(args) => image::run(args),
    };
    exit::report(result)
}
