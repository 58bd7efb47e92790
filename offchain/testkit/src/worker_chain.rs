//! [`WorkerMemoryChain`]: the chain as a worker sees it ([`WorkerChain`]), in memory. Payout claims
//! follow the vault contract's rules (the vault's key signs, strictly increasing seqno and amount);
//! everything else is set directly by the test.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cocoon_contracts::statements::SignedPayout;
use cocoon_protocol::PriceParams;
use cocoon_ton::TonAddress;
use cocoon_worker::chain::{ClaimReceipt, RootView, StakeView, WorkerChain, WorkerChainError};

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

/// An in-memory worker chain for tests and drills: the contracts' rules for payout claims (signature,
/// vault, strictly increasing seqno and amount), everything else set directly. Clones share state.
#[derive(Debug, Clone)]
pub struct WorkerMemoryChain {
    owner: TonAddress,
    state: Arc<Mutex<MemoryState>>,
}

impl WorkerMemoryChain {
    /// An empty chain (no stake, nothing allowed) whose owner wallet is `owner`.
    pub fn new(owner: TonAddress) -> Self {
        WorkerMemoryChain {
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
impl WorkerChain for WorkerMemoryChain {
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
