//! Sending one internal message from a wallet and following the transactions it causes.

use std::time::{Duration, Instant};

use cocoon_contracts::{CellCodec, ContractError};
use cocoon_ton::{TonAddress, TonClient, Transaction, Transfer, Wallet};

use crate::OnchainError;

/// Every transaction one wallet message caused (wallet first, then hop by hop).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The transactions, in the order they were found.
    pub transactions: Vec<Transaction>,
}

impl Outcome {
    /// Total fees of all the transactions, nanoTON.
    pub fn fees(&self) -> u128 {
        self.transactions.iter().map(|t| t.fee).sum()
    }

    /// Appends another outcome.
    pub fn extend(&mut self, other: Outcome) {
        self.transactions.extend(other.transactions);
    }
}

fn check(tx: &Transaction, address: &TonAddress) -> Result<(), OnchainError> {
    if let Some(code) = tx.compute_exit_code
        && let Some(error) = ContractError::from_exit_code(code)
    {
        return Err(OnchainError::Contract {
            address: address.to_hex(),
            error: error.to_string(),
            code,
        });
    }
    if tx.aborted == Some(true) {
        return Err(OnchainError::Contract {
            address: address.to_hex(),
            error: "transaction aborted".into(),
            code: tx.compute_exit_code.unwrap_or(-1),
        });
    }
    Ok(())
}

/// Sends `transfer` from `wallet`, waits for the wallet transaction and then for the transactions
/// of up to `hops` message hops; fails with the first contract that failed (the devnet reports exit
/// codes; toncenter does not, so there only aborts are seen).
pub async fn send(
    client: &dyn TonClient,
    wallet: &Wallet,
    transfer: Transfer,
    wait: Duration,
    hops: usize,
) -> Result<Outcome, OnchainError> {
    let sent = wallet
        .send_and_wait(client, std::slice::from_ref(&transfer), wait)
        .await
        .map_err(|e| OnchainError::Unavailable(e.to_string()))?;
    check(&sent.transaction, wallet.address())?;
    let mut outcome = Outcome {
        transactions: vec![sent.transaction.clone()],
    };
    let mut frontier = vec![sent.transaction];
    for _ in 0..hops {
        let mut next = Vec::new();
        for tx in &frontier {
            for msg in &tx.out_msgs {
                let Some(dest) = &msg.destination else {
                    continue;
                };
                let found = wait_for_delivery(client, dest, msg, Instant::now() + wait).await?;
                let failed = check(&found, dest);
                outcome.transactions.push(found.clone());
                failed?;
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

/// Waits for the transaction of `dest` that received `msg`. Matched by the message's creation lt
/// and sender (unique per sender), or by hash: the devnet reports an outbound message carrying a
/// state init under a different hash than the inbound one.
async fn wait_for_delivery(
    client: &dyn TonClient,
    dest: &TonAddress,
    msg: &cocoon_ton::TxMessage,
    deadline: Instant,
) -> Result<Transaction, OnchainError> {
    loop {
        let txs = client
            .get_transactions(dest, cocoon_ton::WAIT_PAGE, None)
            .await
            .map_err(|e| OnchainError::Unavailable(e.to_string()))?;
        let hit = txs.into_iter().find(|t| {
            t.in_msg.as_ref().is_some_and(|m| {
                m.hash == msg.hash
                    || (m.created_lt == msg.created_lt
                        && m.source == msg.source
                        && m.source.is_some())
            })
        });
        if let Some(tx) = hit {
            return Ok(tx);
        }
        if Instant::now() >= deadline {
            return Err(OnchainError::Unavailable(format!(
                "no transaction of {} received the message in time",
                dest.to_hex()
            )));
        }
        tokio::time::sleep(client.poll_interval()).await;
    }
}

/// A transfer of `value` to `to` carrying `body` (bounceable).
pub fn message(
    to: &TonAddress,
    value: u128,
    body: &impl CellCodec,
) -> Result<Transfer, OnchainError> {
    Ok(Transfer::new(to.clone(), value).with_body(body.to_arc()?))
}

/// The account's data cell decoded as `T`; `None` if the account holds no state.
pub async fn fetch_state<T: CellCodec>(
    client: &dyn TonClient,
    address: &TonAddress,
) -> Result<Option<T>, OnchainError> {
    let info = client
        .get_address_information(address)
        .await
        .map_err(|e| OnchainError::Unavailable(e.to_string()))?;
    match info.data {
        Some(data) => Ok(Some(T::from_cell(&data)?)),
        None => Ok(None),
    }
}
