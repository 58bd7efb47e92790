//! [`MemoryChain`]: the chain as a proxy sees it ([`ChainView`] and [`Settler`]), in memory, with a
//! record of every settlement. Escrows are opened by the test; charges and payouts follow the
//! contracts' rules (the proxy's key signs, cumulative amounts never go down).

use std::collections::HashMap;
use std::sync::Mutex;

use cocoon_daemon::tls::PeerIdentity;
use cocoon_protocol::PriceParams;
use cocoon_protocol::voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher};
use cocoon_proxy::chain::{
    BoxFuture, DEV_NETWORK_ID, DEV_PAYER, EscrowPhase, EscrowStatus, SettleError, apply_charge,
    dev_escrow_id, raise_marker, raise_payout,
};
use cocoon_proxy::{ChainView, EscrowInfo, Settler};

/// In-memory proxy chain: escrows, allowed workers, and a log of every settlement.
#[derive(Debug)]
pub struct MemoryChain {
    params: PriceParams,
    proxy_key: [u8; 32],
    inner: Mutex<MemoryChainState>,
}

/// What [`MemoryChain`] has recorded.
#[derive(Debug, Default, Clone)]
pub struct MemoryChainState {
    /// Escrows by client key.
    pub escrows: HashMap<[u8; 32], EscrowInfo>,
    /// Accepted charge vouchers, in order.
    pub charges: Vec<ChargeVoucher>,
    /// Accepted payout vouchers, in order.
    pub payouts: Vec<PayoutVoucher>,
    /// Last committed marker.
    pub marker: u64,
    /// When set, only these worker keys may serve.
    pub allowed_workers: Option<Vec<[u8; 32]>>,
    /// Cumulative payout per worker.
    pub paid: HashMap<[u8; 32], u128>,
    /// Escrows (by id) that left OPEN; the others are open.
    pub phases: HashMap<[u8; 32], EscrowPhase>,
}

impl MemoryChain {
    /// An empty chain with these parameters; `proxy_key` verifies submitted vouchers.
    pub fn new(params: PriceParams, proxy_key: [u8; 32]) -> Self {
        MemoryChain {
            params,
            proxy_key,
            inner: Mutex::new(MemoryChainState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryChainState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens an escrow for `client_key` with `credit` nanoTON (its id: [`dev_escrow_id`]).
    pub fn open_escrow(&self, client_key: [u8; 32], credit: u128) {
        let escrow = EscrowInfo {
            escrow: dev_escrow_id(&client_key),
            credit,
            settled: 0,
        };
        self.lock().escrows.insert(client_key, escrow);
    }

    /// Starts the unilateral close of `client_key`'s escrow (it may finish at `closing_at`): the key
    /// is no longer admitted, and charges not settled by then would be refunded.
    pub fn begin_close(&self, client_key: [u8; 32], closing_at: u64) {
        let mut st = self.lock();
        if let Some(e) = st.escrows.get(&client_key).copied() {
            st.phases
                .insert(e.escrow, EscrowPhase::Closing { closing_at });
        }
    }

    /// The client rotates its escrow's key from `old` to `new` (the same escrow, a new key).
    pub fn rotate_client_key(&self, old: [u8; 32], new: [u8; 32]) {
        let mut st = self.lock();
        if let Some(e) = st.escrows.remove(&old) {
            st.escrows.insert(new, e);
        }
    }

    /// Restricts serving to these worker keys.
    pub fn allow_only_workers(&self, keys: Vec<[u8; 32]>) {
        self.lock().allowed_workers = Some(keys);
    }

    /// Sets the committed marker directly (to simulate a chain ahead of a restored store).
    pub fn set_marker(&self, marker: u64) {
        self.lock().marker = marker;
    }

    /// A copy of the recorded state.
    pub fn snapshot(&self) -> MemoryChainState {
        self.lock().clone()
    }

    fn verified<V: cocoon_protocol::voucher::Voucher>(
        &self,
        v: &SignedVoucher<V>,
    ) -> Result<(), SettleError> {
        v.verify(&self.proxy_key)
            .map_err(|e| SettleError::Rejected(e.to_string()))
    }
}

impl ChainView for MemoryChain {
    fn params(&self) -> PriceParams {
        self.params
    }
    fn network_id(&self) -> i32 {
        DEV_NETWORK_ID
    }
    fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        let st = self.lock();
        st.escrows.get(client_key).copied().filter(|e| {
            st.phases
                .get(&e.escrow)
                .is_none_or(|p| *p == EscrowPhase::Open)
        })
    }
    fn client_account(&self, client_key: &[u8; 32]) -> Option<[u8; 32]> {
        self.lock().escrows.get(client_key).map(|e| e.escrow)
    }
    fn escrow_status(&self, escrow: &[u8; 32]) -> Option<EscrowStatus> {
        let st = self.lock();
        let (key, e) = st.escrows.iter().find(|(_, e)| e.escrow == *escrow)?;
        Some(EscrowStatus {
            phase: st.phases.get(escrow).copied().unwrap_or(EscrowPhase::Open),
            settled: e.settled,
            client_key: Some(*key),
        })
    }
    fn worker_allowed(&self, worker: &PeerIdentity) -> bool {
        self.lock()
            .allowed_workers
            .as_ref()
            .is_none_or(|keys| keys.contains(&worker.public_key))
    }
    fn committed_marker(&self) -> u64 {
        self.lock().marker
    }
    fn payer(&self) -> [u8; 32] {
        DEV_PAYER
    }
}

impl Settler for MemoryChain {
    fn submit_charge(
        &self,
        v: SignedVoucher<ChargeVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            self.verified(&v)?;
            let mut st = self.lock();
            let entry = st
                .escrows
                .values_mut()
                .find(|e| e.escrow == v.voucher.escrow)
                .ok_or_else(|| SettleError::Rejected("unknown escrow".into()))?;
            apply_charge(entry, v.voucher.cumulative_nano)?;
            st.charges.push(v.voucher);
            Ok(())
        })
    }
    fn submit_payout(
        &self,
        v: SignedVoucher<PayoutVoucher>,
    ) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move {
            self.verified(&v)?;
            let mut st = self.lock();
            raise_payout(
                st.paid.entry(v.voucher.worker_key).or_default(),
                v.voucher.cumulative_nano,
            )?;
            st.payouts.push(v.voucher);
            Ok(())
        })
    }
    fn commit_marker(&self, marker: u64) -> BoxFuture<'_, Result<(), SettleError>> {
        Box::pin(async move { raise_marker(&mut self.lock().marker, marker) })
    }
}
