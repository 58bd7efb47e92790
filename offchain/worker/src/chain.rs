//! What the worker reads from and sends to the chain, behind [`WorkerChain`]: the root's allowlists
//! and parameters, its own stake, the proxies' vaults and payout records, and payout claims.
//! [`TonChain`](crate::chain_ton::TonChain) implements it over toncenter v2 (or the devnet); the
//! in-memory stand-in for tests and drills is `cocoon_testkit::WorkerMemoryChain`.

use std::collections::BTreeMap;

use cocoon_contracts::statements::SignedPayout;
use cocoon_protocol::PriceParams;
use cocoon_ton::TonAddress;

/// The root contract as the worker needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootView {
    /// Bumped by every params or code change.
    pub params_version: u32,
    /// The network price parameters.
    pub params: PriceParams,
    /// Worker image hash → revoked_at (0 = allowed).
    pub worker_images: BTreeMap<[u8; 32], u32>,
    /// Proxy image hash → revoked_at (0 = allowed).
    pub proxy_images: BTreeMap<[u8; 32], u32>,
    /// Key-service image hash → revoked_at (0 = allowed): who may release this worker's keys.
    pub kms_images: BTreeMap<[u8; 32], u32>,
    /// Allowed model hash → readable name.
    pub models: BTreeMap<[u8; 32], String>,
}

/// The worker's own stake (its owner's worker-role stake contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakeView {
    /// The contract's own rule: initialised and at least the minimum stake.
    pub can_serve: bool,
    /// The operator key the stake is bound to (must be the worker's attested key).
    pub key: [u8; 32],
    /// Staked nanoTON.
    pub staked: u128,
    /// Minimum stake snapshotted from the root, nanoTON.
    pub min_stake: u128,
}

/// One payout claim that reached the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimReceipt {
    /// Hash of the owner wallet's transaction, hex.
    pub tx_hash: String,
    /// Its logical time.
    pub lt: u64,
    /// Fees of every transaction the claim caused, nanoTON.
    pub fees: u128,
    /// What arrived at the owner wallet (payout plus the unspent claim value), nanoTON.
    pub received: u128,
}

/// A chain read or send failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkerChainError {
    /// The chain could not be read or written now (network, API, timeout).
    #[error("chain unavailable: {0}")]
    Unavailable(String),
    /// A contract refused the message (exit code decoded).
    #[error("refused on chain: {0}")]
    Refused(String),
    /// Claims need the owner wallet's mnemonic, which is not configured.
    #[error("no owner wallet configured: claims are off")]
    NoWallet,
}

/// The worker's access to the chain.
#[async_trait::async_trait]
pub trait WorkerChain: Send + Sync + std::fmt::Debug {
    /// The GPU owner's wallet (owner of the stake, receiver of payouts).
    fn owner(&self) -> &TonAddress;
    /// Whether [`WorkerChain::claim`] can send (a signing wallet is configured).
    fn can_claim(&self) -> bool;
    /// The root's parameters, allowlists and models.
    async fn root(&self) -> Result<RootView, WorkerChainError>;
    /// The owner's worker stake; `None` when it was never opened.
    async fn stake(&self) -> Result<Option<StakeView>, WorkerChainError>;
    /// The key payout vouchers of `vault` must be signed with, if `vault` is an active proxy vault
    /// under this root; `None` otherwise.
    async fn vault_key(&self, vault: &TonAddress) -> Result<Option<[u8; 32]>, WorkerChainError>;
    /// `(seqno, paid)` of the last payout `vault` paid to the owner; `(0, 0)` if none.
    async fn payout_claimed(&self, vault: &TonAddress) -> Result<(u32, u128), WorkerChainError>;
    /// Submits `voucher` to its vault from the owner wallet.
    async fn claim(&self, voucher: &SignedPayout) -> Result<ClaimReceipt, WorkerChainError>;
}
