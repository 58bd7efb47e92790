//! `cocoon client`: the app developer's escrow with a proxy (open, top up, withdraw, close, status).

use anyhow::Result;
use clap::{Args, Subcommand};
use cocoon_contracts::CellCodec;
use cocoon_contracts::chain::{ChainError, EscrowHandle, RootHandle};
use cocoon_contracts::fees::{
    ESCROW_CHARGE_VALUE, ESCROW_CLIENT_OP_VALUE, ESCROW_DEPOSIT_FEE, ROOT_OPEN_VALUE,
};
use cocoon_contracts::state::{ESCROW_CLOSED, ESCROW_CLOSING, ESCROW_OPEN, EscrowStorage};
use cocoon_contracts::statements::SignedCharge;
use cocoon_ton::{HttpTonClient, Network, TonAddress, format_ton};

use crate::common::{contract_address, friendly_raw};
use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::output::{Fields, OutputArgs};
use crate::wallet::{given_or_keystore_address, parse_addr, parse_amount, unlock};
use crate::{ops, runtime, tx};

/// Client: your escrow (payment channel) with a proxy.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    out: OutputArgs,
    /// The proxy operator's address (as registered in the root).
    #[arg(long, global = true, env = "COCOON_PROXY", value_name = "ADDRESS")]
    proxy: Option<String>,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Run the client gateway: a local OpenAI-compatible endpoint that reaches the network.
    Gateway(cocoon_daemon::launch::DaemonArgs),
    /// Open an escrow with the proxy (or add to it) through the root.
    Open {
        /// TON to deposit.
        #[arg(long)]
        amount: String,
        /// Part of the deposit kept as the credit line the proxy may charge against.
        #[arg(long, default_value = "0")]
        stake: String,
        #[command(flatten)]
        key: ClientKeyArgs,
    },
    /// Name the key that may spend the escrow's credit at the proxy (your gateway's TLS key).
    SetKey {
        #[command(flatten)]
        key: ClientKeyArgs,
    },
    /// Deposit more TON into the escrow.
    TopUp {
        /// TON to deposit.
        #[arg(long)]
        amount: String,
    },
    /// Withdraw TON above the credit line.
    Withdraw {
        /// TON to withdraw.
        #[arg(long)]
        amount: String,
    },
    /// Close the escrow: request (unilateral, after the close delay use --finish), or submit the
    /// proxy-signed final charge (--final-voucher) to close at once.
    Close {
        /// Finish a requested close after the delay.
        #[arg(long, conflicts_with = "final_voucher")]
        finish: bool,
        /// The proxy-signed final charge voucher, BoC in hex.
        #[arg(long)]
        final_voucher: Option<String>,
    },
    /// Show the escrow: balance, credit line, charged, state.
    Status {
        /// Escrow client (default: the keystore wallet).
        #[arg(long)]
        client: Option<String>,
    },
}

/// The key the proxy admits for this escrow: the client gateway's TLS identity.
#[derive(Debug, Args)]
struct ClientKeyArgs {
    /// The gateway's Ed25519 public key, 64 hex characters.
    #[arg(long, value_name = "HEX", conflicts_with = "client_key_file")]
    client_key: Option<String>,
    /// The gateway's key file (its `[tls] key_file`); the public key is derived from it.
    #[arg(long, value_name = "PATH")]
    client_key_file: Option<std::path::PathBuf>,
}

impl ClientKeyArgs {
    /// The public key named, if any.
    fn key(&self) -> Result<Option<[u8; 32]>> {
        if let Some(text) = &self.client_key {
            let mut key = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut key).map_err(|e| {
                fail(
                    ExitKind::Usage,
                    format!("--client-key must be 64 hex characters: {e}"),
                )
            })?;
            return Ok(Some(key));
        }
        if let Some(path) = &self.client_key_file {
            let signing = cocoon_daemon::tls_config::read_key_file(path)
                .map_err(|e| fail(ExitKind::Usage, format!("--client-key-file: {e}")))?;
            return Ok(Some(signing.verifying_key().to_bytes()));
        }
        Ok(None)
    }
}

/// Runs a `client` subcommand.
pub(crate) fn run(global: &GlobalArgs, args: ClientArgs) -> Result<()> {
    if let ClientCommand::Gateway(run) = args.command {
        return runtime::block_on_daemon(cocoon_gateway::daemon::run(run));
    }
    let root = global.root.handle()?;
    let proxy = match &args.proxy {
        Some(p) => parse_addr(p)?.0,
        None => {
            return Err(fail(
                ExitKind::Usage,
                "no proxy: pass --proxy ADDRESS or set COCOON_PROXY (`cocoon audit network` lists the registered proxies)",
            ));
        }
    };
    let json = args.out.json;
    runtime::block_on(async move {
        let client = global.client()?;
        let network = global.network.ton_network();
        match args.command {
            ClientCommand::Status { client: who } => {
                let who = given_or_keystore_address(global, who.as_deref())?;
                let (escrow, storage) = read_escrow(&client, &root, &who, &proxy, network).await?;
                status_fields(&client, &escrow, &storage, network)
                    .await?
                    .print(json)
            }
            ClientCommand::Open { amount, stake, key } => {
                let client_key = key.key()?;
                let deposit = parse_amount(&amount, "--amount")?;
                let stake = parse_amount(&stake, "--stake")?;
                if stake > deposit {
                    return Err(fail(
                        ExitKind::Usage,
                        format!(
                            "--stake {} TON is more than the deposit {} TON",
                            format_ton(stake),
                            format_ton(deposit)
                        ),
                    ));
                }
                let wallet = unlock(global)?;
                let value = deposit
                    .checked_add(ROOT_OPEN_VALUE + ESCROW_DEPOSIT_FEE)
                    .ok_or_else(|| fail(ExitKind::Usage, "--amount is too large"))?;
                if client_key.is_none() {
                    eprintln!(
                        "note: no --client-key or --client-key-file: the escrow keeps the key it has (a new one has none, \
                         and the proxy admits no gateway until `cocoon client set-key` names one)"
                    );
                }
                let f = root.open_escrow(
                    &client,
                    &wallet,
                    &proxy,
                    stake,
                    client_key.unwrap_or([0; 32]),
                    value,
                );
                let outcome = ops::op(global, &client, &wallet, value, "open escrow", f).await?;
                let (escrow, storage) =
                    read_escrow(&client, &root, wallet.address(), &proxy, network).await?;
                status_fields(&client, &escrow, &storage, network)
                    .await?
                    .nest("transaction", tx::tx_fields(&outcome.wallet_tx))
                    .print(json)
            }
            cmd => {
                let wallet = unlock(global)?;
                let (escrow, _) =
                    read_escrow(&client, &root, wallet.address(), &proxy, network).await?;
                let (value, what, fut) = match cmd {
                    ClientCommand::TopUp { amount } => {
                        let v = parse_amount(&amount, "--amount")?
                            .checked_add(ESCROW_DEPOSIT_FEE)
                            .ok_or_else(|| fail(ExitKind::Usage, "--amount is too large"))?;
                        (
                            v,
                            "top up",
                            Box::pin(escrow.deposit(&client, &wallet, v)) as Op<'_>,
                        )
                    }
                    ClientCommand::SetKey { key } => {
                        let Some(k) = key.key()? else {
                            return Err(fail(
                                ExitKind::Usage,
                                "set-key needs --client-key HEX or --client-key-file PATH",
                            ));
                        };
                        let f: Op<'_> = Box::pin(escrow.set_client_key(&client, &wallet, k));
                        (ESCROW_CLIENT_OP_VALUE, "set client key", f)
                    }
                    ClientCommand::Withdraw { amount } => {
                        let a = parse_amount(&amount, "--amount")?;
                        let f: Op<'_> = Box::pin(escrow.withdraw(&client, &wallet, a));
                        (ESCROW_CLIENT_OP_VALUE, "withdraw", f)
                    }
                    ClientCommand::Close {
                        finish: false,
                        final_voucher: Some(hexboc),
                    } => {
                        let bytes = hex::decode(hexboc.trim()).map_err(|e| {
                            fail(ExitKind::Usage, format!("--final-voucher: not hex: {e}"))
                        })?;
                        let v = SignedCharge::from_boc(&bytes).map_err(|e| {
                            fail(
                                ExitKind::Usage,
                                format!("--final-voucher is not a signed charge: {e}"),
                            )
                        })?;
                        if !v.statement.is_final {
                            return Err(fail(
                                ExitKind::Usage,
                                "--final-voucher is not marked final",
                            ));
                        }
                        let f: Op<'_> = Box::pin(escrow.submit_charge(&client, &wallet, v));
                        (ESCROW_CHARGE_VALUE, "close (final charge)", f)
                    }
                    ClientCommand::Close { finish: true, .. } => {
                        let f: Op<'_> = Box::pin(escrow.finish_close(&client, &wallet));
                        (ESCROW_CLIENT_OP_VALUE, "finish close", f)
                    }
                    ClientCommand::Close { .. } => {
                        let f: Op<'_> = Box::pin(escrow.request_close(&client, &wallet));
                        (ESCROW_CLIENT_OP_VALUE, "request close", f)
                    }
                    ClientCommand::Open { .. }
                    | ClientCommand::Status { .. }
                    | ClientCommand::Gateway(_) => {
                        return Err(fail(ExitKind::Error, "unexpected command"));
                    }
                };
                let outcome = ops::op(global, &client, &wallet, value, what, fut).await?;
                let storage = escrow
                    .storage(&client)
                    .await
                    .map_err(|e| ops::chain_error(e, "reading the escrow", network))?;
                status_fields(&client, &escrow, &storage, network)
                    .await?
                    .nest("transaction", tx::tx_fields(&outcome.wallet_tx))
                    .print(json)
            }
        }
    })
}

type Op<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<cocoon_contracts::chain::Outcome, ChainError>> + 'a,
    >,
>;

async fn read_escrow(
    client: &HttpTonClient,
    root: &RootHandle,
    who: &TonAddress,
    proxy: &TonAddress,
    network: Network,
) -> Result<(EscrowHandle, EscrowStorage)> {
    let deployment = root
        .escrow_deployment(client, who, proxy)
        .await
        .map_err(|e| ops::chain_error(e, "reading the root", network))?;
    let escrow = EscrowHandle::at(deployment.address);
    match escrow.storage(client).await {
        Ok(s) => Ok((escrow, s)),
        Err(ChainError::NotDeployed(_)) => Err(fail(
            ExitKind::NotFound,
            format!(
                "{} has no escrow with proxy {} under root {} (it would be at {}); open one with `cocoon client open --amount TON`",
                cocoon_ton::to_friendly(who, false, network),
                cocoon_ton::to_friendly(proxy, true, network),
                cocoon_ton::to_friendly(&root.address, true, network),
                cocoon_ton::to_friendly(&escrow.address, true, network),
            ),
        )),
        Err(e) => Err(ops::chain_error(e, "reading the escrow", network)),
    }
}

/// The name of an escrow state number.
fn state_name(state: u8) -> &'static str {
    match state {
        ESCROW_OPEN => "open",
        ESCROW_CLOSING => "closing",
        ESCROW_CLOSED => "closed",
        _ => "uninitialized",
    }
}

/// Every field of an escrow's state, decoded.
pub(crate) fn escrow_state_fields(s: &EscrowStorage, network: Network) -> Fields {
    Fields::new()
        .add("state", state_name(s.state))
        .add("client", friendly_raw(&s.identity.client.to_hex(), network))
        .add("proxy", friendly_raw(&s.identity.proxy.to_hex(), network))
        .add("root", friendly_raw(&s.identity.root.to_hex(), network))
        .ton("deposit_balance", s.balance)
        .ton("stake", s.stake)
        .ton("charged", s.charged)
        .add("charge_seqno", s.seqno)
        .add("closing_at", s.closing_at)
        .add("close_delay", s.close_delay)
        .add("proxy_key", hex::encode(s.proxy_key))
        .add("client_key", s.client_key().map(hex::encode))
        .add(
            "vault",
            s.vault.as_ref().map(|v| friendly_raw(&v.to_hex(), network)),
        )
}

async fn status_fields(
    client: &HttpTonClient,
    escrow: &EscrowHandle,
    storage: &EscrowStorage,
    network: Network,
) -> Result<Fields> {
    let balance = cocoon_ton::TonClient::get_address_balance(client, &escrow.address).await?;
    Ok(
        contract_address(Fields::new(), "escrow", &escrow.address, network)
            .ton("balance", balance)
            .extend(escrow_state_fields(storage, network)),
    )
}
