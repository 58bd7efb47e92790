//! The chain, as toncenter HTTP API v2 shows it: a [`TonClient`] trait and its HTTP implementation.

mod decode;
mod http;
mod stack;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tonlib_core::cell::ArcCell;
use tonlib_core::{TonAddress, TonHash};

pub use http::{HttpTonClient, TonClientConfig};
pub use stack::StackEntry;

/// How many recent transactions [`TonClient::wait_for_transaction`] inspects per poll.
pub const WAIT_PAGE: u32 = 32;

/// What went wrong talking to toncenter (or the devnet). Every variant names the API method.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-success HTTP status and no toncenter error envelope.
    #[error("{method}: HTTP {status}: {body}")]
    Http {
        /// API method
        method: String,
        /// HTTP status
        status: u16,
        /// (start of) the response body
        body: String,
    },
    /// toncenter answered `{"ok":false,"error":..,"code":..}`.
    #[error("{method}: toncenter error {code}: {message}")]
    Api {
        /// API method
        method: String,
        /// toncenter's code (mirrors the HTTP status)
        code: i64,
        /// toncenter's error text
        message: String,
    },
    /// The request did not get an answer (connection refused, reset, ...).
    #[error("{method}: network error: {message}")]
    Network {
        /// API method
        method: String,
        /// the transport error
        message: String,
    },
    /// The answer could not be decoded into the expected shape.
    #[error("{method}: cannot decode answer: {detail}")]
    Decode {
        /// API method
        method: String,
        /// what was wrong
        detail: String,
    },
    /// No answer (or no matching transaction) in time.
    #[error("{method}: timed out after {after:?}")]
    Timeout {
        /// API method (or `wait_for_transaction`)
        method: String,
        /// how long we waited
        after: Duration,
    },
    /// An argument could not be encoded for the request.
    #[error("{method}: invalid argument: {detail}")]
    InvalidArgument {
        /// API method
        method: String,
        /// what was wrong
        detail: String,
    },
    /// Two providers read for the same state disagreed (or the second one failed), so neither
    /// answer is trusted (`cocoon_onchain::crosscheck`).
    #[error("{method}: chain providers disagree: {detail}")]
    Disagreement {
        /// API method
        method: String,
        /// both answers
        detail: String,
    },
}

impl ClientError {
    /// The API method the error belongs to.
    pub fn method(&self) -> &str {
        match self {
            ClientError::Http { method, .. }
            | ClientError::Api { method, .. }
            | ClientError::Network { method, .. }
            | ClientError::Decode { method, .. }
            | ClientError::Timeout { method, .. }
            | ClientError::InvalidArgument { method, .. }
            | ClientError::Disagreement { method, .. } => method,
        }
    }

    /// True if the server refused an external message because the contract did not accept it
    /// (wrong seqno, expired, bad signature). Such errors are final: retrying cannot help.
    pub fn is_external_rejected(&self) -> bool {
        match self {
            ClientError::Api { message, .. } => is_rejection_text(message),
            _ => false,
        }
    }
}

pub(crate) fn is_rejection_text(message: &str) -> bool {
    message.contains("cannot apply external message")
        || message.contains("External message was not accepted")
}

/// Account status as toncenter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// has code and data
    Active,
    /// no code (possibly a balance)
    Uninitialized,
    /// frozen for unpaid storage
    Frozen,
}

/// A transaction id: logical time and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxId {
    /// logical time
    pub lt: u64,
    /// transaction hash
    pub hash: TonHash,
}

/// `getMasterchainInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterchainInfo {
    /// seqno of the last masterchain block
    pub seqno: u64,
    /// its root hash (base64)
    pub root_hash: String,
}

/// `getAddressInformation`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressInformation {
    /// balance in nanotons
    pub balance: u128,
    /// account status
    pub state: AccountState,
    /// code, if active
    pub code: Option<ArcCell>,
    /// data, if active
    pub data: Option<ArcCell>,
    /// last transaction, if any
    pub last_transaction_id: Option<TxId>,
    /// the time of the state shown (chain time on the devnet)
    pub sync_utime: u64,
}

/// `getWalletInformation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletInformation {
    /// true if the account runs a known wallet contract
    pub wallet: bool,
    /// balance in nanotons
    pub balance: u128,
    /// account status
    pub state: AccountState,
    /// e.g. `wallet v4 r2`
    pub wallet_type: Option<String>,
    /// current seqno (for wallets)
    pub seqno: Option<u32>,
    /// wallet id (for wallets)
    pub wallet_id: Option<i64>,
    /// last transaction, if any
    pub last_transaction_id: Option<TxId>,
}

/// `runGetMethod`: non-zero exit codes are results, not errors.
#[derive(Debug, Clone, PartialEq)]
pub struct GetMethodResult {
    /// TVM exit code (0 or 1 is success)
    pub exit_code: i32,
    /// gas used
    pub gas_used: u64,
    /// the result stack, bottom first
    pub stack: Vec<StackEntry>,
}

impl GetMethodResult {
    /// True for exit codes 0 and 1.
    pub fn success(&self) -> bool {
        self.exit_code == 0 || self.exit_code == 1
    }
}

/// A message in a transaction (`raw.message`).
#[derive(Debug, Clone, PartialEq)]
pub struct TxMessage {
    /// hash of the message cell
    pub hash: TonHash,
    /// normalized hash of an inbound external (when the server provides it)
    pub hash_norm: Option<TonHash>,
    /// sender (`None` for externals)
    pub source: Option<TonAddress>,
    /// destination (`None` for outbound externals)
    pub destination: Option<TonAddress>,
    /// value in nanotons
    pub value: u128,
    /// forwarding fee in nanotons
    pub fwd_fee: u128,
    /// creation logical time
    pub created_lt: u64,
    /// bounce flag
    pub bounce: bool,
    /// true if this message is a bounce
    pub bounced: bool,
    /// message body, if the server sent it raw
    pub body: Option<ArcCell>,
    /// attached state init
    pub init_state: Option<ArcCell>,
}

/// A transaction (`raw.transaction`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// the account
    pub account: Option<TonAddress>,
    /// lt and hash
    pub id: TxId,
    /// unix time
    pub utime: u64,
    /// total fees, nanotons
    pub fee: u128,
    /// storage fees, nanotons
    pub storage_fee: u128,
    /// other fees, nanotons
    pub other_fee: u128,
    /// inbound message
    pub in_msg: Option<TxMessage>,
    /// outbound messages
    pub out_msgs: Vec<TxMessage>,
    /// the transaction BoC, base64
    pub data: String,
    /// whether the transaction was aborted (the devnet reports it; toncenter does not)
    pub aborted: Option<bool>,
    /// compute phase exit code (the devnet reports it; toncenter does not)
    pub compute_exit_code: Option<i32>,
}

impl Transaction {
    /// True if the inbound message has `hash` as its cell hash or normalized hash.
    pub fn has_in_msg_hash(&self, hash: &TonHash) -> bool {
        self.in_msg
            .as_ref()
            .is_some_and(|m| &m.hash == hash || m.hash_norm.as_ref() == Some(hash))
    }
}

/// What [`TonClient::estimate_fee`] prices: an inbound external message to an account.
#[derive(Debug, Clone, Copy)]
pub struct FeeQuery<'a> {
    /// The receiving account.
    pub address: &'a TonAddress,
    /// The message body, a BoC.
    pub body: &'a [u8],
    /// The (code, data) BoCs of a state init, for an account not deployed yet.
    pub init: Option<(&'a [u8], &'a [u8])>,
}

/// `estimateFee`: what an inbound external message would cost the account, in nanotons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeeEstimate {
    /// import fee of the inbound message
    pub in_fwd_fee: u128,
    /// storage fee due
    pub storage_fee: u128,
    /// computation
    pub gas_fee: u128,
    /// forwarding of the outbound messages
    pub fwd_fee: u128,
}

impl FeeEstimate {
    /// The sum of all parts (saturating; the parts are far below u128::MAX).
    pub fn total(&self) -> u128 {
        self.in_fwd_fee
            .saturating_add(self.storage_fee)
            .saturating_add(self.gas_fee)
            .saturating_add(self.fwd_fee)
    }
}

/// Read and write access to the chain, as toncenter API v2 offers it.
#[async_trait]
pub trait TonClient: Send + Sync {
    /// `getMasterchainInfo`.
    async fn get_masterchain_info(&self) -> Result<MasterchainInfo, ClientError>;
    /// `getAddressInformation`.
    async fn get_address_information(
        &self,
        address: &TonAddress,
    ) -> Result<AddressInformation, ClientError>;
    /// `getAddressBalance`, nanotons.
    async fn get_address_balance(&self, address: &TonAddress) -> Result<u128, ClientError>;
    /// `getWalletInformation`.
    async fn get_wallet_information(
        &self,
        address: &TonAddress,
    ) -> Result<WalletInformation, ClientError>;
    /// `runGetMethod` by name.
    async fn run_get_method(
        &self,
        address: &TonAddress,
        method: &str,
        stack: &[StackEntry],
    ) -> Result<GetMethodResult, ClientError>;
    /// `sendBoc`.
    async fn send_boc(&self, boc: &[u8]) -> Result<(), ClientError>;
    /// `sendBocReturnHash`: the hash of the message as the server computed it.
    async fn send_boc_return_hash(&self, boc: &[u8]) -> Result<TonHash, ClientError>;
    /// `getTransactions`, newest first, starting at `from` (inclusive) if given.
    async fn get_transactions(
        &self,
        address: &TonAddress,
        limit: u32,
        from: Option<&TxId>,
    ) -> Result<Vec<Transaction>, ClientError>;

    /// `estimateFee` for the inbound external message `query` describes, signature checks
    /// skipped. Implementations that cannot estimate answer [`ClientError::InvalidArgument`].
    async fn estimate_fee(&self, query: FeeQuery<'_>) -> Result<FeeEstimate, ClientError> {
        let _ = query;
        Err(ClientError::InvalidArgument {
            method: "estimateFee".to_string(),
            detail: "not supported by this client".to_string(),
        })
    }

    /// How often [`TonClient::wait_for_transaction`] polls.
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(250)
    }

    /// Polls `getTransactions` on `account` until a transaction whose inbound message has
    /// `message_hash` (cell hash or normalized hash) appears, or `deadline` passes.
    async fn wait_for_transaction(
        &self,
        account: &TonAddress,
        message_hash: &TonHash,
        deadline: Instant,
    ) -> Result<Transaction, ClientError> {
        let started = Instant::now();
        loop {
            let txs = self.get_transactions(account, WAIT_PAGE, None).await?;
            if let Some(tx) = txs.into_iter().find(|t| t.has_in_msg_hash(message_hash)) {
                return Ok(tx);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout {
                    method: "wait_for_transaction".to_string(),
                    after: now.duration_since(started),
                });
            }
            tokio::time::sleep(self.poll_interval().min(deadline - now)).await;
        }
    }
}
