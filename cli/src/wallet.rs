//! `cocoon wallet`: create or import a wallet into the keystore, show it, send TON.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use cocoon_ton::{
    AccountState, CellBuilder, Transfer, Wallet, WalletVersion, parse_address_with_flags,
    parse_ton, to_friendly, to_raw,
};
use zeroize::Zeroizing;

use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::keystore::{self, Keystore};
use crate::output::{Fields, OutputArgs};
use crate::{mnemonic, runtime, tx};

/// Wallet: create, import, show and use the keystore wallet.
#[derive(Debug, Args)]
pub(crate) struct WalletArgs {
    #[command(subcommand)]
    command: WalletCommand,
}

/// Wallet contract version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VersionChoice {
    /// wallet v4r2
    V4r2,
    /// wallet v5r1 (W5)
    V5r1,
}

impl VersionChoice {
    fn version(self) -> WalletVersion {
        match self {
            VersionChoice::V4r2 => WalletVersion::V4R2,
            VersionChoice::V5r1 => WalletVersion::V5R1,
        }
    }
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Create a wallet: a new 24-word mnemonic, encrypted into the keystore.
    New {
        /// Wallet contract version.
        #[arg(long, value_enum, default_value = "v5r1")]
        wallet_version: VersionChoice,
        /// Also print the mnemonic (write it down; it is the only backup).
        #[arg(long)]
        show_mnemonic: bool,
        /// Replace an existing keystore file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Import a 24-word mnemonic into the keystore (read from --mnemonic-file, a prompt or stdin).
    Import {
        /// Wallet contract version.
        #[arg(long, value_enum, default_value = "v5r1")]
        wallet_version: VersionChoice,
        /// File holding the mnemonic ("-" for stdin).
        #[arg(long, value_name = "PATH")]
        mnemonic_file: Option<PathBuf>,
        /// Replace an existing keystore file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show the keystore wallet's address (no passphrase needed).
    Address {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show the balance and state of the keystore wallet, or of ADDRESS.
    Balance {
        /// Any address (raw or user-friendly); default: the keystore wallet.
        address: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Send TON from the keystore wallet and wait for the transaction.
    Send {
        /// Destination address (raw or user-friendly).
        to: String,
        /// Amount in TON, decimals allowed (e.g. 1.5).
        amount: String,
        /// Text comment attached to the transfer.
        #[arg(long)]
        comment: Option<String>,
        /// Bounce flag; default: from the address form, or bounce only to deployed contracts.
        #[arg(long)]
        bounce: Option<bool>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Runs a `wallet` subcommand.
pub(crate) fn run(global: &GlobalArgs, args: WalletArgs) -> Result<()> {
    match args.command {
        WalletCommand::New {
            wallet_version,
            show_mnemonic,
            force,
            out,
        } => {
            let phrase = mnemonic::generate()?;
            let fields = store(global, &phrase, wallet_version.version(), force)?;
            let fields = if show_mnemonic {
                fields.add("mnemonic", phrase.as_str())
            } else {
                crate::output::note(
                    "the mnemonic is stored encrypted only; run `wallet new --show-mnemonic` to see it at creation",
                );
                fields
            };
            fields.print(out.json)
        }
        WalletCommand::Import {
            wallet_version,
            mnemonic_file,
            force,
            out,
        } => {
            let phrase = read_mnemonic(mnemonic_file)?;
            store(global, &phrase, wallet_version.version(), force)?.print(out.json)
        }
        WalletCommand::Address { out } => {
            let path = global.keystore_path();
            let wallet =
                Keystore::load(&path)?.watch_wallet(&path, global.network.ton_network())?;
            wallet_fields(global, &wallet).print(out.json)
        }
        WalletCommand::Balance { address, out } => runtime::block_on(balance(global, address, out)),
        WalletCommand::Send {
            to,
            amount,
            comment,
            bounce,
            out,
        } => runtime::block_on(send(global, &to, &amount, comment, bounce, out)),
    }
}

/// Unlocks the keystore wallet (asks for the passphrase) for signing.
pub(crate) fn unlock(global: &GlobalArgs) -> Result<Wallet> {
    let path = global.keystore_path();
    let store = Keystore::load(&path)?;
    let pass = keystore::passphrase(false)?;
    store.unlock(&path, &pass, global.network.ton_network())
}

fn wallet_fields(global: &GlobalArgs, wallet: &Wallet) -> Fields {
    Fields::new()
        .add("address", wallet.address_friendly())
        .add("address_raw", to_raw(wallet.address()))
        .add("wallet_version", keystore::version_name(wallet.version()))
        .add("network", global.network.name())
}

fn store(global: &GlobalArgs, phrase: &str, version: WalletVersion, force: bool) -> Result<Fields> {
    let wallet =
        Wallet::from_mnemonic(phrase, version, global.network.ton_network()).map_err(|e| {
            fail(
                ExitKind::Usage,
                format!("{e}; a TON mnemonic is 24 English words"),
            )
        })?;
    let path = global.keystore_path();
    // Fail before asking for a passphrase.
    keystore::check_new_path(&path, force)?;
    let pass = keystore::passphrase(true)?;
    Keystore::seal(phrase, wallet.key_pair(), version, &pass)?.save(&path, force)?;
    Ok(wallet_fields(global, &wallet).add("keystore", path.display().to_string()))
}

fn read_mnemonic(file: Option<PathBuf>) -> Result<Zeroizing<String>> {
    let text = match file {
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => Zeroizing::new(
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None if std::io::stdin().is_terminal() => Zeroizing::new(
            rpassword::prompt_password("Mnemonic (24 words): ").context("reading the mnemonic")?,
        ),
        None => read_stdin()?,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    Ok(Zeroizing::new(words.join(" ").to_lowercase()))
}

fn read_stdin() -> Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the mnemonic from stdin")?;
    Ok(text)
}

/// Parses an address argument; a bad one is a usage error.
pub(crate) fn parse_addr(text: &str) -> Result<(cocoon_ton::TonAddress, Option<bool>)> {
    let (addr, flags) = parse_address_with_flags(text).map_err(|e| {
        fail(
            ExitKind::Usage,
            format!("{e} (expected raw 0:<hex> or user-friendly base64)"),
        )
    })?;
    Ok((addr, flags.map(|f| f.bounceable)))
}

/// Parses a TON amount argument; a bad one is a usage error.
pub(crate) fn parse_amount(text: &str, what: &str) -> Result<u128> {
    parse_ton(text).map_err(|e| {
        fail(
            ExitKind::Usage,
            format!("{what}: {e} (write TON with up to 9 decimals, e.g. 1.5)"),
        )
    })
}

/// The address given, else the keystore wallet's (read without unlocking the keystore).
pub(crate) fn given_or_keystore_address(
    global: &GlobalArgs,
    given: Option<&str>,
) -> Result<cocoon_ton::TonAddress> {
    if let Some(a) = given {
        return Ok(parse_addr(a)?.0);
    }
    let path = global.keystore_path();
    Ok(Keystore::load(&path)?
        .watch_wallet(&path, global.network.ton_network())?
        .address()
        .clone())
}

async fn balance(global: &GlobalArgs, address: Option<String>, out: OutputArgs) -> Result<()> {
    let network = global.network.ton_network();
    let addr = given_or_keystore_address(global, address.as_deref())?;
    let client = global.client()?;
    let info = cocoon_ton::TonClient::get_wallet_information(&client, &addr)
        .await
        .context("reading the account")?;
    let state = match info.state {
        AccountState::Active => "active",
        AccountState::Uninitialized => "uninitialized",
        AccountState::Frozen => "frozen",
    };
    Fields::new()
        .add(
            "address",
            to_friendly(
                &addr,
                info.state == AccountState::Active && !info.wallet,
                network,
            ),
        )
        .add("address_raw", to_raw(&addr))
        .ton("balance", info.balance)
        .add("state", state)
        .add("wallet_type", info.wallet_type.clone())
        .add("seqno", info.seqno)
        .print(out.json)
}

async fn send(
    global: &GlobalArgs,
    to: &str,
    amount: &str,
    comment: Option<String>,
    bounce: Option<bool>,
    out: OutputArgs,
) -> Result<()> {
    let (dest, flag) = parse_addr(to)?;
    let nanotons = parse_amount(amount, "amount")?;
    let body = match &comment {
        Some(text) => {
            if text.len() > 120 {
                return Err(fail(ExitKind::Usage, "--comment is limited to 120 bytes"));
            }
            let mut b = CellBuilder::new();
            b.store_u32(32, 0)?.store_string(text)?;
            Some(b.build()?.to_arc())
        }
        None => None,
    };
    let client = global.client()?;
    let bounce = match (bounce, flag) {
        (Some(b), _) => b,
        (None, Some(b)) => b,
        (None, None) => {
            let info = cocoon_ton::TonClient::get_address_information(&client, &dest).await?;
            info.state == AccountState::Active
        }
    };
    let wallet = unlock(global)?;
    let mut transfer = Transfer::new(dest.clone(), nanotons).with_bounce(bounce);
    transfer.body = body;
    let sent = tx::send(global, &client, &wallet, transfer, "send").await?;
    Fields::new()
        .add("from", wallet.address_friendly())
        .add(
            "to",
            to_friendly(&dest, bounce, global.network.ton_network()),
        )
        .ton("amount", nanotons)
        .add("bounce", bounce)
        .add("comment", comment)
        .nest("transaction", tx::tx_fields(&sent))
        .print(out.json)
}
