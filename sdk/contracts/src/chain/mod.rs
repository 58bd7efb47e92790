//! Typed clients of the cocoon contracts over [`cocoon_ton::TonClient`] and [`cocoon_ton::Wallet`]:
//! [`RootHandle`], [`StakeHandle`] and [`EscrowHandle`] send typed messages through the one tracer,
//! [`cocoon_ton::send_and_trace`] (its documentation says how transactions are matched), and
//! [`ChainError`] names a failing contract with its decoded exit code.

pub mod escrow;
pub mod root;
pub mod stake;

use std::time::Duration;

use cocoon_ton::{ClientError, SendError, StackEntry, TonClient, TraceError, Transfer, Wallet};
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, Cell};

use crate::codec::{CellCodec, load_address};
use crate::error::{CodecError, ContractError};

pub use cocoon_ton::trace::{DEFAULT_WAIT, MAX_HOPS, Outcome, TraceOptions};
pub use escrow::EscrowHandle;
pub use root::RootHandle;
pub use stake::StakeHandle;

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
    /// A message bounced back from the account that refused it (raw address); where exit codes
    /// are not reported (toncenter) this is how a contract failure shows.
    #[error("{0}: refused the message (it bounced)")]
    Bounced(String),
    /// A message was not received by its destination (raw address) in time.
    #[error("{address}: the message was not received within {after:?}")]
    NotDelivered {
        /// The destination.
        address: String,
        /// How long we waited.
        after: Duration,
    },
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

impl From<TraceError> for ChainError {
    fn from(e: TraceError) -> Self {
        match e {
            TraceError::Send(e) => ChainError::Send(e),
            TraceError::Client(e) => ChainError::Client(e),
            TraceError::Failed { address, exit_code } => {
                match ContractError::from_exit_code(exit_code) {
                    Some(error) => ChainError::Contract {
                        address: address.to_hex(),
                        error,
                    },
                    None => ChainError::Aborted(address.to_hex()),
                }
            }
            TraceError::Aborted { address } => ChainError::Aborted(address.to_hex()),
            TraceError::Bounced { refused_by, .. } => ChainError::Bounced(refused_by.to_hex()),
            TraceError::NotDelivered {
                destination, after, ..
            } => ChainError::NotDelivered {
                address: destination.to_hex(),
                after,
            },
        }
    }
}

/// Sends one internal message from `wallet` and follows it with [`cocoon_ton::send_and_trace`];
/// fails with the first contract that failed, its exit code decoded.
pub async fn send(
    client: &dyn TonClient,
    wallet: &Wallet,
    transfer: Transfer,
    options: TraceOptions,
) -> Result<Outcome, ChainError> {
    Ok(cocoon_ton::send_and_trace(client, wallet, transfer, options).await?)
}

/// Sends `body` with `value` to `to` from `wallet` with the default [`TraceOptions`].
pub(crate) async fn send_body(
    client: &dyn TonClient,
    wallet: &Wallet,
    to: &TonAddress,
    value: u128,
    body: &impl CellCodec,
) -> Result<Outcome, ChainError> {
    send(
        client,
        wallet,
        message(to, value, body)?,
        TraceOptions::default(),
    )
    .await
}

/// Defines handle methods that each send one message: `fn name(args) => value, body;` becomes
/// `pub async fn name(&self, client, wallet, args) -> Result<Outcome, ChainError>` sending `body`
/// with `value` nanoTON to the handle's address.
macro_rules! message_ops {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $value:expr, $body:expr; )*) => {
        $(
            $(#[$doc])*
            pub async fn $name(
                &self,
                client: &dyn cocoon_ton::TonClient,
                wallet: &cocoon_ton::Wallet,
                $($arg: $ty),*
            ) -> Result<super::Outcome, super::ChainError> {
                super::send_body(client, wallet, &self.address, $value, &$body).await
            }
        )*
    };
}
pub(crate) use message_ops;

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
