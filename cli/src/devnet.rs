//! `cocoon devnet up|down|status|reset|fund|time`: the local devnet as a background process.
//!
//! The state folder (default `.cache/devnet`, or `$COCOON_DEVNET_DIR`, or `--dir`) keeps the PID and
//! URL (`devnet.json`), the chain (`state.json`) and the server's log (`devnet.log`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use cocoon_devnet::{DetachedDevnet, DetachedStatus, DevnetControl};

/// Arguments of `cocoon devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// State folder: PID, URL, chain state and log.
    #[arg(long, env = "COCOON_DEVNET_DIR", default_value = ".cache/devnet")]
    dir: PathBuf,
    #[command(subcommand)]
    command: DevnetCommand,
}

#[derive(Debug, Subcommand)]
enum DevnetCommand {
    /// Start the devnet in the background (or find the running one) and print its URL.
    Up {
        /// Port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Stop the devnet and check that its process is gone.
    Down,
    /// Say whether the devnet runs, with its URL and masterchain seqno.
    Status,
    /// Stop the devnet if it runs and delete its chain state.
    Reset,
    /// Send TON from the devnet treasury to an address (deployed or not).
    Fund {
        /// Address, raw or user-friendly.
        address: String,
        /// Amount in TON, e.g. 1.5.
        amount: String,
    },
    /// Move chain time forward (`--advance SECS`) or to a unix time (`--set UNIX`).
    Time {
        /// Seconds to move forward.
        #[arg(long, conflicts_with = "set")]
        advance: Option<u64>,
        /// Unix time to move to (never backwards).
        #[arg(long)]
        set: Option<u64>,
    },
}

/// Runs one `cocoon devnet` command.
pub(crate) fn run(args: DevnetArgs) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_async(args))
}

async fn running_control(devnet: &DetachedDevnet) -> Result<DevnetControl> {
    match devnet.running()? {
        Some(state) => Ok(DevnetControl::new(state.url)),
        None => bail!(
            "no devnet is running in {}; start one with `cocoon devnet up`",
            devnet.dir().display()
        ),
    }
}

async fn run_async(args: DevnetArgs) -> Result<()> {
    let devnet = DetachedDevnet::new(&args.dir);
    match args.command {
        DevnetCommand::Up { port } => {
            let state = devnet.up(port).await.context("starting the devnet")?;
            eprintln!(
                "devnet running (pid {}, state {})",
                state.pid,
                state.state_file.display()
            );
            println!("{}", state.url);
        }
        DevnetCommand::Down => {
            if devnet.down().await.context("stopping the devnet")? {
                println!("stopped");
            } else {
                println!("not running");
            }
        }
        DevnetCommand::Status => match devnet.status().await.context("devnet status")? {
            DetachedStatus::Running { state, seqno } => {
                println!(
                    "running {} pid {} seqno {seqno} state {}",
                    state.url,
                    state.pid,
                    state.state_file.display()
                );
            }
            DetachedStatus::Stopped => println!("stopped"),
        },
        DevnetCommand::Reset => {
            devnet.reset().await.context("resetting the devnet")?;
            println!("reset: state deleted from {}", devnet.dir().display());
        }
        DevnetCommand::Fund { address, amount } => {
            let addr = cocoon_ton::parse_address(&address)?;
            let nanotons = cocoon_ton::parse_ton(&amount)
                .with_context(|| format!("amount {amount:?} (TON, e.g. 1.5)"))?;
            let control = running_control(&devnet).await?;
            let receipt = control.fund(addr.to_base64_url(), nanotons).await?;
            println!(
                "{} balance {} TON",
                receipt.address,
                cocoon_ton::format_ton(receipt.balance)
            );
        }
        DevnetCommand::Time { advance, set } => {
            let control = running_control(&devnet).await?;
            let now = match (advance, set) {
                (Some(secs), None) => control.advance_time(secs).await?,
                (None, Some(unix)) => control.set_time(unix).await?,
                _ => control.status().await?.now,
            };
            println!("{now}");
        }
    }
    Ok(())
}
