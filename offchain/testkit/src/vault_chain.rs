//! [`VaultMemoryChain`]: a [`MemoryChain`] whose payouts go, in the contracts' format, to in-memory
//! vaults that the workers see too. Each worker key is paid through a [`WorkerChain`] (in tests, the
//! worker's own [`WorkerMemoryChain`](crate::WorkerMemoryChain), which applies the vault's rules: its key,
//! strictly higher seqno and amount), so the proxy's submissions and the worker's claims meet in the
//! same vault record, as on chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cocoon_contracts::statements::{SignedCharge, SignedPayout};
use cocoon_daemon::tls::PeerIdentity;
use cocoon_protocol::PriceParams;
use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};
use cocoon_ton::TonAddress;
use cocoon_worker::chain::{WorkerChain, WorkerChainError};

use cocoon_proxy::chain::{BoxFuture, SettleError};
use cocoon_proxy::{ChainView, EscrowInfo, Settler};

use crate::MemoryChain;

/// A [`MemoryChain`] paying registered workers through their vault records (see the module docs);
/// other workers are paid with ledger vouchers as [`MemoryChain`] does.
#[derive(Debug)]
pub struct VaultMemoryChain {
    inner: MemoryChain,
    vault: TonAddress,
    workers: Mutex<HashMap<[u8; 32], Arc<dyn WorkerChain>>>,
    submitted: Mutex<Vec<SignedPayout>>,
}

fn chain_error(e: WorkerChainError) -> SettleError {
    match e {
        WorkerChainError::Unavailable(m) => SettleError::Unavailable(m),
        other => SettleError::Rejected(other.to_string()),
    }
}

impl VaultMemoryChain {
    /// Wraps `inner`; payouts are drawn on `vault` (the proxy's).
    pub fn new(inner: MemoryChain, vault: TonAddress) -> Self {
        VaultMemoryChain {
            inner,
            vault,
            workers: Mutex::new(HashMap::new()),
            submitted: Mutex::new(Vec::new()),
        }
    }

    /// Pays the worker with this key to `chain`'s owner wallet, through `chain`'s vault records.
    pub fn pay_through(&self, worker_key: [u8; 32], chain: Arc<dyn WorkerChain>) {
        self.lock_workers().insert(worker_key, chain);
    }

    /// The wrapped chain (escrows, charges, marker).
    pub fn inner(&self) -> &MemoryChain {
        &self.inner
    }

    /// The vault payouts are drawn on.
    pub fn vault(&self) -> &TonAddress {
        &self.vault
    }

    /// Payout vouchers the proxy itself submitted and the vault applied, in order.
    pub fn submitted(&self) -> Vec<SignedPayout> {
        self.submitted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<dyn WorkerChain>>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn paying(&self, wallet: &TonAddress) -> Option<Arc<dyn WorkerChain>> {
        self.lock_workers()
            .values()
            .find(|c| c.owner() == wallet)
            .cloned()
    }
}

impl ChainView for VaultMemoryChain {
    fn params(&self) -> PriceParams {
        self.inner.params()
    }
    fn network_id(&self) -> i32 {
        self.inner.network_id()
    }
    fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        self.inner.escrow(client_key)
    }
    fn worker_allowed(&self, worker: &PeerIdentity) -> bool {
        self.inner.worker_allowed(worker)
    }
    fn committed_marker(&self) -> u64 {
        self.inner.committed_marker()
    }
    fn payer(&self) -> [u8; 32] {
        self.inner.payer()
    }
}

impl Settler for VaultMemoryChain {
    fn submit_charge(
        &self,
        v: SignedVoucher<ChargeVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        self.inner.submit_charge(v)
    }

    fn submit_payout(
        &self,
        v: SignedVoucher<PayoutVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        self.inner.submit_payout(v)
    }

    fn commit_marker(&self, marker: u64) -> BoxFuture<'_, Result<(), SettleError>> {
        self.inner.commit_marker(marker)
    }

    fn payout_target(&self, worker_key: &[u8; 32]) -> Option<(TonAddress, TonAddress)> {
        let chain = self.lock_workers().get(worker_key).cloned()?;
        Some((self.vault.clone(), chain.owner().clone()))
    }

    fn payout_record<'a>(
        &'a self,
        vault: &'a TonAddress,
        worker: &'a TonAddress,
    ) -> BoxFuture<'a, Result<(u32, u128), SettleError>> {
        Box::pin(async move {
            let chain = self
                .paying(worker)
                .ok_or_else(|| SettleError::Rejected("unknown worker wallet".into()))?;
            chain.payout_claimed(vault).await.map_err(chain_error)
        })
    }

    fn submit_charge_statement(
        &self,
        _signed: SignedCharge,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async {
            Err(SettleError::Rejected(
                "charges go through ledger vouchers here".into(),
            ))
        })
    }

    /// As the on-chain settler: a vault that already paid this much is left alone (no message);
    /// otherwise the voucher is submitted (the vault checks the key, seqno and amount).
    fn submit_payout_statement(
        &self,
        signed: SignedPayout,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            let v = &signed.statement;
            if v.vault != self.vault {
                return Err(SettleError::Rejected(
                    "payout drawn on another vault".into(),
                ));
            }
            let chain = self
                .paying(&v.worker)
                .ok_or_else(|| SettleError::Rejected("unknown worker wallet".into()))?;
            let (_, paid) = chain.payout_claimed(&v.vault).await.map_err(chain_error)?;
            if paid >= v.paid {
                return Ok(());
            }
            chain.claim(&signed).await.map_err(chain_error)?;
            self.submitted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(signed.clone());
            Ok(())
        })
    }
}
