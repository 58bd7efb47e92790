//! The one way to send an internal message from a wallet and follow the transactions it causes.
//!
//! [`send_and_trace`] signs and sends one transfer, waits for the wallet's transaction, then walks
//! the message tree it starts hop by hop (breadth first) and stops at the first transaction that
//! failed. Contract-specific meaning (which exit code is which error) is added by the caller:
//! cocoon-contracts decodes [`TraceError::Failed`]'s exit code.
//!
//! How a transaction is matched to the message that caused it:
//! - The wallet's transaction is the one whose inbound external message has the hash (or normalized
//!   hash) of the external message we signed ([`TonClient::wait_for_transaction`]).
//! - Every later transaction is matched to one *outgoing message of an already matched
//!   transaction*, never to "some later transaction" of the destination: the destination's
//!   transaction must have received that very message, meaning its inbound message has the
//!   outgoing message's hash, or (when the hashes differ, as the devnet reports a message that
//!   carries a state init under different hashes on its two sides) it was sent by the account of
//!   the emitting transaction with the same, non-zero, creation lt. An account never sends two
//!   messages with one lt, so the pair names one message.
//! - A transaction fails the trace when its compute phase exit code is neither 0 nor 1, when it was
//!   aborted (this includes an account without code receiving any message, even a non-bounceable
//!   one: nothing ran there), or when it received a bounced message (the devnet reports exit codes and aborts;
//!   toncenter does not, and there the bounce coming back is what shows a failure).

use std::time::{Duration, Instant};

use crate::client::{ClientError, TonClient, Transaction, TxMessage, WAIT_PAGE};
use crate::send::SendError;
use crate::wallet::{Transfer, Wallet};
use crate::{TonAddress, TonHash};

/// How long to wait for each transaction of a trace by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// How many message hops [`send_and_trace`] follows after the wallet by default.
pub const MAX_HOPS: usize = 4;

/// How far and how long [`send_and_trace`] follows a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    /// How long to wait for each transaction.
    pub wait: Duration,
    /// How many hops to follow after the wallet (0: only the wallet transaction).
    pub hops: usize,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            wait: DEFAULT_WAIT,
            hops: MAX_HOPS,
        }
    }
}

impl TraceOptions {
    /// The default wait with `hops` hops.
    pub fn hops(hops: usize) -> Self {
        TraceOptions {
            hops,
            ..TraceOptions::default()
        }
    }
}

/// The transactions one wallet message caused.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The wallet's own transaction.
    pub wallet_tx: Transaction,
    /// Transactions of the accounts the message tree reached, hop by hop (breadth first).
    pub chain: Vec<Transaction>,
}

impl Outcome {
    /// The first transaction after the wallet's (the one the wallet's message started), if seen.
    pub fn first(&self) -> Option<&Transaction> {
        self.chain.first()
    }

    /// Every transaction, the wallet's first.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        std::iter::once(&self.wallet_tx).chain(&self.chain)
    }

    /// How many transactions were found, the wallet's included.
    pub fn transaction_count(&self) -> usize {
        1 + self.chain.len()
    }

    /// Total fees of all the transactions, nanoTON.
    pub fn fees(&self) -> u128 {
        self.transactions()
            .map(|t| t.fee)
            .fold(0u128, u128::saturating_add)
    }

    /// The value of every message the traced transactions sent to `to`, nanoTON.
    pub fn value_sent_to(&self, to: &TonAddress) -> u128 {
        self.chain
            .iter()
            .flat_map(|t| t.out_msgs.iter())
            .filter(|m| m.destination.as_ref() == Some(to))
            .map(|m| m.value)
            .fold(0u128, u128::saturating_add)
    }
}

/// Sending or following a message failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The wallet message could not be built or sent, or its transaction did not appear in time.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The chain API failed while following the message.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A transaction's compute phase ended with an error exit code.
    #[error("{}: compute phase failed with exit code {exit_code}", .address.to_hex())]
    Failed {
        /// The account whose transaction failed.
        address: TonAddress,
        /// The exit code (neither 0 nor 1).
        exit_code: i32,
    },
    /// A transaction was aborted without an error exit code.
    #[error("{}: transaction aborted", .address.to_hex())]
    Aborted {
        /// The account whose transaction was aborted.
        address: TonAddress,
    },
    /// A message came back bounced: the account that sent the bounce refused the message.
    #[error("{}: refused the message (it bounced back to {})", .refused_by.to_hex(), .address.to_hex())]
    Bounced {
        /// The account that bounced the message.
        refused_by: TonAddress,
        /// The account the bounce came back to.
        address: TonAddress,
    },
    /// No transaction of `destination` received the message within the wait.
    #[error("{}: no transaction received message {} within {after:?}", .destination.to_hex(), hex::encode(.message.as_slice()))]
    NotDelivered {
        /// The message's destination.
        destination: TonAddress,
        /// The message's hash as the sender's transaction reported it.
        message: TonHash,
        /// How long we waited.
        after: Duration,
    },
}

/// Sends `transfer` from `wallet` and follows the message tree it starts for up to
/// `options.hops` hops (see the module documentation for the matching rules); fails with the
/// first transaction that failed.
pub async fn send_and_trace(
    client: &dyn TonClient,
    wallet: &Wallet,
    transfer: Transfer,
    options: TraceOptions,
) -> Result<Outcome, TraceError> {
    let sent = wallet
        .send_and_wait(client, std::slice::from_ref(&transfer), options.wait)
        .await?;
    check(&sent.transaction, wallet.address())?;
    let mut outcome = Outcome {
        wallet_tx: sent.transaction,
        chain: Vec::new(),
    };
    let mut frontier = vec![outcome.wallet_tx.clone()];
    for _ in 0..options.hops {
        let mut next = Vec::new();
        for tx in &frontier {
            for msg in &tx.out_msgs {
                let Some(dest) = &msg.destination else {
                    continue; // an external out message: no transaction follows
                };
                let sender = tx.account.as_ref().or(msg.source.as_ref());
                let found = wait_for_delivery(client, sender, dest, msg, options.wait).await?;
                check(&found, dest)?;
                next.push(found);
            }
        }
        if next.is_empty() {
            break;
        }
        outcome.chain.extend(next.iter().cloned());
        frontier = next;
    }
    Ok(outcome)
}

fn check(tx: &Transaction, address: &TonAddress) -> Result<(), TraceError> {
    if let Some(code) = tx.compute_exit_code.filter(|c| *c != 0 && *c != 1) {
        return Err(TraceError::Failed {
            address: address.clone(),
            exit_code: code,
        });
    }
    if tx.aborted == Some(true) {
        return Err(TraceError::Aborted {
            address: address.clone(),
        });
    }
    if let Some(m) = tx.in_msg.as_ref().filter(|m| m.bounced) {
        return Err(TraceError::Bounced {
            refused_by: m.source.clone().unwrap_or_else(|| address.clone()),
            address: address.clone(),
        });
    }
    Ok(())
}

/// True if `inbound` (a destination's inbound message) is `sent`, emitted by `sender` (when the
/// sender is unknown, only the hash can match).
fn is_delivery_of(inbound: &TxMessage, sent: &TxMessage, sender: Option<&TonAddress>) -> bool {
    inbound.hash == sent.hash
        || (sent.created_lt != 0
            && inbound.created_lt == sent.created_lt
            && sender.is_some()
            && inbound.source.as_ref() == sender)
}

/// Waits for the transaction of `dest` that received `msg`, sent by `sender`.
async fn wait_for_delivery(
    client: &dyn TonClient,
    sender: Option<&TonAddress>,
    dest: &TonAddress,
    msg: &TxMessage,
    wait: Duration,
) -> Result<Transaction, TraceError> {
    let started = Instant::now();
    loop {
        let txs = client.get_transactions(dest, WAIT_PAGE, None).await?;
        let found = txs.into_iter().find(|t| {
            t.in_msg
                .as_ref()
                .is_some_and(|m| is_delivery_of(m, msg, sender))
        });
        if let Some(tx) = found {
            return Ok(tx);
        }
        let waited = started.elapsed();
        if waited >= wait {
            return Err(TraceError::NotDelivered {
                destination: dest.clone(),
                message: msg.hash.clone(),
                after: waited,
            });
        }
        tokio::time::sleep(client.poll_interval().min(wait - waited)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(byte: u8) -> TonAddress {
        TonAddress::new(0, TonHash::from([byte; 32]))
    }

    fn message(hash: u8, source: Option<TonAddress>, created_lt: u64) -> TxMessage {
        TxMessage {
            hash: TonHash::from([hash; 32]),
            hash_norm: None,
            source,
            destination: Some(addr(9)),
            value: 0,
            fwd_fee: 0,
            created_lt,
            bounce: true,
            bounced: false,
            body: None,
            init_state: None,
        }
    }

    #[test]
    fn a_delivery_is_the_same_hash_or_the_same_sender_and_lt() {
        let sender = addr(1);
        let from = Some(&sender);
        let sent = message(7, Some(sender.clone()), 100);
        assert!(is_delivery_of(&message(7, None, 0), &sent, from));
        // Same sender and lt under another hash (a re-serialised state init).
        assert!(is_delivery_of(
            &message(8, Some(sender.clone()), 100),
            &sent,
            from
        ));
        // Another message of the same sender, or the same lt from another sender, is not it.
        assert!(!is_delivery_of(
            &message(8, Some(sender.clone()), 101),
            &sent,
            from
        ));
        assert!(!is_delivery_of(
            &message(8, Some(addr(2)), 100),
            &sent,
            from
        ));
        // An unknown creation lt never matches by lt.
        let unknown_lt = message(7, Some(sender.clone()), 0);
        assert!(!is_delivery_of(
            &message(8, Some(sender.clone()), 0),
            &unknown_lt,
            from
        ));
        // Without a known sender only the hash matches.
        assert!(is_delivery_of(&message(7, None, 0), &sent, None));
        assert!(!is_delivery_of(
            &message(8, Some(sender.clone()), 100),
            &sent,
            None
        ));
    }
}
