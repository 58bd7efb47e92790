//! `cocoon worker` and `cocoon proxy`: stake, unbond, withdraw, claim payouts, status.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use cocoon_contracts::CellCodec;
use cocoon_contracts::chain::{ChainError, RootHandle, StakeHandle};
use cocoon_contracts::fees::{
    ROOT_OPEN_VALUE, STAKE_CLAIM_VALUE, STAKE_DEPOSIT_FEE, STAKE_OWNER_OP_VALUE,
};
use cocoon_contracts::state::{ROLE_PROXY, STAKE_ACTIVE, StakeStorage};
use cocoon_contracts::statements::SignedPayout;
use cocoon_ton::{HttpTonClient, TonAddress, Wallet};

use crate::common::{RoleChoice, contract_address, friendly_raw, parse_hash};
use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::keystore::Keystore;
use crate::output::{Fields, OutputArgs};
use crate::wallet::{parse_addr, parse_amount, unlock};
use crate::{ops, runtime, tx};

#[derive(Debug, Subcommand)]
enum StakeCommand {
    /// Open the stake (or add to it) through the root.
    Stake {
        /// TON to stake.
        #[arg(long)]
        amount: String,
        /// Ed25519 public key the TEE signs with (64 hex digits); default: the wallet's key.
        #[arg(long)]
        key: Option<String>,
    },
    /// Start unbonding (withdrawable after the unbonding delay).
    Unbond {
        /// TON to unbond.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        amount: Option<String>,
        /// Unbond everything staked.
        #[arg(long)]
        all: bool,
    },
    /// Withdraw what finished unbonding.
    Withdraw,
    /// Show the stake: address, amounts, key, delays, payouts.
    Status {
        /// Stake owner (default: the keystore wallet).
        #[arg(long)]
        owner: Option<String>,
    },
}

/// Arguments of `cocoon worker` (the stake commands plus `claim`).
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    out: OutputArgs,
    #[command(subcommand)]
    command: WorkerCommand,
}

#[derive(Debug, Subcommand)]
enum WorkerCommand {
    #[command(flatten)]
    Stake(StakeCommand),
    /// Run the worker daemon (dials proxies, serves them through an inference engine).
    Run(cocoon_daemon::launch::DaemonArgs),
    /// Claim a proxy-signed payout voucher from the proxy's vault.
    Claim {
        /// The signed payout voucher: BoC in hex (as the worker daemon stores it).
        #[arg(long)]
        voucher: String,
    },
}

/// Arguments of `cocoon proxy` (the stake commands plus `withdraw-earnings`).
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    #[command(flatten)]
    out: OutputArgs,
    #[command(subcommand)]
    command: ProxyCommand,
}

#[derive(Debug, Subcommand)]
enum ProxyCommand {
    #[command(flatten)]
    Stake(StakeCommand),
    /// Run the proxy daemon (admits clients, routes to workers, records charges and payouts).
    Run(cocoon_proxy::daemon::RunArgs),
    /// Withdraw the proxy's share of what clients paid into the vault (see `earnings_available`).
    WithdrawEarnings {
        /// TON to withdraw.
        #[arg(long)]
        amount: String,
    },
}

/// Runs a `worker` subcommand.
pub(crate) fn run_worker(global: &GlobalArgs, args: WorkerArgs) -> Result<()> {
    if let WorkerCommand::Run(run) = args.command {
        return runtime::block_on_daemon(cocoon_worker::daemon::run(run));
    }
    let root = global.root.handle()?;
    match args.command {
        WorkerCommand::Stake(cmd) => {
            run_stake(global, RoleChoice::Worker, root, cmd, args.out.json)
        }
        WorkerCommand::Claim { voucher } => {
            runtime::block_on(claim(global, &voucher, args.out.json))
        }
        WorkerCommand::Run(_) => unreachable!("handled above"),
    }
}

/// Runs a `proxy` subcommand.
pub(crate) fn run_proxy(global: &GlobalArgs, args: ProxyArgs) -> Result<()> {
    if let ProxyCommand::Run(run) = args.command {
        // With --keystore (or COCOON_KEYSTORE) the operator wallet comes from the CLI's keystore.
        let operator = match &global.keystore {
            Some(_) => Some(crate::wallet::unlock(global)?),
            None => None,
        };
        return runtime::block_on_daemon(cocoon_proxy::daemon::run_with(run, operator));
    }
    let root = global.root.handle()?;
    match args.command {
        ProxyCommand::Stake(cmd) => run_stake(global, RoleChoice::Proxy, root, cmd, args.out.json),
        ProxyCommand::WithdrawEarnings { amount } => {
            runtime::block_on(withdraw_earnings(global, &root, &amount, args.out.json))
        }
        ProxyCommand::Run(_) => unreachable!("handled above"),
    }
}

async fn withdraw_earnings(
    global: &GlobalArgs,
    root: &RootHandle,
    amount: &str,
    json: bool,
) -> Result<()> {
    let nanotons = parse_amount(amount, "--amount")?;
    let client = global.client()?;
    let wallet = unlock(global)?;
    let (stake, _) = read_stake(global, &client, root, wallet.address(), RoleChoice::Proxy).await?;
    let f = stake.withdraw_earnings(&client, &wallet, nanotons);
    let outcome = ops::op(
        global,
        &client,
        &wallet,
        STAKE_OWNER_OP_VALUE,
        "withdraw earnings",
        f,
    )
    .await?;
    after_op(global, &client, RoleChoice::Proxy, &stake, &outcome, json).await
}

fn run_stake(
    global: &GlobalArgs,
    role: RoleChoice,
    root: RootHandle,
    cmd: StakeCommand,
    json: bool,
) -> Result<()> {
    runtime::block_on(async move {
        let client = global.client()?;
        match cmd {
            StakeCommand::Status { owner } => {
                let owner = match owner {
                    Some(o) => parse_addr(&o)?.0,
                    None => {
                        let path = global.keystore_path();
                        Keystore::load(&path)?
                            .watch_wallet(&path, global.network.ton_network())?
                            .address()
                            .clone()
                    }
                };
                let (stake, storage) = read_stake(global, &client, &root, &owner, role).await?;
                status_fields(global, &client, role, &stake, &storage)
                    .await?
                    .print(json)
            }
            StakeCommand::Stake { amount, key } => {
                let nanotons = parse_amount(&amount, "--amount")?;
                let wallet = unlock(global)?;
                let key = match key {
                    Some(k) => parse_hash(&k, "--key")?,
                    None => wallet
                        .public_key()
                        .try_into()
                        .context("the wallet public key is not 32 bytes")?,
                };
                let value = nanotons
                    .checked_add(ROOT_OPEN_VALUE + STAKE_DEPOSIT_FEE)
                    .ok_or_else(|| fail(ExitKind::Usage, "--amount is too large"))?;
                let f = root.open_stake(&client, &wallet, role.code(), key, value);
                let what = format!("{} stake", role.name());
                let outcome = ops::op(global, &client, &wallet, value, &what, f).await?;
                let (stake, storage) =
                    read_stake(global, &client, &root, wallet.address(), role).await?;
                status_fields(global, &client, role, &stake, &storage)
                    .await?
                    .nest("transaction", tx::tx_fields(&outcome.wallet_tx))
                    .print(json)
            }
            StakeCommand::Unbond { amount, all } => {
                let wallet = unlock(global)?;
                let (stake, storage) =
                    read_stake(global, &client, &root, wallet.address(), role).await?;
                let nanotons = match (amount, all) {
                    (_, true) => storage.staked,
                    (Some(a), false) => parse_amount(&a, "--amount")?,
                    (None, false) => return Err(fail(ExitKind::Usage, "pass --amount or --all")),
                };
                if nanotons > storage.staked {
                    return Err(fail(
                        ExitKind::InsufficientFunds,
                        format!(
                            "cannot unbond {} TON: only {} TON is staked",
                            cocoon_ton::format_ton(nanotons),
                            cocoon_ton::format_ton(storage.staked)
                        ),
                    ));
                }
                let f = stake.unbond(&client, &wallet, nanotons);
                let what = format!("{} unbond", role.name());
                let outcome =
                    ops::op(global, &client, &wallet, STAKE_OWNER_OP_VALUE, &what, f).await?;
                after_op(global, &client, role, &stake, &outcome, json).await
            }
            StakeCommand::Withdraw => {
                let wallet = unlock(global)?;
                let (stake, _) = read_stake(global, &client, &root, wallet.address(), role).await?;
                let f = stake.withdraw(&client, &wallet);
                let what = format!("{} withdraw", role.name());
                let outcome =
                    ops::op(global, &client, &wallet, STAKE_OWNER_OP_VALUE, &what, f).await?;
                after_op(global, &client, role, &stake, &outcome, json).await
            }
        }
    })
}

async fn after_op(
    global: &GlobalArgs,
    client: &HttpTonClient,
    role: RoleChoice,
    stake: &StakeHandle,
    outcome: &cocoon_contracts::chain::Outcome,
    json: bool,
) -> Result<()> {
    let storage = stake
        .storage(client)
        .await
        .map_err(|e| ops::chain_error(e, "reading the stake", global.network.ton_network()))?;
    status_fields(global, client, role, stake, &storage)
        .await?
        .nest("transaction", tx::tx_fields(&outcome.wallet_tx))
        .print(json)
}

async fn read_stake(
    global: &GlobalArgs,
    client: &HttpTonClient,
    root: &RootHandle,
    owner: &TonAddress,
    role: RoleChoice,
) -> Result<(StakeHandle, StakeStorage)> {
    let network = global.network.ton_network();
    let deployment = root
        .stake_deployment(client, owner, role.code())
        .await
        .map_err(|e| ops::chain_error(e, "reading the root", network))?;
    let stake = StakeHandle::at(deployment.address);
    match stake.storage(client).await {
        Ok(s) => Ok((stake, s)),
        Err(ChainError::NotDeployed(_)) => Err(fail(
            ExitKind::NotFound,
            format!(
                "{} has no {} stake under root {} (it would be at {}); open one with `cocoon {} stake --amount TON`",
                cocoon_ton::to_friendly(owner, false, network),
                role.name(),
                cocoon_ton::to_friendly(&root.address, true, network),
                cocoon_ton::to_friendly(&stake.address, true, network),
                role.name()
            ),
        )),
        Err(e) => Err(ops::chain_error(e, "reading the stake", network)),
    }
}

/// Every field of a stake's state, decoded.
pub(crate) fn stake_state_fields(storage: &StakeStorage, network: cocoon_ton::Network) -> Fields {
    let cold = match &storage.cold {
        Some(c) => Fields::new()
            .ton("min_stake", c.min_stake)
            .add("unbond_delay", c.unbond_delay)
            .add("worker_share_bps", c.worker_share_bps)
            .add("params_version", c.params_version)
            .ton("slashed", c.slashed)
            .add("fault_period_start", c.fault_period_start)
            .add("faults_in_period", c.faults_in_period)
            .add("used_evidence", c.used_evidence.len()),
        None => Fields::new(),
    };
    let payouts: Vec<serde_json::Value> = storage
        .payouts
        .iter()
        .map(|(worker, record)| {
            serde_json::json!({
                "worker_account": hex::encode(worker),
                "seqno": record.seqno,
                "paid": cocoon_ton::format_ton(record.paid),
                "paid_nano": record.paid.to_string(),
            })
        })
        .collect();
    Fields::new()
        .add(
            "state",
            if storage.state == STAKE_ACTIVE {
                "active"
            } else {
                "uninitialized"
            },
        )
        .add("role", crate::common::role_name(storage.identity.role))
        .add(
            "owner",
            friendly_raw(&storage.identity.owner.to_hex(), network),
        )
        .add(
            "root",
            friendly_raw(&storage.identity.root.to_hex(), network),
        )
        .add("key", hex::encode(storage.key))
        .ton("staked", storage.staked)
        .ton("unbonding", storage.unbonding)
        .add("unbond_at", storage.unbond_at)
        .ton("burnt", storage.burnt)
        .ton("paid_out", storage.paid_out)
        .ton("owner_withdrawn", storage.owner_withdrawn)
        .add("can_serve", storage.can_serve())
        .nest("params", cold)
        .add("payouts", payouts)
}

async fn status_fields(
    global: &GlobalArgs,
    client: &HttpTonClient,
    role: RoleChoice,
    stake: &StakeHandle,
    storage: &StakeStorage,
) -> Result<Fields> {
    let network = global.network.ton_network();
    let balance = cocoon_ton::TonClient::get_address_balance(client, &stake.address).await?;
    let mut fields =
        contract_address(Fields::new(), "stake", &stake.address, network).ton("balance", balance);
    if role.code() == ROLE_PROXY {
        let pool = stake
            .payout_pool(client)
            .await
            .map_err(|e| ops::chain_error(e, "reading the vault", network))?;
        fields = fields
            .ton("payout_pool", pool)
            .ton("earnings_available", earnings_available(storage, pool));
    }
    let state = stake_state_fields(storage, network);
    Ok(merge(fields, state))
}

/// What the proxy may withdraw now: its share of everything charged into the vault (the
/// contract's rule: pool + paid out + withdrawn, times 1 - worker share) minus what it already
/// withdrew, and never more than the pool.
fn earnings_available(storage: &StakeStorage, pool: u128) -> u128 {
    let Some(cold) = &storage.cold else {
        return 0;
    };
    let charged_in = pool
        .saturating_add(storage.paid_out)
        .saturating_add(storage.owner_withdrawn);
    let proxy_bps = 10_000u128.saturating_sub(u128::from(cold.worker_share_bps));
    let share = charged_in.saturating_mul(proxy_bps) / 10_000;
    share.saturating_sub(storage.owner_withdrawn).min(pool)
}

fn merge(a: Fields, b: Fields) -> Fields {
    a.extend(b)
}

async fn claim(global: &GlobalArgs, voucher_hex: &str, json: bool) -> Result<()> {
    let bytes = hex::decode(voucher_hex.trim())
        .map_err(|e| fail(ExitKind::Usage, format!("--voucher: not hex: {e}")))?;
    let voucher = SignedPayout::from_boc(&bytes).map_err(|e| {
        fail(
            ExitKind::Usage,
            format!("--voucher is not a signed payout voucher: {e}"),
        )
    })?;
    let client = global.client()?;
    let wallet: Wallet = unlock(global)?;
    let network = wallet.network();
    if &voucher.statement.worker != wallet.address() {
        return Err(fail(
            ExitKind::Usage,
            format!(
                "the voucher pays {}, not this wallet ({})",
                cocoon_ton::to_friendly(&voucher.statement.worker, false, network),
                wallet.address_friendly()
            ),
        ));
    }
    let vault = StakeHandle::at(voucher.statement.vault.clone());
    let paid = voucher.statement.paid;
    let seqno = voucher.statement.seqno;
    let f = vault.claim_payout(&client, &wallet, voucher);
    let outcome = ops::op(global, &client, &wallet, STAKE_CLAIM_VALUE, "claim", f).await?;
    contract_address(Fields::new(), "vault", &vault.address, network)
        .add("seqno", seqno)
        .ton("cumulative_paid", paid)
        .nest("transaction", tx::tx_fields(&outcome.wallet_tx))
        .print(json)
}
