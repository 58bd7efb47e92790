//! Chain access in [`OnchainError`] terms over the SDK's one path: messages go through
//! cocoon-contracts' [`chain::send`] (the cocoon-ton tracer, which documents how transactions are
//! matched), state reads through [`chain::fetch_state`].

use std::time::Duration;

use cocoon_contracts::CellCodec;
use cocoon_contracts::chain::{self, ChainError, TraceOptions};
use cocoon_ton::{TonAddress, TonClient, Transfer, Wallet};

pub use cocoon_ton::Outcome;

use crate::OnchainError;

impl From<ChainError> for OnchainError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::Contract { address, error } => OnchainError::Contract {
                address,
                code: error.code(),
                error: error.to_string(),
            },
            ChainError::Aborted(address) => OnchainError::Contract {
                address,
                error: "transaction aborted".into(),
                code: -1,
            },
            ChainError::Bounced(address) => OnchainError::Contract {
                address,
                error: "refused the message (it bounced)".into(),
                code: -1,
            },
            ChainError::Codec(e) => OnchainError::Codec(e),
            ChainError::NotDeployed(address) => OnchainError::NotDeployed(address),
            other @ (ChainError::Send(_)
            | ChainError::Client(_)
            | ChainError::NotDelivered { .. }
            | ChainError::GetMethod { .. }) => OnchainError::Unavailable(other.to_string()),
        }
    }
}

/// Sends `transfer` from `wallet` and follows it for up to `hops` hops, waiting up to `wait` for
/// each transaction; fails with the first contract that failed.
pub async fn send(
    client: &dyn TonClient,
    wallet: &Wallet,
    transfer: Transfer,
    wait: Duration,
    hops: usize,
) -> Result<Outcome, OnchainError> {
    Ok(chain::send(client, wallet, transfer, TraceOptions { wait, hops }).await?)
}

/// A transfer of `value` to `to` carrying `body` (bounceable).
pub fn message(
    to: &TonAddress,
    value: u128,
    body: &impl CellCodec,
) -> Result<Transfer, OnchainError> {
    Ok(chain::message(to, value, body)?)
}

/// The account's data cell decoded as `T`; `None` if the account holds no state.
pub async fn fetch_state<T: CellCodec>(
    client: &dyn TonClient,
    address: &TonAddress,
) -> Result<Option<T>, OnchainError> {
    match chain::fetch_state(client, address).await {
        Ok(state) => Ok(Some(state)),
        Err(ChainError::NotDeployed(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
