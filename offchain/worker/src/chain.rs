//! What the worker reads from and sends to the chain, behind [`WorkerChain`]: the root's allowlists
//! and parameters, its own stake, the proxies' vaults and payout records, and payout claims.
//! [`TonChain`](crate::chain_ton::TonChain) implements it over toncenter v2 (or the devnet);
//! [`MemoryChain`] is an in-memory stand-in for tests and drills.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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

#[derive(Debug, Default)]
struct MemoryState {
    root: RootView,
    stake: Option<StakeView>,
    vaults: BTreeMap<String, [u8; 32]>,
    payouts: BTreeMap<String, (u32, u128)>,
    balance: u128,
    claims: Vec<SignedPayout>,
    unavailable: bool,
    reads: u64,
    claims_off: bool,
}

/// An in-memory chain for tests and drills: the contracts' rules for payout claims (signature,
/// vault, strictly increasing seqno and amount), everything else set directly. Clones share state.
#[derive(Debug, Clone)]
pub struct MemoryChain {
    owner: TonAddress,
    state: Arc<Mutex<MemoryState>>,
}

impl MemoryChain {
    /// An empty chain (no stake, nothing allowed) whose owner wallet is `owner`.
    pub fn new(owner: TonAddress) -> Self {
        MemoryChain {
            owner,
            state: Arc::new(Mutex::new(MemoryState::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the owner's stake (None: never opened).
    pub fn set_stake(&self, stake: Option<StakeView>) {
        self.lock().stake = stake;
    }

    /// Allows a worker image (`revoked_at` 0) or records its revocation time.
    pub fn set_worker_image(&self, image: [u8; 32], revoked_at: u32) {
        self.lock().root.worker_images.insert(image, revoked_at);
    }

    /// Allows a model, or removes it with `None`.
    pub fn set_model(&self, model_hash: [u8; 32], name: Option<&str>) {
        let mut st = self.lock();
        match name {
            Some(n) => st.root.models.insert(model_hash, n.to_owned()),
            None => st.root.models.remove(&model_hash),
        };
    }

    /// Replaces the network price parameters (and their version).
    pub fn set_params(&self, params: PriceParams) {
        let mut st = self.lock();
        st.root.params_version = params.version;
        st.root.params = params;
    }

    /// Registers a proxy vault and its voucher key.
    pub fn add_vault(&self, vault: &TonAddress, key: [u8; 32]) {
        self.lock().vaults.insert(vault.to_hex(), key);
    }

    /// Makes every read and send fail as if the API were down (`true`) or work again.
    pub fn set_unavailable(&self, down: bool) {
        self.lock().unavailable = down;
    }

    /// Turns claims off (`true`: as a worker without an owner mnemonic, which only keeps vouchers)
    /// or on again. Anyone may still submit a voucher through [`WorkerChain::claim`] of a clone.
    pub fn set_claims_off(&self, off: bool) {
        self.lock().claims_off = off;
    }

    /// Claims accepted so far, in order.
    pub fn claims(&self) -> Vec<SignedPayout> {
        self.lock().claims.clone()
    }

    /// What the owner received through claims, nanoTON.
    pub fn owner_received(&self) -> u128 {
        self.lock().balance
    }

    /// Chain reads answered so far (tests wait for a fresh check with it).
    pub fn reads(&self) -> u64 {
        self.lock().reads
    }

    fn read(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, WorkerChainError> {
        let mut st = self.lock();
        if st.unavailable {
            return Err(WorkerChainError::Unavailable("memory chain is down".into()));
        }
        st.reads += 1;
        Ok(st)
    }
}

#[async_trait::async_trait]
impl WorkerChain for MemoryChain {
    fn owner(&self) -> &TonAddress {
        &self.owner
    }

    fn can_claim(&self) -> bool {
        !self.lock().claims_off
    }

    async fn root(&self) -> Result<RootView, WorkerChainError> {
        Ok(self.read()?.root.clone())
    }

    async fn stake(&self) -> Result<Option<StakeView>, WorkerChainError> {
        Ok(self.read()?.stake)
    }

    async fn vault_key(&self, vault: &TonAddress) -> Result<Option<[u8; 32]>, WorkerChainError> {
        Ok(self.read()?.vaults.get(&vault.to_hex()).copied())
    }

    async fn payout_claimed(&self, vault: &TonAddress) -> Result<(u32, u128), WorkerChainError> {
        Ok(self
            .read()?
            .payouts
            .get(&vault.to_hex())
            .copied()
            .unwrap_or((0, 0)))
    }

    async fn claim(&self, voucher: &SignedPayout) -> Result<ClaimReceipt, WorkerChainError> {
        let mut st = self.read()?;
        let v = &voucher.statement;
        let vault = v.vault.to_hex();
        let key = st
            .vaults
            .get(&vault)
            .copied()
            .ok_or_else(|| WorkerChainError::Refused("not a vault".into()))?;
        voucher
            .verify(&key)
            .map_err(|e| WorkerChainError::Refused(e.to_string()))?;
        let (seqno, paid) = st.payouts.get(&vault).copied().unwrap_or((0, 0));
        if v.seqno <= seqno {
            return Err(WorkerChainError::Refused("stale seqno".into()));
        }
        if v.paid <= paid {
            return Err(WorkerChainError::Refused("stale amount".into()));
        }
        let delta = v.paid - paid;
        st.payouts.insert(vault, (v.seqno, v.paid));
        st.balance = st.balance.saturating_add(delta);
        st.claims.push(voucher.clone());
        Ok(ClaimReceipt {
            tx_hash: format!("{:064x}", st.claims.len()),
            lt: st.claims.len() as u64,
            fees: 0,
            received: delta,
        })
    }
}
