//! Async wrappers over [`cocoon_ton::TonClient`] and [`cocoon_ton::Wallet`]: send a typed message
//! from a wallet to a contract, follow the message chain it starts, and report the first contract
//! that failed with its decoded exit code. Per-contract handles live in [`root`], [`stake`] and
//! [`escrow`].

pub mod escrow;
pub mod root;
pub mod stake;

use std::time::{Duration, Instant};

use cocoon_ton::{
    ClientError, SendError, StackEntry, TonClient, Transaction, Transfer, TxMessage, WAIT_PAGE,
    Wallet,
};
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, Cell};

use crate::codec::{CellCodec, load_address};
use crate::error::{CodecError, ContractError};

pub use escrow::EscrowHandle;
pub use root::RootHandle;
pub use stake::StakeHandle;

/// How long to wait for each transaction of a chain by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// How many message hops [`send`] follows after the wallet.
pub const MAX_HOPS: usize = 4;

/// A chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The wallet message could not be built or sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The chain API failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A message or state did not match the schema.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A contract's compute phase failed.
    #[error("{address}: {error}")]
    Contract {
        /// The contract (raw address).
        address: String,
        /// The decoded exit code.
        error: ContractError,
    },
    /// A transaction was aborted without a reported exit code.
    #[error("{0}: transaction aborted")]
    Aborted(String),
    /// The account holds no state (not deployed yet).
    #[error("{0}: not deployed")]
    NotDeployed(String),
    /// A get-method failed or returned something unexpected.
    #[error("{address}: get-method {method}: {reason}")]
    GetMethod {
        /// The contract.
        address: String,
        /// The method.
        method: String,
        /// What went wrong.
        reason: String,
    },
}

/// The transactions one wallet message caused, in the order they were found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The wallet's own transaction.
    pub wallet_tx: Transaction,
    /// Transactions of the contracts the message reached, hop by hop (breadth first).
    pub chain: Vec<Transaction>,
}

impl Outcome {
    /// The first contract transaction (the one the wallet's message started), if it was seen.
    pub fn first(&self) -> Option<&Transaction> {
        self.chain.first()
    }
}

/// Options for [`send`].
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// How long to wait for each transaction.
    pub wait: Duration,
    /// How many hops to follow (0 = only the wallet transaction).
    pub hops: usize,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            wait: DEFAULT_WAIT,
            hops: MAX_HOPS,
        }
    }
}

fn check(tx: &Transaction, address: &TonAddress) -> Result<(), ChainError> {
    if let Some(code) = tx.compute_exit_code
        && let Some(error) = ContractError::from_exit_code(code)
    {
        return Err(ChainError::Contract {
            address: address.to_hex(),
            error,
        });
    }
    if tx.aborted == Some(true) {
        return Err(ChainError::Aborted(address.to_hex()));
    }
    Ok(())
}

/// Sends one internal message from `wallet` and follows the chain it starts for up to
/// `options.hops` hops; fails with the first contract error found (devnet reports exit codes;
/// toncenter does not, so there only the wallet transaction and aborts are checked).
pub async fn send(
    client: &dyn TonClient,
    wallet: &Wallet,
    transfer: Transfer,
    options: SendOptions,
) -> Result<Outcome, ChainError> {
    let sent = wallet
        .send_and_wait(client, std::slice::from_ref(&transfer), options.wait)
        .await?;
    check(&sent.transaction, wallet.address())?;
    let mut outcome = Outcome {
        wallet_tx: sent.transaction.clone(),
        chain: Vec::new(),
    };
    let mut frontier = vec![sent.transaction];
    for _ in 0..options.hops {
        let mut next = Vec::new();
        for tx in &frontier {
            for msg in &tx.out_msgs {
                let Some(dest) = &msg.destination else {
                    continue;
                };
                let source = tx.account.as_ref().or(msg.source.as_ref());
                let found = wait_for_delivery(client, dest, msg, source, options.wait).await?;
                check(&found, dest)?;
                outcome.chain.push(found.clone());
                next.push(found);
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(outcome)
}

/// Waits for `dest`'s transaction that consumed `msg`. Matches the message hash, or the sender and
/// the creation lt (unique per sender), because servers do not always report the same hash for a
/// message on both sides (re-serialised state inits hash differently).
async fn wait_for_delivery(
    client: &dyn TonClient,
    dest: &TonAddress,
    msg: &TxMessage,
    source: Option<&TonAddress>,
    wait: Duration,
) -> Result<Transaction, ChainError> {
    let started = Instant::now();
    loop {
        let txs = client.get_transactions(dest, WAIT_PAGE, None).await?;
        let found = txs.into_iter().find(|t| {
            t.in_msg.as_ref().is_some_and(|m| {
                m.hash == msg.hash
                    || (msg.created_lt != 0
                        && m.created_lt == msg.created_lt
                        && m.source.is_some()
                        && m.source.as_ref() == source)
            })
        });
        if let Some(tx) = found {
            return Ok(tx);
        }
        if started.elapsed() >= wait {
            return Err(ChainError::Client(ClientError::Timeout {
                method: "wait_for_delivery".into(),
                after: started.elapsed(),
            }));
        }
        tokio::time::sleep(client.poll_interval().min(wait)).await;
    }
}

/// A transfer of `value` to `to` carrying `body`.
pub fn message(
    to: &TonAddress,
    value: u128,
    body: &impl CellCodec,
) -> Result<Transfer, ChainError> {
    Ok(Transfer::new(to.clone(), value).with_body(body.to_arc()?))
}

/// The account's data cell, decoded as `T`.
pub async fn fetch_state<T: CellCodec>(
    client: &dyn TonClient,
    address: &TonAddress,
) -> Result<T, ChainError> {
    let info = client.get_address_information(address).await?;
    let data = info
        .data
        .ok_or_else(|| ChainError::NotDeployed(address.to_hex()))?;
    Ok(T::from_cell(&data)?)
}

/// Runs a get-method and checks its exit code.
pub async fn get(
    client: &dyn TonClient,
    address: &TonAddress,
    method: &str,
    args: &[StackEntry],
) -> Result<Vec<StackEntry>, ChainError> {
    let r = client.run_get_method(address, method, args).await?;
    if !r.success() {
        let reason = match ContractError::from_exit_code(r.exit_code) {
            Some(e) => e.to_string(),
            None => format!("exit code {}", r.exit_code),
        };
        return Err(ChainError::GetMethod {
            address: address.to_hex(),
            method: method.into(),
            reason,
        });
    }
    Ok(r.stack)
}

pub(crate) fn stack_err(address: &TonAddress, method: &str, reason: &str) -> ChainError {
    ChainError::GetMethod {
        address: address.to_hex(),
        method: method.into(),
        reason: reason.into(),
    }
}

/// Reads an address from a get-method result entry (a slice or a cell holding `addr_std`).
pub fn stack_address(entry: &StackEntry) -> Option<TonAddress> {
    let cell: &Cell = entry.as_cell()?;
    load_address(&mut cell.parser()).ok()
}

/// A stack argument holding `address` as a slice.
pub fn address_arg(address: &TonAddress) -> Result<StackEntry, ChainError> {
    let mut b = tonlib_core::cell::CellBuilder::new();
    crate::codec::store_address(&mut b, address)?;
    let cell: ArcCell = std::sync::Arc::new(b.build().map_err(CodecError::from)?);
    Ok(StackEntry::Slice(cell))
}
